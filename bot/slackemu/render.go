package slackemu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

func decodeBlocks(raw json.RawMessage) []any {
	if len(raw) == 0 {
		return nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil
	}
	arr, _ := v.([]any)
	return arr
}

// renderBlocks renders blocks as readable text, one or more lines per block:
//
//	header       # Text
//	section      its text, then each field on its own line, then the accessory
//	context      elements joined by " | "
//	divider      ---
//	actions      [Button] [Other] <static_select: Placeholder>
//	input        Label: <plain_text_input> (with "= value" when a value is set)
//	image        [image: alt text]
//
// errs (block_id → message) are rendered as "! message" under their block.
func renderBlocks(blocks []any, errs map[string]string) string {
	var lines []string
	for _, rb := range blocks {
		b, ok := rb.(map[string]any)
		if !ok {
			continue
		}
		switch b["type"] {
		case "header":
			lines = append(lines, "# "+textOf(asMap(b["text"])))
		case "section":
			var parts []string
			if t := textOf(asMap(b["text"])); t != "" {
				parts = append(parts, t)
			}
			fields, _ := b["fields"].([]any)
			for _, f := range fields {
				parts = append(parts, textOf(asMap(f)))
			}
			if acc := asMap(b["accessory"]); acc != nil {
				parts = append(parts, renderElement(acc))
			}
			lines = append(lines, strings.Join(parts, "\n"))
		case "context":
			var parts []string
			els, _ := b["elements"].([]any)
			for _, e := range els {
				em := asMap(e)
				if em["type"] == "image" {
					parts = append(parts, renderElement(em))
				} else {
					parts = append(parts, textOf(em))
				}
			}
			lines = append(lines, strings.Join(parts, " | "))
		case "divider":
			lines = append(lines, "---")
		case "actions":
			var parts []string
			els, _ := b["elements"].([]any)
			for _, e := range els {
				parts = append(parts, renderElement(asMap(e)))
			}
			lines = append(lines, strings.Join(parts, " "))
		case "input":
			el := asMap(b["element"])
			line := textOf(asMap(b["label"]))
			if opt, _ := b["optional"].(bool); opt {
				line += " (optional)"
			}
			line += ": " + renderElement(el)
			if h := textOf(asMap(b["hint"])); h != "" {
				line += "\n  " + h
			}
			lines = append(lines, line)
		case "image":
			alt, _ := b["alt_text"].(string)
			lines = append(lines, "[image: "+alt+"]")
		case "markdown":
			t, _ := b["text"].(string)
			lines = append(lines, t)
		case "rich_text":
			lines = append(lines, richText(b))
		}
		if id, _ := b["block_id"].(string); id != "" && errs[id] != "" {
			lines = append(lines, "! "+errs[id])
		}
	}
	return strings.Join(lines, "\n")
}

func renderElement(el map[string]any) string {
	typ, _ := el["type"].(string)
	switch typ {
	case "button", "workflow_button":
		return "[" + textOf(asMap(el["text"])) + "]"
	case "image":
		alt, _ := el["alt_text"].(string)
		return "[image: " + alt + "]"
	case "overflow":
		return "[…]"
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
		s := "<" + typ + ">"
		if v, _ := el["initial_value"].(string); v != "" {
			s += " = " + v
		}
		return s
	case "static_select", "multi_static_select", "checkboxes", "radio_buttons":
		var vals []string
		for _, o := range optionsOf(el) {
			vals = append(vals, o.Text)
		}
		s := "<" + typ + ": " + strings.Join(vals, " | ") + ">"
		if io := asMap(el["initial_option"]); io != nil {
			s += " = " + textOf(asMap(io["text"]))
		}
		return s
	default:
		s := "<" + typ
		if p := textOf(asMap(el["placeholder"])); p != "" {
			s += ": " + p
		}
		return s + ">"
	}
}

