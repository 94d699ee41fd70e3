package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Submit submits the modal as user: values are keyed by the input's
// action_id (or its block_id) and converted to Slack's state.values for
// the input's element type: plain_text_input and the other text inputs
// take the text; static_select and radio_buttons an option value (which
// must exist); external_select a value (its text from the last Suggest);
// users_select a user name or ID; conversations_select and channels_select
// a channel name or ID; multi_* selects and checkboxes a comma-separated
// list; datepicker YYYY-MM-DD; timepicker HH:mm. Inputs not mentioned keep
// their current (initial) value. A key matching no input of the view fails
// with ErrNoSuchInput (and is recorded as a problem); a required input
// left empty fails with ErrInvalidValue, as the Slack client would not
// submit. The app's response_action is applied to the user's modal stack:
// "errors" keeps the view and returns the errors in Ack.Errors, "update"
// replaces it, "push" pushes a new view, "clear" closes all; without one
// the view closes.
func (s *Server) Submit(ctx context.Context, user string, v *View, values map[string]string) (Ack, error) {
	op := "submit"
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.resolveLocked(u, v, op)
		if err != nil {
			return nil, err
		}
		if t.view == nil || t.view.typ != "modal" {
			return nil, fmt.Errorf("%s: %w: only modals can be submitted", op, ErrNoSuchAction)
		}
		cur := t.view
		if cur.submit == nil {
			s.problemLocked("%s by %s: %s has no submit button", op, u.Name, t.describe())
			return nil, fmt.Errorf("%s: %w: %s has no submit button", op, ErrNoSuchAction, t.describe())
		}
		inputs := []elemRef{}
		for _, r := range findElements(cur.blocks) {
			if r.blockType == "input" {
				inputs = append(inputs, r)
			}
		}
		newState := map[string]map[string]map[string]any{}
		for bid, acts := range cur.state {
			newState[bid] = map[string]map[string]any{}
			for aid, val := range acts {
				newState[bid][aid] = val
			}
		}
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			idx := slices.IndexFunc(inputs, func(r elemRef) bool { return r.actionID() == k })
			if idx < 0 {
				idx = slices.IndexFunc(inputs, func(r elemRef) bool { return r.blockID == k })
			}
			if idx < 0 {
				var have []string
				for _, r := range inputs {
					have = append(have, r.actionID())
				}
				msg := fmt.Sprintf("%s has no input %q (it has: %s)", t.describe(), k, strings.Join(have, ", "))
				s.problemLocked("%s by %s: %s", op, u.Name, msg)
				return nil, fmt.Errorf("%s: %w: %s", op, ErrNoSuchInput, msg)
			}
			r := inputs[idx]
			st, err := s.stateValueLocked(cur.id, r, values[k])
			if err != nil {
				return nil, fmt.Errorf("%s: input %s: %w", op, k, err)
			}
			if newState[r.blockID] == nil {
				newState[r.blockID] = map[string]map[string]any{}
			}
			newState[r.blockID][r.actionID()] = st
		}
		for _, r := range inputs {
			if opt, _ := r.block["optional"].(bool); opt {
				continue
			}
			if isEmptyState(newState[r.blockID][r.actionID()]) {
				return nil, fmt.Errorf("%s: %w: required input %s (%q) has no value", op, ErrInvalidValue,
					r.actionID(), textOf(asMap(r.block["label"])))
			}
		}
		cur.state = newState
		cur.errors = nil
		trig := s.newTriggerLocked(u.ID)
		p := map[string]any{
			"type": "view_submission", "team": teamRef(), "user": userRef(u), "api_app_id": appID,
			"token": verificationToken, "trigger_id": trig, "view": s.viewObject(cur),
			"response_urls": []any{}, "is_enterprise_install": false, "enterprise": nil,
		}
		uid, vid := u.ID, cur.id
		s.bumpLocked()
		return s.enqueueLocked("interactive", p, true, trig, func(payload json.RawMessage) (Ack, error) {
			return s.submissionAckLocked(uid, vid, payload)
		}), nil
	})
}

