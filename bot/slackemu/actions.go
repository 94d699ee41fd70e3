package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
)

// Payload pieces shared by every interaction, in Slack's shapes.

func userRef(u *User) map[string]any {
	return map[string]any{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": teamID}
}

func teamRef() map[string]any { return map[string]any{"id": teamID, "domain": teamDomain} }

func (s *Server) channelRefLocked(id string) map[string]any {
	if s.ws.dmUser(id) != nil {
		return map[string]any{"id": id, "name": "directmessage"}
	}
	if c := s.ws.channel(id); c != nil {
		return map[string]any{"id": id, "name": c.Name}
	}
	return map[string]any{"id": id, "name": ""}
}

func (s *Server) actionTSLocked() string {
	return fmt.Sprintf("%d.%06d", s.now().Unix(), s.nextSeq()%1000000)
}

// act runs fn as user with the lock held; when fn returns an envelope, act
// waits for its first ack. This is how every user action is performed.
func (s *Server) act(ctx context.Context, user string, fn func(u *User) (*envelope, error)) (Ack, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Ack{}, ErrClosed
	}
	u, err := s.resolveUserLocked(user)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	e, err := fn(u)
	s.mu.Unlock()
	if err != nil || e == nil {
		return Ack{}, err
	}
	return s.await(ctx, e)
}

// Slash runs a slash command as user (name or ID) in channel (name,
// "#name", ID, or "" for the user's DM with the app) and waits for the
// app's ack. The envelope carries a fresh trigger_id and a response_url. An
// ack payload with text or blocks is shown like Slack does: ephemeral to
// the user, or in the channel with "response_type":"in_channel".
func (s *Server) Slash(ctx context.Context, user, channel, command, text string) (Ack, error) {
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		chID, chName := dmID(u.ID), "directmessage"
		if channel != "" {
			c := s.ws.channel(channel)
			switch {
			case c != nil:
				if !c.hasMember(u.ID) {
					return nil, fmt.Errorf("%w: %s is not in #%s", ErrNotVisible, u.Name, c.Name)
				}
				chID, chName = c.ID, c.Name
			case s.ws.dmUser(channel) != nil && s.ws.dmUser(channel).ID == u.ID:
			default:
				return nil, fmt.Errorf("%w: %q", ErrUnknownChannel, channel)
			}
		}
		trig := s.newTriggerLocked(u.ID)
		respURL := s.newResponseURLLocked("commands", &responseURL{user: u.ID, channel: chID})
		payload := map[string]any{
			"token": verificationToken, "team_id": teamID, "team_domain": teamDomain,
			"channel_id": chID, "channel_name": chName, "user_id": u.ID, "user_name": u.Name,
			"command": command, "text": text, "api_app_id": appID, "is_enterprise_install": false,
			"response_url": respURL, "trigger_id": trig,
		}
		uid := u.ID
		return s.enqueueLocked("slash_commands", payload, true, trig, func(p json.RawMessage) (Ack, error) {
			return Ack{}, s.immediateResponseLocked(uid, chID, p)
		}), nil
	})
}

// immediateResponseLocked shows a slash command's ack payload.
func (s *Server) immediateResponseLocked(userID, channelID string, p json.RawMessage) error {
	var rm responseMessage
	if err := json.Unmarshal(p, &rm); err != nil {
		s.problemLocked("slash command ack: payload is not a message: %v", err)
		return fmt.Errorf("%w: %v", ErrBadAck, err)
	}
	if rm.Text == "" && len(rm.Blocks) == 0 {
		return nil
	}
	blocks, aerr := s.parseMessageBlocks(string(rm.Blocks), len(rm.Blocks) > 0 && string(rm.Blocks) != "null", "slash command ack")
	if aerr != nil {
		return fmt.Errorf("%w: %s", ErrBadAck, aerr.code)
	}
	m := &message{channel: channelID, ts: s.newTS(), user: botUserID, text: rm.Text}
	m.setBlocks(blocks)
	if rm.ResponseType != "in_channel" {
		m.ephemeral, m.recipient = true, userID
	}
	s.storeMessageLocked(m)
	return nil
}

