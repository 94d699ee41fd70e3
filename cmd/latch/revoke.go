package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/connectors/webhook"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
	"github.com/spf13/cobra"
)

func newRevokeCmd() *cobra.Command {
	var (
		db, configPath, reason string
		wait                   time.Duration
		operator               string
		srv                    remote
	)
	cmd := &cobra.Command{
		Use:   "revoke GRANT_ID --reason R",
		Short: "Revoke a grant, through the running server or with it stopped",
		Long: `Takes back a grant, and every other grant of its request, while the latch
server is stopped: it opens the store for writing, builds the connectors
from the configuration, records the revocation in the audit log as
cli:<your user name> with the reason, and runs the connectors' revokes.
GRANT_ID may also be a request id.

Prints the outcome and exits 0 once the access is gone. If a connector
fails, it prints the error and exits 1; the grant stays in the revoking
state and the server keeps retrying it when it starts.

Like the server at start, this also finishes the work other open requests
left behind: grants whose expiry passed while the server was stopped are
revoked, interrupted grants and revokes are finished, and each such
change is printed. There, a connector of a type this latch cannot run
yet fails as the target being down would: the server retries it. What
latch would have told people in Slack is printed on stderr.

While the server runs, the store is locked and this fails within a
second: revoke through the server instead, with --server URL (or
$LATCH_SERVER) and the admin token in $LATCH_ADMIN_TOKEN or --token-file.
The server records the revocation as "api:<operator>" (--operator, by
default $USER; "api" without either) with the reason, runs the
connectors, and this waits up to --wait for them: it prints the same
outcome and exits 0 once the access is gone, 1 if a connector failed
(the server keeps retrying) or did not answer in time, or if the server
refused the revoke (saying why). No configuration is needed then.

Without a server, connector commands run with this process's environment,
so give it the variables the server's connectors pass on.`,
		Example: `  latch revoke --config /etc/latch/latch.yaml 0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f --reason "laptop stolen"
  LATCH_ADMIN_TOKEN=… latch revoke --server http://127.0.0.1:8089 0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f --reason "laptop stolen"`,
		Args: func(_ *cobra.Command, args []string) error {
			switch len(args) {
			case 0:
				return &usageError{errors.New("no grant given: pass the id of a grant (or of its request), as latch grants lists them")}
			case 1:
				return nil
			}
			return &usageError{fmt.Errorf("unexpected argument %q: revoke takes one grant id", args[1])}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason = strings.TrimSpace(reason); reason == "" {
				return &usageError{errors.New("--reason is required: say why the access is taken back; it goes into the audit log")}
			}
			c, err := srv.client(given(cmd, "db", "config")...)
			if err != nil {
				return err
			}
			if c != nil {
				if wait <= 0 || wait > admin.DefaultMaxWait {
					return &usageError{fmt.Errorf("--wait %s: give a duration from 1s to %s", wait, admin.DefaultMaxWait)}
				}
				if operator == "" {
					// Who the shell says, if it says something usable;
					// otherwise the revoke is recorded as the API's.
					if u := os.Getenv("USER"); admin.ValidOperator(u) == nil {
						operator = u
					}
				} else if err := admin.ValidOperator(operator); err != nil {
					return &usageError{fmt.Errorf("--operator: %w", err)}
				}
				return revokeThrough(cmd.Context(), cmd.OutOrStdout(), c, strings.TrimSpace(args[0]), reason, operator, wait)
			}
			cfg, err := loadConfig(cmd, configPath)
			if err != nil {
				return err
			}
			if db == "" {
				db = cfg.Store.Path // with LATCH_STORE_PATH applied
			}
			return revoke(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, db, strings.TrimSpace(args[0]), reason)
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the store file (default the configuration's store.path)")
	configFlag(cmd, &configPath)
	cmd.Flags().StringVar(&reason, "reason", "", "why the access is taken back (required; recorded in the audit log)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "with --server: how long to wait for the connectors")
	cmd.Flags().StringVar(&operator, "operator", "", "with --server: who is revoking, recorded as api:<operator> (default $USER)")
	remoteFlags(cmd, &srv)
	return cmd
}

// revokeThrough revokes the request holding id through a running server's
// admin API, and reports the outcome on out as a local revoke does.
func revokeThrough(ctx context.Context, out io.Writer, c *admin.Client, id, reason, operator string, wait time.Duration) error {
	res, err := c.Revoke(ctx, id, reason, operator, wait)
	if err != nil {
		return err
	}
	r := res.Request
	if !res.Settled && r.EndedAt.IsZero() {
		printGrants(out, &r)
		fmt.Fprintf(out, "revoke not finished after %s: request %s (%s for %s) is %s; the server goes on with it: follow it with latch grants --server\n",
			wait, r.ID, r.Item, r.Beneficiary, r.State)
		return &exitError{exitFailure}
	}
	return printOutcome(out, &r, "the server keeps retrying it")
}

// buildConnectors builds a provisioner for every configured connector.
func buildConnectors(cfg *config.Config) (map[string]workflow.Provisioner, error) {
	out := make(map[string]workflow.Provisioner, len(cfg.Connectors))
	for _, c := range cfg.Connectors {
		switch s := c.Settings.(type) {
		case *config.ExecSettings:
			p, err := exec.New(c.Name, exec.Config{Command: s.Command, Args: s.Args, Timeout: s.Timeout, Env: s.Env})
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			out[c.Name] = p
		case *config.WebhookSettings:
			secret, err := s.Secret.Read()
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			p, err := webhook.New(webhook.Config{Name: c.Name, URL: s.URL, Secret: []byte(secret), Timeout: s.Timeout})
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			out[c.Name] = p
		case *config.PostgresSettings:
			var password string
			if s.Password.Set() { // else .pgpass, PGPASSWORD or peer authentication
				var err error
				if password, err = s.Password.Read(); err != nil {
					return nil, fmt.Errorf("connector %s: %w", c.Name, err)
				}
			}
			p, err := postgres.New(postgres.Config{Name: c.Name, Host: s.Host, Port: s.Port, Database: s.Database, User: s.User,
				Password: password, SSLMode: s.SSLMode, SSLRootCert: s.SSLRootCert, Mode: postgres.Mode(s.Mode),
				UsernameTemplate: s.UsernameTemplate, ConnectTimeout: s.ConnectTimeout, Timeout: s.Timeout,
				TerminateSessions: s.TerminateSessions, ConnectHost: s.ConnectHost, ConnectPort: s.ConnectPort, ConnectSSLMode: s.ConnectSSLMode})
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			out[c.Name] = p
		case *config.SSHCertSettings:
			p, err := sshcert.New(sshcert.Config{Name: c.Name, CAKeyFile: s.CAKeyFile, Entitlements: s.Entitlements,
				PrincipalsTemplate: s.PrincipalsTemplate, Extensions: s.Extensions, RevokedKeysFile: s.RevokedKeysFile, KeysDir: s.KeysDir})
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			out[c.Name] = p
		case *config.LDAPSettings:
			var password string
			if s.BindPassword.Set() { // else an anonymous bind
				var err error
				if password, err = s.BindPassword.Read(); err != nil {
					return nil, fmt.Errorf("connector %s: %w", c.Name, err)
				}
			}
			p, err := ldap.New(ldap.Config{Name: c.Name, URL: s.URL, BindDN: s.BindDN, BindPassword: password,
				UserBaseDN: s.UserBaseDN, UserFilter: s.UserFilter, GroupAttribute: s.GroupAttribute, GroupBaseDN: s.GroupBaseDN,
				StartTLS: s.StartTLS, CAFile: s.CAFile, Timeout: s.Timeout})
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			out[c.Name] = p
		default:
			return nil, fmt.Errorf("connector %s: type %s has no implementation", c.Name, c.Type)
		}
	}
	return out, nil
}

// checkConnectors makes sure every grant of r that may still give access
// has a connector this latch can run.
func checkConnectors(r *workflow.Request, connectors map[string]workflow.Provisioner) error {
	for _, g := range r.Grants {
		if g.State.Ended() {
			continue
		}
		if _, ok := connectors[g.Target.Connector]; !ok {
			return fmt.Errorf("%s/%s: connector %q is not in the configuration: use the configuration the server ran with", g.Target.Connector, g.Target.Entitlement, g.Target.Connector)
		}
	}
	return nil
}

// cliActor names the person at the command line in the audit log.
func cliActor() string {
	name := os.Getenv("USER")
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	return "cli:" + name
}

// revoke revokes the request holding id in the store at db, with an engine
// of its own, and reports the outcome on out.
func revoke(ctx context.Context, out, errOut io.Writer, cfg *config.Config, db, id, reason string) error {
	connectors, err := buildConnectors(cfg)
	if err != nil {
		return err
	}
	s, err := openStore(db, store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := admin.FindRequest(ctx, s, id)
	if err != nil {
		return err
	}
	what := admin.Describe(&r, id)
	if err := admin.Revokable(&r, what); err != nil {
		return err
	}
	if err := checkConnectors(&r, connectors); err != nil {
		return fmt.Errorf("cannot revoke %s: %w", what, err)
	}
	before := map[string]workflow.Request{}
	if err := s.OpenRequests(func(o workflow.Request) error {
		before[o.ID] = o
		return nil
	}); err != nil {
		return err
	}

	actor := cliActor()
	eng, err := workflow.NewEngine(workflow.Config{
		Store: s, Catalogue: cfg.Catalogue, Policies: cfg.Policies, Directory: cfg.Directory,
		Connectors: connectors, Notifier: &printNotifier{w: errOut}, Clock: workflow.RealClock{},
		Admins: append(slices.Clone(cfg.Admin.Admins), actor),
	})
	if err != nil {
		return err
	}
	if err := eng.Start(); err != nil {
		return err
	}
	defer eng.Close()
	switch r.State {
	case workflow.RequestActive, workflow.RequestProvisioning:
		_, err := eng.Revoke(ctx, r.ID, actor, reason)
		if errors.Is(err, workflow.ErrRefused) {
			// Its expiry, overdue, came first as the engine started.
			fmt.Fprintf(out, "request %s was ending already: %v; --reason is not recorded\n", r.ID, err)
		} else if err != nil {
			return fmt.Errorf("revoke request %s: %w", r.ID, err)
		}
	default:
		fmt.Fprintf(out, "request %s was being revoked already (%s); trying again now; --reason is not recorded\n", r.ID, r.Outcome)
	}
	eng.Advance() // deadlines that passed while the server was stopped
	if err := wait(ctx, eng); err != nil {
		return fmt.Errorf("%w: what was started is recorded, and the server resumes it when it starts", err)
	}

	reportResumed(out, s, before, r.ID)
	return reportOutcome(out, s, r.ID)
}

// reportResumed prints how the open requests other than skip, as they were
// before the engine started, moved on since.
func reportResumed(out io.Writer, s *store.Store, before map[string]workflow.Request, skip string) {
	for _, o := range sortedRequests(before) {
		if o.ID == skip {
			continue
		}
		if now, ok, err := s.Request(o.ID); err == nil && ok && changed(&o, &now) {
			fmt.Fprintf(out, "also: request %s (%s for %s), resumed: %s\n", o.ID, o.Item, o.Beneficiary, progress(&o, &now))
		}
	}
}

// reportOutcome prints where the revoked request and its grants stand, and
// fails unless every grant has ended.
func reportOutcome(out io.Writer, s *store.Store, id string) error {
	r, _, err := s.Request(id)
	if err != nil {
		return err
	}
	return printOutcome(out, &r, "the server keeps retrying it when it starts")
}

// printOutcome prints where a revoked request and its grants stand, and
// fails unless every grant has ended; retrying says what happens to a
// revoke that failed.
func printOutcome(out io.Writer, r *workflow.Request, retrying string) error {
	printGrants(out, r)
	if !r.EndedAt.IsZero() {
		fmt.Fprintf(out, "revoked: request %s (%s for %s), outcome %s\n", r.ID, r.Item, r.Beneficiary, r.Outcome)
		return nil
	}
	fmt.Fprintf(out, "revoke failed: request %s (%s for %s) is %s; %s\n", r.ID, r.Item, r.Beneficiary, r.State, retrying)
	return &exitError{exitFailure}
}

// printGrants prints where each grant of r stands, with the connector's
// last error for those not revoked.
func printGrants(out io.Writer, r *workflow.Request) {
	for _, g := range r.Grants {
		line := fmt.Sprintf("grant %s (%s/%s): %s", g.ID, g.Target.Connector, g.Target.Entitlement, g.State)
		if !g.State.Ended() && g.LastError != "" {
			line += ": " + g.LastError
		}
		fmt.Fprintln(out, line)
	}
}

// wait waits for the engine to finish its work, or for ctx to end.
func wait(ctx context.Context, eng *workflow.Engine) error {
	done := make(chan struct{})
	go func() {
		eng.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
}

// sortedRequests returns the requests in the order they were submitted.
func sortedRequests(m map[string]workflow.Request) []workflow.Request {
	out := make([]workflow.Request, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b workflow.Request) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// changed reports whether a request or one of its grants moved on.
func changed(before, after *workflow.Request) bool {
	return before.State != after.State || !slices.EqualFunc(before.Grants, after.Grants, func(a, b workflow.Grant) bool {
		return a.State == b.State && a.RevokeAttempts == b.RevokeAttempts
	})
}

// progress says how a request moved on.
func progress(before, after *workflow.Request) string {
	text := "still " + string(after.State)
	if after.State != before.State {
		text = fmt.Sprintf("was %s, now %s", before.State, after.State)
		if after.Outcome != "" {
			text += " (" + after.Outcome + ")"
		}
	}
	for _, g := range after.Grants {
		if !g.State.Ended() && g.LastError != "" {
			text += fmt.Sprintf("; grant %s: %s", g.ID, g.LastError)
		}
	}
	return text
}

// printNotifier prints what latch would tell people in Slack. It never
// prints the connectors' messages for beneficiaries, which may hold
// credentials.
type printNotifier struct {
	mu sync.Mutex
	w  io.Writer
}

var _ workflow.Notifier = (*printNotifier)(nil)

func (n *printNotifier) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "would notify: "+format+"\n", args...)
}

func (n *printNotifier) Submitted(_ context.Context, r workflow.Request) {
	n.printf("%s: request %s (%s for %s) is submitted", r.Requester, r.ID, r.Item, r.Beneficiary)
}

func (n *printNotifier) ApprovalNeeded(_ context.Context, r workflow.Request, stage int) {
	n.printf("%s: approve request %s (%s for %s), stage %s", strings.Join(r.Stages[stage].Approvers, ", "), r.ID, r.Item, r.Beneficiary, r.Stages[stage].Name)
}

func (n *printNotifier) Reminder(_ context.Context, r workflow.Request, stage int) {
	n.printf("%s: reminder to decide request %s (%s for %s)", strings.Join(r.Stages[stage].Approvers, ", "), r.ID, r.Item, r.Beneficiary)
}

func (n *printNotifier) Decided(_ context.Context, r workflow.Request) {
	n.printf("%s: request %s (%s for %s) is %s", r.Requester, r.ID, r.Item, r.Beneficiary, r.State)
}

func (n *printNotifier) Granted(_ context.Context, r workflow.Request, messages map[string]string) {
	note := ""
	if len(messages) > 0 {
		note = fmt.Sprintf(", with %d private message(s) from connectors (not shown)", len(messages))
	}
	n.printf("%s: access to %s is active until %s%s", r.Beneficiary, r.Item, r.ExpiresAt.UTC().Format(time.RFC3339), note)
}

func (n *printNotifier) ExpiringSoon(_ context.Context, r workflow.Request) {
	n.printf("%s: access to %s ends at %s", r.Beneficiary, r.Item, r.ExpiresAt.UTC().Format(time.RFC3339))
}

func (n *printNotifier) Ended(_ context.Context, r workflow.Request) {
	n.printf("%s: access to %s has ended (%s)", r.Beneficiary, r.Item, r.Outcome)
}

func (n *printNotifier) RevokeFailed(_ context.Context, r workflow.Request, g workflow.Grant) {
	n.printf("security channel: grant %s of request %s (%s/%s for %s) could not be revoked and is being retried: %s",
		g.ID, r.ID, g.Target.Connector, g.Target.Entitlement, r.Beneficiary, g.LastError)
}

func (n *printNotifier) TakenBackUnrecorded(_ context.Context, r workflow.Request, g workflow.Grant) {
	n.printf("security channel: grant %s of request %s (%s/%s for %s) was revoked at its expiry, but the audit log could not record it",
		g.ID, r.ID, g.Target.Connector, g.Target.Entitlement, r.Beneficiary)
}

func (n *printNotifier) BreakGlass(_ context.Context, r workflow.Request) {
	n.printf("security channel: %s broke the glass for %s", r.Requester, r.Item)
}

func (n *printNotifier) ReviewNeeded(_ context.Context, r workflow.Request) {
	n.printf("reviewers: review break-glass request %s (%s for %s)", r.ID, r.Item, r.Requester)
}
