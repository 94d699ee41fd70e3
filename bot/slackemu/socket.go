package slackemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Disconnect reasons Slack sends.
const (
	ReasonRefreshRequested = "refresh_requested"
	ReasonWarning          = "warning"
	ReasonLinkDisabled     = "link_disabled"
)

// maxAckFrame is the size from which Slack silently drops a Socket Mode
// response frame.
const maxAckFrame = 20 * 1024

// disconnectGrace is how long a connection told to disconnect stays open
// for the client to close it.
const disconnectGrace = 2 * time.Second

// Ack is the app's acknowledgement of an envelope, as seen by the emulator.
type Ack struct {
	EnvelopeID   string
	RetryAttempt int             // the delivery attempt that was acked first (0 = first delivery)
	Latency      time.Duration   // from that delivery to its ack
	Payload      json.RawMessage // the ack's payload, nil when the app sent none
	TriggerID    string          // the trigger_id the envelope carried, if any
	// ResponseAction is the view_submission response_action the app chose:
	// "errors", "update", "push", "clear", or "" (the view was closed).
	ResponseAction string
	// Errors are the view_submission errors, keyed by block_id.
	Errors map[string]string
	// Options are the block_suggestion options (groups flattened).
	Options []SelectOption
}

// AckRecord is one ack frame received over Socket Mode.
type AckRecord struct {
	EnvelopeID   string
	Type         string // slash_commands, interactive or events_api
	Sent         time.Time
	Latency      time.Duration
	RetryAttempt int
	Payload      json.RawMessage
}

type envelope struct {
	id       string
	typ      string
	payload  json.RawMessage
	accepts  bool
	trigger  string
	attempt  int
	reason   string
	conn     *wsConn
	sentAt   time.Time
	awaiting bool // the latest delivery has not been acked yet
	acked    bool // at least one delivery was acked
	timer    *time.Timer

	redeliverAfterAck bool
	dropOnAck         bool

	onAck    func(payload json.RawMessage) (Ack, error)
	ack      Ack
	err      error
	finished bool // done is closed
	done     chan struct{}
}

// finishLocked records the outcome the caller waits for, once.
func (e *envelope) finishLocked(ack Ack, err error) {
	if e.finished {
		return
	}
	e.finished = true
	e.ack, e.err = ack, err
	close(e.done)
}

// RedeliverNext makes the next envelope be delivered a second time right
// after the app acks it (same envelope_id, retry_attempt 1, retry_reason
// "timeout"), as Slack occasionally does. Apps must de-duplicate.
func (s *Server) RedeliverNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redeliver++
}

// DisconnectBeforeAck makes the connection drop just before Slack would
// receive the app's ack of the next envelope: the app gets the envelope
// and handles it, its ack is lost with the connection, and the envelope is
// delivered again on the next connection with retry_attempt 1 and
// retry_reason "timeout". The app sees the same envelope twice; the lost
// ack is not in Acks.
func (s *Server) DisconnectBeforeAck() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext++
}

// Disconnect sends {"type":"disconnect","reason":reason} on every open
// connection and closes them shortly after (or when the client closes
// first). Envelopes sent from then on wait for the next connection.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "applink-slackemu"},
	})
	for _, c := range s.conns {
		if c.draining {
			continue
		}
		c.draining = true
		c.send(frame{data: msg, drain: true})
	}
	s.logf("socket: disconnect %s", reason)
	s.bumpLocked()
}

// Connections returns the number of open, non-draining Socket Mode connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns {
		if !c.draining {
			n++
		}
	}
	return n
}

// WaitConnected waits until the app has at least n open connections.
func (s *Server) WaitConnected(ctx context.Context, n int) error {
	return s.Wait(ctx, func() bool { return s.Connections() >= n })
}

// Pending returns how many envelopes are waiting for an ack (including
// those queued until the app connects).
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.envelopes {
		if e.awaiting {
			n++
		}
	}
	return n
}

// Pongs returns how many pongs the app sent in answer to the server's pings.
func (s *Server) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// Hellos returns how many hello messages were sent (one per accepted connection).
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

func (s *Server) appsConnectionsOpen(map[string]string) (map[string]any, *apiError) {
	n := s.nextSeq()
	sum := sha256.Sum256(fmt.Appendf(nil, "ticket-%d", n))
	ticket := hex.EncodeToString(sum[:12])
	s.tickets[ticket] = true
	return map[string]any{"url": fmt.Sprintf("%s/link/?ticket=%s&app_id=%s", s.wsURL, ticket, appID)}, nil
}

