package slackemu

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// responseURLTTL and responseURLUses are Slack's limits for response_url.
const (
	responseURLTTL  = 30 * time.Minute
	responseURLUses = 5
)

// responseURL remembers where a response_url posts to.
type responseURL struct {
	user      string
	channel   string
	msgTS     string // message the interaction came from ("" for slash commands)
	ephemeral bool   // that message is ephemeral
	issued    time.Time
	uses      int
}

// postTargetLocked resolves the channel argument of chat.postMessage and
// chat.postEphemeral: a channel ID or name (the bot must be a member), a
// user ID (their DM with the bot) or a DM ID.
func (s *Server) postTargetLocked(ref string) (string, *apiError) {
	if ref == "" {
		return "", errCode("channel_not_found")
	}
	if c := s.ws.channel(ref); c != nil {
		if !c.hasMember(botUserID) {
			if c.IsPrivate {
				return "", errCode("channel_not_found")
			}
			return "", errCode("not_in_channel")
		}
		return c.ID, nil
	}
	if u := s.ws.userByID(ref); u != nil && !u.IsBot {
		return dmID(u.ID), nil
	}
	if u := s.ws.dmUser(ref); u != nil {
		return ref, nil
	}
	return "", errCode("channel_not_found")
}

// parseMessageBlocks decodes and validates the blocks argument. present is
// false when the argument was not sent.
func (s *Server) parseMessageBlocks(raw string, present bool, what string) ([]any, *apiError) {
	if !present || raw == "" {
		return nil, nil
	}
	v, err := decodeJSON([]byte(raw))
	if err != nil {
		return nil, errCode("invalid_blocks_format")
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errCode("invalid_blocks_format")
	}
	if errs := validateMessageBlocks(arr); len(errs) > 0 {
		for _, e := range errs {
			s.problemLocked("%s: invalid blocks: %s", what, e)
		}
		return nil, &apiError{code: "invalid_blocks", messages: errs}
	}
	normalizeBlocks(arr, s.genID)
	if arr == nil {
		arr = []any{}
	}
	return arr, nil
}

// genID returns a short generated block or action id, like Slack's.
func (s *Server) genID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := s.nextSeq()
	var b strings.Builder
	b.WriteByte('=')
	for i := 0; i < 4; i++ {
		b.WriteByte(alphabet[n%len(alphabet)])
		n /= len(alphabet)
	}
	return b.String()
}

func truthy(s string) bool { return s == "1" || s == "true" }

func checkText(text string, hasBlocks bool, args map[string]string) *apiError {
	if text == "" && !hasBlocks && args["attachments"] == "" {
		return errCode("no_text")
	}
	if runeLen(text) > maxMessageText {
		return errCode("msg_too_long")
	}
	return nil
}

func (s *Server) messageObject(m *message) map[string]any {
	obj := map[string]any{
		"type": "message", "text": m.text, "user": m.user, "ts": m.ts, "team": teamID,
		"bot_id": botID, "app_id": appID,
	}
	if m.blocks != nil {
		obj["blocks"] = m.blocks
	}
	if m.threadTS != "" {
		obj["thread_ts"] = m.threadTS
	}
	if m.edited > 0 {
		obj["edited"] = map[string]any{"user": m.user, "ts": m.editedTS}
	}
	return obj
}

func (s *Server) storeMessageLocked(m *message) {
	s.messages = append(s.messages, m)
	if !m.ephemeral {
		s.msgIndex[msgKey(m.channel, m.ts)] = m
	}
}