// OpenHome makes user (name or ID) open the app's Home tab: it sends an
// app_home_opened event (tab "home", with the published view if any) and
// waits for the ack. Use WaitHome to wait for the app's views.publish.
func (s *Server) OpenHome(ctx context.Context, user string) (Ack, error) {
	return s.openTab(ctx, user, "home")
}

// OpenMessagesTab is OpenHome for the app's Messages tab (tab "messages").
func (s *Server) OpenMessagesTab(ctx context.Context, user string) (Ack, error) {
	return s.openTab(ctx, user, "messages")
}

func (s *Server) openTab(ctx context.Context, user, tab string) (Ack, error) {
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		ts := s.actionTSLocked()
		ev := map[string]any{
			"type": "app_home_opened", "user": u.ID, "channel": dmID(u.ID), "tab": tab, "event_ts": ts,
		}
		if id, ok := s.homes[u.ID]; ok && tab == "home" {
			ev["view"] = s.viewObject(s.views[id])
		}
		n := s.nextSeq()
		payload := map[string]any{
			"token": verificationToken, "team_id": teamID, "api_app_id": appID, "event": ev,
			"type": "event_callback", "event_id": fmt.Sprintf("Ev%08d", n), "event_time": s.now().Unix(),
			"authorizations": []any{map[string]any{
				"enterprise_id": nil, "team_id": teamID, "user_id": botUserID, "is_bot": true, "is_enterprise_install": false,
			}},
			"is_ext_shared_channel": false, "event_context": fmt.Sprintf("4-eyJldCI6ImFwcF9ob21lX29wZW5lZCJ9-%d", n),
		}
		return s.enqueueLocked("events_api", payload, false, "", nil), nil
	})
}

// target is a resolved surface.
type target struct {
	msg  *message
	view *view
}

func (t target) blocks() []any {
	if t.view != nil {
		return t.view.blocks
	}
	return t.msg.blocks
}

func (t target) describe() string {
	if t.view != nil {
		return fmt.Sprintf("%s view %s (%q)", t.view.typ, t.view.id, textOf(t.view.title))
	}
	if t.msg.ephemeral {
		return fmt.Sprintf("ephemeral message %s in %s", t.msg.ts, t.msg.channel)
	}
	return fmt.Sprintf("message %s in %s", t.msg.ts, t.msg.channel)
}

// resolveLocked finds the current version of a surface and checks that u
// can see and use it. Failures are recorded as problems.
func (s *Server) resolveLocked(u *User, sf Surface, op string) (target, error) {
	if sf == nil {
		return target{}, fmt.Errorf("%s: %w: nil surface", op, ErrGone)
	}
	ref := sf.surface()
	fail := func(err error, format string, args ...any) (target, error) {
		msg := fmt.Sprintf(format, args...)
		s.problemLocked("%s by %s: %s", op, u.Name, msg)
		return target{}, fmt.Errorf("%s: %w: %s", op, err, msg)
	}
	if ref.viewID != "" || (ref.channel == "" && ref.ts == "") {
		v := s.views[ref.viewID]
		if v == nil || v.closed {
			return fail(ErrGone, "view %s is not open", ref.viewID)
		}
		if v.user != u.ID {
			return fail(ErrNotVisible, "view %s belongs to another user", v.id)
		}
		if v.typ == "home" {
			if s.homes[u.ID] != v.id {
				return fail(ErrGone, "home view %s was replaced", v.id)
			}
			return target{view: v}, nil
		}
		if top := s.topModalLocked(u.ID); top == nil || top.id != v.id {
			return fail(ErrNotVisible, "modal %s is not the top of the modal stack", v.id)
		}
		return target{view: v}, nil
	}
	m := s.lookupMessageLocked(ref)
	if m == nil {
		return fail(ErrGone, "message %s in %s no longer exists", ref.ts, ref.channel)
	}
	switch {
	case m.ephemeral:
		if m.recipient != u.ID {
			return fail(ErrNotVisible, "ephemeral message %s is shown to someone else", m.ts)
		}
	case s.ws.dmUser(m.channel) != nil:
		if s.ws.dmUser(m.channel).ID != u.ID {
			return fail(ErrNotVisible, "message %s is in another user's DM", m.ts)
		}
	default:
		c := s.ws.channel(m.channel)
		if c == nil || !c.hasMember(u.ID) {
			return fail(ErrNotVisible, "%s is not a member of %s", u.Name, m.channel)
		}
	}
	return target{msg: m}, nil
}

