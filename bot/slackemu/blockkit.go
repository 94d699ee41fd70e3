package slackemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// Block Kit limits enforced by the validator, as documented by Slack.
const (
	maxMessageBlocks     = 50
	maxViewBlocks        = 100
	maxSectionText       = 3000
	maxSectionFields     = 10
	maxSectionFieldText  = 2000
	maxHeaderText        = 150
	maxContextElements   = 10
	maxActionsElements   = 25
	maxButtonText        = 75
	maxButtonValue       = 2000
	maxActionID          = 255
	maxBlockID           = 255
	maxURL               = 3000
	maxOptionText        = 75
	maxOptionValue       = 150
	maxOptionDescription = 75
	maxSelectOptions     = 100
	maxChoiceOptions     = 10 // checkboxes, radio_buttons
	maxOverflowOptions   = 5
	maxPlaceholder       = 150
	maxModalTitle        = 24
	maxModalButton       = 24
	maxPrivateMetadata   = 3000
	maxCallbackID        = 255
	maxExternalID        = 255
	maxInputLabel        = 2000
	maxInputHint         = 2000
	maxTextInputLength   = 3000
	maxAltText           = 2000
	maxConfirmTitle      = 100
	maxConfirmText       = 300
	maxConfirmButton     = 30
	maxMessageText       = 40000
	maxMarkdownBlockText = 12000
)

// surfaceKind says where blocks are rendered, which changes some rules.
type surfaceKind int

const (
	surfaceMessage surfaceKind = iota
	surfaceModal
	surfaceHome
)

// validator collects Block Kit violations in Slack's wording:
// "[ERROR] <what> [json-pointer:<where>]".
type validator struct {
	kind     surfaceKind
	errs     []string
	blockIDs map[string]bool
	inputIDs map[string]string // action_id of input elements → pointer, for views
}

func newValidator(kind surfaceKind) *validator {
	return &validator{kind: kind, blockIDs: map[string]bool{}, inputIDs: map[string]string{}}
}

