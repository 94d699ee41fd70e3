package main

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditVerifyCmd() *cobra.Command {
	var (
		db  string
		srv remote
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain",
		Long: `Recomputes the hash chain of the audit log from the first event to the
last. Prints the number of events and the hash of the last one; compare them
with a published checkpoint to detect a log cut short at its end. Exits 1
naming the first event that does not match.

With --server URL (or $LATCH_SERVER) the running server verifies its log
and answers through its admin API (the token from $LATCH_ADMIN_TOKEN or
--token-file); the output is the same.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := srv.client(given(cmd, "db")...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if c != nil {
				v, err := c.Verify(cmd.Context())
				if err != nil {
					return err
				}
				if !v.OK {
					fmt.Fprintf(out, "FAILED: %d events verified; %s\n", v.Seq-1, v.Error)
					return &exitError{exitFailure}
				}
				fmt.Fprintf(out, "ok: %d events, head %s\n", v.Events, v.Head)
				return nil
			}
			s, err := openReadOnly(db)
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := s.Verify(cmd.Context())
			var chain *store.ChainError
			if errors.As(err, &chain) {
				fmt.Fprintf(out, "FAILED: %d events verified; %v\n", chain.Seq-1, chain)
				return &exitError{exitFailure}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "ok: %d events, head %s\n", r.Count, hex.EncodeToString(r.Head[:]))
			return nil
		},
	}
	dbFlag(cmd, &db)
	remoteFlags(cmd, &srv)
	return cmd
}
