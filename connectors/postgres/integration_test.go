package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/internal/pgtest"
	"github.com/latchhq/latch/workflow"
)

// grant grants a and returns the result, failing the test on an error.
func (e *env) grant(t testing.TB, a workflow.Access) workflow.Granted {
	t.Helper()
	g, err := e.rec.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return g
}

func (e *env) revoke(t testing.TB, a workflow.Access) {
	t.Helper()
	if err := e.rec.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

// credentials returns the user and password of an ephemeral grant's
// message.
func credentials(t testing.TB, g workflow.Granted) (user, password string) {
	t.Helper()
	u, err := connectionURL(g.Message)
	if err != nil {
		t.Fatal(err)
	}
	password, _ = u.User.Password()
	if password == "" {
		t.Fatalf("no password in the connection string of %q", g.Message)
	}
	return u.User.Username(), password
}

// session logs in as user on db, failing the test if it cannot.
func (s *server) session(t testing.TB, user, password, db string) *pgx.Conn {
	t.Helper()
	conn, err := s.connect(t.Context(), user, password, db)
	if err != nil {
		t.Fatalf("log in as %s on %s: %v", user, db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// isMember reports whether role member is a member of role.
func (s *server) isMember(t testing.TB, member, role string) bool {
	t.Helper()
	var ok bool
	s.superQuery(t, []any{&ok}, "SELECT pg_has_role($1, $2, 'MEMBER')", member, role)
	return ok
}

func TestRevokeEndsOpenSessions(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "sessions")
	user, password := credentials(t, e.grant(t, a))

	idle := e.srv.session(t, user, password, database)
	other := e.srv.session(t, user, password, "postgres") // another database
	busy := e.srv.session(t, user, password, database)
	for _, conn := range []*pgx.Conn{idle, other, busy} {
		if _, err := conn.Exec(t.Context(), "SELECT 1"); err != nil {
			t.Fatalf("query before the revoke: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var sleepErr error
	go func() {
		defer close(done)
		_, sleepErr = busy.Exec(ctx, "SELECT pg_sleep(60)")
	}()
	// Before the session's own cleanup closes it.
	t.Cleanup(func() {
		cancel()
		<-done
	})
	e.srv.waitActive(t, user, 1)

	e.revoke(t, a)

	select {
	case <-done:
		if sleepErr == nil {
			t.Error("the query in progress completed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the query in progress still runs 10 s after the revoke")
	}
	for name, conn := range map[string]*pgx.Conn{"idle": idle, "other database": other} {
		if _, err := conn.Exec(t.Context(), "SELECT 1"); err == nil {
			t.Errorf("%s session: a query after the revoke succeeded", name)
		}
	}
	if e.srv.roleExists(t, user) {
		t.Errorf("role %s exists after the revoke", user)
	}
	if _, err := e.srv.connect(t.Context(), user, password, database); !loginRefused(err) {
		t.Errorf("log in after the revoke: %v, want it refused", err)
	}
}

// waitActive polls the server until user has n sessions running a query.
func (s *server) waitActive(t testing.TB, user string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var active int
		s.superQuery(t, []any{&active}, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active'", user)
		if active >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d active sessions, want %d", user, active, n)
		}
		time.Sleep(5 * time.Millisecond) // the server's own scheduling
	}
}

func TestRevokeDropsWhatTheRoleOwns(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "owns")
	user, password := credentials(t, e.grant(t, a))
	conn := e.srv.session(t, user, password, database)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE scratch."+user+" (v int)"); err != nil {
		t.Fatalf("create a table as %s: %v", user, err)
	}

	e.revoke(t, a)

	if e.srv.roleExists(t, user) {
		t.Errorf("role %s exists after the revoke", user)
	}
	var owner string
	e.srv.superQuery(t, []any{&owner}, "SELECT tableowner FROM pg_tables WHERE schemaname = 'scratch' AND tablename = $1", user)
	if owner != adminUser {
		t.Errorf("the table %s made is owned by %s, want %s", user, owner, adminUser)
	}
}

func TestConnectionDiedWhileIdle(t *testing.T) {
	for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, mode, direct(testServer(t)))
			a := e.access(jane, "idle")
			e.grant(t, a) // leaves a connection in the pool
			// As a server restart or failover would.
			e.srv.super(t, "postgres", fmt.Sprintf(
				"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '%s'", adminUser))
			e.revoke(t, a)
			if has, err := e.has(t.Context(), a); err != nil || has {
				t.Errorf("probe after the revoke: %t, %v; want false", has, err)
			}
		})
	}
}

