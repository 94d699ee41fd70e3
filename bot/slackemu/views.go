package slackemu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// maxModalStack is how many modals Slack lets a user have stacked.
const maxModalStack = 3

// trigger is an issued trigger_id.
type trigger struct {
	user   string
	issued time.Time
	used   bool
}

// newTriggerLocked issues a trigger_id for a payload sent now.
func (s *Server) newTriggerLocked(userID string) string {
	n := s.nextSeq()
	sum := sha256.Sum256(fmt.Appendf(nil, "trigger-%d", n))
	id := fmt.Sprintf("%d.%d.%s", s.now().Unix(), 1000000+n, hex.EncodeToString(sum[:16]))
	s.triggers[id] = &trigger{user: userID, issued: s.now()}
	return id
}

// exchangeTriggerLocked checks a trigger_id; it is used up only when the
// whole call succeeds (see markUsed).
func (s *Server) checkTriggerLocked(id string) (*trigger, *apiError) {
	if id == "" {
		return nil, &apiError{code: "invalid_arguments", messages: []string{"[ERROR] missing required field: trigger_id"}}
	}
	t := s.triggers[id]
	switch {
	case t == nil:
		return nil, errCode("invalid_trigger_id")
	case t.used:
		return nil, errCode("exchanged_trigger_id")
	case s.now().Sub(t.issued) > TriggerTTL:
		return nil, errCode("expired_trigger_id")
	}
	return t, nil
}

