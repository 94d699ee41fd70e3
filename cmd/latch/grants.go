package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
	"github.com/spf13/cobra"
)

// Output formats of latch grants.
const (
	formatTable = "table"
	formatJSON  = "json"
)

func newGrantsCmd() *cobra.Command {
	var (
		db, user, format string
		active           bool
	)
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "List grants from the store",
		Long: `Lists the grants in the store, one per line: the grant and its request,
the beneficiary, the item, the target (connector/entitlement), the state
and the expiry, with the time left for active grants. A grant still
marked active whose expiry has passed is shown as overdue: the server
revokes it when it starts.

--active keeps the grants that still give access: those active, and those
being revoked (revoking) or whose revoke keeps failing (revoke_failed),
which are marked as still giving access. --user keeps the grants of
requests a person made or is the beneficiary of, by Slack id.

The store is opened read-only, so this works while the server is
stopped; while it runs, the file is locked and this fails within a
second. The store must keep the requests projection, as the server's does.`,
		Example: `  latch grants --db /var/lib/latch/latch.db --active
  latch grants --db latch.db --user U05ALICE01 --format json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != formatTable && format != formatJSON {
				return &usageError{fmt.Errorf("--format %q: use table or json", format)}
			}
			s, err := openReadOnly(db)
			if err != nil {
				return err
			}
			defer s.Close()
			requests, err := findRequests(cmd.Context(), s, user, active)
			if err != nil {
				return err
			}
			rows := grantRows(requests, active, time.Now())
			if len(rows) == 0 {
				// JSON lines stay parseable: the note goes to stderr.
				w := cmd.OutOrStdout()
				if format == formatJSON {
					w = cmd.ErrOrStderr()
				}
				fmt.Fprintln(w, "no grants match")
				return nil
			}
			if format == formatJSON {
				return writeGrantsJSON(cmd.OutOrStdout(), rows)
			}
			return writeGrantsTable(cmd.OutOrStdout(), rows)
		},
	}
	dbFlag(cmd, &db)
	cmd.Flags().BoolVar(&active, "active", false, "only grants that still give access")
	cmd.Flags().StringVar(&user, "user", "", "only requests this Slack id made or is the beneficiary of")
	cmd.Flags().StringVar(&format, "format", formatTable, "table or json (one object a line)")
	return cmd
}

// errNoRequestsHint explains what to do about a store without the requests
// projection.
const errNoRequestsHint = "the server builds it from the log when it starts: start the server on this store once, stop it, and try again"

// checkRequests makes sure the store keeps the requests projection: reads
// of an empty index would otherwise pass for an empty store.
func checkRequests(s *store.Store) error {
	if _, _, err := s.Request(""); err != nil {
		return requestsError(err)
	}
	return nil
}

// requestsError adds what to do to ErrNoRequests.
func requestsError(err error) error {
	if errors.Is(err, store.ErrNoRequests) {
		return fmt.Errorf("%w: %s", err, errNoRequestsHint)
	}
	return err
}

// findRequests returns the requests whose grants to list, oldest first: a
// person's, the open ones (which hold every grant that gives access), or
// every request that was approved.
func findRequests(ctx context.Context, s *store.Store, user string, active bool) ([]workflow.Request, error) {
	if err := checkRequests(s); err != nil {
		return nil, err
	}
	var out []workflow.Request
	add := func(r workflow.Request) error {
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
		err = approvedRequests(ctx, s, add)
	}
	if err != nil {
		return nil, requestsError(err)
	}
	slices.SortStableFunc(out, func(a, b workflow.Request) int {
		return cmp.Or(a.SubmittedAt.Compare(b.SubmittedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// approvedRequests calls fn with every request that was approved, and so
// has grants, in the order of approval. The store indexes requests by
// person and by being open, not all of them, so the approvals are found in
// the log.
func approvedRequests(ctx context.Context, s *store.Store, fn func(workflow.Request) error) error {
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

// grantRow is one grant as latch grants shows it; in JSON, one line.
type grantRow struct {
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

// givesAccess reports whether a grant in state s still gives access:
// active, or not yet taken back.
func givesAccess(s workflow.GrantState) bool {
	return s == workflow.GrantActive || s == workflow.GrantRevoking || s == workflow.GrantRevokeFailed
}

// grantRows lists the grants of requests, only those that give access if
// active is set, with the time left as of now.
func grantRows(requests []workflow.Request, active bool, now time.Time) []grantRow {
	var rows []grantRow
	for _, r := range requests {
		for _, g := range r.Grants {
			if active && !givesAccess(g.State) {
				continue
			}
			row := grantRow{
				Grant: g.ID, Request: r.ID, Requester: r.Requester, Beneficiary: r.Beneficiary, Item: r.Item,
				Connector: g.Target.Connector, Entitlement: g.Target.Entitlement, State: g.State,
				Access: givesAccess(g.State), RequestState: r.State, Outcome: r.Outcome, ExpiresAt: r.ExpiresAt, EndedAt: r.EndedAt, LastError: g.LastError,
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

func writeGrantsJSON(w io.Writer, rows []grantRow) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, row := range rows {
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

func writeGrantsTable(w io.Writer, rows []grantRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tREQUEST\tBENEFICIARY\tITEM\tTARGET\tSTATE\tEXPIRES\tLEFT")
	for _, row := range rows {
		expires := "-"
		if row.Access && !row.ExpiresAt.IsZero() {
			expires = row.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", row.Grant, row.Request, row.Beneficiary, row.Item,
			row.Connector, row.Entitlement, stateText(row), expires, leftText(row.LeftSeconds))
	}
	return tw.Flush()
}

// stateText is a grant's state for people: whether a grant on its way out
// still gives access, and why a revoked one ended.
func stateText(row grantRow) string {
	switch {
	case row.State == workflow.GrantRevoking || row.State == workflow.GrantRevokeFailed:
		return string(row.State) + " (still gives access)"
	case row.State == workflow.GrantRevoked && row.Outcome != "" && row.Outcome != workflow.OutcomeRevoked:
		return string(row.State) + " (" + row.Outcome + ")"
	case row.State == workflow.GrantActive && row.RequestState != workflow.RequestActive:
		return string(row.State) + " (request " + string(row.RequestState) + ")"
	}
	return string(row.State)
}

// leftText is the time left of an active grant, to the minute.
func leftText(seconds *int64) string {
	if seconds == nil {
		return "-"
	}
	left := time.Duration(*seconds) * time.Second
	text := func(d time.Duration) string {
		if d < time.Minute {
			return "<1m"
		}
		return workflow.FormatDuration(d.Truncate(time.Minute))
	}
	if left < 0 {
		return "overdue " + text(-left)
	}
	return text(left)
}