func (v *validator) errorf(ptr, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

// decodeJSON decodes JSON into generic values, keeping numbers exact.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// maxLen reports a string longer than max like Slack does.
func (v *validator) maxLen(ptr, s string, max int) {
	if runeLen(s) > max {
		v.errorf(ptr, "must be less than %d characters", max+1)
	}
}

// optString checks an optional string field and returns it.
func (v *validator) optString(obj map[string]any, key, ptr string, max int) string {
	raw, ok := obj[key]
	if !ok || raw == nil {
		return ""
	}
	s, ok := raw.(string)
	if !ok {
		v.errorf(ptr+"/"+key, "must be a string")
		return ""
	}
	if max > 0 {
		v.maxLen(ptr+"/"+key, s, max)
	}
	return s
}

// reqString checks a required, non-empty string field and returns it.
func (v *validator) reqString(obj map[string]any, key, ptr string, max int) string {
	raw, ok := obj[key]
	if !ok || raw == nil {
		v.errorf(ptr, "missing required field: %s", key)
		return ""
	}
	s, ok := raw.(string)
	if !ok {
		v.errorf(ptr+"/"+key, "must be a string")
		return ""
	}
	if s == "" {
		v.errorf(ptr+"/"+key, "must be more than 0 characters")
	}
	if max > 0 {
		v.maxLen(ptr+"/"+key, s, max)
	}
	return s
}

func (v *validator) optBool(obj map[string]any, key, ptr string) {
	if raw, ok := obj[key]; ok && raw != nil {
		if _, ok := raw.(bool); !ok {
			v.errorf(ptr+"/"+key, "must be a boolean")
		}
	}
}

func (v *validator) optInt(obj map[string]any, key, ptr string, min, max int) (int, bool) {
	raw, ok := obj[key]
	if !ok || raw == nil {
		return 0, false
	}
	n, ok := raw.(json.Number)
	if !ok {
		v.errorf(ptr+"/"+key, "must be an integer")
		return 0, false
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		v.errorf(ptr+"/"+key, "must be an integer")
		return 0, false
	}
	if i < min {
		v.errorf(ptr+"/"+key, "must be at least %d", min)
	}
	if i > max {
		v.errorf(ptr+"/"+key, "must be at most %d", max)
	}
	return i, true
}

// object returns obj[key] as an object; a present non-object is an error.
func (v *validator) object(obj map[string]any, key, ptr string, required bool) map[string]any {
	raw, ok := obj[key]
	if !ok || raw == nil {
		if required {
			v.errorf(ptr, "missing required field: %s", key)
		}
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		v.errorf(ptr+"/"+key, "must provide an object")
		return nil
	}
	return m
}

// array returns obj[key] as an array, checking its length bounds.
func (v *validator) array(obj map[string]any, key, ptr string, required bool, min, max int) []any {
	raw, ok := obj[key]
	if !ok || raw == nil {
		if required {
			v.errorf(ptr, "missing required field: %s", key)
		}
		return nil
	}
	a, ok := raw.([]any)
	if !ok {
		v.errorf(ptr+"/"+key, "must provide an array")
		return nil
	}
	if len(a) < min {
		v.errorf(ptr+"/"+key, "must provide at least %d items", min)
	}
	if max > 0 && len(a) > max {
		v.errorf(ptr+"/"+key, "no more than %d items allowed", max)
	}
	return a
}

// textObject validates an optional or required text object at obj[key].
func (v *validator) textObject(obj map[string]any, key, ptr string, required, plainOnly bool, max int) map[string]any {
	t := v.object(obj, key, ptr, required)
	if t == nil {
		return nil
	}
	v.textValue(t, ptr+"/"+key, plainOnly, max)
	return t
}

// textValue validates a composition text object found at ptr.
func (v *validator) textValue(t map[string]any, ptr string, plainOnly bool, max int) {
	switch typ, _ := t["type"].(string); typ {
	case "plain_text":
		v.optBool(t, "emoji", ptr)
	case "mrkdwn":
		if plainOnly {
			v.errorf(ptr+"/type", "must be plain_text")
		}
		v.optBool(t, "verbatim", ptr)
	case "":
		v.errorf(ptr, "missing required field: type")
	default:
		v.errorf(ptr+"/type", "must be a valid enum value")
	}
	v.reqString(t, "text", ptr, max)
}

func (v *validator) blockID(b map[string]any, ptr string) {
	id := v.optString(b, "block_id", ptr, maxBlockID)
	if id == "" {
		return
	}
	if v.blockIDs[id] {
		v.errorf(ptr+"/block_id", "duplicate block_id %q: block_id must be unique", id)
	}
	v.blockIDs[id] = true
}

// validateBlocks validates a blocks array (already decoded) at ptr.
func (v *validator) validateBlocks(raw any, ptr string, max int) {
	blocks, ok := raw.([]any)
	if !ok {
		v.errorf(ptr, "must provide an array")
		return
	}
	if len(blocks) > max {
		v.errorf(ptr, "no more than %d items allowed", max)
	}
	for i, rb := range blocks {
		v.block(rb, fmt.Sprintf("%s/%d", ptr, i))
	}
}

func (v *validator) block(raw any, ptr string) {
	b, ok := raw.(map[string]any)
	if !ok {
		v.errorf(ptr, "must provide an object")
		return
	}
	typ, _ := b["type"].(string)
	if typ == "" {
		v.errorf(ptr, "missing required field: type")
		return
	}
	v.blockID(b, ptr)
	actionIDs := map[string]bool{}
	switch typ {
	case "section":
		if b["text"] == nil && b["fields"] == nil {
			v.errorf(ptr, "must provide either text or fields")
		}
		v.textObject(b, "text", ptr, false, false, maxSectionText)
		fields := v.array(b, "fields", ptr, false, 1, maxSectionFields)
		for i, f := range fields {
			fp := fmt.Sprintf("%s/fields/%d", ptr, i)
			fm, ok := f.(map[string]any)
			if !ok {
				v.errorf(fp, "must provide an object")
				continue
			}
			v.textValue(fm, fp, false, maxSectionFieldText)
		}
		if acc := v.object(b, "accessory", ptr, false); acc != nil {
			v.element(acc, ptr+"/accessory", "accessory", actionIDs)
		}
	case "divider":
	case "header":
		v.textObject(b, "text", ptr, true, true, maxHeaderText)
	case "context":
		els := v.array(b, "elements", ptr, true, 1, maxContextElements)
		for i, e := range els {
			ep := fmt.Sprintf("%s/elements/%d", ptr, i)
			em, ok := e.(map[string]any)
			if !ok {
				v.errorf(ep, "must provide an object")
				continue
			}
			switch et, _ := em["type"].(string); et {
			case "plain_text", "mrkdwn":
				v.reqString(em, "text", ep, 0)
			case "image":
				v.element(em, ep, "context", actionIDs)
			default:
				v.errorf(ep+"/type", "must be a valid enum value")
			}
		}
	case "actions":
		els := v.array(b, "elements", ptr, true, 1, maxActionsElements)
		for i, e := range els {
			ep := fmt.Sprintf("%s/elements/%d", ptr, i)
			em, ok := e.(map[string]any)
			if !ok {
				v.errorf(ep, "must provide an object")
				continue
			}
			v.element(em, ep, "actions", actionIDs)
		}
	case "input":
		v.textObject(b, "label", ptr, true, true, maxInputLabel)
		v.textObject(b, "hint", ptr, false, true, maxInputHint)
		v.optBool(b, "optional", ptr)
		v.optBool(b, "dispatch_action", ptr)
		if el := v.object(b, "element", ptr, true); el != nil {
			v.element(el, ptr+"/element", "input", actionIDs)
			if id, _ := el["action_id"].(string); id != "" && v.kind != surfaceMessage {
				if prev, dup := v.inputIDs[id]; dup {
					v.errorf(ptr+"/element/action_id", "duplicate action_id %q (also at %s): action_id must be unique within the view", id, prev)
				}
				v.inputIDs[id] = ptr + "/element/action_id"
			}
		}
	case "image":
		v.imageSource(b, ptr)
		v.reqString(b, "alt_text", ptr, maxAltText)
		v.textObject(b, "title", ptr, false, true, maxAltText)
	case "markdown":
		if v.kind != surfaceMessage {
			v.errorf(ptr+"/type", "markdown blocks are only allowed in messages")
		}
		v.reqString(b, "text", ptr, maxMarkdownBlockText)
	case "rich_text":
		v.array(b, "elements", ptr, true, 0, 0)
	case "file", "video", "table", "context_actions":
		// Accepted without deeper checks.
	default:
		v.errorf(ptr+"/type", "must be a valid enum value")
	}
}

func (v *validator) imageSource(obj map[string]any, ptr string) {
	_, hasURL := obj["image_url"]
	_, hasFile := obj["slack_file"]
	switch {
	case hasURL:
		v.reqString(obj, "image_url", ptr, maxURL)
	case hasFile:
		v.object(obj, "slack_file", ptr, true)
	default:
		v.errorf(ptr, "missing required field: image_url")
	}
}

var (
	datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	timePattern = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
)

// allowedElements lists the element types per container.
var allowedElements = map[string]map[string]bool{
	"actions": set("button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker",
		"static_select", "external_select", "users_select", "conversations_select", "channels_select",
		"multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select",
		"workflow_button", "rich_text_input"),
	"accessory": set("button", "checkboxes", "datepicker", "image", "overflow", "radio_buttons", "timepicker",
		"static_select", "external_select", "users_select", "conversations_select", "channels_select",
		"multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select",
		"workflow_button"),
	"input": set("checkboxes", "datepicker", "datetimepicker", "email_text_input", "file_input", "number_input",
		"plain_text_input", "radio_buttons", "rich_text_input", "timepicker", "url_text_input",
		"static_select", "external_select", "users_select", "conversations_select", "channels_select",
		"multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select"),
	"context": set("image"),
}

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}