type frame struct {
	data  []byte
	drain bool // close the connection after disconnectGrace
}

type wsConn struct {
	s        *Server
	conn     *websocket.Conn
	out      chan frame
	done     chan struct{}
	once     sync.Once
	draining bool // guarded by s.mu
}

// send queues a frame; a connection too slow to take it is dropped.
func (c *wsConn) send(f frame) {
	select {
	case c.out <- f:
	default:
		c.kill()
	}
}

func (c *wsConn) kill() {
	c.once.Do(func() {
		close(c.done)
		_ = c.conn.Close()
	})
}

var upgrader = websocket.Upgrader{
	// slack-go sends Origin: https://api.slack.com, which the default
	// same-origin check rejects.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{s: s, conn: ws, out: make(chan frame, 256), done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns = append(s.conns, c)
	s.hellos++
	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "num_connections": len(s.conns),
		"debug_info": map[string]any{
			"host": "applink-slackemu", "build_number": 1, "approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": appID},
	})
	c.send(frame{data: hello})
	queued := s.queue
	s.queue = nil
	for _, e := range queued {
		s.sendLocked(e, c)
	}
	s.wg.Add(2)
	s.bumpLocked()
	s.mu.Unlock()
	s.logf("socket: connected (hello sent)")

	go func() {
		defer s.wg.Done()
		c.writeLoop(s.cfg.pingInterval)
	}()
	defer s.wg.Done()
	c.readLoop()
	c.kill()
	s.connGone(c)
}

func (c *wsConn) writeLoop(pingEvery time.Duration) {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var grace <-chan time.Time
	n := 0
	for {
		select {
		case <-c.done:
			return
		case <-grace:
			c.kill()
			return
		case <-ping.C:
			n++
			if err := c.conn.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "ping-%d", n), time.Now().Add(5*time.Second)); err != nil {
				c.kill()
				return
			}
		case f := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
				c.kill()
				return
			}
			if f.drain && grace == nil {
				t := time.NewTimer(disconnectGrace)
				defer t.Stop()
				grace = t.C
			}
		}
	}
}

func (c *wsConn) readLoop() {
	c.conn.SetPongHandler(func(string) error {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
		c.s.pongs++
		c.s.bumpLocked()
		return nil
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.s.handleAck(c, data)
	}
}

// connGone forgets a closed connection and redelivers what was in flight on it.
func (s *Server) connGone(c *wsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.logf("socket: connection closed")
	if !s.closed {
		for _, e := range s.pendingOn(c) {
			s.stopTimerLocked(e)
			e.attempt++
			e.reason = "timeout"
			s.routeLocked(e)
		}
	}
	s.bumpLocked()
}

// pendingOn lists envelopes whose latest delivery went to c and is unacked,
// in the order they were created.
func (s *Server) pendingOn(c *wsConn) []*envelope {
	var out []*envelope
	for _, e := range s.envelopes {
		if e.conn == c && e.awaiting {
			out = append(out, e)
		}
	}
	sortEnvelopes(out)
	return out
}

func sortEnvelopes(es []*envelope) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].id < es[j-1].id; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// enqueueLocked creates an envelope and delivers it (or queues it until
// a connection arrives).
func (s *Server) enqueueLocked(typ string, payload any, accepts bool, trigger string,
	onAck func(json.RawMessage) (Ack, error)) *envelope {
	data, _ := json.Marshal(payload)
	n := s.nextSeq()
	e := &envelope{
		id:      fmt.Sprintf("%08x-5e1a-4c0d-9e00-%012x", n, n),
		typ:     typ,
		payload: data,
		accepts: accepts,
		trigger: trigger,
		onAck:   onAck,
		done:    make(chan struct{}),
	}
	if s.redeliver > 0 {
		s.redeliver--
		e.redeliverAfterAck = true
	}
	if s.dropNext > 0 {
		s.dropNext--
		e.dropOnAck = true
	}
	s.envelopes[e.id] = e
	s.routeLocked(e)
	s.bumpLocked()
	return e
}

// routeLocked sends e on the newest usable connection, or queues it.
func (s *Server) routeLocked(e *envelope) {
	if s.closed {
		return
	}
	e.conn = nil
	e.awaiting = true
	for i := len(s.conns) - 1; i >= 0; i-- {
		if c := s.conns[i]; !c.draining {
			s.sendLocked(e, c)
			return
		}
	}
	s.queue = append(s.queue, e)
}