func (s *Server) chatPostMessage(args map[string]string) (map[string]any, *apiError) {
	ch, aerr := s.postTargetLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	raw, present := args["blocks"]
	blocks, aerr := s.parseMessageBlocks(raw, present, "chat.postMessage")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkText(args["text"], len(blocks) > 0, args); aerr != nil {
		return nil, aerr
	}
	m := &message{channel: ch, ts: s.newTS(), user: botUserID, text: args["text"], linkNames: truthy(args["link_names"])}
	m.setBlocks(blocks)
	if tts := args["thread_ts"]; tts != "" {
		// Like Slack: a reply to a reply joins the parent's thread, and a
		// thread_ts that matches nothing posts to the channel instead.
		if p := s.msgIndex[msgKey(ch, tts)]; p != nil {
			m.threadTS = p.ts
			if p.threadTS != "" {
				m.threadTS = p.threadTS
			}
		}
	}
	s.storeMessageLocked(m)
	return map[string]any{"channel": ch, "ts": m.ts, "message": s.messageObject(m)}, nil
}

func (s *Server) chatUpdate(args map[string]string) (map[string]any, *apiError) {
	ch, aerr := s.existingChannelLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	m := s.msgIndex[msgKey(ch, args["ts"])]
	if m == nil {
		return nil, errCode("message_not_found")
	}
	if m.user != botUserID {
		return nil, errCode("cant_update_message")
	}
	raw, present := args["blocks"]
	blocks, aerr := s.parseMessageBlocks(raw, present, "chat.update")
	if aerr != nil {
		return nil, aerr
	}
	text, hasText := args["text"]
	if !hasText {
		text = m.text
	}
	if !present {
		blocks = m.blocks
	}
	if aerr := checkText(text, len(blocks) > 0, args); aerr != nil {
		return nil, aerr
	}
	s.editMessageLocked(m, text, blocks)
	return map[string]any{"channel": ch, "ts": m.ts, "text": m.text, "message": s.messageObject(m)}, nil
}

func (s *Server) editMessageLocked(m *message, text string, blocks []any) {
	m.text = text
	m.setBlocks(blocks)
	m.edited++
	m.editedTS = s.newTS()
}

func (s *Server) chatPostEphemeral(args map[string]string) (map[string]any, *apiError) {
	u := s.ws.userByID(args["user"])
	if u == nil || u.IsBot {
		return nil, errCode("user_not_found")
	}
	ch, aerr := s.postTargetLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	if c := s.ws.channel(ch); c != nil && !c.hasMember(u.ID) {
		return nil, errCode("user_not_in_channel")
	}
	if du := s.ws.dmUser(ch); du != nil && du.ID != u.ID {
		return nil, errCode("user_not_in_channel")
	}
	raw, present := args["blocks"]
	blocks, aerr := s.parseMessageBlocks(raw, present, "chat.postEphemeral")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkText(args["text"], len(blocks) > 0, args); aerr != nil {
		return nil, aerr
	}
	m := &message{channel: ch, ts: s.newTS(), user: botUserID, text: args["text"], ephemeral: true, recipient: u.ID,
		linkNames: truthy(args["link_names"])}
	m.setBlocks(blocks)
	if tts := args["thread_ts"]; tts != "" && s.msgIndex[msgKey(ch, tts)] != nil {
		m.threadTS = tts
	}
	s.storeMessageLocked(m)
	return map[string]any{"message_ts": m.ts}, nil
}

func (s *Server) chatDelete(args map[string]string) (map[string]any, *apiError) {
	ch, aerr := s.existingChannelLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	m := s.msgIndex[msgKey(ch, args["ts"])]
	if m == nil {
		return nil, errCode("message_not_found")
	}
	if m.user != botUserID {
		return nil, errCode("cant_delete_message")
	}
	s.deleteMessageLocked(m)
	return map[string]any{"channel": ch, "ts": m.ts}, nil
}

func (s *Server) deleteMessageLocked(m *message) {
	for i, x := range s.messages {
		if x == m {
			s.messages = append(s.messages[:i], s.messages[i+1:]...)
			break
		}
	}
	if !m.ephemeral {
		delete(s.msgIndex, msgKey(m.channel, m.ts))
	}
}

// newResponseURLLocked issues a response_url for an interaction.
func (s *Server) newResponseURLLocked(kind string, r *responseURL) string {
	id := fmt.Sprintf("%s/%s/%d/%s", kind, teamID, s.nextSeq(), strings.ReplaceAll(r.msgTS, ".", ""))
	r.issued = s.now()
	s.responseURLs[id] = r
	return s.baseURL + "/response/" + id
}

