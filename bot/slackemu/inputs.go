package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Type types text into the text input (plain_text_input, email, url or
// number input) with that action_id, as user. It is Select for text inputs.
func (s *Server) Type(ctx context.Context, user string, sf Surface, actionID, text string) (Ack, error) {
	return s.Select(ctx, user, sf, actionID, text)
}

// Select chooses value in a select menu (static, external, users,
// conversations, channels; multi-selects take comma-separated values),
// radio buttons, checkboxes (comma-separated), overflow menu, date or time
// picker, or types it into a text input, with that action_id, as user.
// Values are converted as for Submit. Inside an input block without
// dispatch_action only the view's state changes and no envelope is sent
// (the zero Ack is returned); anywhere else Slack sends block_actions and
// Select waits for the ack. For a static select the value must be one of
// the options; for an external select the option's text is taken from
// the last Suggest on that element, or is the value itself.
func (s *Server) Select(ctx context.Context, user string, sf Surface, actionID, value string) (Ack, error) {
	op := "select " + actionID
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.resolveLocked(u, sf, op)
		if err != nil {
			return nil, err
		}
		r, err := s.findLocked(u, t, op, actionID, func(r elemRef) bool { return r.typ() != "button" })
		if err != nil {
			return nil, err
		}
		viewID := ""
		if t.view != nil {
			viewID = t.view.id
		}
		st, err := s.stateValueLocked(viewID, r, value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if t.view != nil {
			s.setStateLocked(t.view, r.blockID, r.actionID(), st)
			s.bumpLocked()
		}
		if dispatch, _ := r.block["dispatch_action"].(bool); r.blockType == "input" && !dispatch {
			return nil, nil
		}
		action := map[string]any{
			"action_id": r.actionID(), "block_id": r.blockID, "action_ts": s.actionTSLocked(),
		}
		for k, v := range st {
			action[k] = v
		}
		if ph := asMap(r.el["placeholder"]); ph != nil {
			action["placeholder"] = withEmoji(ph)
		}
		return s.sendBlockActionsLocked(u, t, action), nil
	})
}

// findOption returns the option object (as rendered) with that value.
func findOption(el map[string]any, value string) map[string]any {
	check := func(opts any) map[string]any {
		arr, _ := opts.([]any)
		for _, o := range arr {
			om := asMap(o)
			if v, _ := om["value"].(string); v == value {
				return om
			}
		}
		return nil
	}
	if o := check(el["options"]); o != nil {
		return o
	}
	groups, _ := el["option_groups"].([]any)
	for _, g := range groups {
		if o := check(asMap(g)["options"]); o != nil {
			return o
		}
	}
	return nil
}

