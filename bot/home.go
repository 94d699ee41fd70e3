package bot

import (
	"cmp"
	"context"
	"slices"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/latchhq/latch/workflow"
)

// onEvent handles Events API envelopes: App Home opened.
func (b *Bot) onEvent(ev slackevents.EventsAPIEvent) afterAck {
	e, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || e.Tab != "home" {
		return nil
	}
	return func(ctx context.Context) { b.publishHome(ctx, e.User) }
}

// adminListed bounds the grants listed for admins.
const adminListed = 2*maxListed + 1

// publishHome renders and publishes a person's App Home.
func (b *Bot) publishHome(ctx context.Context, user string) {
	active, pending, err := b.mine(user)
	if err != nil {
		b.log.Error().Err(err).Msg("home: read requests")
		return
	}
	var waiting, latest []workflow.Summary
	admin := b.isAdmin(user)
	err = b.cfg.Requests.OpenSummaries(func(s workflow.Summary) error {
		switch s.State {
		case workflow.RequestPending:
			waiting = append(waiting, s)
		case workflow.RequestActive:
			if admin {
				latest = append(latest, s)
			}
		}
		return nil
	})
	if err != nil {
		b.log.Error().Err(err).Msg("home: read open requests")
		return
	}
	var toApprove []workflow.Request
	for _, s := range waiting {
		r, ok, err := b.cfg.Requests.Request(s.ID)
		if err == nil && ok && mayDecide(&r, user) {
			toApprove = append(toApprove, r)
		}
	}
	slices.SortFunc(latest, func(a, b workflow.Summary) int {
		return cmp.Compare(b.SubmittedAt.UnixNano(), a.SubmittedAt.UnixNano())
	})
	var all []workflow.Request
	for _, s := range latest[:min(len(latest), adminListed)] {
		if r, ok, err := b.cfg.Requests.Request(s.ID); err == nil && ok {
			all = append(all, r)
		}
	}
	view := HomeView(b.cfg.Catalogue, user, active, pending, toApprove, all, len(latest), admin, b.cfg.Clock.Now())
	_ = b.retry(ctx, "views.publish", func() error {
		_, err := b.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
}