// findLocked finds an element by action_id on a resolved surface; match
// decides which element types qualify. Failures are recorded as problems.
func (s *Server) findLocked(u *User, t target, op, actionID string, match func(elemRef) bool) (elemRef, error) {
	for _, r := range findElements(t.blocks()) {
		if r.actionID() == actionID && match(r) {
			return r, nil
		}
	}
	msg := fmt.Sprintf("%s has no suitable element with action_id %q (it has: %s)", t.describe(), actionID, describeElements(t.blocks()))
	s.problemLocked("%s by %s: %s", op, u.Name, msg)
	return elemRef{}, fmt.Errorf("%s: %w: %s", op, ErrNoSuchAction, msg)
}

func isButton(r elemRef) bool {
	return (r.typ() == "button" || r.typ() == "workflow_button") && r.blockType != "input"
}

// Click clicks the button with that action_id on a message, an ephemeral
// message, a modal (the top of the user's stack) or an App Home view, as
// user (name or ID), and waits for the ack. It sends exactly Slack's
// block_actions payload for that surface, with a fresh trigger_id. It
// fails, and records a problem, if the surface's current version has no
// such button or the user cannot see it.
func (s *Server) Click(ctx context.Context, user string, sf Surface, actionID string) (Ack, error) {
	return s.click(ctx, user, sf, "click "+actionID, func(r elemRef) bool {
		return isButton(r) && r.actionID() == actionID
	})
}

// ClickByText is Click for the button whose text is exactly buttonText.
func (s *Server) ClickByText(ctx context.Context, user string, sf Surface, buttonText string) (Ack, error) {
	return s.click(ctx, user, sf, fmt.Sprintf("click [%s]", buttonText), func(r elemRef) bool {
		return isButton(r) && textOf(asMap(r.el["text"])) == buttonText
	})
}

// ClickByValue is Click for the button with that action_id and value, for
// surfaces that repeat an action_id across blocks (one Request button per
// search result, each with its own value).
func (s *Server) ClickByValue(ctx context.Context, user string, sf Surface, actionID, value string) (Ack, error) {
	return s.click(ctx, user, sf, fmt.Sprintf("click %s=%q", actionID, value), func(r elemRef) bool {
		v, _ := r.el["value"].(string)
		return isButton(r) && r.actionID() == actionID && v == value
	})
}

// ClickAs sends the block_actions payload of the button with that action_id
// on the given snapshot, as user, without the checks Click makes: the user
// need not be able to see the surface and the button need not still be
// there. It is for tests of forged, replayed and double clicks (a user
// clicking twice before the message updates); nothing is recorded as a
// problem. The snapshot must have the button (ErrNoSuchAction otherwise).
func (s *Server) ClickAs(ctx context.Context, user string, sf Surface, actionID string) (Ack, error) {
	op := "click as " + actionID
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.snapshotTargetLocked(sf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, r := range findElements(t.blocks()) {
			if isButton(r) && r.actionID() == actionID {
				return s.sendBlockActionsLocked(u, t, s.buttonActionLocked(r)), nil
			}
		}
		return nil, fmt.Errorf("%s: %w: %s has no button %q", op, ErrNoSuchAction, t.describe(), actionID)
	})
}

