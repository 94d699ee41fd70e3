package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditExportCmd() *cobra.Command {
	var (
		db, since, until, format string
		kinds                    []string
		srv                      remote
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Stream audit events as JSONL or CSV",
		Long: `Writes the events of the audit log to standard output, oldest first, one
JSON object per line (jsonl) or one row per event under a header (csv).
Memory use stays flat however long the log is.

--since and --until take an RFC 3339 time (2026-11-01T09:00:00Z), a date
(2026-11-01, midnight UTC) or a duration back from now (90m, 24h, 7d);
--since is inclusive, --until exclusive.

With --server URL (or $LATCH_SERVER) the running server streams the
export through its admin API (the token from $LATCH_ADMIN_TOKEN or
--token-file); the output is the same.

Export does not check the hash chain: run 'latch audit verify' for that.
In CSV, an actor or id that a spreadsheet would run as a formula is
prefixed with '.`,
		Example: `  latch audit export --db /var/lib/latch/latch.db --since 7d --kind grant.revoked
  latch audit export --db latch.db --since 2026-11-01 --until 2026-11-02 --format csv
  latch audit export --server http://127.0.0.1:8089 --since 24h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := admin.ExportFilter(since, until, kinds, time.Now())
			var perr *admin.ParamError
			if errors.As(err, &perr) {
				if perr.Name == "since" && !f.Since.IsZero() {
					// Both times read, in the wrong order.
					return &usageError{fmt.Errorf("--since %s is not before --until %s", since, until)}
				}
				return &usageError{fmt.Errorf("--%s: %w", perr.Name, perr.Err)}
			}
			if format != store.FormatJSONL && format != store.FormatCSV {
				return &usageError{fmt.Errorf("--format %q: use jsonl or csv", format)}
			}
			c, err := srv.client(given(cmd, "db")...)
			if err != nil {
				return err
			}
			if c != nil {
				return c.Export(cmd.Context(), cmd.OutOrStdout(), f, format)
			}
			s, err := openReadOnly(db)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Export(cmd.Context(), cmd.OutOrStdout(), f, format)
		},
	}
	dbFlag(cmd, &db)
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time")
	cmd.Flags().StringVar(&until, "until", "", "only events before this time")
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "only events of this kind (repeat, or separate with commas)")
	cmd.Flags().StringVar(&format, "format", store.FormatJSONL, "jsonl or csv")
	remoteFlags(cmd, &srv)
	return cmd
}
