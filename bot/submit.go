package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// formValues reads the values of a submitted view by input block id.
type formValues map[string]map[string]slack.BlockAction

func (v formValues) text(block string) string {
	a, ok := v[block][block]
	if !ok {
		return ""
	}
	return strings.TrimSpace(a.Value)
}

func (v formValues) option(block string) string {
	a, ok := v[block][block]
	if !ok {
		return ""
	}
	return a.SelectedOption.Value
}

func (v formValues) user(block string) string {
	a, ok := v[block][block]
	if !ok {
		return ""
	}
	return a.SelectedUser
}

func (v formValues) has(block string) bool {
	_, ok := v[block]
	return ok
}

// submit handles a form submission in the ack: inline errors keep the form
// open with the problem next to the input; success closes it.
func (b *Bot) submit(ctx context.Context, cb slack.InteractionCallback) (any, afterAck) {
	var values formValues
	if cb.View.State != nil {
		values = cb.View.State.Values
	}
	switch cb.View.CallbackID {
	case callbackRequest:
		return b.submitRequest(ctx, cb, values)
	case callbackDeny:
		return b.submitDeny(ctx, cb, values)
	case callbackExtend:
		return b.submitExtend(ctx, cb, values)
	}
	return nil, nil
}

// errorsFor puts a refusal next to the input it is about.
func (b *Bot) errorsFor(err error, block string) *slack.ViewSubmissionResponse {
	return slack.NewErrorsViewSubmissionResponse(map[string]string{block: clip(b.refusalText(err), 2000)})
}

// refusalText is a refusal's message, or a general one for other errors.
func (b *Bot) refusalText(err error) string {
	if workflow.RefusalOf(err) != "" {
		return err.Error()
	}
	if errors.Is(err, workflow.ErrUnrecorded) {
		return unrecordedText
	}
	b.log.Error().Err(err).Msg("form submission")
	return "latch could not save this just now (the error is logged). Try again in a minute."
}

func (b *Bot) submitRequest(ctx context.Context, cb slack.InteractionCallback, v formValues) (any, afterAck) {
	user := cb.User.ID
	meta := decodeRequestMeta(cb.View.PrivateMetadata)
	item := v.option(inputItem)
	if item == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputItem: "Choose what you need access to."}), nil
	}
	fi, problem := b.formItem(ctx, user, item)
	if problem != "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputItem: problem}), nil
	}
	if meta.Item != item || !v.has(inputDuration) || !v.has(inputJustification) {
		// The form was sent before it showed this item's questions (or
		// still shows another item's).
		meta.Item = item
		form := RequestForm(meta, fi)
		return slack.NewUpdateViewSubmissionResponse(&form), nil
	}
	var d time.Duration
	if s := v.option(inputDuration); s != "" {
		var err error
		if d, err = workflow.ParseDuration(s); err != nil {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{inputDuration: "Choose one of the durations offered."}), nil
		}
	}
	s := workflow.Submission{
		Item:          item,
		Requester:     user,
		Beneficiary:   v.user(inputBeneficiary),
		Duration:      d,
		Justification: v.text(inputJustification),
		Ticket:        line(v.text(inputTicket)),
	}
	if key := v.text(inputPublicKey); key != "" {
		s.Params = map[string]string{"public_key": line(key)}
	}
	if _, err := b.engine.Submit(ctx, s); err != nil {
		return b.errorsFor(err, refusalInput(err, v)), nil
	}
	return slack.NewClearViewSubmissionResponse(), nil
}

// refusalInput says which input of the request form a refusal is about.
func refusalInput(err error, v formValues) string {
	var block string
	switch workflow.RefusalOf(err) {
	case workflow.RefusedDuration:
		block = inputDuration
	case workflow.RefusedJustification:
		block = inputJustification
	case workflow.RefusedOnBehalf:
		block = inputBeneficiary
	case workflow.RefusedNotVisible:
		if v.user(inputBeneficiary) != "" {
			block = inputBeneficiary
		}
	}
	if block == "" || !v.has(block) {
		block = inputItem
	}
	return block
}

func (b *Bot) submitDeny(ctx context.Context, cb slack.InteractionCallback, v formValues) (any, afterAck) {
	reason := v.text(inputReason)
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputReason: "Say why, so the requester knows what to change."}), nil
	}
	r, err := b.engine.Deny(ctx, cb.View.PrivateMetadata, cb.User.ID, reason)
	if err != nil {
		return b.errorsFor(err, inputReason), nil
	}
	return slack.NewClearViewSubmissionResponse(), func(ctx context.Context) { b.refreshCards(ctx, r.ID) }
}

func (b *Bot) submitExtend(ctx context.Context, cb slack.InteractionCallback, v formValues) (any, afterAck) {
	user, id := cb.User.ID, cb.View.PrivateMetadata
	d, err := workflow.ParseDuration(v.option(inputDuration))
	if err != nil {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputDuration: "Choose one of the durations offered."}), nil
	}
	why := v.text(inputJustification)
	if v.has(inputJustification) && why == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputJustification: "Say why you need longer."}), nil
	}
	r, err := b.engine.Extend(ctx, id, user, d, why)
	if err != nil {
		block := inputDuration
		if errors.Is(err, workflow.ErrRefused) && workflow.RefusalOf(err) == workflow.RefusedJustification && v.has(inputJustification) {
			block = inputJustification
		}
		return b.errorsFor(err, block), nil
	}
	return slack.NewClearViewSubmissionResponse(), func(ctx context.Context) {
		if r.ID != id {
			return // a new request for approval: its own notices follow
		}
		b.thread(ctx, &r, user, fmt.Sprintf("⏩ Extended by %s: your access to %s now ends %s.",
			workflow.FormatDuration(d), escape(line(itemName(b.cfg.Catalogue, r.Item))), when(r.ExpiresAt)))
		b.refreshStatus(ctx, r.ID)
	}
}
