package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// Action ids of the buttons and inputs latch renders. A click carries the
// request id (or, for actionRequestItem, the item id) as its value; the
// engine decides whether the person clicking may do what they ask.
const (
	actionApprove     = "approve"
	actionDeny        = "deny"
	actionRelease     = "release"
	actionExtend      = "extend"
	actionCancel      = "cancel"
	actionReview      = "review"
	actionRequestItem = "request_item"
	actionItem        = "item" // the item picker of the request form
)

// Callback ids of the modals.
const (
	callbackRequest = "request"
	callbackDeny    = "deny"
	callbackExtend  = "extend"
)

// Inputs of the modals, by block id; each input's action id is the same.
const (
	inputItem          = "item"
	inputDuration      = "duration"
	inputJustification = "justification"
	inputBeneficiary   = "beneficiary"
	inputTicket        = "ticket"
	inputPublicKey     = "public_key"
	inputReason        = "reason"
)

// maxListed bounds each list in a message or view, keeping it within
// Slack's block limits.
const maxListed = 10

// itemName returns the display name of an item, or its id if the
// catalogue no longer has it.
func itemName(cat *workflow.Catalogue, id string) string {
	if it, ok := cat.Item(id); ok && it.Name != "" {
		return it.Name
	}
	return id
}

// targetsText lists an item's targets as connector:entitlement.
func targetsText(targets []workflow.Target) string {
	parts := make([]string, 0, len(targets))
	for _, t := range targets {
		parts = append(parts, "`"+escape(line(t.Connector+":"+t.Entitlement))+"`")
	}
	return strings.Join(parts, ", ")
}

// openStages returns the stages of a pending request that are asking for
// approvals now.
func openStages(r *workflow.Request) []int {
	if r.State != workflow.RequestPending {
		return nil
	}
	var open []int
	for i, st := range r.Stages {
		if st.Done {
			continue
		}
		if r.Mode == workflow.Parallel || i == r.Stage {
			open = append(open, i)
		}
	}
	return open
}

// mayDecide reports whether approver can still vote on r, as the engine
// decides it: the first open stage that has them as an approver takes
// their vote, unless they have voted in an open stage before it.
func mayDecide(r *workflow.Request, approver string) bool {
	for _, i := range openStages(r) {
		st := r.Stages[i]
		if slices.Contains(st.Approvals, approver) {
			return false
		}
		if slices.Contains(st.Approvers, approver) {
			return true
		}
	}
	return false
}

// stageOf returns the index of the first open stage approver is in, or of
// the first stage they are in at all.
func stageOf(r *workflow.Request, approver string) int {
	for _, i := range openStages(r) {
		if slices.Contains(r.Stages[i].Approvers, approver) {
			return i
		}
	}
	for i, st := range r.Stages {
		if slices.Contains(st.Approvers, approver) {
			return i
		}
	}
	return -1
}

// requestFields are the facts of a request an approver needs.
func requestFields(cat *workflow.Catalogue, r *workflow.Request) []*slack.TextBlockObject {
	field := func(name, value string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, clip("*"+name+"*\n"+value, maxFieldText), false, true)
	}
	fields := []*slack.TextBlockObject{
		field("Requested by", mention(r.Requester)),
	}
	if r.Beneficiary != r.Requester {
		fields = append(fields, field("For", mention(r.Beneficiary)))
	}
	fields = append(fields,
		field("Item", escape(line(itemName(cat, r.Item)))+" (`"+escape(r.Item)+"`)"),
		field("Targets", targetsText(r.Targets)),
		field("Duration", workflow.FormatDuration(r.Duration)),
	)
	if r.Ticket != "" {
		fields = append(fields, field("Ticket", escape(line(r.Ticket))))
	}
	return fields
}

// justification quotes a request's justification, made harmless.
func justification(r *workflow.Request) string {
	text := escape(r.Justification)
	return "*Justification*\n>" + strings.ReplaceAll(text, "\n", "\n>")
}

