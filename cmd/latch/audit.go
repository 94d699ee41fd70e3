package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/latchhq/latch/admin"
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

// inUseHint says what to do when a running server holds the store.
const inUseHint = "the store is in use by a running latch; use --server URL (and LATCH_ADMIN_TOKEN) to ask it"

// openStore opens the store at path (or $LATCH_STORE_PATH), with errors
// that say what to do. It never creates a store: a path that names no file
// is a mistake, even when opening for writing.
func openStore(path string, opts store.Options) (*store.Store, error) {
	if path = flagOrEnv(path, "LATCH_STORE_PATH"); path == "" {
		return nil, &usageError{errors.New("no store given: pass --db FILE (or set LATCH_STORE_PATH), or ask a running server with --server URL")}
	}
	var s *store.Store
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("open store %s: %w", path, store.ErrNotFound)
	} else {
		s, err = store.Open(path, opts)
	}
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("%s (%s: %w)", inUseHint, path, store.ErrLocked)
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %s; check --db (the server's store.path)", err, path)
	case errors.Is(err, store.ErrFormat):
		return nil, fmt.Errorf("%w; check --db: it names the server's store.path, not its configuration", err)
	case err != nil:
		return nil, err
	}
	return s, nil
}

// remote holds the flags of a command that can ask a running server
// through its admin API instead of opening the store.
type remote struct {
	server, tokenFile string
}

// remoteFlags adds --server and --token-file.
func remoteFlags(cmd *cobra.Command, r *remote) {
	cmd.Flags().StringVar(&r.server, "server", "", "ask the running latch at this URL through its admin API (default $LATCH_SERVER), instead of opening the store")
	cmd.Flags().StringVar(&r.tokenFile, "token-file", "", "with --server: the file holding the admin token (default $LATCH_ADMIN_TOKEN)")
}

// client returns a client of the server to ask, or nil to work on the
// store file. local names the flags given that only make sense without
// a server (--db, --config): they choose the store over $LATCH_SERVER,
// and do not go with --server.
func (r *remote) client(local ...string) (*admin.Client, error) {
	server := r.server
	if server != "" && len(local) > 0 {
		return nil, &usageError{fmt.Errorf("--server and %s exclude each other: ask the running server, or open the store of a stopped one", local[0])}
	}
	if server == "" && len(local) == 0 {
		server = strings.TrimSpace(os.Getenv("LATCH_SERVER"))
	}
	if server == "" {
		if r.tokenFile != "" {
			return nil, &usageError{errors.New("--token-file goes with --server URL (or $LATCH_SERVER)")}
		}
		return nil, nil
	}
	var token string
	if r.tokenFile != "" {
		b, err := os.ReadFile(r.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("--token-file %s is empty: it must hold the server's admin token", r.tokenFile)
		}
	} else if token = strings.TrimSpace(os.Getenv("LATCH_ADMIN_TOKEN")); token == "" {
		return nil, &usageError{errors.New("no admin token for --server: set LATCH_ADMIN_TOKEN or pass --token-file FILE")}
	}
	c, err := admin.NewClient(server, []byte(token), nil)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--server: %w", err)}
	}
	return c, nil
}

// given lists the flags of cmd, among names, that were set.
func given(cmd *cobra.Command, names ...string) []string {
	var out []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			out = append(out, "--"+n)
		}
	}
	return out
}