func richText(b map[string]any) string {
	var sb strings.Builder
	var walk func(any)
	walk = func(n any) {
		switch x := n.(type) {
		case map[string]any:
			switch x["type"] {
			case "text":
				t, _ := x["text"].(string)
				sb.WriteString(t)
			case "user":
				id, _ := x["user_id"].(string)
				sb.WriteString("<@" + id + ">")
			case "link":
				u, _ := x["url"].(string)
				sb.WriteString(u)
			}
			walk(x["elements"])
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(b["elements"])
	return sb.String()
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// optionsOf lists the options of an element, flattening option groups.
func optionsOf(el map[string]any) []SelectOption {
	var out []SelectOption
	add := func(opts any, group string) {
		arr, _ := opts.([]any)
		for _, o := range arr {
			om := asMap(o)
			val, _ := om["value"].(string)
			out = append(out, SelectOption{
				Text: textOf(asMap(om["text"])), Value: val,
				Description: textOf(asMap(om["description"])), Group: group,
			})
		}
	}
	add(el["options"], "")
	groups, _ := el["option_groups"].([]any)
	for _, g := range groups {
		gm := asMap(g)
		add(gm["options"], textOf(asMap(gm["label"])))
	}
	return out
}

// elemRef locates an interactive element inside a block list.
type elemRef struct {
	block     map[string]any
	blockID   string
	blockType string
	el        map[string]any
}

func (r elemRef) actionID() string { s, _ := r.el["action_id"].(string); return s }
func (r elemRef) typ() string      { s, _ := r.el["type"].(string); return s }

// findElements returns every interactive element, in rendering order.
func findElements(blocks []any) []elemRef {
	var out []elemRef
	for _, rb := range blocks {
		b := asMap(rb)
		if b == nil {
			continue
		}
		bid, _ := b["block_id"].(string)
		bt, _ := b["type"].(string)
		switch bt {
		case "actions":
			els, _ := b["elements"].([]any)
			for _, e := range els {
				if em := asMap(e); em != nil {
					out = append(out, elemRef{b, bid, bt, em})
				}
			}
		case "section":
			if acc := asMap(b["accessory"]); acc != nil && acc["type"] != "image" {
				out = append(out, elemRef{b, bid, bt, acc})
			}
		case "input":
			if el := asMap(b["element"]); el != nil {
				out = append(out, elemRef{b, bid, bt, el})
			}
		}
	}
	return out
}

func listElements(blocks []any) []Element {
	var out []Element
	for _, r := range findElements(blocks) {
		e := Element{
			BlockID: r.blockID, BlockType: r.blockType, ActionID: r.actionID(), Type: r.typ(),
			Options: optionsOf(r.el),
		}
		switch e.Type {
		case "button", "workflow_button":
			e.Text = textOf(asMap(r.el["text"]))
		default:
			e.Text = textOf(asMap(r.el["placeholder"]))
		}
		e.Value, _ = r.el["value"].(string)
		e.URL, _ = r.el["url"].(string)
		e.Style, _ = r.el["style"].(string)
		if r.blockType == "input" {
			e.Label = textOf(asMap(r.block["label"]))
			e.Optional, _ = r.block["optional"].(bool)
			e.Dispatch, _ = r.block["dispatch_action"].(bool)
		}
		out = append(out, e)
	}
	return out
}

func describeElements(blocks []any) string {
	var ids []string
	for _, r := range findElements(blocks) {
		ids = append(ids, fmt.Sprintf("%s(%s)", r.actionID(), r.typ()))
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

var (
	escapedMention = regexp.MustCompile(`<(@[UW][A-Z0-9]+|!here|!channel|!everyone|!subteam\^[A-Z0-9]+)(\|[^>]*)?>`)
	bareMention    = regexp.MustCompile(`(^|[^<\w])@(here|channel|everyone|[a-z0-9][a-z0-9._-]*)`)
)

func mentionsIn(text string, linkNames bool) []string {
	var out []string
	for _, m := range escapedMention.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	if linkNames {
		for _, m := range bareMention.FindAllStringSubmatch(escapedMention.ReplaceAllString(text, ""), -1) {
			switch m[2] {
			case "here", "channel", "everyone":
				out = append(out, "!"+m[2])
			default:
				out = append(out, "@"+m[2])
			}
		}
	}
	return out
}

// collectMrkdwn appends the text of every mrkdwn text object in v.
func collectMrkdwn(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "mrkdwn" {
			if t, ok := x["text"].(string); ok {
				*out = append(*out, t)
			}
		}
		if x["type"] == "user" {
			if id, ok := x["user_id"].(string); ok {
				*out = append(*out, "<@"+id+">")
			}
		}
		if x["type"] == "broadcast" {
			if r, ok := x["range"].(string); ok {
				*out = append(*out, "<!"+r+">")
			}
		}
		for _, c := range x {
			collectMrkdwn(c, out)
		}
	case []any:
		for _, c := range x {
			collectMrkdwn(c, out)
		}
	}
}
