package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/latchhq/latch/admin"
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
		srv              remote
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
stopped; while it runs, the file is locked: ask the server instead with
--server URL (or $LATCH_SERVER) and the admin token in $LATCH_ADMIN_TOKEN
or --token-file. The store must keep the requests projection, as the
server's does.`,
		Example: `  latch grants --db /var/lib/latch/latch.db --active
  latch grants --db latch.db --user U05ALICE01 --format json
  LATCH_ADMIN_TOKEN=… latch grants --server http://127.0.0.1:8089 --active`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != formatTable && format != formatJSON {
				return &usageError{fmt.Errorf("--format %q: use table or json", format)}
			}
			c, err := srv.client(given(cmd, "db")...)
			if err != nil {
				return err
			}
			var rows []admin.GrantRow
			if c != nil {
				rows, err = c.Grants(cmd.Context(), user, active)
			} else {
				rows, err = localGrants(cmd.Context(), db, user, active)
			}
			if err != nil {
				return err
			}
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
	remoteFlags(cmd, &srv)
	return cmd
}

// localGrants lists grants from the store file at db.
func localGrants(ctx context.Context, db, user string, active bool) ([]admin.GrantRow, error) {
	s, err := openReadOnly(db)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	requests, err := admin.FindRequests(ctx, s, user, active)
	if err != nil {
		return nil, err
	}
	return admin.GrantRows(requests, active, time.Now()), nil
}

func writeGrantsJSON(w io.Writer, rows []admin.GrantRow) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, row := range rows {
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

func writeGrantsTable(w io.Writer, rows []admin.GrantRow) error {
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
func stateText(row admin.GrantRow) string {
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
