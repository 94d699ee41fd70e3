package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/latchhq/latch/store"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and export the audit log",
		Args:  subcommand,
		RunE:  help,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd())
	return cmd
}

// dbFlag adds the --db flag; openStore falls back to $LATCH_STORE_PATH.
func dbFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "db", "", "the store file (default $LATCH_STORE_PATH)")
}

// openReadOnly opens the store at path (or $LATCH_STORE_PATH) for reading.
func openReadOnly(path string) (*store.Store, error) {
	return openStore(path, store.Options{ReadOnly: true})
}

// openStore opens the store at path (or $LATCH_STORE_PATH), with errors
// that say what to do. It never creates a store: a path that names no file
// is a mistake, even when opening for writing.
func openStore(path string, opts store.Options) (*store.Store, error) {
	if path = flagOrEnv(path, "LATCH_STORE_PATH"); path == "" {
		return nil, &usageError{errors.New("no store given: pass --db FILE (or set LATCH_STORE_PATH)")}
	}
	var s *store.Store
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("open store %s: %w", path, store.ErrNotFound)
	} else {
		s, err = store.Open(path, opts)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %s; check --db (the server's store.path)", err, path)
	case errors.Is(err, store.ErrFormat):
		return nil, fmt.Errorf("%w; check --db: it names the server's store.path, not its configuration", err)
	case err != nil:
		return nil, err
	}
	return s, nil
}
