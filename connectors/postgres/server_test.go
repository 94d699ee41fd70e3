package postgres_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/internal/pgtest"
)

// The test server's fixed roles and database, made once at start.
const (
	adminUser      = "latch_admin"  // the role latch connects as: CREATEROLE and pg_signal_backend
	adminPassword  = "admin-secret" // its password
	personPassword = "person-secret"
	database       = "app"
	entitlement    = "readonly" // may read table secret
)

// server is one PostgreSQL started for the whole test binary: tests share
// it, each working in a slice of its own (see newSlice).
type server struct {
	*pgtest.Server
}

var shared struct {
	once   sync.Once
	srv    *server
	err    error
	slices atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Remove()
	}
	os.Exit(code)
}

// testServer returns the shared server, starting it on first use. Without
// PostgreSQL's binaries the test skips, or fails under LATCH_INTEGRATION=1.
func testServer(t testing.TB) *server {
	t.Helper()
	initdb := connectortest.Binary(t, "initdb", "postgresql", "/usr/lib/postgresql/*/bin")
	shared.once.Do(func() { shared.srv, shared.err = startServer(initdb) })
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

func startServer(initdb string) (*server, error) {
	// log_statement=ddl, so that a test can check that no password reaches
	// the log.
	srv, err := pgtest.Start(initdb, "log_statement=ddl")
	if err != nil {
		return nil, err
	}
	s := &server{srv}
	if err := s.setup(); err != nil {
		s.Remove()
		return nil, fmt.Errorf("set up: %w", err)
	}
	return s, nil
}

// superConn connects as the superuser through the Unix socket.
func (s *server) superConn(ctx context.Context, db string) (*pgx.Conn, error) {
	return s.SuperConn(ctx, db)
}

// connect logs in over TCP with a password, as a beneficiary does.
func (s *server) connect(ctx context.Context, user, password, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s sslmode=disable", s.Port, db))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = user, password
	return pgx.ConnectConfig(ctx, cfg)
}

func (s *server) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, "postgres",
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", adminUser, adminPassword),
		"GRANT pg_signal_backend TO "+adminUser,
		"CREATE ROLE "+entitlement+" NOLOGIN",
		"CREATE DATABASE "+database,
	); err != nil {
		return err
	}
	return s.Exec(ctx, database,
		"CREATE TABLE secret (v int)",
		"INSERT INTO secret VALUES (42)",
		"REVOKE ALL ON secret FROM PUBLIC",
		"GRANT SELECT ON secret TO "+entitlement,
		// Where an ephemeral role can create something of its own.
		"CREATE SCHEMA scratch",
		"GRANT USAGE, CREATE ON SCHEMA scratch TO "+entitlement,
	)
}

// super runs statements as the superuser on database db.
func (s *server) super(t testing.TB, db string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.superConn(ctx, db)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	defer conn.Close(ctx)
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// superQuery runs one query as the superuser on database app and scans
// its single row into dest.
func (s *server) superQuery(t testing.TB, dest []any, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.superConn(ctx, database)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// roleExists reports whether the role called name exists.
func (s *server) roleExists(t testing.TB, name string) bool {
	t.Helper()
	var exists bool
	s.superQuery(t, []any{&exists}, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name)
	return exists
}

// slice is a test's own part of the shared server: a prefix for the login
// roles of its people, made by the superuser with personPassword.
type slice struct {
	srv    *server
	prefix string // such as "t12_"
}

// newSlice returns a fresh slice with login roles for the people with
// the given local parts. The roles are dropped at the end of the test.
func newSlice(t testing.TB, srv *server, people ...string) *slice {
	t.Helper()
	sl := &slice{srv: srv, prefix: fmt.Sprintf("t%d_", shared.slices.Add(1))}
	var stmts []string
	for _, p := range people {
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", sl.prefix+p, personPassword))
	}
	srv.super(t, "postgres", stmts...)
	return sl
}

// template is the username template that names this slice's people.
func (sl *slice) template() string { return sl.prefix + "{{.LocalPart}}" }

// proxy forwards loopback TCP connections to the server, so that a test
// can take the server away from the connector alone: Down closes the
// listener and cuts every connection, Up listens again on the same port.
type proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{target: target, conns: make(map[net.Conn]struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

func (p *proxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Either side ending ends both.
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(server, client) })
	wg.Go(func() { pipe(client, server) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// track records a forwarded pair, or closes it if the proxy is down.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Down and Up are the connectortest.Target hooks.
func (p *proxy) Down(*testing.T) { p.down() }

func (p *proxy) Up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