func (s *Server) sendLocked(e *envelope, c *wsConn) {
	data, _ := json.Marshal(map[string]any{
		"envelope_id": e.id, "type": e.typ, "payload": e.payload,
		"accepts_response_payload": e.accepts,
		"retry_attempt":            e.attempt, "retry_reason": e.reason,
	})
	e.conn = c
	e.sentAt = time.Now()
	e.awaiting = true
	c.send(frame{data: data})
	s.logf("socket: sent %s envelope %s (attempt %d)", e.typ, e.id, e.attempt)
	attempt := e.attempt
	s.wg.Add(1)
	e.timer = time.AfterFunc(s.cfg.ackTimeout, func() {
		defer s.wg.Done()
		s.ackTimedOut(e, attempt)
	})
}

func (s *Server) stopTimerLocked(e *envelope) {
	if e.timer != nil && e.timer.Stop() {
		s.wg.Done()
	}
	e.timer = nil
}

func (s *Server) ackTimedOut(e *envelope, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !e.awaiting || e.attempt != attempt || e.conn == nil {
		return
	}
	e.timer = nil
	s.problemLocked("%s envelope %s not acked within %s (retry_attempt %d)", e.typ, e.id, s.cfg.ackTimeout, attempt)
	if attempt < s.cfg.maxRetries {
		e.attempt++
		e.reason = "timeout"
		s.routeLocked(e)
	} else {
		e.awaiting = false
		if !e.acked {
			e.finishLocked(Ack{EnvelopeID: e.id, TriggerID: e.trigger},
				fmt.Errorf("%w: %s envelope %s after %d deliveries", ErrNotAcked, e.typ, e.id, attempt+1))
		}
	}
	s.bumpLocked()
}

type ackFrame struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

func (s *Server) handleAck(c *wsConn, data []byte) {
	var a ackFrame
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(data) >= maxAckFrame {
		s.problemLocked("socket: dropped a %d-byte frame from the app: Slack ignores responses of %d bytes or more", len(data), maxAckFrame)
		return
	}
	if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
		s.problemLocked("socket: unreadable frame from app: %.200s", data)
		return
	}
	e := s.envelopes[a.EnvelopeID]
	if e == nil {
		s.problemLocked("socket: ack for unknown envelope %s", a.EnvelopeID)
		return
	}
	if e.dropOnAck && e.awaiting && e.conn == c {
		// The ack is lost with the connection; connGone redelivers.
		e.dropOnAck = false
		s.logf("socket: dropping the connection before the ack of %s arrives", e.id)
		c.kill()
		return
	}
	now := time.Now()
	var payload json.RawMessage
	if len(a.Payload) > 0 && string(a.Payload) != "null" {
		payload = append(json.RawMessage(nil), a.Payload...)
	}
	rec := AckRecord{EnvelopeID: e.id, Type: e.typ, Sent: e.sentAt, Latency: now.Sub(e.sentAt),
		RetryAttempt: e.attempt, Payload: payload}
	s.acks = append(s.acks, rec)
	s.logf("socket: ack %s after %s", e.id, rec.Latency)
	if e.awaiting {
		e.awaiting = false
		s.stopTimerLocked(e)
		s.queue = slices.DeleteFunc(s.queue, func(q *envelope) bool { return q == e })
	}
	if !e.acked {
		e.acked = true
		ack := Ack{}
		var err error
		if e.onAck != nil && (payload != nil || e.typ == "interactive") {
			ack, err = e.onAck(payload)
		}
		ack.EnvelopeID, ack.RetryAttempt, ack.Latency = e.id, e.attempt, rec.Latency
		ack.Payload, ack.TriggerID = payload, e.trigger
		e.finishLocked(ack, err)
		if e.redeliverAfterAck {
			e.redeliverAfterAck = false
			e.attempt++
			e.reason = "timeout"
			s.routeLocked(e)
		}
	}
	s.bumpLocked()
}

// await waits for the first ack of e.
func (s *Server) await(ctx context.Context, e *envelope) (Ack, error) {
	select {
	case <-e.done:
		return e.ack, e.err
	case <-ctx.Done():
		return Ack{EnvelopeID: e.id, TriggerID: e.trigger}, fmt.Errorf("waiting for the ack of %s envelope %s: %w", e.typ, e.id, ctx.Err())
	case <-s.done:
		return Ack{EnvelopeID: e.id, TriggerID: e.trigger}, ErrClosed
	}
}
