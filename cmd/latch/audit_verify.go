package main

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditVerifyCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain",
		Long: `Recomputes the hash chain of the audit log from the first event to the
last. Prints the number of events and the hash of the last one; compare them
with a published checkpoint to detect a log cut short at its end. Exits 1
naming the first event that does not match.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openReadOnly(db)
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := s.Verify(cmd.Context())
			var chain *store.ChainError
			if errors.As(err, &chain) {
				fmt.Fprintf(cmd.OutOrStdout(), "FAILED: %d events verified; %v\n", chain.Seq-1, chain)
				return &exitError{exitFailure}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d events, head %s\n", r.Count, hex.EncodeToString(r.Head[:]))
			return nil
		},
	}
	dbFlag(cmd, &db)
	return cmd
}