// approvalsText says how far each stage has got.
func approvalsText(r *workflow.Request) string {
	var b strings.Builder
	for i, st := range r.Stages {
		if i > 0 {
			b.WriteString("\n")
		}
		mark := "⏳"
		if st.Done {
			mark = "✅"
		}
		fmt.Fprintf(&b, "%s Stage %d of %d", mark, i+1, len(r.Stages))
		if st.Name != "" {
			fmt.Fprintf(&b, " (%s)", escape(line(st.Name)))
		}
		fmt.Fprintf(&b, ": %d of %d approvals", len(st.Approvals), st.Required)
		if len(st.Approvals) > 0 {
			b.WriteString(" from " + mentions(st.Approvals))
		}
		if st.Reminders > 0 {
			fmt.Fprintf(&b, " · reminded %d×", st.Reminders)
		}
		if st.Escalated {
			b.WriteString(" · escalated to fallback approvers")
		}
	}
	return b.String()
}

// outcomeText says how a decided request was decided.
func outcomeText(r *workflow.Request) string {
	by := mention(r.DecidedBy)
	byPolicy := r.DecidedBy == "" || r.DecidedBy == workflow.ActorLatch
	switch r.State {
	case workflow.RequestPending:
		return ""
	case workflow.RequestRejected:
		if byPolicy {
			return "❌ *Rejected by policy*: " + escape(r.Reason)
		}
		return "❌ *Denied* by " + by + ": " + escape(r.Reason)
	case workflow.RequestCancelled:
		return "🚫 *Cancelled* by " + mention(r.Requester)
	case workflow.RequestTimedOut:
		return "⌛ *Timed out*: nobody decided in time"
	}
	if byPolicy {
		return "✅ *Approved by policy*"
	}
	return "✅ *Approved* by " + by + " " + when(r.DecidedAt)
}

// ApprovalCard renders the card an approver gets in a DM. While the
// approver can still vote it carries Approve and Deny; once the request is
// decided it says how and by whom, with no buttons.
func ApprovalCard(cat *workflow.Catalogue, r *workflow.Request, approver string) []slack.Block {
	stage := stageOf(r, approver)
	title := "Access request: " + line(itemName(cat, r.Item))
	blocks := []slack.Block{
		header(title),
		slack.NewSectionBlock(nil, requestFields(cat, r), nil),
		section(justification(r)),
	}
	progress := approvalsText(r)
	if len(r.Stages) > 0 && stage >= 0 {
		progress = fmt.Sprintf("You are asked in stage %d of %d.\n%s", stage+1, len(r.Stages), progress)
	}
	blocks = append(blocks, contextText(progress+"\nRequest `"+r.ID+"`"))
	if mayDecide(r, approver) {
		blocks = append(blocks, slack.NewActionBlock("decide",
			button("Approve", actionApprove, r.ID, "primary"),
			button("Deny", actionDeny, r.ID, "danger"),
		))
	} else if out := outcomeText(r); out != "" {
		blocks = append(blocks, section(out))
	} else if stage >= 0 && slices.Contains(r.Stages[stage].Approvals, approver) {
		blocks = append(blocks, section("You approved. Waiting for the other approvals."))
	}
	return blocks
}

// cardText is the notification text of an approval card.
func cardText(cat *workflow.Catalogue, r *workflow.Request) string {
	return fmt.Sprintf("%s asks for %s for %s", mention(r.Requester), escape(line(itemName(cat, r.Item))), workflow.FormatDuration(r.Duration))
}