// element validates an interactive (or image) element.
func (v *validator) element(el map[string]any, ptr, container string, actionIDs map[string]bool) {
	typ, _ := el["type"].(string)
	if typ == "" {
		v.errorf(ptr, "missing required field: type")
		return
	}
	if !allowedElements[container][typ] {
		v.errorf(ptr+"/type", "must be a valid enum value")
		return
	}
	if typ != "image" {
		id := v.optString(el, "action_id", ptr, maxActionID)
		if id != "" {
			if actionIDs[id] {
				v.errorf(ptr+"/action_id", "duplicate action_id %q: action_id must be unique within the block", id)
			}
			actionIDs[id] = true
		}
	}
	if c := v.object(el, "confirm", ptr, false); c != nil {
		v.confirm(c, ptr+"/confirm")
	}
	switch typ {
	case "button":
		v.textObject(el, "text", ptr, true, true, maxButtonText)
		v.optString(el, "value", ptr, maxButtonValue)
		v.optString(el, "url", ptr, maxURL)
		v.optString(el, "accessibility_label", ptr, maxButtonText)
		if st := v.optString(el, "style", ptr, 0); st != "" && st != "primary" && st != "danger" {
			v.errorf(ptr+"/style", "must be a valid enum value")
		}
	case "workflow_button":
		v.textObject(el, "text", ptr, true, true, maxButtonText)
		v.object(el, "workflow", ptr, true)
	case "image":
		v.imageSource(el, ptr)
		v.reqString(el, "alt_text", ptr, maxAltText)
	case "static_select", "multi_static_select":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		_, hasOpts := el["options"]
		_, hasGroups := el["option_groups"]
		var values map[string]bool
		switch {
		case hasOpts && hasGroups:
			v.errorf(ptr, "must provide only one of: options, option_groups")
		case hasOpts:
			values = v.options(v.array(el, "options", ptr, true, 1, maxSelectOptions), ptr+"/options", true, false)
		case hasGroups:
			values = map[string]bool{}
			groups := v.array(el, "option_groups", ptr, true, 1, maxSelectOptions)
			for i, g := range groups {
				gp := fmt.Sprintf("%s/option_groups/%d", ptr, i)
				gm, ok := g.(map[string]any)
				if !ok {
					v.errorf(gp, "must provide an object")
					continue
				}
				v.textObject(gm, "label", gp, true, true, maxOptionText)
				for k := range v.options(v.array(gm, "options", gp, true, 1, maxSelectOptions), gp+"/options", true, false) {
					values[k] = true
				}
			}
		default:
			v.errorf(ptr, "missing required field: options")
		}
		v.initialOptions(el, ptr, values)
		if typ == "multi_static_select" {
			v.optInt(el, "max_selected_items", ptr, 1, 1<<30)
		}
	case "external_select", "multi_external_select":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		v.optInt(el, "min_query_length", ptr, 0, 1<<30)
		v.initialOptions(el, ptr, nil)
	case "users_select", "conversations_select", "channels_select",
		"multi_users_select", "multi_conversations_select", "multi_channels_select":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
	case "overflow":
		v.options(v.array(el, "options", ptr, true, 1, maxOverflowOptions), ptr+"/options", true, true)
	case "checkboxes", "radio_buttons":
		values := v.options(v.array(el, "options", ptr, true, 1, maxChoiceOptions), ptr+"/options", false, false)
		v.initialOptions(el, ptr, values)
	case "plain_text_input":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		v.optString(el, "initial_value", ptr, 0)
		v.optBool(el, "multiline", ptr)
		minL, hasMin := v.optInt(el, "min_length", ptr, 0, maxTextInputLength)
		maxL, hasMax := v.optInt(el, "max_length", ptr, 1, maxTextInputLength)
		if hasMin && hasMax && minL > maxL {
			v.errorf(ptr+"/min_length", "must be less than or equal to max_length")
		}
		if iv, ok := el["initial_value"].(string); ok && hasMax && runeLen(iv) > maxL {
			v.errorf(ptr+"/initial_value", "must be less than %d characters", maxL+1)
		}
	case "email_text_input", "url_text_input":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		v.optString(el, "initial_value", ptr, 0)
	case "number_input":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		if _, ok := el["is_decimal_allowed"].(bool); !ok {
			v.errorf(ptr, "missing required field: is_decimal_allowed")
		}
	case "datepicker":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		if d := v.optString(el, "initial_date", ptr, 0); d != "" && !datePattern.MatchString(d) {
			v.errorf(ptr+"/initial_date", "must match the pattern YYYY-MM-DD")
		}
	case "timepicker":
		v.textObject(el, "placeholder", ptr, false, true, maxPlaceholder)
		if t := v.optString(el, "initial_time", ptr, 0); t != "" && !timePattern.MatchString(t) {
			v.errorf(ptr+"/initial_time", "must match the pattern HH:mm")
		}
	}
}

