package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
)

// Surface is something a user can act on: a Message (in a channel or DM,
// or ephemeral) or a *View (a modal or an App Home). Click, Select and
// friends always act on the current version of the surface, as the user
// would see it now, not on the snapshot passed in.
type Surface interface {
	surface() surfaceRef
}

type surfaceRef struct {
	viewID    string
	channel   string
	ts        string
	ephemeral bool

	// The snapshot itself, for ClickAs.
	msg  *Message
	view *View
}

// Message is a snapshot of a message posted by the app.
type Message struct {
	Channel   string // channel ID (C…, or D… for direct messages)
	TS        string
	ThreadTS  string // parent's ts for thread replies, "" otherwise
	User      string // author's user ID (the bot user)
	Text      string // the top-level text (notification fallback)
	Blocks    json.RawMessage
	Edited    int    // how many times chat.update (or response_url) changed it
	Ephemeral bool   // posted with chat.postEphemeral or a response_url
	Recipient string // for ephemeral messages: the only user who sees it

	linkNames bool
}

func (m Message) surface() surfaceRef {
	return surfaceRef{channel: m.Channel, ts: m.TS, ephemeral: m.Ephemeral, msg: &m}
}

// Render returns a readable plain-text rendering of the message's blocks
// (or its text when it has no blocks); see the package documentation.
func (m Message) Render() string {
	blocks := decodeBlocks(m.Blocks)
	if len(blocks) == 0 {
		return m.Text
	}
	return renderBlocks(blocks, nil)
}

// Mentions lists what the message would notify, in order of appearance:
// "@U…" for users, "!subteam^S…" for user groups, "!here", "!channel" and
// "!everyone", found in the text and in the mrkdwn text of the blocks
// (plain_text never notifies). With link_names, bare "@here",
// "@channel", "@everyone" and "@name" count too. Tests use it to check that
// text from users cannot ping anyone.
func (m Message) Mentions() []string {
	texts := []string{m.Text}
	collectMrkdwn(decodeBlocks(m.Blocks), &texts)
	var out []string
	for _, t := range texts {
		out = append(out, mentionsIn(t, m.linkNames)...)
	}
	return out
}

// Elements lists the interactive elements of the message.
func (m Message) Elements() []Element { return listElements(decodeBlocks(m.Blocks)) }

// HasAction reports whether the message has an element with that action_id.
func (m Message) HasAction(actionID string) bool { return hasAction(m.Elements(), actionID) }

// View is a snapshot of a modal or App Home view.
type View struct {
	ID              string
	Type            string // "modal" or "home"
	User            string // user ID of the viewer
	Title           string
	Submit          string // submit button text, "" when none
	Close           string // close button text, "" when none
	CallbackID      string
	PrivateMetadata string
	ExternalID      string
	Hash            string
	RootViewID      string
	PreviousViewID  string
	NotifyOnClose   bool
	ClearOnClose    bool
	Blocks          json.RawMessage
	// Errors are the errors from the last response_action "errors", keyed
	// by block_id, shown under the inputs until the next submission.
	Errors map[string]string
	// Values are the current input values, keyed by block_id then
	// action_id, in Slack's state.values shape.
	Values map[string]map[string]json.RawMessage
}

func (v *View) surface() surfaceRef {
	if v == nil {
		return surfaceRef{}
	}
	return surfaceRef{viewID: v.ID, view: v}
}

// Render returns a readable plain-text rendering of the view: the title,
// the blocks, input errors, then the submit and close buttons.
func (v *View) Render() string {
	if v == nil {
		return ""
	}
	var b strings.Builder
	if v.Title != "" {
		fmt.Fprintf(&b, "## %s\n", v.Title)
	}
	b.WriteString(renderBlocks(decodeBlocks(v.Blocks), v.Errors))
	var btns []string
	if v.Close != "" {
		btns = append(btns, "["+v.Close+"]")
	}
	if v.Submit != "" {
		btns = append(btns, "["+v.Submit+"]")
	}
	if len(btns) > 0 {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
		b.WriteString(strings.Join(btns, " "))
	}
	return strings.TrimRight(b.String(), "\n")
}

// Elements lists the interactive elements of the view, inputs included.
func (v *View) Elements() []Element {
	if v == nil {
		return nil
	}
	return listElements(decodeBlocks(v.Blocks))
}

