package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Errors of the grant and request look-ups.
var (
	// ErrUnknownGrant means no grant and no request has the id given.
	ErrUnknownGrant = errors.New("no grant or request has this id")
	// ErrNotRevocable means the request holds no access to take back.
	ErrNotRevocable = errors.New("nothing to revoke")
)

// noRequestsHint says what to do about a store without the requests
// projection.
const noRequestsHint = "the server builds it from the log when it starts: start the server on this store once, stop it, and try again"

// GrantRow is one grant as `latch grants` shows it, and as the API lists
// it; in JSON, one object.
type GrantRow struct {
	Grant       string              `json:"grant_id"`
	Request     string              `json:"request_id"`
	Requester   string              `json:"requester"`
	Beneficiary string              `json:"beneficiary"`
	Item        string              `json:"item"`
	Connector   string              `json:"connector"`
	Entitlement string              `json:"entitlement"`
	State       workflow.GrantState `json:"state"`
	Access      bool                `json:"access"` // it still gives access
	// RequestState and Outcome say where the grant's request stands and
	// why it ended or is ending.
	RequestState workflow.RequestState `json:"request_state"`
	Outcome      string                `json:"outcome,omitempty"`
	ExpiresAt    time.Time             `json:"expires_at,omitzero"`
	EndedAt      time.Time             `json:"ended_at,omitzero"` // when its request ended
	// LeftSeconds is the time left of an active grant, negative once
	// overdue.
	LeftSeconds *int64 `json:"left_seconds,omitempty"`
	LastError   string `json:"last_error,omitempty"` // the connector's last failure
}

// GivesAccess reports whether a grant in state s still gives access:
// active, or not yet taken back.
func GivesAccess(s workflow.GrantState) bool {
	return s == workflow.GrantActive || s == workflow.GrantRevoking || s == workflow.GrantRevokeFailed
}

// GrantRows lists the grants of requests, only those that give access if
// active is set, with the time left as of now.
func GrantRows(requests []workflow.Request, active bool, now time.Time) []GrantRow {
	var rows []GrantRow
	for _, r := range requests {
		for _, g := range r.Grants {
			if active && !GivesAccess(g.State) {
				continue
			}
			row := GrantRow{
				Grant: g.ID, Request: r.ID, Requester: r.Requester, Beneficiary: r.Beneficiary, Item: r.Item,
				Connector: g.Target.Connector, Entitlement: g.Target.Entitlement, State: g.State,
				Access: GivesAccess(g.State), RequestState: r.State, Outcome: r.Outcome, ExpiresAt: r.ExpiresAt, EndedAt: r.EndedAt, LastError: g.LastError,
			}
			if g.State == workflow.GrantActive && r.State == workflow.RequestActive {
				left := int64(r.ExpiresAt.Sub(now) / time.Second)
				row.LeftSeconds = &left
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// CheckRequests makes sure the store keeps the requests projection: reads
// of an empty index would otherwise pass for an empty store.
func CheckRequests(s *store.Store) error {
	if _, _, err := s.Request(""); err != nil {
		return requestsError(err)
	}
	return nil
}

// requestsError adds what to do to store.ErrNoRequests.
func requestsError(err error) error {
	if errors.Is(err, store.ErrNoRequests) {
		return fmt.Errorf("%w: %s", err, noRequestsHint)
	}
	return err
}

// FindRequests returns the requests whose grants to list, oldest first: a
// person's, the open ones (which hold every grant that gives access), or
// every request that was approved.
func FindRequests(ctx context.Context, s *store.Store, user string, active bool) ([]workflow.Request, error) {
	if err := CheckRequests(s); err != nil {
		return nil, err
	}
	var out []workflow.Request
	add := func(r workflow.Request) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	var err error
	switch {
	case user != "":
		err = s.RequestsOf(user, add)
	case active:
		err = s.OpenRequests(add)
	default:
		err = ApprovedRequests(ctx, s, add)
	}
	if err != nil {
		return nil, requestsError(err)
	}
	slices.SortStableFunc(out, func(a, b workflow.Request) int {
		return cmp.Or(a.SubmittedAt.Compare(b.SubmittedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ApprovedRequests calls fn with every request that was approved, and so
// has grants, in the order of approval. The store indexes requests by
// person and by being open, not all of them, so the approvals are found in
// the log.
func ApprovedRequests(ctx context.Context, s *store.Store, fn func(workflow.Request) error) error {
	var ids []string
	if err := s.Scan(ctx, store.Filter{Kinds: []string{workflow.KindApproved}}, func(e *workflow.Event) error {
		ids = append(ids, e.RequestID)
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		r, ok, err := s.Request(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("request %s is in the log but not in the requests projection; start the latch server on the store once to bring it up to date", id)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// errStop ends a walk over requests early.
var errStop = errors.New("stop")

// FindRequest returns the request that holds the grant id, or the request
// with that id. It fails with ErrUnknownGrant if there is neither.
func FindRequest(ctx context.Context, s *store.Store, id string) (workflow.Request, error) {
	r, ok, err := s.Request(id)
	if err != nil || ok {
		return r, requestsError(err)
	}
	var found bool
	holds := func(o workflow.Request) error {
		if _, ok := o.Grant(id); ok {
			r, found = o, true
			return errStop
		}
		return nil
	}
	// A grant that still gives access is in an open request; look there
	// before going through the log.
	for _, walk := range []func() error{
		func() error { return s.OpenRequests(holds) },
		func() error { return ApprovedRequests(ctx, s, holds) },
	} {
		if err := walk(); err != nil && !errors.Is(err, errStop) {
			return r, requestsError(err)
		}
		if found {
			return r, nil
		}
	}
	return r, fmt.Errorf("%w: %s; list them with latch grants --active", ErrUnknownGrant, id)
}

// Revokable says why r holds no access to revoke (an error matching
// ErrNotRevocable), or nil; what names the grant or request asked for.
func Revokable(r *workflow.Request, what string) error {
	switch {
	case r.State == workflow.RequestPending:
		return fmt.Errorf("%w: %s is pending, so nothing is granted yet; deny it in Slack instead", ErrNotRevocable, what)
	case r.State == workflow.RequestFailed && !r.EndedAt.IsZero(), r.State == workflow.RequestEnded:
		return fmt.Errorf("%w: %s has ended (%s); its access is gone already", ErrNotRevocable, what, r.Outcome)
	case r.State.Closed() && len(r.Grants) == 0:
		return fmt.Errorf("%w: %s was %s, so nothing was granted", ErrNotRevocable, what, r.State)
	}
	return nil
}

// Describe names what a revoke of id, found in r, is about: the request,
// or a grant of it.
func Describe(r *workflow.Request, id string) string {
	if id != r.ID {
		return "grant " + id + " of request " + r.ID
	}
	return "request " + r.ID
}