// options validates option objects and returns the set of their values.
func (v *validator) options(opts []any, ptr string, plainOnly, overflow bool) map[string]bool {
	values := map[string]bool{}
	for i, o := range opts {
		op := fmt.Sprintf("%s/%d", ptr, i)
		om, ok := o.(map[string]any)
		if !ok {
			v.errorf(op, "must provide an object")
			continue
		}
		v.textObject(om, "text", op, true, plainOnly, maxOptionText)
		val := v.reqString(om, "value", op, maxOptionValue)
		v.textObject(om, "description", op, false, plainOnly, maxOptionDescription)
		if overflow {
			v.optString(om, "url", op, maxURL)
		} else if _, ok := om["url"]; ok {
			v.errorf(op+"/url", "url is only allowed in overflow menus")
		}
		if values[val] && val != "" {
			v.errorf(op+"/value", "duplicate option value %q", val)
		}
		values[val] = true
	}
	return values
}

// initialOptions checks initial_option / initial_options against the
// element's values (nil values: not checkable, e.g. external selects).
func (v *validator) initialOptions(el map[string]any, ptr string, values map[string]bool) {
	check := func(o any, op string) {
		om, ok := o.(map[string]any)
		if !ok {
			v.errorf(op, "must provide an object")
			return
		}
		v.textObject(om, "text", op, true, false, maxOptionText)
		val := v.reqString(om, "value", op, maxOptionValue)
		if values != nil && !values[val] {
			v.errorf(op, "initial option %q must be one of the provided options", val)
		}
	}
	if o, ok := el["initial_option"]; ok && o != nil {
		check(o, ptr+"/initial_option")
	}
	if os, ok := el["initial_options"]; ok && os != nil {
		arr, ok := os.([]any)
		if !ok {
			v.errorf(ptr+"/initial_options", "must provide an array")
			return
		}
		for i, o := range arr {
			check(o, fmt.Sprintf("%s/initial_options/%d", ptr, i))
		}
	}
}

