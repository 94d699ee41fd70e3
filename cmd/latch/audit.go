package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and export the audit log",
		Args:  noArgs,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd())
	return cmd
}

// dbFlag adds the --db flag, defaulting to $LATCH_STORE_PATH.
func dbFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "db", os.Getenv("LATCH_STORE_PATH"), "the store file (default $LATCH_STORE_PATH)")
}

// openReadOnly opens the store at path for reading, with errors that say
// what to do.
func openReadOnly(path string) (*store.Store, error) {
	if path == "" {
		return nil, &usageError{errors.New("no store given: pass --db FILE (or set LATCH_STORE_PATH)")}
	}
	s, err := store.Open(path, store.Options{ReadOnly: true})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%s does not exist: check --db (it is store.path in the config)", path)
	case err != nil:
		return nil, err
	}
	return s, nil
}
