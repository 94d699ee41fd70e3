package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
	"github.com/spf13/cobra"
)

func newAuditExportCmd() *cobra.Command {
	var (
		db, since, until, format string
		kinds                    []string
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

Export does not check the hash chain: run 'latch audit verify' for that.
In CSV, an actor or id that a spreadsheet would run as a formula is
prefixed with '.`,
		Example: `  latch audit export --db /var/lib/latch/latch.db --since 7d --kind grant.revoked
  latch audit export --db latch.db --since 2026-11-01 --until 2026-11-02 --format csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			f := store.Filter{}
			var err error
			if f.Since, err = parseWhen(since, now); err != nil {
				return &usageError{fmt.Errorf("--since: %w", err)}
			}
			if f.Until, err = parseWhen(until, now); err != nil {
				return &usageError{fmt.Errorf("--until: %w", err)}
			}
			if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
				return &usageError{fmt.Errorf("--since %s is not before --until %s", since, until)}
			}
			if format != store.FormatJSONL && format != store.FormatCSV {
				return &usageError{fmt.Errorf("--format %q: use jsonl or csv", format)}
			}
			for _, k := range kinds {
				if k = strings.TrimSpace(k); k != "" {
					f.Kinds = append(f.Kinds, k)
				}
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
	return cmd
}

// parseWhen reads a point in time given as RFC 3339, a date, or a duration
// before now ("" is the zero time).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if _, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return time.Time{}, fmt.Errorf("%q has no time zone: add Z for UTC (%sZ) or an offset such as +01:00", s, s)
	}
	d, err := workflow.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-01T09:00:00Z), a date (2026-11-01) or a duration ago (24h, 7d)", s)
	}
	return now.Add(-d), nil
}