// StatusMessage renders the requester's (or the beneficiary's) message
// about their request, which is updated as the request moves on; the
// details go in its thread.
func StatusMessage(cat *workflow.Catalogue, r *workflow.Request, user string, now time.Time) []slack.Block {
	name := escape(line(itemName(cat, r.Item)))
	var status string
	switch r.State {
	case workflow.RequestPending:
		status = "⏳ Waiting for approval.\n" + approvalsText(r)
	case workflow.RequestProvisioning:
		status = "⚙️ Approved; access is being set up."
	case workflow.RequestActive:
		status = "🔓 *Active* until " + when(r.ExpiresAt) + " (" + left(now, r.ExpiresAt) + ")."
	case workflow.RequestRevoking:
		status = "⚙️ Access is being taken back."
	case workflow.RequestEnded:
		status = "🔒 *Ended* (" + escape(r.Outcome) + ") " + when(r.EndedAt) + "."
	case workflow.RequestFailed:
		status = "⚠️ *Failed*: access could not be set up, and what was set up was taken back. " + escape(r.Reason)
	default:
		status = outcomeText(r)
	}
	title := "*Your request for " + name + "*"
	switch {
	case user != r.Requester:
		title = mention(r.Requester) + " requested *" + name + "* for you"
	case r.Beneficiary != r.Requester:
		title += " for " + mention(r.Beneficiary)
	}
	blocks := []slack.Block{
		section(fmt.Sprintf("%s, %s\n%s", title, workflow.FormatDuration(r.Duration), status)),
		contextText("Request `" + r.ID + "`"),
	}
	switch {
	case r.State == workflow.RequestPending && user == r.Requester:
		blocks = append(blocks, slack.NewActionBlock("status", button("Cancel request", actionCancel, r.ID, "")))
	case r.State != workflow.RequestActive || user != r.Beneficiary:
	case !r.BreakGlass:
		blocks = append(blocks, slack.NewActionBlock("status",
			button("Extend", actionExtend, r.ID, ""),
			button("Release", actionRelease, r.ID, "danger"),
		))
	default:
		blocks = append(blocks, slack.NewActionBlock("status", button("Release", actionRelease, r.ID, "danger")))
	}
	return blocks
}

// GrantedMessage renders the beneficiary's notice that access is active,
// with what the connectors had for them alone, as one or more messages:
// long connector output (a certificate, a kubeconfig) is split over
// sections, never cut, and over further messages past Slack's block limit.
func GrantedMessage(cat *workflow.Catalogue, r *workflow.Request, messages []string, now time.Time) [][]slack.Block {
	first := []slack.Block{
		section(fmt.Sprintf("🔓 *Access to %s is active* until %s (%s).", escape(line(itemName(cat, r.Item))), when(r.ExpiresAt), left(now, r.ExpiresAt))),
	}
	var parts []slack.Block
	for _, m := range messages {
		for _, chunk := range escapedChunks(m, maxSectionText-8) {
			// Connector output can hold credentials: only this DM shows it.
			parts = append(parts, section("```"+chunk+"```"))
		}
	}
	buttons := []slack.BlockElement{button("Release", actionRelease, r.ID, "danger")}
	if !r.BreakGlass {
		buttons = append([]slack.BlockElement{button("Extend", actionExtend, r.ID, "")}, buttons...)
	}
	const room = maxMessageBlock - 2
	n := min(len(parts), room)
	out := [][]slack.Block{append(append(first, parts[:n]...), slack.NewActionBlock("granted", buttons...))}
	for parts = parts[n:]; len(parts) > 0; parts = parts[min(len(parts), room):] {
		out = append(out, parts[:min(len(parts), room)])
	}
	return out
}

// escapedChunks escapes s for mrkdwn and splits it into pieces of at most
// n bytes, preferring to break after a newline.
func escapedChunks(s string, n int) []string {
	e := escape(s)
	var out []string
	for len(e) > n {
		cut := strings.LastIndexByte(e[:n], '\n') + 1
		if cut <= 0 {
			cut = n
			for cut > 0 && !utf8.RuneStart(e[cut]) {
				cut--
			}
			// Do not cut an entity (&amp; &lt; &gt;) in half.
			if i := strings.LastIndexByte(e[:cut], '&'); i >= 0 && i > cut-5 && !strings.Contains(e[i:cut], ";") {
				cut = i
			}
		}
		out = append(out, e[:cut])
		e = e[cut:]
	}
	if e != "" {
		out = append(out, e)
	}
	return out
}