func TestRoleModeSessions(t *testing.T) {
	tests := []struct {
		terminate bool
		wantAlive bool
	}{
		// PostgreSQL does not take SET ROLE back from a session: only
		// ending it does.
		{terminate: false, wantAlive: true},
		{terminate: true, wantAlive: false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("TerminateSessions=%t", tt.terminate), func(t *testing.T) {
			e := newEnv(t, postgres.ModeRole, func(c *postgres.Config) { c.TerminateSessions = tt.terminate })
			a := e.access(jane, "set-role")
			e.grant(t, a)
			conn := e.srv.session(t, e.sl.prefix+"jane", personPassword, database)
			if _, err := conn.Exec(t.Context(), "SET ROLE "+entitlement); err != nil {
				t.Fatalf("SET ROLE: %v", err)
			}

			e.revoke(t, a)

			if has, err := e.has(t.Context(), a); err != nil || has {
				t.Errorf("probe after the revoke: %t, %v; want false", has, err)
			}
			alive, _ := canRead(t.Context(), conn)
			if alive != tt.wantAlive {
				t.Errorf("the session that set the role still reads: %t, want %t", alive, tt.wantAlive)
			}
		})
	}
}

func TestHostileEntitlement(t *testing.T) {
	hostile := []string{
		`readonly"; DROP TABLE secret; --`,
		`readonly" TO "latch_admin"; GRANT "pg_read_all_data`,
		`readonly'; DROP ROLE latch_admin; --`,
		`readonly\`,
		`"readonly"`,
		`readonly;`,
	}
	for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, mode)
			for i, entitlement := range hostile {
				a := e.access(jane, fmt.Sprint("hostile", i))
				a.Entitlement = entitlement
				_, err := e.rec.Grant(t.Context(), a)
				if !workflow.IsPermanent(err) || !errors.Is(err, postgres.ErrUnknownRole) {
					t.Errorf("Grant %q: %v, want a permanent ErrUnknownRole", entitlement, err)
				}
				if err := e.rec.Revoke(t.Context(), a); err != nil {
					t.Errorf("Revoke %q: %v", entitlement, err)
				}
			}
			var tables, admins, memberships int
			e.srv.superQuery(t, []any{&tables, &admins, &memberships}, `SELECT
				(SELECT count(*) FROM pg_tables WHERE tablename = 'secret'),
				(SELECT count(*) FROM pg_roles WHERE rolname = $1),
				(SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname LIKE $2)`,
				adminUser, e.sl.prefix+"%")
			if tables != 1 || admins != 1 || memberships != 0 {
				t.Errorf("after hostile grants: %d secret tables, %d admin roles, %d memberships of the slice's roles; want 1, 1, 0", tables, admins, memberships)
			}
		})
	}
}

func TestRoleWithAwkwardName(t *testing.T) {
	// A real role whose name needs every kind of quoting.
	const role = `we"ird'; role\ -- x`
	for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, mode)
			e.srv.super(t, "postgres", "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" NOLOGIN")
			t.Cleanup(func() { e.srv.super(t, "postgres", "DROP ROLE "+pgx.Identifier{role}.Sanitize()) })
			a := e.access(jane, "awkward")
			a.Entitlement = role
			g := e.grant(t, a)
			member := g.Facts["account"]
			if !e.srv.isMember(t, member, role) {
				t.Errorf("%s is not a member of %q after the grant", member, role)
			}
			e.revoke(t, a)
			if mode == postgres.ModeRole && e.srv.isMember(t, member, role) {
				t.Errorf("%s is a member of %q after the revoke", member, role)
			}
			if mode == postgres.ModeEphemeral && e.srv.roleExists(t, member) {
				t.Errorf("%s exists after the revoke", member)
			}
		})
	}
}

