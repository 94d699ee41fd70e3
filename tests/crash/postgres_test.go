package crash_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/connectors/connectortest"
)

// The throwaway server's roles and database. These few helpers repeat
// what connectors/postgres/server_test.go does for its own tests.
const (
	pgSuperuser = "postgres"
	pgLatchUser = "latch"        // the role latch connects as: CREATEROLE and pg_signal_backend
	pgLatchPass = "latch-secret" // its password, given to latch through pgPasswordEnv
	pgDatabase  = "app"
	pgRole      = "app_readonly" // the entitlement: the only role that may read table secret

	pgPasswordEnv = "LATCH_CRASH_PG_PASSWORD"
)

// pgServer is one PostgreSQL started for a test, on 127.0.0.1 and a Unix
// socket in its directory.
type pgServer struct {
	dir  string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{}

	bin, data string              // the postgres binary and the data directory
	cred      *syscall.Credential // whom it runs as
}

// startPostgres starts a PostgreSQL for the test, set up with the roles
// and the table above, and stops it when the test ends. Without
// PostgreSQL's binaries the test skips (fails under LATCH_INTEGRATION=1).
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	initdb := connectortest.Binary(t, "initdb", "postgresql", "/usr/lib/postgresql/*/bin")
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(postgres); err != nil {
		t.Fatalf("postgres beside initdb: %v", err)
	}
	cred, err := pgCredential()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the server runs as another user, who must reach it.
	dir, err := os.MkdirTemp("", "latch-crash-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	s := &pgServer{dir: dir, log: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	init := exec.Command(initdb, "-D", data, "-U", pgSuperuser, "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	init.Dir = dir
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if s.port, err = connectortest.FreePort(); err != nil {
		t.Fatal(err)
	}
	s.bin, s.data, s.cred = postgres, data, cred
	s.launch(t)
	t.Cleanup(s.stop)
	if err := s.setup(); err != nil {
		t.Fatalf("set up PostgreSQL: %v", err)
	}
	return s
}

// launch starts the server on its data directory and port, and waits
// until it takes connections. It starts it again after stop.
func (s *pgServer) launch(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.bin, "-D", s.data, "-k", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=16MB")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	done := s.done
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// pgCredential is whom the server runs as: initdb and postgres refuse to
// run as root.
func pgCredential() (*syscall.Credential, error) {
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

// waitReady polls the server, a process of its own, until it takes
// connections.
func (s *pgServer) waitReady(limit time.Duration) error {
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
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *pgServer) stop() {
	select {
	case <-s.done:
		return // stopped already
	default:
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *pgServer) superConn(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.dir, s.port, pgSuperuser, db))
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func (s *pgServer) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.superConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", pgLatchUser, pgLatchPass),
		"GRANT pg_signal_backend TO " + pgLatchUser,
		"CREATE ROLE " + pgRole + " NOLOGIN",
		"CREATE DATABASE " + pgDatabase,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	app, err := s.superConn(ctx, pgDatabase)
	if err != nil {
		return err
	}
	defer app.Close(ctx)
	for _, stmt := range []string{
		"CREATE TABLE secret (v int)",
		"INSERT INTO secret VALUES (42)",
		"REVOKE ALL ON secret FROM PUBLIC",
		"GRANT SELECT ON secret TO " + pgRole,
	} {
		if _, err := app.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// latchRole is a login role latch created for a grant, found by the
// comment the connector puts on it.
type latchRole struct {
	name     string
	grantID  string
	sessions int // open sessions of the role
}

const markerPrefix = "latch grant "

// latchRoles lists the roles latch created, with their open sessions.
func (s *pgServer) latchRoles(ctx context.Context) ([]latchRole, error) {
	conn, err := s.superConn(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `
		SELECT r.rolname, d.description,
		       (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid)
		FROM pg_roles r
		JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
		WHERE d.description LIKE $1`, markerPrefix+"%")
	if err != nil {
		return nil, err
	}
	var out []latchRole
	for rows.Next() {
		var r latchRole
		var comment string
		if err := rows.Scan(&r.name, &comment, &r.sessions); err != nil {
			return nil, err
		}
		// "latch grant <grant id> of connector <name>"
		r.grantID, _, _ = strings.Cut(strings.TrimPrefix(comment, markerPrefix), " ")
		out = append(out, r)
	}
	return out, rows.Err()
}