// ExpiringMessage warns the beneficiary that access ends soon.
func ExpiringMessage(cat *workflow.Catalogue, r *workflow.Request, now time.Time) []slack.Block {
	blocks := []slack.Block{
		section(fmt.Sprintf("⏰ *Your access to %s ends %s* (%s).", escape(line(itemName(cat, r.Item))), when(r.ExpiresAt), left(now, r.ExpiresAt))),
	}
	buttons := []slack.BlockElement{button("Release", actionRelease, r.ID, "danger")}
	if !r.BreakGlass {
		buttons = append([]slack.BlockElement{button("Extend", actionExtend, r.ID, "primary")}, buttons...)
	}
	return append(blocks, slack.NewActionBlock("expiring", buttons...))
}

// SearchResults renders the ephemeral answer to /access <words>.
func SearchResults(query string, items []workflow.Item, total int) []slack.Block {
	if len(items) == 0 {
		return []slack.Block{section(fmt.Sprintf("Nothing you can request matches “%s”. Try other words, or `/access` to browse.", escape(line(query))))}
	}
	total = max(total, len(items))
	blocks := []slack.Block{section(fmt.Sprintf("*%d result(s) for “%s”*", total, escape(line(query))))}
	for i, it := range items {
		if i == maxListed {
			break
		}
		text := "*" + escape(line(it.Name)) + "* (`" + escape(it.ID) + "`)"
		if it.Description != "" {
			text += "\n" + escape(line(it.Description))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil,
			slack.NewAccessory(button("Request", actionRequestItem, it.ID, "primary"))))
	}
	if more := total - min(len(items), maxListed); more > 0 {
		blocks = append(blocks, contextText(fmt.Sprintf("%d more; be more specific to see them.", more)))
	}
	return blocks
}

// ListMessage renders /access list: the person's active grants and their
// pending requests.
func ListMessage(cat *workflow.Catalogue, user string, active, pending []workflow.Request, now time.Time) []slack.Block {
	if len(active) == 0 && len(pending) == 0 {
		return []slack.Block{section("You have no active access and no pending requests. Use `/access` to request something.")}
	}
	var blocks []slack.Block
	blocks = append(blocks, grantBlocks(cat, active, now, "*Your active access*")...)
	blocks = append(blocks, pendingBlocks(cat, user, pending, "*Your pending requests*")...)
	return blocks
}

func grantBlocks(cat *workflow.Catalogue, active []workflow.Request, now time.Time, title string) []slack.Block {
	if len(active) == 0 {
		return nil
	}
	blocks := []slack.Block{section(title)}
	for i, r := range active {
		if i == maxListed {
			blocks = append(blocks, contextText(fmt.Sprintf("and %d more", len(active)-maxListed)))
			break
		}
		buttons := []slack.BlockElement{button("Release", actionRelease, r.ID, "danger")}
		if !r.BreakGlass {
			buttons = append([]slack.BlockElement{button("Extend", actionExtend, r.ID, "")}, buttons...)
		}
		blocks = append(blocks,
			section(fmt.Sprintf("🔓 *%s* until %s (%s)", escape(line(itemName(cat, r.Item))), when(r.ExpiresAt), left(now, r.ExpiresAt))),
			slack.NewActionBlock("", buttons...))
	}
	return blocks
}

func pendingBlocks(cat *workflow.Catalogue, user string, pending []workflow.Request, title string) []slack.Block {
	if len(pending) == 0 {
		return nil
	}
	blocks := []slack.Block{section(title)}
	for i, r := range pending {
		if i == maxListed {
			blocks = append(blocks, contextText(fmt.Sprintf("and %d more", len(pending)-maxListed)))
			break
		}
		text := mrkdwn(fmt.Sprintf("⏳ *%s* for %s\n%s", escape(line(itemName(cat, r.Item))), workflow.FormatDuration(r.Duration), approvalsText(&r)))
		if r.Requester != user {
			// Requested for them by someone else, who alone may cancel it.
			text = mrkdwn(fmt.Sprintf("⏳ *%s* for %s, requested for you by %s\n%s", escape(line(itemName(cat, r.Item))),
				workflow.FormatDuration(r.Duration), mention(r.Requester), approvalsText(&r)))
			blocks = append(blocks, slack.NewSectionBlock(text, nil, nil))
			continue
		}
		blocks = append(blocks, slack.NewSectionBlock(text, nil, slack.NewAccessory(button("Cancel request", actionCancel, r.ID, ""))))
	}
	return blocks
}