// responseMessage is what apps post to a response_url.
type responseMessage struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// handleResponseURL implements response_url posts: an ephemeral reply by
// default, in_channel for a visible one, replace_original and
// delete_original for the message the interaction came from.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	call := Call{Method: "response_url", Time: time.Now(), Args: map[string]string{"url": id}}
	rm, perr := readResponseMessage(r)
	if perr == nil {
		call.Args["text"] = rm.Text
		call.Args["response_type"] = rm.ResponseType
		if len(rm.Blocks) > 0 {
			call.Args["blocks"] = string(rm.Blocks)
		}
		if rm.ReplaceOriginal {
			call.Args["replace_original"] = "true"
		}
		if rm.DeleteOriginal {
			call.Args["delete_original"] = "true"
		}
	}

	s.mu.Lock()
	status, aerr := s.respondLocked(id, rm, perr)
	if aerr != nil {
		call.Error = aerr.code
	}
	call.Status = status
	s.calls = append(s.calls, call)
	hooks := slices.Clone(s.onCall)
	s.bumpLocked()
	s.mu.Unlock()

	for _, h := range hooks {
		h(call)
	}
	writeJSON(w, status, apiBody(nil, aerr))
}

// readResponseMessage accepts a JSON body (as slack-go sends) or a form
// with a JSON payload field.
func readResponseMessage(r *http.Request) (responseMessage, error) {
	var rm responseMessage
	data, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return rm, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return rm, err
		}
		data = []byte(vals.Get("payload"))
	}
	err = json.Unmarshal(data, &rm)
	return rm, err
}

func (s *Server) respondLocked(id string, rm responseMessage, perr error) (int, *apiError) {
	if s.closed {
		return http.StatusServiceUnavailable, errCode("service_unavailable")
	}
	ru := s.responseURLs[id]
	if ru == nil {
		return http.StatusNotFound, errCode("invalid_url")
	}
	if perr != nil {
		return http.StatusBadRequest, errCode("invalid_payload")
	}
	if s.now().Sub(ru.issued) > responseURLTTL {
		return http.StatusNotFound, errCode("expired_url")
	}
	if ru.uses >= responseURLUses {
		return http.StatusNotFound, errCode("used_url")
	}
	ru.uses++
	if rm.DeleteOriginal {
		if m := s.lookupMessageLocked(surfaceRef{channel: ru.channel, ts: ru.msgTS, ephemeral: ru.ephemeral}); m != nil && ru.msgTS != "" {
			s.deleteMessageLocked(m)
			return http.StatusOK, nil
		}
		return http.StatusNotFound, errCode("message_not_found")
	}
	blocks, aerr := s.parseMessageBlocks(string(rm.Blocks), len(rm.Blocks) > 0 && string(rm.Blocks) != "null", "response_url")
	if aerr != nil {
		return http.StatusOK, aerr
	}
	if aerr := checkText(rm.Text, len(blocks) > 0, nil); aerr != nil {
		return http.StatusOK, aerr
	}
	if rm.ReplaceOriginal && ru.msgTS != "" {
		m := s.lookupMessageLocked(surfaceRef{channel: ru.channel, ts: ru.msgTS, ephemeral: ru.ephemeral})
		if m == nil {
			return http.StatusNotFound, errCode("message_not_found")
		}
		s.editMessageLocked(m, rm.Text, blocks)
		return http.StatusOK, nil
	}
	m := &message{channel: ru.channel, ts: s.newTS(), user: botUserID, text: rm.Text}
	m.setBlocks(blocks)
	if rm.ThreadTS != "" && s.msgIndex[msgKey(ru.channel, rm.ThreadTS)] != nil {
		m.threadTS = rm.ThreadTS
	}
	if rm.ResponseType != "in_channel" {
		m.ephemeral = true
		m.recipient = ru.user
	}
	s.storeMessageLocked(m)
	return http.StatusOK, nil
}
