package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// CommandKind is what /access was asked to do.
type CommandKind int

// The kinds of /access command.
const (
	CommandForm       CommandKind = iota // no words: open the request form
	CommandSearch                        // words: search the catalogue
	CommandList                          // list: my access and requests
	CommandBreakGlass                    // breakglass <item> <reason>
	CommandHelp                          // help, or a command used wrongly
)

// Command is the parsed text of /access.
type Command struct {
	Kind   CommandKind
	Words  string // the search, for CommandSearch
	Item   string // for CommandBreakGlass
	Reason string // for CommandBreakGlass
	// Problem says what was wrong, for CommandHelp given after a mistake.
	Problem string
}

// maxSearch bounds what is searched for.
const maxSearch = 200

// ParseCommand parses the text after /access.
func ParseCommand(text string) Command {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{Kind: CommandForm}
	}
	switch strings.ToLower(fields[0]) {
	case "help", "-h", "--help", "?":
		return Command{Kind: CommandHelp}
	case "list", "ls", "mine":
		if len(fields) > 1 {
			return Command{Kind: CommandHelp, Problem: "`/access list` takes no more words."}
		}
		return Command{Kind: CommandList}
	case "breakglass", "break-glass":
		if len(fields) < 3 {
			return Command{Kind: CommandHelp, Problem: "Break-glass needs the item and a reason: `/access breakglass <item> <reason>`."}
		}
		rest := strings.TrimSpace(text)
		rest = strings.TrimSpace(rest[len(fields[0]):])
		rest = strings.TrimSpace(rest[len(fields[1]):])
		return Command{Kind: CommandBreakGlass, Item: fields[1], Reason: rest}
	}
	words := strings.Join(fields, " ")
	if len([]rune(words)) > maxSearch {
		words = string([]rune(words)[:maxSearch])
	}
	return Command{Kind: CommandSearch, Words: words}
}

// onSlash handles /access. Everything happens after the ack: opening the
// form needs the trigger within 3 s, which it has.
func (b *Bot) onSlash(cmd slack.SlashCommand) afterAck {
	c := ParseCommand(cmd.Text)
	user, channel := cmd.UserID, cmd.ChannelID
	switch c.Kind {
	case CommandForm:
		return func(ctx context.Context) {
			b.openView(ctx, cmd.TriggerID, user, channel, RequestForm(requestMeta{Channel: channel}, nil))
		}
	case CommandSearch:
		return func(ctx context.Context) {
			u, err := b.person(ctx, user)
			if err != nil {
				b.tell(ctx, user, channel, "latch does not know you yet, so it cannot show you the catalogue. Ask your security team to add you.")
				return
			}
			items := b.index.Search(c.Words, maxOptions, b.visibleTo(ctx, u))
			b.ephemeral(ctx, user, channel, "Search results", SearchResults(c.Words, items, len(items)))
		}
	case CommandList:
		return func(ctx context.Context) {
			active, pending, err := b.mine(user)
			if err != nil {
				b.log.Error().Err(err).Msg("list requests")
				b.tell(ctx, user, channel, "latch could not read your requests just now; try again in a minute.")
				return
			}
			b.ephemeral(ctx, user, channel, "Your access", ListMessage(b.cfg.Catalogue, user, active, pending, b.cfg.Clock.Now()))
		}
	case CommandBreakGlass:
		return func(ctx context.Context) {
			r, err := b.engine.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: user, Item: c.Item, Reason: c.Reason, Channel: channel})
			if err != nil {
				b.tell(ctx, user, channel, b.refusal("Break-glass refused", err))
				return
			}
			b.tell(ctx, user, channel, fmt.Sprintf("🚨 Break-glass access to *%s* is being set up for %s. It is announced to the security team and will be reviewed.",
				escape(line(itemName(b.cfg.Catalogue, r.Item))), workflow.FormatDuration(r.Duration)))
		}
	}
	text := HelpText
	if c.Problem != "" {
		text = c.Problem + "\n\n" + HelpText
	}
	return func(ctx context.Context) { b.tell(ctx, user, channel, text) }
}

// mine returns a person's active grants and their pending requests.
func (b *Bot) mine(user string) (active, pending []workflow.Request, err error) {
	err = b.cfg.Requests.RequestsOf(user, func(r workflow.Request) error {
		switch {
		case r.State == workflow.RequestActive && r.Beneficiary == user:
			active = append(active, r)
		case r.State == workflow.RequestPending && (r.Requester == user || r.Beneficiary == user):
			pending = append(pending, r)
		}
		return nil
	})
	return active, pending, err
}

// unrecordedText tells a person that latch takes no new work while its
// audit log cannot be written. (The first command to hit the failure may
// still turn out recorded once latch is back, so it promises nothing.)
const unrecordedText = "latch cannot write its audit log right now, so it could not record this and is taking no new requests or decisions until that is fixed. Your security team has been alerted; check again once latch is back."

// refusal turns an engine error into words for the person: a refusal says
// why and what to do; anything else is latch's fault and is logged.
func (b *Bot) refusal(what string, err error) string {
	if workflow.RefusalOf(err) != "" {
		return what + ": " + escape(err.Error())
	}
	if errors.Is(err, workflow.ErrUnrecorded) {
		return what + ": " + unrecordedText
	}
	b.log.Error().Err(err).Msg(what)
	return what + ": latch could not do that just now (the error is logged). Try again in a minute."
}
