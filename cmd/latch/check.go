package main

import (
	"errors"
	"fmt"

	"github.com/latchhq/latch/config"
	"github.com/spf13/cobra"
)

// configFlag adds the --config flag; commands fall back to $LATCH_CONFIG.
func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", "", "the configuration file (default $LATCH_CONFIG)")
}

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration file",
		Long: `Loads the configuration, with its LATCH_* environment overrides, and checks
all of it: keys, types, durations, references between policies, items,
connectors, users and groups, approval stages and policy conditions.
Prints a one-line summary and exits 0 when it is valid; otherwise prints
one line per problem (file:line: key.path: what is wrong; what to do) and
exits 1. Secrets are not read.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s: %s, %s, %s\n", c.File,
				plural(c.Catalogue.Len(), "item"), plural(len(c.Policies), "policy"), plural(len(c.Connectors), "connector"))
			return nil
		},
	}
	configFlag(cmd, &path)
	return cmd
}

// loadConfig loads the configuration at path (or $LATCH_CONFIG). A file
// that cannot be read, or a configuration with problems, is reported on
// stderr, one line per problem (file:line: key.path: what is wrong; what to
// do), and ends the command with exit 1.
func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	if path = flagOrEnv(path, "LATCH_CONFIG"); path == "" {
		return nil, &usageError{errors.New("no configuration given: pass --config FILE (or set LATCH_CONFIG)")}
	}
	c, err := config.Load(path)
	var invalid *config.InvalidError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			if p.Line > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s:%d: %s\n", invalid.File, p.Line, p)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", invalid.File, p)
			}
		}
		return nil, &exitError{exitFailure}
	}
	var unreadable *config.FileError
	if errors.As(err, &unreadable) {
		fmt.Fprintln(cmd.ErrOrStderr(), unreadable)
		return nil, &exitError{exitFailure}
	}
	return c, err
}

// plural says "1 item" or "3 items" ("policy" becomes "policies").
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if noun[len(noun)-1] == 'y' {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
