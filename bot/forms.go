package bot

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// requestMeta is the private metadata of the request form.
type requestMeta struct {
	Channel string `json:"c,omitempty"` // where /access was typed
	Item    string `json:"i,omitempty"` // the item chosen so far
}

func (m requestMeta) encode() string {
	data, _ := json.Marshal(m)
	return clip(string(data), maxMetadata)
}

func decodeRequestMeta(s string) requestMeta {
	var m requestMeta
	_ = json.Unmarshal([]byte(s), &m) // a bad value leaves an empty form
	return m
}

// formItem is what the request form knows about the chosen item.
type formItem struct {
	Item      workflow.Item
	Policy    *workflow.Policy
	PublicKey bool // a target's connector takes an SSH public key
}

// itemOption is the picker's option for an item.
func itemOption(it workflow.Item) *slack.OptionBlockObject {
	var desc *slack.TextBlockObject
	if d := line(it.Description); d != "" {
		desc = plain(d, maxOptionText)
	}
	return slack.NewOptionBlockObject(it.ID, plain(line(it.Name)+" ("+it.ID+")", maxOptionText), desc)
}

// durationOption is the option for a duration.
func durationOption(d time.Duration) *slack.OptionBlockObject {
	s := workflow.FormatDuration(d)
	return slack.NewOptionBlockObject(s, plain(s, maxOptionText), nil)
}

// durationChoices are the durations the form offers under p.
func durationChoices(p *workflow.Policy) []time.Duration {
	if len(p.Duration.Choices) > 0 {
		return p.Duration.Choices
	}
	return workflow.DeriveChoices(p.Duration.Min, p.Duration.Default, p.Duration.Max)
}

// RequestForm renders the request modal. Without an item it shows only the
// picker; once an item is chosen it asks for what that item's policy
// needs.
func RequestForm(meta requestMeta, fi *formItem) slack.ModalViewRequest {
	minQuery := 0
	picker := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Search by name, id or label", 150), actionItem)
	picker.MinQueryLength = &minQuery
	blocks := []slack.Block{}
	if fi != nil {
		picker.InitialOption = itemOption(fi.Item)
	}
	itemInput := slack.NewInputBlock(inputItem, plain("What do you need access to?", 2000), nil, picker)
	itemInput.DispatchAction = true
	blocks = append(blocks, itemInput)

	if fi == nil {
		blocks = append(blocks, contextText("Choose an item to see how long you can have it and who approves it."))
	} else {
		p, it := fi.Policy, fi.Item
		about := escape(line(it.Description))
		if about != "" {
			about += "\n"
		}
		about += "Targets: " + targetsText(it.Targets) + "\n" + approvalSummary(p)
		blocks = append(blocks, contextText(about))

		choices := durationChoices(p)
		options := make([]*slack.OptionBlockObject, 0, min(len(choices), maxOptions))
		for _, d := range choices[:min(len(choices), maxOptions)] {
			options = append(options, durationOption(d))
		}
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose a duration", 150), inputDuration, options...)
		if i := slices.Index(choices, p.Duration.Default); i >= 0 && i < len(options) {
			sel.InitialOption = options[i]
		}
		blocks = append(blocks, slack.NewInputBlock(inputDuration, plain("For how long?", 2000),
			plain(fmt.Sprintf("Between %s and %s.", workflow.FormatDuration(p.Duration.Min), workflow.FormatDuration(p.Duration.Max)), 2000), sel))

		why := slack.NewPlainTextInputBlockElement(plain("What will you do, and why now?", 150), inputJustification)
		why.Multiline = true
		why.MaxLength = 3000
		hint := "Approvers see this."
		if p.JustificationMinLength > 0 {
			hint = fmt.Sprintf("At least %d characters. Approvers see this.", p.JustificationMinLength)
		}
		blocks = append(blocks, slack.NewInputBlock(inputJustification, plain("Why do you need it?", 2000), plain(hint, 2000), why))

		if p.OnBehalf.Allowed {
			who := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Yourself", 150), inputBeneficiary)
			in := slack.NewInputBlock(inputBeneficiary, plain("Who is it for?", 2000), plain("Leave empty to request it for yourself.", 2000), who)
			in.Optional = true
			blocks = append(blocks, in)
		}
		if fi.PublicKey {
			key := slack.NewPlainTextInputBlockElement(plain("ssh-ed25519 AAAA… you@laptop", 150), inputPublicKey)
			key.MaxLength = 3000
			in := slack.NewInputBlock(inputPublicKey, plain("Your SSH public key", 2000),
				plain("The contents of your .pub file; the certificate is issued for this key. Leave empty to use the key you registered.", 2000), key)
			in.Optional = true
			blocks = append(blocks, in)
		}
		ticket := slack.NewPlainTextInputBlockElement(plain("e.g. INC-1234 or a link", 150), inputTicket)
		ticket.MaxLength = 200
		in := slack.NewInputBlock(inputTicket, plain("Ticket or incident reference", 2000), nil, ticket)
		in.Optional = true
		blocks = append(blocks, in)
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Request access", maxModalTitle),
		Submit:          plain("Request", maxModalTitle),
		Close:           plain("Cancel", maxModalTitle),
		CallbackID:      callbackRequest,
		PrivateMetadata: meta.encode(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// approvalSummary says who approves under a policy, in words.
func approvalSummary(p *workflow.Policy) string {
	if len(p.Approval.Stages) == 0 {
		return "No approval needed."
	}
	parts := make([]string, 0, len(p.Approval.Stages))
	for i, st := range p.Approval.Stages {
		names := make([]string, 0, len(st.Approvers))
		for _, a := range st.Approvers {
			names = append(names, approverText(a))
		}
		parts = append(parts, fmt.Sprintf("%d. %d of %s", i+1, max(st.Required, 1), strings.Join(names, ", ")))
	}
	how := "in order"
	if p.Approval.Mode == workflow.Parallel {
		how = "at the same time"
	}
	return "Approval, " + how + ": " + strings.Join(parts, "; ")
}

func approverText(a workflow.Approver) string {
	switch a.Kind {
	case workflow.ApproverUser:
		return mention(a.Ref)
	case workflow.ApproverManager:
		return "your manager"
	case workflow.ApproverOwners:
		return "the item's owners"
	case workflow.ApproverUserGroup:
		return "@" + escape(a.Ref)
	}
	return "group " + escape(a.Ref)
}

// DenyForm asks an approver why they deny a request.
func DenyForm(cat *workflow.Catalogue, r *workflow.Request) slack.ModalViewRequest {
	reason := slack.NewPlainTextInputBlockElement(plain("The requester sees this", 150), inputReason)
	reason.Multiline = true
	reason.MaxLength = 1000
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Deny request", maxModalTitle),
		Submit:          plain("Deny", maxModalTitle),
		Close:           plain("Back", maxModalTitle),
		CallbackID:      callbackDeny,
		PrivateMetadata: r.ID,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(cardText(cat, r)),
			slack.NewInputBlock(inputReason, plain("Why are you denying it?", 2000), nil, reason),
		}},
	}
}