// HasAction reports whether the view has an element with that action_id.
func (v *View) HasAction(actionID string) bool { return hasAction(v.Elements(), actionID) }

// Element describes one interactive element as rendered.
type Element struct {
	BlockID   string
	BlockType string // "actions", "section" (accessory) or "input"
	ActionID  string
	Type      string // element type: "button", "static_select", "plain_text_input", …
	Text      string // button text, or the placeholder of other elements
	Value     string // button value
	URL       string
	Style     string
	Label     string // input label
	Optional  bool   // input marked optional
	Dispatch  bool   // input with dispatch_action: changes send block_actions
	Options   []SelectOption
}

// SelectOption is an option of a select, overflow, checkbox or radio element,
// or one returned for a block_suggestion.
type SelectOption struct {
	Text        string
	Value       string
	Description string
	Group       string // option group label, "" when not grouped
}

func hasAction(els []Element, id string) bool {
	for _, e := range els {
		if e.ActionID == id {
			return true
		}
	}
	return false
}

// message is the stored form of a message.
type message struct {
	channel   string
	ts        string
	threadTS  string
	user      string
	text      string
	blocks    []any // normalized, nil when the message has none
	raw       json.RawMessage
	edited    int
	editedTS  string
	ephemeral bool
	recipient string
	linkNames bool
}

func (m *message) snapshot() Message {
	return Message{
		Channel: m.channel, TS: m.ts, ThreadTS: m.threadTS, User: m.user, Text: m.text,
		Blocks: append(json.RawMessage(nil), m.raw...), Edited: m.edited,
		Ephemeral: m.ephemeral, Recipient: m.recipient, linkNames: m.linkNames,
	}
}

func (m *message) setBlocks(blocks []any) {
	m.blocks = blocks
	m.raw = nil
	if blocks != nil {
		m.raw, _ = json.Marshal(blocks)
	}
}

func msgKey(channel, ts string) string { return channel + "/" + ts }

// view is the stored form of a view.
type view struct {
	id            string
	typ           string
	user          string
	title         map[string]any
	submit        map[string]any
	close         map[string]any
	blocks        []any
	privateMeta   string
	callbackID    string
	externalID    string
	hash          string
	clearOnClose  bool
	notifyOnClose bool
	rootID        string
	previousID    string
	state         map[string]map[string]map[string]any // block_id → action_id → value object
	errors        map[string]string
	closed        bool
}

func textOf(t map[string]any) string {
	if t == nil {
		return ""
	}
	s, _ := t["text"].(string)
	return s
}

func (v *view) snapshot() *View {
	raw, _ := json.Marshal(v.blocks)
	out := &View{
		ID: v.id, Type: v.typ, User: v.user, Title: textOf(v.title), Submit: textOf(v.submit),
		Close: textOf(v.close), CallbackID: v.callbackID, PrivateMetadata: v.privateMeta,
		ExternalID: v.externalID, Hash: v.hash, RootViewID: v.rootID, PreviousViewID: v.previousID,
		NotifyOnClose: v.notifyOnClose, ClearOnClose: v.clearOnClose, Blocks: raw,
		Values: map[string]map[string]json.RawMessage{},
	}
	if v.typ == "modal" && v.close == nil {
		out.Close = "Cancel"
	}
	if len(v.errors) > 0 {
		out.Errors = maps.Clone(v.errors)
	}
	for bid, acts := range v.state {
		m := map[string]json.RawMessage{}
		for aid, val := range acts {
			m[aid], _ = json.Marshal(val)
		}
		out.Values[bid] = m
	}
	return out
}

// DMs returns the top-level messages of the bot's DM with a user (name or
// ID), oldest first, with all edits applied. Thread replies are left out;
// see Thread.
func (s *Server) DMs(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return nil
	}
	return s.topLevelLocked(dmID(u.ID))
}

// Messages returns the top-level messages the app posted in a channel
// (name, "#name" or ID; a user's name gives their DM), oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := channel
	if c := s.ws.channel(channel); c != nil {
		id = c.ID
	} else if u := s.ws.user(channel); u != nil {
		id = dmID(u.ID)
	}
	return s.topLevelLocked(id)
}

