// Package pgtest starts a throwaway PostgreSQL server for tests: initdb in
// a directory of its own, the server on a free port of 127.0.0.1 and a Unix
// socket in that directory, trust for the superuser over the socket and
// SCRAM passwords over TCP, and durability turned off for speed. As root it
// runs the server as the postgres user (or nobody), since PostgreSQL
// refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/connectors/connectortest"
)

// Superuser is the server's superuser, reached through the socket.
const Superuser = "postgres"

// Server is one PostgreSQL server for tests.
type Server struct {
	Dir  string // holds the data directory, the socket and the log
	Port int    // on 127.0.0.1
	Log  string // the server's output

	bin, data string
	args      []string
	cred      *syscall.Credential
	cmd       *exec.Cmd
	done      chan struct{} // closed when the server has exited
}

// Start initialises a cluster with initdb (the path of the binary; postgres
// must be beside it) and starts the server with the extra settings given as
// "name=value". Remove stops it and deletes its files.
func Start(initdb string, settings ...string) (_ *Server, err error) {
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(postgres); err != nil {
		return nil, fmt.Errorf("postgres beside initdb: %w", err)
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: the server runs as another user, who must reach it.
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
	s := &Server{Dir: dir, Log: filepath.Join(dir, "server.log"), bin: postgres, data: filepath.Join(dir, "data"), cred: cred}
	init := exec.Command(initdb, "-D", s.data, "-U", Superuser, "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	init.Dir = dir
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if s.Port, err = connectortest.FreePort(); err != nil {
		return nil, err
	}
	s.args = []string{"-D", s.data, "-k", dir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=100", "-c", "shared_buffers=16MB"}
	for _, kv := range settings {
		s.args = append(s.args, "-c", kv)
	}
	if err := s.Launch(); err != nil {
		return nil, err
	}
	return s, nil
}

// credential is whom the server runs as.
func credential() (*syscall.Credential, error) {
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

// Launch starts the server and waits until it takes connections; after
// Stop it starts it again on the same data and port.
func (s *Server) Launch() error {
	logFile, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	cmd, done := s.cmd, s.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitReady polls the server until the superuser can connect.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := s.SuperConn(ctx, "postgres")
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(s.Log)
			return fmt.Errorf("postgres exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond) // the server's own start-up
	}
}

// Stop shuts the server down (fast shutdown), keeping its files.
func (s *Server) Stop() {
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

// Remove stops the server and deletes its files.
func (s *Server) Remove() {
	s.Stop()
	os.RemoveAll(s.Dir)
}

// SuperConn connects as the superuser through the Unix socket.
func (s *Server) SuperConn(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.Dir, s.Port, Superuser, db))
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// Exec runs statements as the superuser in a database, in order.
func (s *Server) Exec(ctx context.Context, db string, stmts ...string) error {
	conn, err := s.SuperConn(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}
