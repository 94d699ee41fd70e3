package bot

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// The bot is the engine's Notifier: it tells people what happened, as
// DMs, threads and in-place updates of the messages it posted before.
var _ workflow.Notifier = (*Bot)(nil)

// Submitted posts the requester's status message and, for a request made
// for someone else, the beneficiary's.
func (b *Bot) Submitted(ctx context.Context, r workflow.Request) {
	b.postStatus(ctx, &r, r.Requester, workflow.AudienceRequester)
	if r.Beneficiary != r.Requester {
		b.postStatus(ctx, &r, r.Beneficiary, workflow.AudienceBeneficiary)
	}
}

func (b *Bot) postStatus(ctx context.Context, r *workflow.Request, user, audience string) {
	channel, ts, err := b.post(ctx, user, "", cardText(b.cfg.Catalogue, r), StatusMessage(b.cfg.Catalogue, r, user, b.cfg.Clock.Now()))
	if err != nil {
		return
	}
	b.record(ctx, r.ID, workflow.Posted{Audience: audience, User: user, Channel: channel, Ref: ts})
}

// ApprovalNeeded sends each approver of the stage a card with Approve and
// Deny, and tells the requester who was asked.
func (b *Bot) ApprovalNeeded(ctx context.Context, r workflow.Request, stage int) {
	if stage < 0 || stage >= len(r.Stages) {
		return
	}
	st := r.Stages[stage]
	b.cards(ctx, &r, st.Approvers)
	name := fmt.Sprintf("stage %d of %d", stage+1, len(r.Stages))
	if st.Name != "" {
		name += " (" + escape(line(st.Name)) + ")"
	}
	b.thread(ctx, &r, r.Requester, fmt.Sprintf("Asked %s for approval, %s: %d needed.", mentions(st.Approvers), name, st.Required))
	b.refreshCards(ctx, r.ID)
	b.refreshStatus(ctx, r.ID)
}

// cards posts an approval card to each approver who has none yet.
func (b *Bot) cards(ctx context.Context, r *workflow.Request, approvers []string) {
	fresh, ok, err := b.cfg.Requests.Request(r.ID)
	if err == nil && ok {
		r = &fresh
	}
	for _, approver := range approvers {
		if _, ok := r.Post(workflow.AudienceApprover, approver); ok {
			continue
		}
		channel, ts, err := b.post(ctx, approver, "", cardText(b.cfg.Catalogue, r), ApprovalCard(b.cfg.Catalogue, r, approver))
		if err != nil {
			continue
		}
		b.record(ctx, r.ID, workflow.Posted{Audience: workflow.AudienceApprover, User: approver, Channel: channel, Ref: ts})
	}
}

// Reminder posts a new DM to each approver the stage still waits for, and
// notes it on their cards.
func (b *Bot) Reminder(ctx context.Context, r workflow.Request, stage int) {
	if stage < 0 || stage >= len(r.Stages) {
		return
	}
	st := r.Stages[stage]
	b.cards(ctx, &r, st.Approvers) // fallback approvers after an escalation
	for _, approver := range st.Approvers {
		if slices.Contains(st.Approvals, approver) {
			continue
		}
		text := fmt.Sprintf("⏰ Reminder: %s still waits for your decision (%s for %s), submitted %s.",
			mention(r.Requester), escape(line(itemName(b.cfg.Catalogue, r.Item))), workflow.FormatDuration(r.Duration), when(r.SubmittedAt))
		// A new message, not a reply under the card, so that it notifies.
		_, _, _ = b.post(ctx, approver, "", stripMarkup(text), []slack.Block{section(text)})
	}
	b.refreshCards(ctx, r.ID)
}

// Decided updates every approver's card in place with the outcome, and
// tells the requester and beneficiary.
func (b *Bot) Decided(ctx context.Context, r workflow.Request) {
	b.refreshCards(ctx, r.ID)
	b.refreshStatus(ctx, r.ID)
	text := outcomeText(&r)
	b.thread(ctx, &r, r.Requester, text)
	if r.Beneficiary != r.Requester {
		b.thread(ctx, &r, r.Beneficiary, text)
	}
}