// snapshotTargetLocked builds a target from a snapshot rather than from
// the surface's current version.
func (s *Server) snapshotTargetLocked(sf Surface) (target, error) {
	if sf == nil {
		return target{}, fmt.Errorf("%w: nil surface", ErrGone)
	}
	ref := sf.surface()
	switch {
	case ref.msg != nil:
		m := ref.msg
		tm := &message{channel: m.Channel, ts: m.TS, threadTS: m.ThreadTS, user: m.User, text: m.Text,
			edited: m.Edited, ephemeral: m.Ephemeral, recipient: m.Recipient}
		tm.setBlocks(decodeBlocks(m.Blocks))
		return target{msg: tm}, nil
	case ref.view != nil:
		v := ref.view
		tv := &view{id: v.ID, typ: v.Type, user: v.User, blocks: decodeBlocks(v.Blocks), privateMeta: v.PrivateMetadata,
			callbackID: v.CallbackID, externalID: v.ExternalID, hash: v.Hash, rootID: v.RootViewID,
			previousID: v.PreviousViewID, notifyOnClose: v.NotifyOnClose, clearOnClose: v.ClearOnClose,
			state: map[string]map[string]map[string]any{}}
		if cur := s.views[v.ID]; cur != nil {
			tv.title, tv.submit, tv.close, tv.state = cur.title, cur.submit, cur.close, cur.state
		}
		return target{view: tv}, nil
	}
	return target{}, fmt.Errorf("%w: empty surface", ErrGone)
}

func (s *Server) buttonActionLocked(r elemRef) map[string]any {
	action := map[string]any{
		"action_id": r.actionID(), "block_id": r.blockID, "type": r.typ(),
		"text": withEmoji(asMap(r.el["text"])), "action_ts": s.actionTSLocked(),
	}
	for _, k := range []string{"value", "style", "url"} {
		if v, ok := r.el[k].(string); ok && v != "" {
			action[k] = v
		}
	}
	return action
}

func (s *Server) click(ctx context.Context, user string, sf Surface, op string, match func(elemRef) bool) (Ack, error) {
	return s.act(ctx, user, func(u *User) (*envelope, error) {
		t, err := s.resolveLocked(u, sf, op)
		if err != nil {
			return nil, err
		}
		var found *elemRef
		for _, r := range findElements(t.blocks()) {
			if match(r) {
				found = &r
				break
			}
		}
		if found == nil {
			msg := fmt.Sprintf("%s has no such button (it has: %s)", t.describe(), describeElements(t.blocks()))
			s.problemLocked("%s by %s: %s", op, u.Name, msg)
			return nil, fmt.Errorf("%s: %w: %s", op, ErrNoSuchAction, msg)
		}
		return s.sendBlockActionsLocked(u, t, s.buttonActionLocked(*found)), nil
	})
}

func withEmoji(t map[string]any) map[string]any {
	if t == nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range t {
		out[k] = v
	}
	if out["type"] == "plain_text" {
		if _, ok := out["emoji"]; !ok {
			out["emoji"] = true
		}
	}
	return out
}

// sendBlockActionsLocked builds and sends a block_actions payload.
func (s *Server) sendBlockActionsLocked(u *User, t target, action map[string]any) *envelope {
	trig := s.newTriggerLocked(u.ID)
	p := map[string]any{
		"type": "block_actions", "user": userRef(u), "api_app_id": appID, "token": verificationToken,
		"trigger_id": trig, "team": teamRef(), "enterprise": nil, "is_enterprise_install": false,
		"actions": []any{action},
	}
	if t.view != nil {
		p["container"] = map[string]any{"type": "view", "view_id": t.view.id}
		p["view"] = s.viewObject(t.view)
	} else {
		m := t.msg
		container := map[string]any{
			"type": "message", "message_ts": m.ts, "channel_id": m.channel, "is_ephemeral": m.ephemeral,
		}
		if m.threadTS != "" {
			container["thread_ts"] = m.threadTS
		}
		p["container"] = container
		p["channel"] = s.channelRefLocked(m.channel)
		if !m.ephemeral {
			p["message"] = s.messageObject(m)
		}
		p["state"] = map[string]any{"values": map[string]any{}}
		p["response_url"] = s.newResponseURLLocked("actions", &responseURL{
			user: u.ID, channel: m.channel, msgTS: m.ts, ephemeral: m.ephemeral,
		})
	}
	return s.enqueueLocked("interactive", p, false, trig, nil)
}