func splitList(value string) []string {
	var out []string
	for _, p := range strings.Split(value, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// stateValueLocked converts a test-supplied value into the element's
// state.values entry, checking it like the Slack client would.
func (s *Server) stateValueLocked(viewID string, r elemRef, value string) (map[string]any, error) {
	typ := r.typ()
	st := map[string]any{"type": typ}
	option := func(v string) (map[string]any, error) {
		switch typ {
		case "external_select", "multi_external_select":
			for _, o := range s.suggestions[viewID+"\x00"+r.actionID()] {
				if ov, _ := o["value"].(string); ov == v {
					return optionForState(o), nil
				}
			}
			if io := asMap(r.el["initial_option"]); io != nil && io["value"] == v {
				return optionForState(io), nil
			}
			return map[string]any{"text": map[string]any{"type": "plain_text", "text": v, "emoji": true}, "value": v}, nil
		}
		o := findOption(r.el, v)
		if o == nil {
			return nil, fmt.Errorf("%w: %q is not one of the options of %s (%s)", ErrInvalidValue, v, r.actionID(), optionValues(r.el))
		}
		return optionForState(o), nil
	}
	switch typ {
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
		if maxL, ok := r.el["max_length"].(json.Number); ok {
			if n, _ := maxL.Int64(); int64(runeLen(value)) > n {
				return nil, fmt.Errorf("%w: %d characters, %s allows at most %d", ErrInvalidValue, runeLen(value), r.actionID(), n)
			}
		}
		if minL, ok := r.el["min_length"].(json.Number); ok && value != "" {
			if n, _ := minL.Int64(); int64(runeLen(value)) < n {
				return nil, fmt.Errorf("%w: %d characters, %s needs at least %d", ErrInvalidValue, runeLen(value), r.actionID(), n)
			}
		}
		if value == "" {
			st["value"] = nil
		} else {
			st["value"] = value
		}
	case "static_select", "external_select", "radio_buttons", "overflow":
		if value == "" {
			st["selected_option"] = nil
			break
		}
		o, err := option(value)
		if err != nil {
			return nil, err
		}
		st["selected_option"] = o
	case "multi_static_select", "multi_external_select", "checkboxes":
		sel := []any{}
		for _, v := range splitList(value) {
			o, err := option(v)
			if err != nil {
				return nil, err
			}
			sel = append(sel, o)
		}
		st["selected_options"] = sel
	case "users_select", "conversations_select", "channels_select":
		key := map[string]string{"users_select": "selected_user", "conversations_select": "selected_conversation",
			"channels_select": "selected_channel"}[typ]
		id, err := s.entityIDLocked(typ, value)
		if err != nil {
			return nil, err
		}
		st[key] = id
	case "multi_users_select", "multi_conversations_select", "multi_channels_select":
		key := map[string]string{"multi_users_select": "selected_users",
			"multi_conversations_select": "selected_conversations", "multi_channels_select": "selected_channels"}[typ]
		ids := []string{}
		for _, v := range splitList(value) {
			id, err := s.entityIDLocked(typ, v)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		st[key] = ids
	case "datepicker":
		if value != "" && !datePattern.MatchString(value) {
			return nil, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrInvalidValue, value)
		}
		st["selected_date"] = value
	case "timepicker":
		if value != "" && !timePattern.MatchString(value) {
			return nil, fmt.Errorf("%w: time %q is not HH:mm", ErrInvalidValue, value)
		}
		st["selected_time"] = value
	default:
		return nil, fmt.Errorf("%w: element type %s is not supported", ErrInvalidValue, typ)
	}
	return st, nil
}

func optionForState(o map[string]any) map[string]any {
	out := map[string]any{"text": withEmoji(asMap(o["text"])), "value": o["value"]}
	if d := asMap(o["description"]); d != nil {
		out["description"] = withEmoji(d)
	}
	return out
}

func optionValues(el map[string]any) string {
	var vals []string
	for _, o := range optionsOf(el) {
		vals = append(vals, o.Value)
	}
	return strings.Join(vals, ", ")
}

// entityIDLocked resolves a user or channel given by name or ID.
func (s *Server) entityIDLocked(typ, ref string) (string, error) {
	if strings.Contains(typ, "users") {
		u := s.ws.user(ref)
		if u == nil {
			return "", fmt.Errorf("%w: %q", ErrUnknownUser, ref)
		}
		return u.ID, nil
	}
	if c := s.ws.channel(ref); c != nil {
		return c.ID, nil
	}
	if u := s.ws.user(ref); u != nil && strings.Contains(typ, "conversations") {
		return dmID(u.ID), nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownChannel, ref)
}

// Suggest types into the external select with that action_id as user and
// returns the options the app answers with (block_suggestion). Like the
// Slack client, it refuses (ErrQueryTooShort, nothing sent) when typed is
// shorter than the element's min_query_length (default 3). The options
// are validated (at most 100, text at most 75 characters, value at most
// 150); a violation is recorded as a problem and returned as ErrBadAck.
func (s *Server) Suggest(ctx context.Context, user string, sf Surface, actionID, typed string) ([]SelectOption, error) {
	op := "suggest " + actionID
	ack, err := s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.resolveLocked(u, sf, op)
		if err != nil {
			return nil, err
		}
		r, err := s.findLocked(u, t, op, actionID, func(r elemRef) bool {
			return r.typ() == "external_select" || r.typ() == "multi_external_select"
		})
		if err != nil {
			return nil, err
		}
		minLen := 3
		if n, ok := r.el["min_query_length"].(json.Number); ok {
			v, _ := n.Int64()
			minLen = int(v)
		}
		if runeLen(typed) < minLen {
			return nil, fmt.Errorf("%s: %w: %q has %d characters, min_query_length is %d", op, ErrQueryTooShort, typed, runeLen(typed), minLen)
		}
		p := map[string]any{
			"type": "block_suggestion", "user": userRef(u), "api_app_id": appID, "token": verificationToken,
			"action_id": r.actionID(), "block_id": r.blockID, "value": typed, "team": teamRef(),
			"enterprise": nil, "is_enterprise_install": false,
		}
		key := ""
		if t.view != nil {
			key = t.view.id + "\x00" + r.actionID()
			p["container"] = map[string]any{"type": "view", "view_id": t.view.id}
			p["view"] = s.viewObject(t.view)
		} else {
			m := t.msg
			p["container"] = map[string]any{"type": "message", "message_ts": m.ts, "channel_id": m.channel, "is_ephemeral": m.ephemeral}
			p["channel"] = s.channelRefLocked(m.channel)
			if !m.ephemeral {
				p["message"] = s.messageObject(m)
			}
		}
		return s.enqueueLocked("interactive", p, true, "", func(payload json.RawMessage) (Ack, error) {
			return s.suggestionAckLocked(key, payload)
		}), nil
	})
	return ack.Options, err
}

// suggestionAckLocked validates a block_suggestion response.
func (s *Server) suggestionAckLocked(key string, payload json.RawMessage) (Ack, error) {
	if payload == nil {
		return Ack{}, nil
	}
	v, err := decodeJSON(payload)
	obj := asMap(v)
	if err != nil || obj == nil {
		s.problemLocked("block_suggestion ack: payload is not an object")
		return Ack{}, fmt.Errorf("%w: not an object", ErrBadAck)
	}
	val := newValidator(surfaceModal)
	var raw []map[string]any
	switch {
	case obj["options"] != nil:
		opts := val.array(obj, "options", "", true, 0, maxSelectOptions)
		val.options(opts, "/options", true, false)
		for _, o := range opts {
			raw = append(raw, asMap(o))
		}
	case obj["option_groups"] != nil:
		groups := val.array(obj, "option_groups", "", true, 0, maxSelectOptions)
		for i, g := range groups {
			gm := asMap(g)
			gp := fmt.Sprintf("/option_groups/%d", i)
			if gm == nil {
				val.errorf(gp, "must provide an object")
				continue
			}
			val.textObject(gm, "label", gp, true, true, maxOptionText)
			opts := val.array(gm, "options", gp, true, 0, maxSelectOptions)
			val.options(opts, gp+"/options", true, false)
			for _, o := range opts {
				raw = append(raw, asMap(o))
			}
		}
	}
	if len(val.errs) > 0 {
		for _, e := range val.errs {
			s.problemLocked("block_suggestion ack: %s", e)
		}
		return Ack{}, fmt.Errorf("%w: %s", ErrBadAck, strings.Join(val.errs, "; "))
	}
	ack := Ack{Options: optionsOf(obj)}
	if ack.Options == nil {
		ack.Options = []SelectOption{}
	}
	if key != "" {
		s.suggestions[key] = raw
	}
	return ack, nil
}