func (s *Server) topLevelLocked(channelID string) []Message {
	var out []Message
	for _, m := range s.messages {
		if m.channel == channelID && !m.ephemeral && m.threadTS == "" {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// Thread returns the replies in the thread of parent, oldest first.
func (s *Server) Thread(parent Message) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.channel == parent.Channel && !m.ephemeral && m.threadTS == parent.TS {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages shown to a user in any
// channel, oldest first, with replacements applied.
func (s *Server) Ephemerals(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return nil
	}
	var out []Message
	for _, m := range s.messages {
		if m.ephemeral && m.recipient == u.ID {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// Current returns the current version of a message (after edits) and
// false if it was deleted.
func (s *Server) Current(m Message) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.lookupMessageLocked(m.surface())
	if cur == nil {
		return Message{}, false
	}
	return cur.snapshot(), true
}

func (s *Server) lookupMessageLocked(ref surfaceRef) *message {
	if ref.ephemeral {
		for _, m := range s.messages {
			if m.ephemeral && m.ts == ref.ts && m.channel == ref.channel {
				return m
			}
		}
		return nil
	}
	return s.msgIndex[msgKey(ref.channel, ref.ts)]
}

// View returns the top of the user's modal stack (the modal they see), or
// nil when no modal is open.
func (s *Server) View(user string) *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return nil
	}
	v := s.topModalLocked(u.ID)
	if v == nil {
		return nil
	}
	return v.snapshot()
}

// ModalStack returns the user's open modals, bottom (root) first.
func (s *Server) ModalStack(user string) []*View {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return nil
	}
	var out []*View
	for _, id := range s.modals[u.ID] {
		out = append(out, s.views[id].snapshot())
	}
	return out
}

// Home returns the App Home view last published for the user, or nil.
func (s *Server) Home(user string) *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return nil
	}
	id, ok := s.homes[u.ID]
	if !ok {
		return nil
	}
	return s.views[id].snapshot()
}

func (s *Server) topModalLocked(userID string) *view {
	st := s.modals[userID]
	if len(st) == 0 {
		return nil
	}
	return s.views[st[len(st)-1]]
}

// WaitDM waits until the bot's DM with user has a top-level message whose
// Render() (or text) contains the substring, and returns the newest such
// message. Edits count: a message edited to contain it matches.
func (s *Server) WaitDM(ctx context.Context, user, contains string) (Message, error) {
	return s.waitMessage(ctx, func() []Message { return s.DMs(user) }, contains)
}

// WaitMessage is WaitDM for a channel (name, "#name" or ID).
func (s *Server) WaitMessage(ctx context.Context, channel, contains string) (Message, error) {
	return s.waitMessage(ctx, func() []Message { return s.Messages(channel) }, contains)
}

// WaitEphemeral is WaitDM for the ephemeral messages shown to user.
func (s *Server) WaitEphemeral(ctx context.Context, user, contains string) (Message, error) {
	return s.waitMessage(ctx, func() []Message { return s.Ephemerals(user) }, contains)
}

// WaitThread is WaitDM for the replies in the thread of parent.
func (s *Server) WaitThread(ctx context.Context, parent Message, contains string) (Message, error) {
	return s.waitMessage(ctx, func() []Message { return s.Thread(parent) }, contains)
}

func (s *Server) waitMessage(ctx context.Context, list func() []Message, contains string) (Message, error) {
	var found Message
	err := s.Wait(ctx, func() bool {
		msgs := list()
		for i := len(msgs) - 1; i >= 0; i-- {
			if strings.Contains(msgs[i].Render(), contains) || strings.Contains(msgs[i].Text, contains) {
				found = msgs[i]
				return true
			}
		}
		return false
	})
	if err != nil {
		return Message{}, fmt.Errorf("waiting for a message containing %q: %w", contains, err)
	}
	return found, nil
}

// WaitView waits until the user's top modal renders text containing the
// substring and returns it.
func (s *Server) WaitView(ctx context.Context, user, contains string) (*View, error) {
	return s.waitView(ctx, func() *View { return s.View(user) }, contains)
}

// WaitHome waits until the user's App Home renders text containing the
// substring and returns it.
func (s *Server) WaitHome(ctx context.Context, user, contains string) (*View, error) {
	return s.waitView(ctx, func() *View { return s.Home(user) }, contains)
}

func (s *Server) waitView(ctx context.Context, get func() *View, contains string) (*View, error) {
	var found *View
	err := s.Wait(ctx, func() bool {
		v := get()
		if v != nil && strings.Contains(v.Render(), contains) {
			found = v
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for a view containing %q: %w", contains, err)
	}
	return found, nil
}
