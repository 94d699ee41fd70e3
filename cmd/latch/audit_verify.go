package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch/audit"

	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditVerifyCmd() *cobra.Command {
	var (
		db, checkpoint, publicKey string
		srv                       remote
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain",
		Long: `Recomputes the hash chain of the audit log from the first event to the
last. Prints the number of events and the hash of the last one; compare them
with a published checkpoint to detect a log cut short at its end. Exits 1
naming the first event that does not match.

With --checkpoint FILE (a file latch appends checkpoints to, or one saved
from the security channel) and --public-key FILE (the checkpoint key's
public half, PEM), it also checks every checkpoint's signature, that they
never go back in events or time, and that the log still holds the newest
one's events with the same head: this catches a log cut short or
rewritten since, which the hash chain alone cannot.

With --server URL (or $LATCH_SERVER) the running server verifies its log
and answers through its admin API (the token from $LATCH_ADMIN_TOKEN or
--token-file); the output is the same.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := srv.client(given(cmd, "db")...)
			if err != nil {
				return err
			}
			if (checkpoint == "") != (publicKey == "") {
				return &usageError{errors.New("--checkpoint and --public-key go together")}
			}
			if checkpoint != "" && c != nil {
				return &usageError{errors.New("--checkpoint checks a store file: run it where the file is (a copy of it will do), without --server")}
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
			if checkpoint != "" {
				if err := checkCheckpoint(cmd, s, checkpoint, publicKey); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "ok: %d events, head %s\n", r.Count, hex.EncodeToString(r.Head[:]))
			return nil
		},
	}
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "also check the log against the last checkpoint in this file")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the checkpoint key's public half (PEM), for --checkpoint")
	dbFlag(cmd, &db)
	remoteFlags(cmd, &srv)
	return cmd
}

// checkCheckpoint checks the log against a signed checkpoint, printing
// what does not match.
func checkCheckpoint(cmd *cobra.Command, s *store.Store, path, keyPath string) error {
	cps, err := audit.ReadCheckpoints(path)
	if err != nil {
		return err
	}
	pub, err := audit.ReadPublicKey(keyPath)
	if err != nil {
		return err
	}
	cp, err := audit.CheckAll(cmd.Context(), s, cps, pub)
	var chain *store.ChainError
	switch {
	case err == nil:
		fmt.Fprintf(cmd.OutOrStdout(), "checkpoint ok: %d events at %s, head %s, key %s\n", cp.Events, cp.Time.UTC().Format(time.RFC3339), cp.Head, cp.Key)
		return nil
	case errors.Is(err, audit.ErrBadSignature):
		fmt.Fprintf(cmd.OutOrStdout(), "FAILED: the checkpoint's signature does not verify with %s: %v\n", keyPath, err)
	case errors.As(err, &chain):
		fmt.Fprintf(cmd.OutOrStdout(), "FAILED: %d events verified; %v\n", chain.Seq-1, chain)
	case errors.Is(err, audit.ErrRollback):
		fmt.Fprintf(cmd.OutOrStdout(), "FAILED: %s: %v\n", path, err)
	case errors.Is(err, audit.ErrTruncated), errors.Is(err, audit.ErrRewritten):
		fmt.Fprintf(cmd.OutOrStdout(), "FAILED: the log does not hold the checkpoint of %s: %v\n", cp.Time.UTC().Format(time.RFC3339), err)
	default:
		return err
	}
	return &exitError{exitFailure}
}