// ExtendForm asks how much longer the beneficiary needs access.
func ExtendForm(cat *workflow.Catalogue, r *workflow.Request, p *workflow.Policy, now time.Time) slack.ModalViewRequest {
	limit := p.Extension.MaxTotal
	if limit <= 0 {
		limit = p.Duration.Max
	}
	room := max(limit-r.ExpiresAt.Sub(r.DecidedAt), 0)
	var options []*slack.OptionBlockObject
	for _, d := range durationChoices(p) {
		if d <= room && len(options) < maxOptions {
			options = append(options, durationOption(d))
		}
	}
	if len(options) == 0 && room >= time.Minute {
		options = append(options, durationOption(room.Truncate(time.Minute)))
	}
	blocks := []slack.Block{
		section(fmt.Sprintf("Your access to *%s* ends %s (%s).", escape(line(itemName(cat, r.Item))), when(r.ExpiresAt), left(now, r.ExpiresAt))),
	}
	view := slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Extend access", maxModalTitle),
		Close:           plain("Cancel", maxModalTitle),
		CallbackID:      callbackExtend,
		PrivateMetadata: r.ID,
	}
	if len(options) == 0 {
		blocks = append(blocks, section(fmt.Sprintf("It cannot be extended: it may last %s in all. Request it again with `/access` when it ends.", workflow.FormatDuration(limit))))
		view.Blocks = slack.Blocks{BlockSet: blocks}
		return view
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose", 150), inputDuration, options...)
	sel.InitialOption = options[0]
	blocks = append(blocks, slack.NewInputBlock(inputDuration, plain("Extend by", 2000),
		plain(fmt.Sprintf("Up to %s more.", workflow.FormatDuration(room)), 2000), sel))
	if p.Extension.RequiresApproval {
		why := slack.NewPlainTextInputBlockElement(plain("What is left to do?", 150), inputJustification)
		why.Multiline = true
		why.MaxLength = 2000
		blocks = append(blocks, slack.NewInputBlock(inputJustification, plain("Why do you need longer?", 2000),
			plain("An extension of this access is approved like a new request.", 2000), why))
	}
	view.Submit = plain("Extend", maxModalTitle)
	view.Blocks = slack.Blocks{BlockSet: blocks}
	return view
}