func (v *validator) confirm(c map[string]any, ptr string) {
	v.textObject(c, "title", ptr, true, true, maxConfirmTitle)
	v.textObject(c, "text", ptr, true, false, maxConfirmText)
	v.textObject(c, "confirm", ptr, true, true, maxConfirmButton)
	v.textObject(c, "deny", ptr, true, true, maxConfirmButton)
	if st := v.optString(c, "style", ptr, 0); st != "" && st != "primary" && st != "danger" {
		v.errorf(ptr+"/style", "must be a valid enum value")
	}
}

// validateMessageBlocks checks the blocks of a message (ptr "/blocks").
func validateMessageBlocks(blocks any) []string {
	v := newValidator(surfaceMessage)
	v.validateBlocks(blocks, "/blocks", maxMessageBlocks)
	return v.errs
}

// validateView checks a view object; wantType is "modal", "home" or "" for either.
func validateView(view map[string]any, wantType string) []string {
	const p = "/view"
	typ, _ := view["type"].(string)
	kind := surfaceModal
	v := newValidator(kind)
	switch {
	case typ == "":
		v.errorf(p, "missing required field: type")
		return v.errs
	case typ != "modal" && typ != "home":
		v.errorf(p+"/type", "must be a valid enum value")
		return v.errs
	case wantType != "" && typ != wantType:
		v.errorf(p+"/type", "must be %s", wantType)
		return v.errs
	}
	if typ == "home" {
		v.kind = surfaceHome
	}
	if typ == "modal" {
		v.textObject(view, "title", p, true, true, maxModalTitle)
		v.textObject(view, "submit", p, false, true, maxModalButton)
		v.textObject(view, "close", p, false, true, maxModalButton)
		v.optBool(view, "notify_on_close", p)
		v.optBool(view, "clear_on_close", p)
		v.optBool(view, "submit_disabled", p)
	}
	v.optString(view, "private_metadata", p, maxPrivateMetadata)
	v.optString(view, "callback_id", p, maxCallbackID)
	v.optString(view, "external_id", p, maxExternalID)
	blocks, ok := view["blocks"]
	if !ok {
		v.errorf(p, "missing required field: blocks")
		return v.errs
	}
	v.validateBlocks(blocks, p+"/blocks", maxViewBlocks)
	if typ == "modal" && view["submit"] == nil && hasInputBlock(blocks) {
		v.errorf(p, "missing required field: submit (a modal with input blocks needs a submit button)")
	}
	return v.errs
}

func hasInputBlock(blocks any) bool {
	arr, _ := blocks.([]any)
	for _, b := range arr {
		if m, ok := b.(map[string]any); ok && m["type"] == "input" {
			return true
		}
	}
	return false
}

// normalizeBlocks gives every block a block_id and every interactive
// element an action_id when the app left them out, as Slack does. gen
// returns a fresh short id.
func normalizeBlocks(blocks any, gen func() string) {
	arr, _ := blocks.([]any)
	for _, rb := range arr {
		b, ok := rb.(map[string]any)
		if !ok {
			continue
		}
		if id, _ := b["block_id"].(string); id == "" {
			b["block_id"] = gen()
		}
		fill := func(el map[string]any) {
			if el == nil || el["type"] == "image" {
				return
			}
			if id, _ := el["action_id"].(string); id == "" {
				el["action_id"] = gen()
			}
		}
		switch b["type"] {
		case "actions":
			els, _ := b["elements"].([]any)
			for _, e := range els {
				em, _ := e.(map[string]any)
				fill(em)
			}
		case "section":
			acc, _ := b["accessory"].(map[string]any)
			fill(acc)
		case "input":
			el, _ := b["element"].(map[string]any)
			fill(el)
		}
	}
}
