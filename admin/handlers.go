package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Limits on what a call may carry.
const (
	maxBody   = 64 << 10 // a revoke's body
	maxReason = 4096     // bytes of a revoke's reason
	maxID     = store.MaxIDLen
)

// GrantList is the answer of GET /api/v1/grants.
type GrantList struct {
	Grants []GrantRow `json:"grants"`
}

// RequestDetail is the answer of GET /api/v1/requests/{id}: the request
// and every event of it, in log order.
type RequestDetail struct {
	Request workflow.Request      `json:"request"`
	Events  []store.ExportedEvent `json:"events"`
}

// RevokeBody is the body of POST /api/v1/grants/{id}/revoke.
type RevokeBody struct {
	Reason string `json:"reason"`
	// Operator names the person revoking (a login or an email); the
	// revoke is then recorded as "api:<operator>" rather than "api".
	Operator string `json:"operator,omitempty"`
}

// RevokeResult is the answer of a revoke: the request as it stands after
// the call (or after the wait, if one was asked for).
type RevokeResult struct {
	Request workflow.Request `json:"request"`
	// Settled says whether the connectors answered within the wait: the
	// request ended, or each grant still giving access had a failed
	// attempt. Without a wait it is false unless the request ended.
	Settled bool `json:"settled"`
}

func (h *Handler) grants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "state", "user") {
		return
	}
	state, ok := single(w, q, "state")
	if !ok {
		return
	}
	user, ok := single(w, q, "user")
	if !ok {
		return
	}
	var active bool
	switch state {
	case "", "all":
	case "active":
		active = true
	default:
		badParam(w, "state", "%q is not a state; use active (grants that still give access) or all", state)
		return
	}
	if len(user) > maxID || strings.TrimSpace(user) != user {
		badParam(w, "user", "not a Slack id; give one such as U05ALICE01")
		return
	}
	requests, err := FindRequests(r.Context(), h.store, user, active)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	rows := GrantRows(requests, active, h.clock.Now())
	if rows == nil {
		rows = []GrantRow{}
	}
	writeJSON(w, http.StatusOK, GrantList{Grants: rows})
}

// find looks up the request of a grant or request id from the path,
// answering 400 or 404 when there is none.
func (h *Handler) find(w http.ResponseWriter, r *http.Request) (workflow.Request, string, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxID {
		badParam(w, "id", "give the id of a grant or request, as the grants list names them")
		return workflow.Request{}, id, false
	}
	req, err := FindRequest(r.Context(), h.store, id)
	switch {
	case errors.Is(err, ErrUnknownGrant):
		writeError(w, http.StatusNotFound, err.Error())
		return req, id, false
	case err != nil:
		h.internal(w, r, err)
		return req, id, false
	}
	return req, id, true
}

func (h *Handler) request(w http.ResponseWriter, r *http.Request) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	req, _, ok := h.find(w, r)
	if !ok {
		return
	}
	events, err := h.history(r.Context(), &req)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RequestDetail{Request: req, Events: events})
}

// history returns the events of a request in log order. None comes before
// its submission, and commit times never decrease along the log, so the
// scan starts there.
func (h *Handler) history(ctx context.Context, req *workflow.Request) ([]store.ExportedEvent, error) {
	events := []store.ExportedEvent{}
	err := h.store.Scan(ctx, store.Filter{Since: req.SubmittedAt}, func(e *workflow.Event) error {
		if e.RequestID == req.ID {
			events = append(events, store.NewExportedEvent(e))
		}
		return nil
	})
	return events, err
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "wait") {
		return
	}
	waitText, ok := single(w, q, "wait")
	if !ok {
		return
	}
	var wait time.Duration
	if waitText != "" {
		d, err := time.ParseDuration(waitText)
		if err != nil || d < 0 || d > h.maxWait {
			badParam(w, "wait", "%q: give a duration from 0s to %s, such as 30s", waitText, h.maxWait)
			return
		}
		wait = d
	}
	var body RevokeBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty")
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: %v; send {\"reason\": \"...\"}", err))
		return
	}
	reason := strings.TrimSpace(body.Reason)
	switch {
	case reason == "":
		writeError(w, http.StatusBadRequest, "reason: required; say why the access is taken back, it goes into the audit log")
		return
	case len(reason) > maxReason:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason: longer than %d bytes", maxReason))
		return
	}
	if body.Operator != "" {
		if err := ValidOperator(body.Operator); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	req, id, ok := h.find(w, r)
	if !ok {
		return
	}
	if err := Revokable(&req, Describe(&req, id)); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	after, err := h.engine.Revoke(r.Context(), req.ID, OperatorActor(body.Operator), reason)
	switch {
	case workflow.RefusalOf(err) != "":
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		h.internal(w, r, fmt.Errorf("revoke request %s: %w", req.ID, err))
		return
	}
	h.log.Info().Str("request", req.ID).Str("id", id).Str("actor", OperatorActor(body.Operator)).Msg("revoked through the admin api")
	res := RevokeResult{Request: after, Settled: !after.EndedAt.IsZero()}
	if wait > 0 {
		if res, err = h.await(r.Context(), after, wait); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// await waits up to d for the connectors to answer the revoke of r: for
// the request to end, or for each of its grants that still gives access to
// have failed once more. It returns the request as it then stands.
func (h *Handler) await(ctx context.Context, r workflow.Request, d time.Duration) (RevokeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	attempts := make(map[string]int, len(r.Grants))
	for _, g := range r.Grants {
		attempts[g.ID] = g.RevokeAttempts
	}
	for {
		seq, _ := h.store.Head() // before the read: no event is missed
		now, ok, err := h.store.Request(r.ID)
		if err != nil {
			return RevokeResult{Request: r}, err
		}
		if ok {
			r = now
		}
		if settled(&r, attempts) {
			return RevokeResult{Request: r, Settled: true}, nil
		}
		if _, err := h.store.WaitAfter(ctx, seq); err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrClosed) {
				return RevokeResult{Request: r}, nil
			}
			return RevokeResult{Request: r}, err
		}
	}
}

// settled reports whether the connectors have answered a revoke: the
// request ended, or each grant not yet revoked failed since attempts
// were counted.
func settled(r *workflow.Request, attempts map[string]int) bool {
	if !r.EndedAt.IsZero() {
		return true
	}
	pending := false
	for _, g := range r.Grants {
		if g.State.Ended() {
			continue
		}
		pending = true
		if g.RevokeAttempts <= attempts[g.ID] {
			return false
		}
	}
	// With every grant revoked, the request is about to end.
	return pending
}