// Granted tells the beneficiary that access is active, with what the
// connectors had for them alone, in their DM only.
func (b *Bot) Granted(ctx context.Context, r workflow.Request, messages map[string]string) {
	var texts []string
	for _, g := range r.Grants {
		if m := messages[g.ID]; m != "" {
			texts = append(texts, m)
		}
	}
	now := b.cfg.Clock.Now()
	text := fmt.Sprintf("Access to %s is active until %s", line(itemName(b.cfg.Catalogue, r.Item)), r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	for _, blocks := range GrantedMessage(b.cfg.Catalogue, &r, texts, now) {
		b.threadBlocks(ctx, &r, r.Beneficiary, text, blocks)
	}
	if r.Requester != r.Beneficiary {
		b.thread(ctx, &r, r.Requester, fmt.Sprintf("🔓 Access granted to %s until %s.", mention(r.Beneficiary), when(r.ExpiresAt)))
	}
	b.refreshStatus(ctx, r.ID)
}

// ExpiringSoon warns the beneficiary with a new DM, so that it notifies.
func (b *Bot) ExpiringSoon(ctx context.Context, r workflow.Request) {
	text := fmt.Sprintf("Your access to %s ends soon", line(itemName(b.cfg.Catalogue, r.Item)))
	_, _, _ = b.post(ctx, r.Beneficiary, "", text, ExpiringMessage(b.cfg.Catalogue, &r, b.cfg.Clock.Now()))
}

// Ended tells the beneficiary that access is gone.
func (b *Bot) Ended(ctx context.Context, r workflow.Request) {
	how := map[string]string{
		workflow.OutcomeExpired:  "expired and was revoked",
		workflow.OutcomeReleased: "was released and revoked",
		workflow.OutcomeRevoked:  "was revoked",
		workflow.OutcomeRollback: "could not be set up completely and was rolled back",
	}[r.Outcome]
	if how == "" {
		how = "ended"
	}
	text := fmt.Sprintf("🔒 Your access to %s %s.", escape(line(itemName(b.cfg.Catalogue, r.Item))), how)
	if r.Reason != "" && r.Outcome == workflow.OutcomeRevoked {
		text += " Reason: " + escape(r.Reason)
	}
	b.thread(ctx, &r, r.Beneficiary, text)
	if r.Requester != r.Beneficiary {
		b.thread(ctx, &r, r.Requester, fmt.Sprintf("🔒 Access of %s to %s %s.", mention(r.Beneficiary), escape(line(itemName(b.cfg.Catalogue, r.Item))), how))
	}
	b.refreshStatus(ctx, r.ID)
}

// RevokeFailed alerts the security channel, and tells the beneficiary in
// the thread of their request.
func (b *Bot) RevokeFailed(ctx context.Context, r workflow.Request, g workflow.Grant) {
	b.thread(ctx, &r, r.Beneficiary, fmt.Sprintf("⚠️ latch could not take back your access to %s yet (%s); it keeps trying, and the security team is told.",
		escape(line(itemName(b.cfg.Catalogue, r.Item))), escape(g.Target.Connector+":"+g.Target.Entitlement)))
	if b.cfg.SecurityChannel == "" {
		b.log.Error().Str("request", r.ID).Str("grant", g.ID).Msg("revoke failed and no security channel is configured")
		return
	}
	text := fmt.Sprintf("⚠️ *latch could not revoke access* of %s to `%s` (%s) after %d attempts; it keeps retrying.\nLast error: %s\nRequest `%s`, grant `%s`. If the access is gone by other means, record it with `latch revoke --resolve`.",
		mention(r.Beneficiary), escape(g.Target.Connector+":"+g.Target.Entitlement), escape(line(itemName(b.cfg.Catalogue, r.Item))),
		g.RevokeAttempts, escape(clip(line(g.LastError), 500)), r.ID, g.ID)
	_, _, _ = b.post(ctx, b.cfg.SecurityChannel, "", "latch could not revoke access", []slack.Block{section(text)})
}

// TakenBackUnrecorded tells the beneficiary that their access ended, and
// the security channel that it was revoked (at its expiry, or as it was
// ending) while the audit log could not record it.
func (b *Bot) TakenBackUnrecorded(ctx context.Context, r workflow.Request, g workflow.Grant) {
	b.thread(ctx, &r, r.Beneficiary, fmt.Sprintf("🔒 Your access to %s has ended and was taken back.", escape(line(itemName(b.cfg.Catalogue, r.Item)))))
	if b.cfg.SecurityChannel == "" {
		b.log.Error().Str("request", r.ID).Str("grant", g.ID).Msg("access revoked at expiry without a record: the audit log cannot be written")
		return
	}
	text := fmt.Sprintf("🔒 *Access revoked, not yet recorded*: %s's access to `%s` (%s) was taken back, but the audit log cannot be written. latch records it when it runs on a writable store again.\nRequest `%s`, grant `%s`.",
		mention(r.Beneficiary), escape(g.Target.Connector+":"+g.Target.Entitlement), escape(line(itemName(b.cfg.Catalogue, r.Item))), r.ID, g.ID)
	_, _, _ = b.post(ctx, b.cfg.SecurityChannel, "", "access revoked, not yet recorded", []slack.Block{section(text)})
}

// BreakGlass announces an emergency grant where it was asked for and in
// the security channel, where it can be marked reviewed.
func (b *Bot) BreakGlass(ctx context.Context, r workflow.Request) {
	text := fmt.Sprintf("Break-glass: %s took %s", mention(r.Beneficiary), line(itemName(b.cfg.Catalogue, r.Item)))
	if r.Channel != "" && r.Channel != b.cfg.SecurityChannel {
		if channel, ts, err := b.post(ctx, r.Channel, "", text, BreakGlassMessage(b.cfg.Catalogue, &r, false)); err == nil {
			b.record(ctx, r.ID, workflow.Posted{Audience: workflow.AudienceChannel, Channel: channel, Ref: ts})
		}
	}
	if b.cfg.SecurityChannel != "" {
		if channel, ts, err := b.post(ctx, b.cfg.SecurityChannel, "", text, BreakGlassMessage(b.cfg.Catalogue, &r, true)); err == nil {
			b.record(ctx, r.ID, workflow.Posted{Audience: workflow.AudienceChannel, Channel: channel, Ref: ts})
		}
	}
}

// ReviewNeeded reminds the security channel of an unreviewed break-glass
// grant.
func (b *Bot) ReviewNeeded(ctx context.Context, r workflow.Request) {
	if b.cfg.SecurityChannel == "" || r.Reviewed {
		return
	}
	text := fmt.Sprintf("Break-glass by %s needs a review", mention(r.Beneficiary))
	_, _, _ = b.post(ctx, b.cfg.SecurityChannel, "", text, BreakGlassMessage(b.cfg.Catalogue, &r, true))
}

// record notes a posted message on its request so that it can be updated
// later, after a restart too.
func (b *Bot) record(ctx context.Context, requestID string, p workflow.Posted) {
	if _, err := b.engine.RecordPost(ctx, requestID, p); err != nil {
		b.log.Error().Err(err).Str("request", requestID).Msg("record a posted message")
	}
}

// stripe returns the lock that serializes message updates for a request.
func (b *Bot) stripe(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &b.stripes[h.Sum32()%uint32(len(b.stripes))]
}

// refreshCards re-renders every approver's card of a request from its
// latest state. Updates of one request are serialized and always render
// what the store holds now, so an older state never overwrites a newer.
func (b *Bot) refreshCards(ctx context.Context, id string) {
	b.refresh(ctx, id, func(r *workflow.Request, p workflow.Posted) ([]slack.Block, string, bool) {
		if p.Audience != workflow.AudienceApprover {
			return nil, "", false
		}
		return ApprovalCard(b.cfg.Catalogue, r, p.User), cardText(b.cfg.Catalogue, r), true
	})
}

// refreshAnnouncements re-renders a break-glass grant's announcements,
// so that once it is reviewed no copy offers the review any more.
func (b *Bot) refreshAnnouncements(ctx context.Context, id string) {
	b.refresh(ctx, id, func(r *workflow.Request, p workflow.Posted) ([]slack.Block, string, bool) {
		if p.Audience != workflow.AudienceChannel || !r.BreakGlass {
			return nil, "", false
		}
		return BreakGlassMessage(b.cfg.Catalogue, r, p.Channel == b.cfg.SecurityChannel), "Break-glass", true
	})
}

// refreshStatus re-renders the requester's and beneficiary's status
// messages of a request.
func (b *Bot) refreshStatus(ctx context.Context, id string) {
	now := b.cfg.Clock.Now()
	b.refresh(ctx, id, func(r *workflow.Request, p workflow.Posted) ([]slack.Block, string, bool) {
		if p.Audience != workflow.AudienceRequester && p.Audience != workflow.AudienceBeneficiary {
			return nil, "", false
		}
		return StatusMessage(b.cfg.Catalogue, r, p.User, now), cardText(b.cfg.Catalogue, r), true
	})
}

func (b *Bot) refresh(ctx context.Context, id string, render func(*workflow.Request, workflow.Posted) ([]slack.Block, string, bool)) {
	mu := b.stripe(id)
	mu.Lock()
	defer mu.Unlock()
	r, ok, err := b.cfg.Requests.Request(id)
	if err != nil || !ok {
		if err != nil {
			b.log.Error().Err(err).Str("request", id).Msg("load request to update its messages")
		}
		return
	}
	for _, p := range r.Posts {
		blocks, text, ok := render(&r, p)
		if ok {
			b.update(ctx, p.Channel, p.Ref, text, blocks)
		}
	}
}

// thread posts a reply under the person's status message of a request, or
// a new DM if there is none.
func (b *Bot) thread(ctx context.Context, r *workflow.Request, user, text string) {
	b.threadBlocks(ctx, r, user, stripMarkup(text), []slack.Block{section(text)})
}

func (b *Bot) threadBlocks(ctx context.Context, r *workflow.Request, user, text string, blocks []slack.Block) {
	for _, audience := range []string{workflow.AudienceRequester, workflow.AudienceBeneficiary} {
		if p, ok := r.Post(audience, user); ok {
			_, _, _ = b.post(ctx, p.Channel, p.Ref, text, blocks)
			return
		}
	}
	if fresh, ok, err := b.cfg.Requests.Request(r.ID); err == nil && ok && len(fresh.Posts) > len(r.Posts) {
		b.threadBlocks(ctx, &fresh, user, text, blocks)
		return
	}
	_, _, _ = b.post(ctx, user, "", text, blocks)
}

// stripMarkup makes a plain notification text from mrkdwn.
func stripMarkup(s string) string {
	return strings.NewReplacer("*", "", "`", "").Replace(s)
}

// Announce posts a notice of latch's own to the security channel: an audit
// checkpoint, a drift finding. Its title is shown in bold and its text as
// it is, escaped (it may come from a target system). It fails if no
// security channel is set.
func (b *Bot) Announce(ctx context.Context, title, text string) error {
	if b.cfg.SecurityChannel == "" {
		return errors.New("no security channel is configured")
	}
	_, _, err := b.post(ctx, b.cfg.SecurityChannel, "", title, []slack.Block{section("*" + escape(line(title)) + "*\n" + escape(text))})
	return err
}