func TestHostileGrantID(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "hostile")
	a.GrantID = `g'; DROP ROLE latch_admin; -- \' "x"`
	g := e.grant(t, a)
	user := g.Facts["account"]
	if has, err := e.has(t.Context(), a); err != nil || !has {
		t.Fatalf("probe: %t, %v; want true", has, err)
	}
	e.grant(t, a) // finds the role by its comment again
	if has, err := e.has(t.Context(), a); err != nil || !has {
		t.Fatalf("probe after a second grant: %t, %v; want true", has, err)
	}
	e.revoke(t, a)
	if e.srv.roleExists(t, user) || !e.srv.roleExists(t, adminUser) {
		t.Errorf("after the revoke: %s exists = %t, %s exists = %t; want false, true",
			user, e.srv.roleExists(t, user), adminUser, e.srv.roleExists(t, adminUser))
	}
}

func TestPasswordStaysSecret(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "secret")
	first := e.grant(t, a)
	second := e.grant(t, a) // through ALTER ROLE
	for i, g := range []workflow.Granted{first, second} {
		user, password := credentials(t, g)
		for k, v := range g.Facts {
			if strings.Contains(v, password) || strings.Contains(k, password) {
				t.Errorf("grant %d: fact %s=%s holds the password", i+1, k, v)
			}
		}
		if got := g.Facts["account"]; got != user {
			t.Errorf("grant %d: fact account = %q, want %q", i+1, got, user)
		}
		if got := g.Facts["role"]; got != entitlement {
			t.Errorf("grant %d: fact role = %q, want %q", i+1, got, entitlement)
		}
		if !strings.Contains(g.Message, "password:  "+password) {
			t.Errorf("grant %d: the message does not give the password on a line of its own:\n%s", i+1, g.Message)
		}
		log, err := os.ReadFile(e.srv.Log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), password) {
			t.Errorf("grant %d: the password is in the server's log", i+1)
		}
		if !strings.Contains(string(log), user) {
			t.Errorf("grant %d: the server's log does not show the statements on %s; is log_statement set?", i+1, user)
		}
	}
	user, _ := credentials(t, second)
	var stored string
	e.srv.superQuery(t, []any{&stored}, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", user)
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
		t.Errorf("stored password %.20q…, want a SCRAM-SHA-256 verifier", stored)
	}
}

func TestRetriedGrant(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "retried")
	user1, password1 := credentials(t, e.grant(t, a))

	// As if an earlier attempt had stopped half-way, or an operator had
	// meddled: no membership.
	e.srv.super(t, "postgres", fmt.Sprintf("REVOKE %s FROM %s", entitlement, user1))
	a.ExpiresAt = timeIn(7200)
	user2, password2 := credentials(t, e.grant(t, a))

	if user2 != user1 {
		t.Errorf("the retried grant made role %s, want %s again", user2, user1)
	}
	if password2 == password1 {
		t.Error("the retried grant kept the password")
	}
	if _, err := e.srv.connect(t.Context(), user1, password1, database); !loginRefused(err) {
		t.Errorf("log in with the first password: %v, want it refused", err)
	}
	conn := e.srv.session(t, user2, password2, database)
	if ok, err := canRead(t.Context(), conn); err != nil || !ok {
		t.Errorf("read with the second credentials: %t, %v; want true", ok, err)
	}
	var until time.Time
	var count int
	e.srv.superQuery(t, []any{&until, &count},
		"SELECT (SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1), (SELECT count(*) FROM pg_roles WHERE rolname LIKE $2)",
		user2, e.sl.prefix+"jane_%")
	if !until.Equal(a.ExpiresAt) {
		t.Errorf("VALID UNTIL %s, want %s", until, a.ExpiresAt)
	}
	if count != 1 {
		t.Errorf("%d roles for jane, want 1", count)
	}
}