// parseView decodes and validates the view argument.
func (s *Server) parseView(raw, wantType, method string) (map[string]any, *apiError) {
	if raw == "" {
		return nil, &apiError{code: "invalid_arguments", messages: []string{"[ERROR] missing required field: view"}}
	}
	if len(raw) > 250*1024 {
		return nil, errCode("view_too_large")
	}
	v, err := decodeJSON([]byte(raw))
	if err != nil {
		return nil, &apiError{code: "invalid_arguments", messages: []string{"[ERROR] view must be a JSON object [json-pointer:/view]"}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &apiError{code: "invalid_arguments", messages: []string{"[ERROR] view must be a JSON object [json-pointer:/view]"}}
	}
	if errs := validateView(obj, wantType); len(errs) > 0 {
		for _, e := range errs {
			s.problemLocked("%s: invalid view: %s", method, e)
		}
		return nil, &apiError{code: "invalid_arguments", messages: errs}
	}
	normalizeBlocks(obj["blocks"], s.genID)
	return obj, nil
}

// externalIDTakenLocked reports whether another open view uses externalID.
func (s *Server) externalIDTakenLocked(externalID, exceptID string) bool {
	if externalID == "" {
		return false
	}
	for _, v := range s.views {
		if !v.closed && v.externalID == externalID && v.id != exceptID {
			return true
		}
	}
	return false
}

func (s *Server) newHashLocked() string {
	n := s.nextSeq()
	sum := sha256.Sum256(fmt.Appendf(nil, "hash-%d", n))
	return fmt.Sprintf("%d.%s", s.now().Unix(), hex.EncodeToString(sum[:4]))
}

// newViewLocked stores a new view for a user from a validated view object.
func (s *Server) newViewLocked(userID string, obj map[string]any) *view {
	v := &view{id: fmt.Sprintf("V%09d", s.nextSeq()), user: userID}
	s.applyViewLocked(v, obj)
	v.rootID = v.id
	s.views[v.id] = v
	return v
}

// applyViewLocked sets a view's content from a validated view object,
// keeping input values whose block_id and action_id survive (as Slack does).
func (s *Server) applyViewLocked(v *view, obj map[string]any) {
	v.typ, _ = obj["type"].(string)
	v.title = asMap(obj["title"])
	v.submit = asMap(obj["submit"])
	v.close = asMap(obj["close"])
	v.blocks, _ = obj["blocks"].([]any)
	if v.blocks == nil {
		v.blocks = []any{}
	}
	v.privateMeta, _ = obj["private_metadata"].(string)
	v.callbackID, _ = obj["callback_id"].(string)
	v.externalID, _ = obj["external_id"].(string)
	v.clearOnClose, _ = obj["clear_on_close"].(bool)
	v.notifyOnClose, _ = obj["notify_on_close"].(bool)
	v.hash = s.newHashLocked()
	v.errors = nil
	old := v.state
	v.state = map[string]map[string]map[string]any{}
	for _, r := range findElements(v.blocks) {
		if r.blockType != "input" {
			continue
		}
		if prev, ok := old[r.blockID][r.actionID()]; ok && prev["type"] == r.typ() {
			s.setStateLocked(v, r.blockID, r.actionID(), prev)
		} else if init := initialState(r.el); init != nil {
			s.setStateLocked(v, r.blockID, r.actionID(), init)
		}
	}
}

func (s *Server) setStateLocked(v *view, blockID, actionID string, val map[string]any) {
	if v.state[blockID] == nil {
		v.state[blockID] = map[string]map[string]any{}
	}
	v.state[blockID][actionID] = val
}

// initialState is the state.values entry of an input element before the
// user touches it.
func initialState(el map[string]any) map[string]any {
	typ, _ := el["type"].(string)
	st := map[string]any{"type": typ}
	switch typ {
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
		if iv, ok := el["initial_value"].(string); ok && iv != "" {
			st["value"] = iv
		} else {
			st["value"] = nil
		}
	case "static_select", "external_select", "radio_buttons":
		st["selected_option"] = el["initial_option"]
	case "multi_static_select", "multi_external_select", "checkboxes":
		if io, ok := el["initial_options"].([]any); ok {
			st["selected_options"] = io
		} else {
			st["selected_options"] = []any{}
		}
	case "users_select":
		st["selected_user"] = el["initial_user"]
	case "multi_users_select":
		if iu, ok := el["initial_users"].([]any); ok {
			st["selected_users"] = iu
		} else {
			st["selected_users"] = []any{}
		}
	case "conversations_select":
		st["selected_conversation"] = el["initial_conversation"]
	case "channels_select":
		st["selected_channel"] = el["initial_channel"]
	case "datepicker":
		st["selected_date"] = el["initial_date"]
	case "timepicker":
		st["selected_time"] = el["initial_time"]
	default:
		return nil
	}
	return st
}

// viewObject is a view as Slack returns it in API responses and payloads.
func (s *Server) viewObject(v *view) map[string]any {
	values := map[string]any{}
	for bid, acts := range v.state {
		m := map[string]any{}
		for aid, val := range acts {
			m[aid] = val
		}
		values[bid] = m
	}
	obj := map[string]any{
		"id": v.id, "team_id": teamID, "type": v.typ, "blocks": v.blocks,
		"private_metadata": v.privateMeta, "callback_id": v.callbackID,
		"state": map[string]any{"values": values}, "hash": v.hash,
		"clear_on_close": v.clearOnClose, "notify_on_close": v.notifyOnClose,
		"root_view_id": v.rootID, "app_id": appID, "external_id": v.externalID,
		"app_installed_team_id": teamID, "bot_id": botID,
		"previous_view_id": nil, "title": nil, "close": nil, "submit": nil,
	}
	if v.previousID != "" {
		obj["previous_view_id"] = v.previousID
	}
	if v.typ == "modal" {
		obj["title"] = v.title
		if v.close != nil {
			obj["close"] = v.close
		} else {
			obj["close"] = map[string]any{"type": "plain_text", "text": "Cancel", "emoji": true}
		}
		if v.submit != nil {
			obj["submit"] = v.submit
		}
	}
	return obj
}

func (s *Server) closeViewLocked(id string) {
	if v := s.views[id]; v != nil {
		v.closed = true
	}
}

// clearModalsLocked closes the user's whole modal stack.
func (s *Server) clearModalsLocked(userID string) {
	for _, id := range s.modals[userID] {
		s.closeViewLocked(id)
	}
	delete(s.modals, userID)
}

func (s *Server) viewsOpen(args map[string]string) (map[string]any, *apiError) {
	t, aerr := s.checkTriggerLocked(args["trigger_id"])
	if aerr != nil {
		return nil, aerr
	}
	obj, aerr := s.parseView(args["view"], "modal", "views.open")
	if aerr != nil {
		return nil, aerr
	}
	if ext, _ := obj["external_id"].(string); s.externalIDTakenLocked(ext, "") {
		return nil, errCode("duplicate_external_id")
	}
	t.used = true
	s.clearModalsLocked(t.user)
	v := s.newViewLocked(t.user, obj)
	s.modals[t.user] = []string{v.id}
	return map[string]any{"view": s.viewObject(v)}, nil
}

func (s *Server) viewsPush(args map[string]string) (map[string]any, *apiError) {
	t, aerr := s.checkTriggerLocked(args["trigger_id"])
	if aerr != nil {
		return nil, aerr
	}
	obj, aerr := s.parseView(args["view"], "modal", "views.push")
	if aerr != nil {
		return nil, aerr
	}
	top := s.topModalLocked(t.user)
	if top == nil {
		return nil, errCode("not_found")
	}
	if len(s.modals[t.user]) >= maxModalStack {
		return nil, errCode("push_limit_reached")
	}
	if ext, _ := obj["external_id"].(string); s.externalIDTakenLocked(ext, "") {
		return nil, errCode("duplicate_external_id")
	}
	t.used = true
	v := s.pushViewLocked(t.user, obj)
	return map[string]any{"view": s.viewObject(v)}, nil
}

func (s *Server) pushViewLocked(userID string, obj map[string]any) *view {
	top := s.topModalLocked(userID)
	v := s.newViewLocked(userID, obj)
	if top != nil {
		v.rootID = top.rootID
		v.previousID = top.id
	}
	s.modals[userID] = append(s.modals[userID], v.id)
	return v
}

func (s *Server) viewsUpdate(args map[string]string) (map[string]any, *apiError) {
	var v *view
	switch {
	case args["view_id"] != "":
		v = s.views[args["view_id"]]
	case args["external_id"] != "":
		for _, x := range s.views {
			if !x.closed && x.externalID == args["external_id"] {
				v = x
			}
		}
	default:
		return nil, &apiError{code: "invalid_arguments", messages: []string{"[ERROR] one of view_id or external_id is required"}}
	}
	if v == nil || v.closed {
		return nil, errCode("not_found")
	}
	if h := args["hash"]; h != "" && h != v.hash {
		return nil, errCode("hash_conflict")
	}
	obj, aerr := s.parseView(args["view"], v.typ, "views.update")
	if aerr != nil {
		return nil, aerr
	}
	if ext, _ := obj["external_id"].(string); s.externalIDTakenLocked(ext, v.id) {
		return nil, errCode("duplicate_external_id")
	}
	s.applyViewLocked(v, obj)
	return map[string]any{"view": s.viewObject(v)}, nil
}

func (s *Server) viewsPublish(args map[string]string) (map[string]any, *apiError) {
	u := s.ws.userByID(args["user_id"])
	if u == nil || u.IsBot {
		return nil, errCode("user_not_found")
	}
	obj, aerr := s.parseView(args["view"], "home", "views.publish")
	if aerr != nil {
		return nil, aerr
	}
	if id, ok := s.homes[u.ID]; ok {
		v := s.views[id]
		if h := args["hash"]; h != "" && h != v.hash {
			return nil, errCode("hash_conflict")
		}
		if ext, _ := obj["external_id"].(string); s.externalIDTakenLocked(ext, v.id) {
			return nil, errCode("duplicate_external_id")
		}
		s.applyViewLocked(v, obj)
		return map[string]any{"view": s.viewObject(v)}, nil
	}
	if ext, _ := obj["external_id"].(string); s.externalIDTakenLocked(ext, "") {
		return nil, errCode("duplicate_external_id")
	}
	v := s.newViewLocked(u.ID, obj)
	s.homes[u.ID] = v.id
	return map[string]any{"view": s.viewObject(v)}, nil
}