// HomeView renders App Home: the person's access, their pending requests,
// what waits for their approval and, for admins, the latest active grants.
func HomeView(cat *workflow.Catalogue, user string, active, pending, toApprove, all []workflow.Request, allCount int, admin bool, now time.Time) slack.HomeTabViewRequest {
	blocks := []slack.Block{header("Your access")}
	if len(active) == 0 && len(pending) == 0 {
		blocks = append(blocks, section("You have no active access and no pending requests. Type `/access` in any channel to request something."))
	}
	blocks = append(blocks, grantBlocks(cat, active, now, "*Active*")...)
	blocks = append(blocks, pendingBlocks(cat, user, pending, "*Pending*")...)
	blocks = append(blocks, slack.NewDividerBlock(), header("Waiting for your approval"))
	if len(toApprove) == 0 {
		blocks = append(blocks, section("Nothing waits for you."))
	}
	for i, r := range toApprove {
		if i == maxListed {
			blocks = append(blocks, contextText(fmt.Sprintf("and %d more in your DMs", len(toApprove)-maxListed)))
			break
		}
		blocks = append(blocks,
			section(fmt.Sprintf("%s asks for *%s* for %s\n%s", mention(r.Requester), escape(line(itemName(cat, r.Item))),
				workflow.FormatDuration(r.Duration), clip(justification(&r), 500))),
			slack.NewActionBlock("", button("Approve", actionApprove, r.ID, "primary"), button("Deny", actionDeny, r.ID, "danger")))
	}
	if admin {
		blocks = append(blocks, slack.NewDividerBlock(), header("Active grants (admin)"))
		if len(all) == 0 {
			blocks = append(blocks, section("No access is active."))
		}
		for i, r := range all {
			if i == 2*maxListed {
				break
			}
			blocks = append(blocks, section(fmt.Sprintf("%s has *%s* until %s", mention(r.Beneficiary), escape(line(itemName(cat, r.Item))), when(r.ExpiresAt))))
		}
		if more := allCount - min(len(all), 2*maxListed); more > 0 {
			blocks = append(blocks, contextText(fmt.Sprintf("and %d more; see `latch grants --active`", more)))
		}
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// HelpText explains /access.
const HelpText = "*/access* — request temporary access\n" +
	"• `/access` opens the request form\n" +
	"• `/access <words>` searches what you can request\n" +
	"• `/access list` shows your active access and pending requests\n" +
	"• `/access breakglass <item> <reason>` grants emergency access at once, from an incident channel, for on-call engineers; it is announced and reviewed\n" +
	"• `/access help` shows this"

// BreakGlassMessage announces an emergency grant.
func BreakGlassMessage(cat *workflow.Catalogue, r *workflow.Request, review bool) []slack.Block {
	blocks := []slack.Block{
		section(fmt.Sprintf("🚨 *Break-glass*: %s took *%s* for %s without approval.\n*Reason*\n>%s",
			mention(r.Beneficiary), escape(line(itemName(cat, r.Item))), workflow.FormatDuration(r.Duration),
			strings.ReplaceAll(escape(r.Justification), "\n", "\n>"))),
		contextText("Request `" + r.ID + "` · targets " + targetsText(r.Targets)),
	}
	if review && !r.Reviewed {
		blocks = append(blocks, slack.NewActionBlock("review", button("Mark reviewed", actionReview, r.ID, "primary")))
	}
	if r.Reviewed {
		blocks = append(blocks, section("✅ Reviewed"))
	}
	return blocks
}
