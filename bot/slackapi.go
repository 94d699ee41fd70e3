package bot

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// apiAttempts bounds the tries of one Web API call, and maxRetryAfter
// the wait before each when Slack rate limits.
const (
	apiAttempts   = 5
	maxRetryAfter = 30 * time.Second
)

// retry calls fn until it succeeds, waiting as Slack asks on a 429 and
// backing off on a server error; other errors are returned at once.
func (b *Bot) retry(ctx context.Context, method string, fn func() error) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		var wait time.Duration
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case errors.As(err, &rl):
			wait = min(max(rl.RetryAfter, 100*time.Millisecond), maxRetryAfter)
		case errors.As(err, &sc) && sc.Code >= 500:
			wait = backoff
			backoff *= 2
		default:
			b.log.Warn().Err(err).Str("method", method).Msg("slack call failed")
			return err
		}
		if attempt == apiAttempts {
			b.log.Error().Err(err).Str("method", method).Int("attempts", attempt).Msg("slack call failed; giving up")
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// post posts a message to a channel, or to a person's DM with the app when
// channel is a user id, in a thread when threadTS is set. It returns where
// the message is.
func (b *Bot) post(ctx context.Context, channel, threadTS, text string, blocks []slack.Block) (string, string, error) {
	opts := []slack.MsgOption{slack.MsgOptionText(clip(text, 3000), false), slack.MsgOptionBlocks(blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ch, ts string
	err := b.retry(ctx, "chat.postMessage", func() error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ch, ts, err
}

// update replaces a message posted earlier.
func (b *Bot) update(ctx context.Context, channel, ts, text string, blocks []slack.Block) {
	_ = b.retry(ctx, "chat.update", func() error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(clip(text, 3000), false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

// ephemeral shows blocks to one person in a channel; where latch cannot
// post in that channel, it sends them as a DM instead.
func (b *Bot) ephemeral(ctx context.Context, user, channel, text string, blocks []slack.Block) {
	if channel != "" {
		err := b.retry(ctx, "chat.postEphemeral", func() error {
			_, err := b.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(clip(text, 3000), false), slack.MsgOptionBlocks(blocks...))
			return err
		})
		if err == nil {
			return
		}
	}
	_, _, _ = b.post(ctx, user, "", text, blocks)
}

// tell gives a person a short answer where they acted.
func (b *Bot) tell(ctx context.Context, user, channel, text string) {
	b.ephemeral(ctx, user, channel, stripMarkup(text), []slack.Block{section(text)})
}

// openView opens a modal. The trigger is only good for 3 s, so it is not
// retried after a rate limit; the person is told to try again instead.
func (b *Bot) openView(ctx context.Context, triggerID, user, channel string, view slack.ModalViewRequest) {
	_, err := b.api.OpenViewContext(ctx, triggerID, view)
	if err == nil {
		return
	}
	b.log.Warn().Err(err).Str("callback", view.CallbackID).Msg("views.open failed")
	msg := "latch could not open the form. Please try again."
	if strings.Contains(err.Error(), "expired_trigger_id") {
		msg = "Slack took too long to open the form. Please try again."
	}
	b.tell(ctx, user, channel, msg)
}
