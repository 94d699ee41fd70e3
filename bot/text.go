package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// Slack's Block Kit limits, in characters.
const (
	maxSectionText  = 3000
	maxHeaderText   = 150
	maxButtonText   = 75
	maxButtonValue  = 2000
	maxOptionText   = 75
	maxOptionValue  = 150
	maxModalTitle   = 24
	maxMetadata     = 3000
	maxOptions      = 100
	maxMessageBlock = 50
	maxContextText  = 2000
	maxFieldText    = 2000
)

// escape makes text from people safe to show in mrkdwn: it cannot mention
// anyone (<@U123>), ping a channel (<!channel>) or forge a link, because
// Slack only reads those between angle brackets.
func escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// clip shortens s to at most n characters, ending it with an ellipsis when
// it had to cut. It never cuts an escape sequence such as &amp; in half.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)[:n-1]
	// Do not leave half an entity (&amp; &lt; &gt;) at the end.
	if i := strings.LastIndexByte(string(runes), '&'); i >= 0 && !strings.Contains(string(runes)[i:], ";") {
		runes = []rune(string(runes)[:i])
	}
	return string(runes) + "…"
}

// line collapses whitespace so that text from people stays on one line.
func line(s string) string { return strings.Join(strings.Fields(s), " ") }

func plain(s string, n int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, clip(s, n), false, false)
}

// mrkdwn is a formatted text object. It is verbatim, so Slack does not
// parse bare names, channels or @here in it: only the mentions latch
// writes itself (<@U…>) become mentions.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(s, maxSectionText), false, true)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(s), nil, nil)
}

func contextText(s string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, clip(s, maxContextText), false, true))
}

func header(s string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plain(s, maxHeaderText))
}

func button(text, actionID, value, style string) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, clip(value, maxButtonValue), plain(text, maxButtonText))
	if style != "" {
		b.Style = slack.Style(style)
	}
	return b
}

// mention names a person by Slack id, which Slack renders as their name.
func mention(id string) string {
	if id == "" {
		return "nobody"
	}
	return "<@" + id + ">"
}

// mentions names several people.
func mentions(ids []string) string {
	if len(ids) == 0 {
		return "nobody"
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = mention(id)
	}
	return strings.Join(out, ", ")
}

// when shows a time in each reader's own time zone, with UTC as the
// fallback for clients that cannot.
func when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// left says how long until t, rounded for people.
func left(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return "under a minute left"
	}
	return workflow.FormatDuration(d.Round(time.Minute)) + " left"
}
