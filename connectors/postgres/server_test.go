package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/connectors/connectortest"
)

// The test server's fixed roles and database, made once at start.
const (
	adminUser      = "latch_admin"  // the role latch connects as: CREATEROLE and pg_signal_backend
	adminPassword  = "admin-secret" // its password
	personPassword = "person-secret"
	database       = "app"
	entitlement    = "readonly" // may read table secret
	superuser      = "postgres"
)

// server is one PostgreSQL started for the whole test binary: tests share
// it, each working in a slice of its own (see newSlice).
type server struct {
	dir  string // holds the data directory, the socket and the log
	port int    // on 127.0.0.1
	log  string // the server's output
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
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
		shared.srv.stop()
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

// serverCredential is whom the server runs as: initdb and postgres refuse
// to run as root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: 65534, Gid: 65534} // nobody
	if u, err := user.Lookup("postgres"); err == nil {
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return cred, nil
}

func startServer(initdb string) (_ *server, err error) {
	bin := filepath.Dir(initdb)
	postgres := filepath.Join(bin, "postgres")
	if _, err := os.Stat(postgres); err != nil {
		return nil, fmt.Errorf("postgres beside initdb: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "latch-postgres-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	s := &server{dir: dir, log: filepath.Join(dir, "server.log"), done: make(chan struct{})}

	init := exec.Command(initdb, "-D", data, "-U", superuser, "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	init.Dir = dir
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}

	if s.port, err = connectortest.FreePort(); err != nil {
		return nil, err
	}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(postgres, "-D", data, "-k", dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=16MB",
		// So that a test can check that no password reaches the log.
		"-c", "log_statement=ddl")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.setup(); err != nil {
		s.stop()
		return nil, fmt.Errorf("set up: %w", err)
	}
	return s, nil
}

// waitReady polls the server until the superuser can connect.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := s.superConn(ctx, "postgres")
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(s.log)
			return fmt.Errorf("postgres exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond) // the server's own start-up
	}
}

// stop shuts the server down (fast shutdown) and removes its files.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// superConn connects as the superuser through the Unix socket.
func (s *server) superConn(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.dir, s.port, superuser, db))
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// connect logs in over TCP with a password, as a beneficiary does.
func (s *server) connect(ctx context.Context, user, password, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s sslmode=disable", s.port, db))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password = user, password
	return pgx.ConnectConfig(ctx, cfg)
}

func (s *server) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.superConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", adminUser, adminPassword),
		"GRANT pg_signal_backend TO " + adminUser,
		"CREATE ROLE " + entitlement + " NOLOGIN",
		"CREATE DATABASE " + database,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	app, err := s.superConn(ctx, database)
	if err != nil {
		return err
	}
	defer app.Close(ctx)
	for _, stmt := range []string{
		"CREATE TABLE secret (v int)",
		"INSERT INTO secret VALUES (42)",
		"REVOKE ALL ON secret FROM PUBLIC",
		"GRANT SELECT ON secret TO " + entitlement,
		// Where an ephemeral role can create something of its own.
		"CREATE SCHEMA scratch",
		"GRANT USAGE, CREATE ON SCHEMA scratch TO " + entitlement,
	} {
		if _, err := app.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
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
