package bot

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// onInteraction handles clicks, type-ahead and form submissions. Type-ahead
// and submissions are answered in the ack itself (options, or inline
// errors). A click that decides something (Approve, Release, Cancel,
// Review) is committed before its ack, so that an acked click is in the
// log; what it shows people, and clicks that open a form, come after.
func (b *Bot) onInteraction(ctx context.Context, cb slack.InteractionCallback) (any, afterAck) {
	switch cb.Type {
	case slack.InteractionTypeBlockSuggestion:
		return b.suggest(ctx, cb), nil
	case slack.InteractionTypeViewSubmission:
		return b.submit(ctx, cb)
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 {
			return nil, nil
		}
		after := b.click(ctx, cb, cb.ActionCallback.BlockActions[0])
		if after != nil && cb.View.Type == slack.VTHomeTab {
			// Acted on from App Home: show the result there.
			return nil, func(ctx context.Context) {
				after(ctx)
				b.publishHome(ctx, cb.User.ID)
			}
		}
		return nil, after
	}
	return nil, nil
}

// maxAckPayload bounds an ack's payload: Slack drops Socket Mode
// responses of 20 KB or more, envelope included.
const maxAckPayload = 19 * 1024

// suggest answers the item picker's type-ahead with the items the person
// may request. The answer rides on the ack, so it is kept under Slack's
// size limit: descriptions go first, then the last options.
func (b *Bot) suggest(ctx context.Context, cb slack.InteractionCallback) *slack.OptionsResponse {
	resp := &slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	if cb.ActionID != actionItem {
		return resp
	}
	u, err := b.person(ctx, cb.User.ID)
	if err != nil {
		return resp
	}
	visible := b.visibleTo(ctx, u)
	resp.Options = b.index.Options(cb.Value, maxOptions, func(it workflow.Item) bool {
		// An id too long for an option value cannot be offered.
		return len(it.ID) <= maxOptionValue && visible(it)
	})
	if payloadSize(resp) > maxAckPayload {
		for i, o := range resp.Options {
			short := *o // the index's options are shared
			short.Description = nil
			resp.Options[i] = &short
		}
	}
	for len(resp.Options) > 0 && payloadSize(resp) > maxAckPayload {
		resp.Options = resp.Options[:len(resp.Options)*9/10]
	}
	return resp
}

// payloadSize is the size of the options as JSON, counted without
// encoding them: a text object costs its text, escaped, and a fixed frame.
func payloadSize(resp *slack.OptionsResponse) int {
	const frame = 48 // {"type":"plain_text","text":""} and the option's keys
	n := 16
	for _, o := range resp.Options {
		n += frame + jsonLen(o.Value)
		if o.Text != nil {
			n += frame + jsonLen(o.Text.Text)
		}
		if o.Description != nil {
			n += frame + jsonLen(o.Description.Text)
		}
	}
	return n
}

// jsonLen is the length of s as a JSON string body, as encoding/json
// writes it (it escapes <, > and & as \u00XX).
func jsonLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		}
	}
	return n
}

// commandBudget bounds how long after its arrival an interaction may wait
// for its ack: Slack wants it within 3 s. A click's command still running
// then goes on after the ack.
const commandBudget = 2 * time.Second

// command runs a click's command, the part recorded in the log, before the
// ack when it finishes before ctx ends (the envelope's budget), and
// returns the work to do after the ack with its outcome.
func (b *Bot) command(ctx context.Context, run func(context.Context) (workflow.Request, error), then func(ctx context.Context, r workflow.Request, err error)) afterAck {
	type outcome struct {
		r     workflow.Request
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				// Raised again after the ack, where the handler's recovery
				// logs it and apologizes.
				o.panic = fmt.Sprintf("%v\n%s", p, debug.Stack())
			}
			done <- o
		}()
		// Once started, a command finishes even if latch is shutting down.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		o.r, o.err = run(ctx)
	}()
	finish := func(ctx context.Context, o outcome) {
		if o.panic != nil {
			panic(o.panic)
		}
		then(ctx, o.r, o.err)
	}
	select {
	case o := <-done:
		return func(ctx context.Context) { finish(ctx, o) }
	case <-ctx.Done():
		b.log.Warn().Dur("budget", commandBudget).Msg("a click's command is slow; acked before it was recorded")
		return func(ctx context.Context) { finish(ctx, <-done) }
	}
}

