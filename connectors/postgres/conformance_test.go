package postgres_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/workflow"
)

var (
	jane   = workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"}
	omar   = workflow.User{SlackID: "U0000OMAR", Email: "omar@example.com"}
	nobody = workflow.User{SlackID: "U0000NOBODY", Email: "nobody@example.com"}
)

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		mode    postgres.Mode
		native  bool
		unknown workflow.User
	}{
		// In role mode the server knows the people it has login roles
		// for.
		{postgres.ModeRole, false, nobody},
		// In ephemeral mode it needs no role of theirs, but the
		// connector must be able to name the role it creates, and
		// "no.body" is no role name.
		{postgres.ModeEphemeral, true, workflow.User{SlackID: "U0000NOBODY", Email: "no.body@example.com"}},
	} {
		t.Run("mode="+string(tt.mode), func(t *testing.T) {
			connectortest.Run(t, connectortest.Harness{
				Start: func(t *testing.T) connectortest.Target {
					e := newEnv(t, tt.mode)
					return connectortest.Target{Connector: e.rec, Has: e.has, Down: e.proxy.Down, Up: e.proxy.Up}
				},
				Entitlement:    entitlement,
				People:         []workflow.User{jane, omar},
				BadEntitlement: "no_such_role",
				Unknown:        tt.unknown,
				IsConnectorError: func(err error) bool {
					var e *postgres.Error
					return errors.As(err, &e)
				},
				NativeExpiry: tt.native,
			})
		})
	}
}

// env is one test's connector, reaching the shared server through a proxy
// of its own, with a slice of the server holding login roles for jane and
// omar.
type env struct {
	srv   *server
	sl    *slice
	proxy *proxy
	conn  *postgres.Connector
	rec   *recorder
	mode  postgres.Mode
}

// newEnv returns a fresh env; edit, if given, changes the connector's
// configuration before it is made.
func newEnv(t testing.TB, mode postgres.Mode, edit ...func(*postgres.Config)) *env {
	t.Helper()
	srv := testServer(t)
	sl := newSlice(t, srv, "jane", "omar")
	p := newProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port)))
	cfg := postgres.Config{
		Name:             "pg-" + strings.TrimSuffix(sl.prefix, "_"),
		Host:             "127.0.0.1",
		Port:             p.port(),
		Database:         database,
		User:             adminUser,
		Password:         adminPassword,
		SSLMode:          "disable",
		Mode:             mode,
		UsernameTemplate: sl.template(),
		// Beneficiaries reach the server directly, so that their
		// credentials work while the proxy is down.
		ConnectPort: srv.Port,
	}
	for _, f := range edit {
		f(&cfg)
	}
	conn, err := postgres.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(conn.Close)
	return &env{srv: srv, sl: sl, proxy: p, conn: conn, rec: newRecorder(conn), mode: mode}
}

// access returns an access to entitlement for u under grant.
func (e *env) access(u workflow.User, grant string) workflow.Access {
	return workflow.Access{
		GrantID:     grant + "-" + u.SlackID,
		RequestID:   "request-" + grant,
		User:        u,
		Entitlement: entitlement,
		ExpiresAt:   timeIn(3600),
	}
}

// has is the probe: it logs in as the beneficiary would, with the
// person's own password in role mode and with the credentials of the
// grant's message in ephemeral mode, and reads what only the entitlement
// may read. It never asks the connector.
func (e *env) has(ctx context.Context, a workflow.Access) (bool, error) {
	if a.Entitlement != entitlement {
		// The probe knows only what readonly may read; another
		// entitlement is one that does not exist, and so is had by
		// nobody.
		return false, e.srv.wantNoRole(ctx, a.Entitlement)
	}
	var cfg *pgx.ConnConfig
	switch e.mode {
	case postgres.ModeRole:
		var err error
		cfg, err = pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s sslmode=disable", e.srv.Port, database))
		if err != nil {
			return false, err
		}
		cfg.User, cfg.Password = e.sl.prefix+a.User.LocalPart(), personPassword
	case postgres.ModeEphemeral:
		msg, ok := e.rec.message(a.GrantID)
		if !ok {
			return false, nil // no credentials were ever handed out
		}
		u, err := connectionURL(msg)
		if err != nil {
			return false, err
		}
		if cfg, err = pgx.ParseConfig(u.String()); err != nil {
			return false, err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if loginRefused(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	return canRead(ctx, conn)
}

// canRead reports whether conn's role may read the table only the
// entitlement may read.
func canRead(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var v int
	err := conn.QueryRow(ctx, "SELECT v FROM secret").Scan(&v)
	if sqlState(err) == "42501" {
		return false, nil
	}
	return err == nil, err
}

// wantNoRole fails unless no role is called name.
func (s *server) wantNoRole(ctx context.Context, name string) error {
	conn, err := s.superConn(ctx, database)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("the probe cannot check the existing role %q", name)
	}
	return nil
}

func loginRefused(err error) bool {
	switch sqlState(err) {
	case "28P01", "28000": // wrong password or expired, no such role or no login
		return true
	}
	return false
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connectionURL finds the connection string in a grant's message.
func connectionURL(msg string) (*url.URL, error) {
	sc := bufio.NewScanner(strings.NewReader(msg))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "postgresql://") {
			return url.Parse(line)
		}
	}
	return nil, errors.New("no connection string in the grant's message")
}

// recorder is the connector as the suite sees it: it keeps the message of
// every successful grant, by grant id, for the probe, as the beneficiary
// would.
type recorder struct {
	*postgres.Connector

	mu       sync.Mutex
	messages map[string]string
}

func newRecorder(c *postgres.Connector) *recorder {
	return &recorder{Connector: c, messages: make(map[string]string)}
}

func (r *recorder) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	g, err := r.Connector.Grant(ctx, a)
	if err == nil {
		r.mu.Lock()
		r.messages[a.GrantID] = g.Message
		r.mu.Unlock()
	}
	return g, err
}

func (r *recorder) message(grantID string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg, ok := r.messages[grantID]
	return msg, ok
}