func TestNoExpiry(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "forever")
	a.ExpiresAt = time.Time{}
	g := e.grant(t, a)
	var infinite bool
	e.srv.superQuery(t, []any{&infinite}, "SELECT rolvaliduntil = 'infinity' FROM pg_roles WHERE rolname = $1", g.Facts["account"])
	if !infinite || g.Facts["valid_until"] != "infinity" {
		t.Errorf("VALID UNTIL infinity = %t, fact valid_until = %q; want true, infinity", infinite, g.Facts["valid_until"])
	}
	e.revoke(t, a)
}

func TestFailedGrantLeavesNothing(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "failed")
	a.Entitlement = "no_such_role"
	if _, err := e.rec.Grant(t.Context(), a); !workflow.IsPermanent(err) {
		t.Fatalf("Grant: %v, want a permanent error", err)
	}
	var count int
	e.srv.superQuery(t, []any{&count}, "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", e.sl.prefix+"jane_%")
	if count != 0 {
		t.Errorf("%d roles for jane after a failed grant, want none", count)
	}
}

func TestForeignRole(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "foreign")
	name := postgres.EphemeralName(e.sl.prefix+"jane", a.GrantID)
	e.srv.super(t, "postgres", "CREATE ROLE "+name+" LOGIN PASSWORD 'theirs'")

	_, err := e.rec.Grant(t.Context(), a)
	if !workflow.IsPermanent(err) || !errors.Is(err, postgres.ErrForeignRole) {
		t.Errorf("Grant: %v, want a permanent ErrForeignRole", err)
	}
	e.revoke(t, a)
	conn := e.srv.session(t, name, "theirs", database)
	if _, err := conn.Exec(t.Context(), "SELECT 1"); err != nil {
		t.Errorf("the role latch did not create no longer works: %v", err)
	}
}

func TestErrorClassification(t *testing.T) {
	srv := testServer(t)
	srv.super(t, "postgres",
		"DROP ROLE IF EXISTS latch_weak",
		"CREATE ROLE latch_weak LOGIN PASSWORD 'weak-secret'")
	tests := []struct {
		name      string
		mode      postgres.Mode
		edit      func(*postgres.Config)
		access    func(workflow.Access) workflow.Access
		down      bool
		permanent bool
		sentinel  error  // wrapped, if set
		sqlState  string // reported, if set
	}{
		{name: "role down", mode: postgres.ModeRole, down: true},
		{name: "ephemeral down", mode: postgres.ModeEphemeral, down: true},
		{name: "unknown role", mode: postgres.ModeRole, access: withEntitlement("no_such_role"), permanent: true, sentinel: postgres.ErrUnknownRole},
		{name: "ephemeral unknown role", mode: postgres.ModeEphemeral, access: withEntitlement("no_such_role"), permanent: true, sentinel: postgres.ErrUnknownRole},
		{name: "unknown account", mode: postgres.ModeRole, access: func(a workflow.Access) workflow.Access { a.User = nobody; return a }, permanent: true, sentinel: postgres.ErrUnknownAccount},
		{name: "latch's own role", mode: postgres.ModeRole, access: withEntitlement(adminUser), permanent: true, sentinel: postgres.ErrUnsafeRole},
		{name: "ephemeral latch's own role", mode: postgres.ModeEphemeral, access: withEntitlement(adminUser), permanent: true, sentinel: postgres.ErrUnsafeRole},
		{name: "superuser role", mode: postgres.ModeRole, access: withEntitlement(pgtest.Superuser), permanent: true, sentinel: postgres.ErrUnsafeRole},
		{name: "insufficient privilege", mode: postgres.ModeRole, edit: asWeak, permanent: true, sqlState: "42501"},
		{name: "ephemeral insufficient privilege", mode: postgres.ModeEphemeral, edit: asWeak, permanent: true, sqlState: "42501"},
		{name: "latch's password refused", mode: postgres.ModeRole, edit: func(c *postgres.Config) { c.Password = "wrong" }, sqlState: "28P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mode, func(c *postgres.Config) {
				if tt.edit != nil {
					tt.edit(c)
				}
			})
			a := e.access(jane, "classify")
			if tt.access != nil {
				a = tt.access(a)
			}
			if tt.down {
				e.proxy.down()
			}
			_, err := e.rec.Grant(t.Context(), a)
			var pe *postgres.Error
			switch {
			case err == nil:
				t.Fatal("Grant succeeded")
			case !errors.As(err, &pe):
				t.Fatalf("Grant: %v (%T), want an *Error", err, err)
			case workflow.IsPermanent(err) != tt.permanent:
				t.Errorf("Grant: %v: permanent = %t, want %t", err, workflow.IsPermanent(err), tt.permanent)
			case tt.sentinel != nil && !errors.Is(err, tt.sentinel):
				t.Errorf("Grant: %v, want it to wrap %v", err, tt.sentinel)
			case tt.sqlState != "" && pe.SQLState() != tt.sqlState:
				t.Errorf("Grant: %v: SQLSTATE %q, want %q", err, pe.SQLState(), tt.sqlState)
			}
			if pe.Op != "grant" || pe.Connector == "" {
				t.Errorf("Error has Op %q, Connector %q", pe.Op, pe.Connector)
			}
			if strings.Contains(err.Error(), adminPassword) {
				t.Errorf("Grant: %v holds latch's password", err)
			}
		})
	}
}

