package bot_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// refusals returns the request.refused events of a request, by actor and
// refused command.
func (w *world) refusals(requestID string) []workflow.Refused {
	w.t.Helper()
	var out []workflow.Refused
	if err := w.store.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindRefused}}, func(e *workflow.Event) error {
		if e.RequestID != requestID {
			return nil
		}
		var p workflow.Refused
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return err
		}
		if p.By != e.Actor {
			w.t.Errorf("refusal of %s by %s recorded with actor %s", p.Command, p.By, e.Actor)
		}
		out = append(out, p)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// votes counts the approval and denial events of a request.
func (w *world) votes(requestID string) int {
	w.t.Helper()
	n := 0
	if err := w.store.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindApproval, workflow.KindDenied}}, func(e *workflow.Event) error {
		if e.RequestID == requestID {
			n++
		}
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// refusedBy reports whether refusals hold command refused for user.
func refusedBy(refusals []workflow.Refused, command, user string) bool {
	for _, r := range refusals {
		if r.Command == command && r.By == user {
			return true
		}
	}
	return false
}

// tampered returns a copy of a card whose button values say something else.
func tampered(card slackemu.Message, from, to string) slackemu.Message {
	b, _ := json.Marshal(to)
	card.Blocks = json.RawMessage(strings.ReplaceAll(string(card.Blocks), `"`+from+`"`, string(b)))
	return card
}

// TestForgedAndReplayedClicks sends button payloads nobody could click:
// another request's id in the value, garbage values, a stranger's click,
// and clicks replayed after the request was decided. None counts; each one
// the engine records is a request.refused event naming who sent it.
func TestForgedAndReplayedClicks(t *testing.T) {
	w := newWorld(t)
	alice, bob, carol, frank := w.id("alice"), w.id("bob"), w.id("carol"), w.id("frank")
	mine := w.request(alice, "team-db", why) // carol, alice's manager, approves
	other := w.request(bob, "audit", why)    // security approves
	card := w.card(carol, mine)
	if !strings.Contains(string(card.Blocks), `"`+mine.ID+`"`) {
		t.Fatalf("carol's card does not carry the request id as a button value:\n%s", card.Blocks)
	}

	// carol's Approve, tampered to name bob's request, which is not hers
	// to decide.
	if _, err := w.emu.ClickAs(w.ctx(), carol, tampered(card, mine.ID, other.ID), "approve"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.told(carol, "not an approver")
	if got := w.load(other.ID); got.State != workflow.RequestPending || w.votes(other.ID) != 0 {
		t.Fatalf("a tampered click decided another request: %s, %d votes", got.State, w.votes(other.ID))
	}
	if !refusedBy(w.refusals(other.ID), "approve", carol) {
		t.Errorf("the tampered click is not recorded as refused: %+v", w.refusals(other.ID))
	}

	// Garbage values: nothing to decide, nothing decided.
	for _, value := range []string{"garbage", "", strings.Repeat("9", 1900), "<!channel>", "../" + mine.ID, mine.ID + " ", strings.ToUpper(mine.ID)} {
		for _, action := range []string{"approve", "deny"} {
			if _, err := w.emu.ClickAs(w.ctx(), carol, tampered(card, mine.ID, value), action); err != nil {
				t.Fatalf("%s with value %.20q: %v", action, value, err)
			}
		}
	}
	w.settle()
	if got := w.load(mine.ID); got.State != workflow.RequestPending || w.votes(mine.ID) != 0 {
		t.Fatalf("a garbage value decided a request: %s, %d votes", got.State, w.votes(mine.ID))
	}
	if w.saw(carol, "<!channel>") {
		t.Error("a value sent back in a refusal pings the channel")
	}

	// A stranger's Approve and Deny on carol's card.
	for _, action := range []string{"approve", "deny"} {
		if _, err := w.emu.ClickAs(w.ctx(), frank, card, action); err != nil {
			t.Fatal(err)
		}
	}
	w.settle()
	w.told(frank, "not an approver")
	w.told(frank, "You cannot deny this request")
	if !refusedBy(w.refusals(mine.ID), "approve", frank) {
		t.Errorf("the stranger's click is not recorded as refused: %+v", w.refusals(mine.ID))
	}
	// The requester's own forged Approve.
	if _, err := w.emu.ClickAs(w.ctx(), alice, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if !refusedBy(w.refusals(mine.ID), "approve", alice) {
		t.Errorf("the self-approval is not recorded as refused: %+v", w.refusals(mine.ID))
	}
	if got := w.load(mine.ID); got.State != workflow.RequestPending || w.votes(mine.ID) != 0 {
		t.Fatalf("forged clicks decided the request: %s, %d votes", got.State, w.votes(mine.ID))
	}

	// carol approves; then the old card's buttons are replayed.
	w.click(carol, card, "approve")
	w.state(mine.ID, workflow.RequestActive)
	if _, err := w.emu.ClickAs(w.ctx(), carol, card, "approve"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.emu.ClickAs(w.ctx(), carol, card, "deny"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.told(carol, "You cannot deny this request: it is already active")
	if !refusedBy(w.refusals(mine.ID), "approve", carol) {
		t.Errorf("the replayed Approve is not recorded as refused: %+v", w.refusals(mine.ID))
	}
	if got := w.load(mine.ID); got.State != workflow.RequestActive || w.votes(mine.ID) != 1 || w.target.grants != 1 {
		t.Errorf("after replays: %s, %d votes, %d grants; want active, 1 and 1", got.State, w.votes(mine.ID), w.target.grants)
	}
	if problems := w.emu.TakeProblems(); len(problems) > 0 {
		t.Errorf("the emulator saw problems: %v", problems)
	}
}