// click handles a button or a select.
func (b *Bot) click(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) afterAck {
	user, id := cb.User.ID, a.Value
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	switch a.ActionID {
	case actionApprove:
		return b.command(ctx, func(ctx context.Context) (workflow.Request, error) {
			return b.engine.Approve(ctx, id, user)
		}, func(ctx context.Context, r workflow.Request, err error) {
			if err != nil {
				b.tell(ctx, user, channel, b.refusal("Approval not recorded", err))
				return
			}
			b.refreshCards(ctx, r.ID)
		})
	case actionDeny:
		return func(ctx context.Context) {
			r, ok := b.load(ctx, id, user, channel)
			if !ok {
				return
			}
			if !mayDecide(&r, user) {
				b.tell(ctx, user, channel, "You cannot deny this request: "+b.whyNot(&r, user))
				return
			}
			b.openView(ctx, cb.TriggerID, user, channel, DenyForm(b.cfg.Catalogue, &r))
		}
	case actionCancel:
		return b.command(ctx, func(ctx context.Context) (workflow.Request, error) {
			return b.engine.Cancel(ctx, id, user)
		}, func(ctx context.Context, _ workflow.Request, err error) {
			if err != nil {
				b.tell(ctx, user, channel, b.refusal("Not cancelled", err))
				return
			}
			b.tell(ctx, user, channel, "Your request is cancelled.")
		})
	case actionRelease:
		return b.command(ctx, func(ctx context.Context) (workflow.Request, error) {
			return b.engine.Release(ctx, id, user)
		}, func(ctx context.Context, _ workflow.Request, err error) {
			if err != nil {
				text := b.refusal("Not released", err)
				if errors.Is(err, workflow.ErrUnrecorded) {
					text += " Your access stays until it expires, and is taken back then even so; if it must go now, tell your security team."
				}
				b.tell(ctx, user, channel, text)
				return
			}
			b.tell(ctx, user, channel, "Released: your access is being taken back now.")
		})
	case actionExtend:
		return func(ctx context.Context) {
			r, ok := b.load(ctx, id, user, channel)
			if !ok {
				return
			}
			p := b.cfg.Policies[r.Policy]
			switch {
			case r.Beneficiary != user:
				b.tell(ctx, user, channel, "Only the person who holds this access may extend it.")
			case r.State != workflow.RequestActive:
				b.tell(ctx, user, channel, fmt.Sprintf("This access is %s, so it cannot be extended; request it again with `/access`.", r.State))
			case p == nil || r.BreakGlass:
				b.tell(ctx, user, channel, "This access cannot be extended; request the item with `/access`.")
			default:
				b.openView(ctx, cb.TriggerID, user, channel, ExtendForm(b.cfg.Catalogue, &r, p, b.cfg.Clock.Now()))
			}
		}
	case actionReview:
		return b.command(ctx, func(ctx context.Context) (workflow.Request, error) {
			return b.engine.Review(ctx, id, user, "")
		}, func(ctx context.Context, r workflow.Request, err error) {
			if err != nil {
				b.tell(ctx, user, channel, b.refusal("Review not recorded", err))
				return
			}
			b.refreshAnnouncements(ctx, r.ID)
			if cb.Message.Timestamp != "" && channel != "" {
				// A reminder to review, which is not recorded on the request.
				b.update(ctx, channel, cb.Message.Timestamp, "Break-glass reviewed", BreakGlassMessage(b.cfg.Catalogue, &r, true))
			}
		})
	case actionRequestItem:
		return func(ctx context.Context) {
			fi, problem := b.formItem(ctx, user, id)
			if problem != "" {
				b.tell(ctx, user, channel, problem)
				return
			}
			b.openView(ctx, cb.TriggerID, user, channel, RequestForm(requestMeta{Channel: channel, Item: id}, fi))
		}
	case actionItem:
		if cb.View.CallbackID != callbackRequest {
			return nil
		}
		item := ""
		if a.SelectedOption.Value != "" {
			item = a.SelectedOption.Value
		}
		return func(ctx context.Context) {
			meta := decodeRequestMeta(cb.View.PrivateMetadata)
			fi, problem := b.formItem(ctx, user, item)
			if problem != "" {
				b.tell(ctx, user, meta.Channel, problem)
				return
			}
			meta.Item = item
			if _, err := b.api.UpdateViewContext(ctx, RequestForm(meta, fi), "", cb.View.Hash, cb.View.ID); err != nil {
				b.log.Warn().Err(err).Msg("update the request form")
			}
		}
	}
	return nil
}

// load reads a request for a click, telling the person if it is gone.
func (b *Bot) load(ctx context.Context, id, user, channel string) (workflow.Request, bool) {
	r, ok, err := b.cfg.Requests.Request(id)
	switch {
	case err != nil:
		b.log.Error().Err(err).Str("request", id).Msg("load request")
		b.tell(ctx, user, channel, "latch could not read that request just now; try again in a minute.")
		return r, false
	case !ok:
		b.tell(ctx, user, channel, "That request does not exist.")
		return r, false
	}
	return r, true
}

// whyNot explains why a person cannot vote on a request.
func (b *Bot) whyNot(r *workflow.Request, user string) string {
	if r.State != workflow.RequestPending {
		return "it is already " + strings.ReplaceAll(string(r.State), "_", " ") + "."
	}
	for _, i := range openStages(r) {
		if slices.Contains(r.Stages[i].Approvals, user) {
			return "you have approved it already."
		}
	}
	return "you are not one of the approvers it is waiting for."
}

// formItem looks up what the request form needs to know about an item, or
// says why the person cannot request it.
func (b *Bot) formItem(ctx context.Context, user, itemID string) (*formItem, string) {
	it, ok := b.cfg.Catalogue.Item(itemID)
	if !ok {
		return nil, "That item is not in the catalogue any more."
	}
	p := b.cfg.Policies[it.Policy]
	u, err := b.person(ctx, user)
	if err != nil || p == nil || !b.visibleTo(ctx, u)(it) {
		return nil, "That item is not in the catalogue available to you."
	}
	fi := &formItem{Item: it, Policy: p}
	for _, name := range it.Connectors() {
		if b.cfg.ConnectorTypes[name] == "sshcert" {
			fi.PublicKey = true
		}
	}
	return fi, ""
}
