package crash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/workflow"
)

// The clicks people make that decide something, by their action_id. The
// bot commits such a click to the log before it acks the envelope, so an
// acked one is in the log whatever happens to the server after the ack.
const (
	clickApprove = "approve"
	clickRelease = "release"
)

// ackTolerance is how much later than the ack of a click the event that
// records it may be timed: the store and the emulator read the same clock,
// but not at the same moment.
const ackTolerance = 5 * time.Millisecond

// slowCommand is what latch logs when a click's command outlasts its
// budget and the click is acked before it is recorded.
const slowCommand = "acked before it was recorded"

// click is one Approve or Release click, known by its envelope.
type click struct {
	kind    string // clickApprove or clickRelease
	user    string // Slack id of the person who clicked
	request string // the button's value: the request id
}

// clickCounts is what the checks found for the acked clicks of one kind.
type clickCounts struct {
	acked, found int
	// For releases: how the log accounts for them.
	byClicker, refused, alreadyEnding int
}

// logged is what the checks need of one event of a request.
type logged struct {
	seq     uint64
	time    time.Time
	kind    string
	actor   string
	by      string // the payload's By: of a vote, an ending, a refusal
	command string // a refusal's command
	state   workflow.RequestState
}

func (l logged) String() string {
	s := fmt.Sprintf("#%d %s %s by %s", l.seq, l.time.Format("15:04:05.000000"), l.kind, l.actor)
	if l.command != "" {
		s += " (" + l.command + ")"
	}
	return s + " → " + string(l.state)
}

// newLogged describes e, which left its request in state.
func newLogged(e *workflow.Event, state workflow.RequestState) logged {
	l := logged{seq: e.Seq, time: e.Time, kind: e.Kind, actor: e.Actor, state: state}
	switch e.Kind {
	case workflow.KindApproval:
		var p workflow.Vote
		if json.Unmarshal(e.Payload, &p) == nil {
			l.by = p.By
		}
	case workflow.KindEnding:
		var p workflow.Ending
		if json.Unmarshal(e.Payload, &p) == nil {
			l.by = p.By
		}
	case workflow.KindRefused:
		var p workflow.Refused
		if json.Unmarshal(e.Payload, &p) == nil {
			l.by, l.command = p.By, p.Command
		}
	}
	return l
}

// buttonValue returns the value of the message's button with that
// action_id: for latch's buttons, the request id.
func buttonValue(m slackemu.Message, actionID string) (string, bool) {
	for _, e := range m.Elements() {
		if e.ActionID == actionID && e.Type == "button" && e.Value != "" {
			return e.Value, true
		}
	}
	return "", false
}

// clickButton clicks the button with that action_id on m as user, and
// records the click by its envelope whether or not the ack came in time:
// the ack may arrive after Click gives up waiting for it. It reports
// whether the click was sent.
func (r *run) clickButton(ctx context.Context, user string, m slackemu.Message, kind string) bool {
	request, ok := buttonValue(m, kind)
	if !ok {
		return false
	}
	ack, _ := r.emu.ClickByValue(ctx, user, m, kind, request)
	if ack.EnvelopeID == "" {
		return false // the button was gone: nothing was sent
	}
	r.mu.Lock()
	r.clicks[ack.EnvelopeID] = click{kind: kind, user: user, request: request}
	r.mu.Unlock()
	return true
}

// checkClicks checks every acked Approve and Release click against the
// log, given as the events of each request in log order.
func (r *run) checkClicks(hist map[string][]logged) {
	t := r.t
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.emu.Acks() {
		c, ok := r.clicks[a.EnvelopeID]
		if !ok || r.clicksFound[a.EnvelopeID] || r.clicksMissing[a.EnvelopeID] {
			continue
		}
		counts := &r.approveClicks
		if c.kind == clickRelease {
			counts = &r.releaseClicks
		}
		if !r.clicksAcked[a.EnvelopeID] {
			r.clicksAcked[a.EnvelopeID] = true
			counts.acked++
		}
		at := a.Sent.Add(a.Latency)
		limit := at.Add(ackTolerance)
		how := ""
		for _, e := range hist[c.request] {
			if e.time.After(limit) {
				break
			}
			switch c.kind {
			case clickApprove:
				if e.actor == c.user && (e.kind == workflow.KindApproval ||
					(e.kind == workflow.KindRefused && e.command == "approve")) {
					how = e.kind
				}
			case clickRelease:
				switch {
				case e.kind == workflow.KindEnding && e.by == c.user:
					how, counts.byClicker = "ending", counts.byClicker+1
				case e.kind == workflow.KindRefused && e.actor == c.user && e.command == workflow.OutcomeReleased:
					how, counts.refused = "refused", counts.refused+1
				case e.kind == workflow.KindEnding || !releasable(e.state):
					how, counts.alreadyEnding = "already ending", counts.alreadyEnding+1
				}
			}
			if how != "" {
				break
			}
		}
		if how == "" {
			t.Errorf("the %s click %s by %s on request %s was acked at %s (retry %d), but the log records no such decision by then; the log for %s:\n  %s%s",
				c.kind, a.EnvelopeID, c.user, c.request, at.Format("15:04:05.000000"), a.RetryAttempt, c.request,
				describeHistory(hist[c.request]), r.slowCommands())
			r.clicksMissing[a.EnvelopeID] = true
			continue
		}
		r.clicksFound[a.EnvelopeID] = true
		counts.found++
	}
}

// releasable reports whether a request in state s may still be released:
// any other state means it was already ending or closed.
func releasable(s workflow.RequestState) bool {
	return s == workflow.RequestPending || s == workflow.RequestProvisioning || s == workflow.RequestActive
}

func describeHistory(h []logged) string {
	if len(h) == 0 {
		return "(no events)"
	}
	lines := make([]string, len(h))
	for i, e := range h {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n  ")
}

// slowCommands says how often latch acked a click before recording it,
// as its log tells.
func (r *run) slowCommands() string {
	out, err := os.ReadFile(filepath.Join(r.dir, "serve.log"))
	if err != nil {
		return ""
	}
	n := bytes.Count(out, []byte(slowCommand))
	if n == 0 {
		return "\n(latch never logged that it acked a click before recording it)"
	}
	return fmt.Sprintf("\n(latch logged %d times that it acked a click before recording it)", n)
}
