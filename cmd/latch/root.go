package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and found a problem, or failed
	exitUsage   = 2 // the command line itself is wrong
)

// exitError ends a command with a given exit code after it has printed
// what it had to say.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError marks a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run executes the latch command line in args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var exit *exitError
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "latch: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	default:
		fmt.Fprintf(stderr, "latch: %v\n", err)
		return exitFailure
	}
}

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "Just-in-time access, requested and approved in Slack",
		Long: `latch grants time-bound access to databases, servers and groups after
approval in Slack, revokes it when it expires, and records every step in a
hash-chained audit log.`,
		Args:          subcommand,
		RunE:          help,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newVersionCmd(), newCheckCmd(), newAuditCmd(), newGrantsCmd(), newRevokeCmd(), newServeCmd(), newDemoCmd())
	return root
}

// help prints a command's help; it runs for a command that only groups
// others when it is given none.
func help(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// subcommand rejects what is not one of a group command's subcommands (cobra
// only gets here with arguments it could not match).
func subcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}

// noArgs rejects positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// flagOrEnv returns a flag's value, or the environment variable's when the
// flag was not given.
func flagOrEnv(value, env string) string {
	if value != "" {
		return value
	}
	return os.Getenv(env)
}