func isEmptyState(st map[string]any) bool {
	if st == nil {
		return true
	}
	for k, v := range st {
		if k == "type" {
			continue
		}
		switch x := v.(type) {
		case nil:
		case string:
			if x != "" {
				return false
			}
		case []any:
			if len(x) > 0 {
				return false
			}
		case []string:
			if len(x) > 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// submissionAckLocked applies a view_submission response_action.
func (s *Server) submissionAckLocked(userID, viewID string, payload json.RawMessage) (Ack, error) {
	v := s.views[viewID]
	bad := func(format string, args ...any) (Ack, error) {
		msg := fmt.Sprintf(format, args...)
		s.problemLocked("view_submission ack for %s: %s", viewID, msg)
		return Ack{}, fmt.Errorf("%w: %s", ErrBadAck, msg)
	}
	var resp struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if payload != nil {
		if err := json.Unmarshal(payload, &resp); err != nil {
			return bad("payload is not a response_action object: %v", err)
		}
	}
	ack := Ack{ResponseAction: resp.ResponseAction}
	if v == nil || v.closed {
		return ack, nil
	}
	switch resp.ResponseAction {
	case "":
		s.popModalLocked(userID, viewID)
	case "errors":
		if len(resp.Errors) == 0 {
			return bad(`response_action "errors" without errors`)
		}
		inputIDs := map[string]bool{}
		for _, r := range findElements(v.blocks) {
			if r.blockType == "input" {
				inputIDs[r.blockID] = true
			}
		}
		for bid := range resp.Errors {
			if !inputIDs[bid] {
				return bad("errors key %q is not the block_id of an input block", bid)
			}
		}
		v.errors = resp.Errors
		ack.Errors = resp.Errors
	case "update", "push":
		obj, aerr := s.parseView(string(resp.View), "modal", "view_submission response_action "+resp.ResponseAction)
		if aerr != nil {
			return ack, fmt.Errorf("%w: %s: %s", ErrBadAck, aerr.code, strings.Join(aerr.messages, "; "))
		}
		if resp.ResponseAction == "update" {
			s.applyViewLocked(v, obj)
			break
		}
		if len(s.modals[userID]) >= maxModalStack {
			return bad("push_limit_reached: the stack already has %d views", maxModalStack)
		}
		s.pushViewLocked(userID, obj)
	case "clear":
		s.clearModalsLocked(userID)
	default:
		return bad("unknown response_action %q", resp.ResponseAction)
	}
	return ack, nil
}

// popModalLocked closes a modal and every modal above it.
func (s *Server) popModalLocked(userID, viewID string) {
	st := s.modals[userID]
	i := slices.Index(st, viewID)
	if i < 0 {
		return
	}
	for _, id := range st[i:] {
		s.closeViewLocked(id)
	}
	if i == 0 {
		delete(s.modals, userID)
	} else {
		s.modals[userID] = st[:i]
	}
}

// CloseView closes the user's top modal as if they clicked its close
// button (or the X): the whole stack when the view has clear_on_close,
// else just that view. When the view has notify_on_close a view_closed
// payload is sent and CloseView waits for the app's ack.
func (s *Server) CloseView(ctx context.Context, user string, v *View) error {
	op := "close view"
	_, err := s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.resolveLocked(u, v, op)
		if err != nil {
			return nil, err
		}
		if t.view == nil || t.view.typ != "modal" {
			return nil, fmt.Errorf("%s: %w: only modals can be closed", op, ErrNoSuchAction)
		}
		cur := t.view
		cleared := cur.clearOnClose
		obj := s.viewObject(cur)
		if cleared {
			s.clearModalsLocked(u.ID)
		} else {
			s.popModalLocked(u.ID, cur.id)
		}
		s.bumpLocked()
		if !cur.notifyOnClose {
			return nil, nil
		}
		p := map[string]any{
			"type": "view_closed", "team": teamRef(), "user": userRef(u), "api_app_id": appID,
			"token": verificationToken, "view": obj, "is_cleared": cleared,
			"is_enterprise_install": false, "enterprise": nil,
		}
		return s.enqueueLocked("interactive", p, false, "", nil), nil
	})
	return err
}