func withEntitlement(role string) func(workflow.Access) workflow.Access {
	return func(a workflow.Access) workflow.Access { a.Entitlement = role; return a }
}

// asWeak makes the connector log in as a role with no privilege to grant.
func asWeak(c *postgres.Config) { c.User, c.Password = "latch_weak", "weak-secret" }

func TestUnixSocket(t *testing.T) {
	srv := testServer(t)
	sl := newSlice(t, srv, "jane")
	c, err := postgres.New(postgres.Config{
		Name:             "socket",
		Host:             srv.Dir, // local connections are trusted on the test server
		Port:             srv.Port,
		Database:         database,
		User:             adminUser,
		Mode:             postgres.ModeEphemeral,
		UsernameTemplate: sl.template(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := workflow.Access{GrantID: "socket-1", User: jane, Entitlement: entitlement, ExpiresAt: timeIn(60)}
	g, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	u, err := connectionURL(g.Message)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("host"); got != srv.Dir {
		t.Errorf("connection string %s: host %q, want the socket directory %q", redact(u), got, srv.Dir)
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect with %s: %v", redact(u), err)
	}
	conn.Close(t.Context())
	if err := c.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}

func redact(u *url.URL) string { return u.Redacted() }

func TestQuoteLiteralOnServer(t *testing.T) {
	srv := testServer(t)
	values := []string{
		"", "plain", "it's", `back\slash`, `\'`, `'; DROP TABLE secret; --`, `\\''\\`, "ünïcode", "tab\tnew\nline",
	}
	for _, conforming := range []string{"on", "off"} {
		t.Run("standard_conforming_strings="+conforming, func(t *testing.T) {
			conn, err := srv.superConn(t.Context(), database)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(t.Context(), "SET standard_conforming_strings = "+conforming); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				// Sent as written, in the simple protocol, like the
				// connector's DDL.
				results, err := conn.PgConn().Exec(t.Context(), "SELECT "+postgres.QuoteLiteral(v)).ReadAll()
				var got string
				if err == nil {
					got = string(results[0].Rows[0][0])
				}
				if err != nil || got != v {
					t.Errorf("SELECT %s = %q, %v; want %q", postgres.QuoteLiteral(v), got, err, v)
				}
			}
		})
	}
}

func TestRefreshKeepsThePassword(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	a := e.access(jane, "extended")
	user, password := credentials(t, e.grant(t, a))

	// An extension moves the expiry and leaves the credentials alone.
	a.Refresh, a.ExpiresAt = true, timeIn(7200)
	g, err := e.conn.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if g.Message != "" {
		t.Errorf("the refresh issued new credentials: %q", g.Message)
	}
	conn := e.srv.session(t, user, password, database)
	if ok, err := canRead(t.Context(), conn); err != nil || !ok {
		t.Errorf("read with the first credentials after the refresh: %t, %v; want true", ok, err)
	}
	var until time.Time
	e.srv.superQuery(t, []any{&until}, "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", user)
	if !until.Equal(a.ExpiresAt) {
		t.Errorf("VALID UNTIL %s, want %s", until, a.ExpiresAt)
	}
}
