package sshcert_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/connectors/connectortest"
)

// The tests of this package share one sshd, started by the first test
// that needs it and stopped by TestMain. Each test trusts a certificate
// authority of its own and uses key pairs of its own, so that tests do not
// see each other's certificates; they share the revoked keys file, as
// connectors with different authorities may.
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop sshd:", err)
		}
	}
	os.Exit(code)
}

// server is a running sshd on 127.0.0.1 with its files.
type server struct {
	dir        string // everything of the server's, removed by stop
	port       int
	login      string // the account tests log in as: the current user
	trustedCAs string // its TrustedUserCAKeys file
	revokedDir string // the directory of its RevokedKeys file
	revoked    string // its RevokedKeys file
	logFile    string
	client     string // the ssh client
	cmd        *exec.Cmd
	exited     chan struct{} // closed when sshd has exited

	mu  sync.Mutex // guards cas and the trusted CAs file
	cas map[string]bool
}

// sshd returns the shared server, starting it if need be. Without the
// binaries the test skips, or fails under LATCH_INTEGRATION=1.
func sshd(t testing.TB) *server {
	t.Helper()
	bin := connectortest.Binary(t, "sshd", "openssh-server", "/usr/sbin")
	client := connectortest.Binary(t, "ssh", "openssh-client")
	shared.once.Do(func() { shared.srv, shared.err = startServer(bin, client) })
	if shared.err != nil {
		t.Fatalf("start sshd: %v", shared.err)
	}
	return shared.srv
}

func startServer(bin, client string) (*server, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// The privilege separation directory sshd needs as root.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "latch-sshcert-sshd-")
	if err != nil {
		return nil, err
	}
	s := &server{
		dir:        dir,
		login:      u.Username,
		trustedCAs: filepath.Join(dir, "trusted_user_ca_keys"),
		revokedDir: filepath.Join(dir, "revoked"),
		logFile:    filepath.Join(dir, "sshd.log"),
		client:     client,
		cas:        map[string]bool{},
	}
	s.revoked = filepath.Join(s.revokedDir, "revoked_keys")
	if err := s.setUp(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The free port found may be taken before sshd binds it: try again.
	for range 3 {
		if err = s.start(bin); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// setUp writes the server's host key and files.
func (s *server) setUp() error {
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(s.revokedDir, 0o755); err != nil {
		return err
	}
	// sshd refuses every key while its RevokedKeys file is missing.
	if err := os.WriteFile(s.revoked, nil, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(s.trustedCAs, nil, 0o644); err != nil {
		return err
	}
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	return writePrivateKey(filepath.Join(s.dir, "ssh_host_ed25519_key"), hostKey)
}

func (s *server) start(bin string) error {
	port, err := connectortest.FreePort()
	if err != nil {
		return err
	}
	s.port = port
	config := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(config, []byte(s.config()), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-D", "-f", config, "-E", s.logFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := s.waitReady(10 * time.Second); err != nil {
		s.stop()
		return fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return nil
}

func (s *server) config() string {
	return strings.Join([]string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(s.port),
		"HostKey " + filepath.Join(s.dir, "ssh_host_ed25519_key"),
		"PidFile " + filepath.Join(s.dir, "sshd.pid"),
		"TrustedUserCAKeys " + s.trustedCAs,
		"RevokedKeys " + s.revoked,
		"AuthorizedKeysFile none",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin yes",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"MaxStartups 64:30:128",
		"LogLevel VERBOSE",
		// bash reads ~/.bashrc when sshd starts it, unless it is a
		// nested shell: the test user's start-up files have nothing to
		// do with the certificate and may be slow.
		"SetEnv SHLVL=1",
		"",
	}, "\n")
}

// waitReady waits until sshd greets a connection.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for {
		select {
		case <-s.exited:
			return errors.New("sshd exited")
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			banner, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(banner, "SSH-2.0-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd does not answer on %s after %s", addr, limit)
		}
		// sshd is an external server: poll it until it is ready.
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	return os.RemoveAll(s.dir)
}

// logTail returns the end of sshd's log, for failure messages.
func (s *server) logTail() string {
	data, _ := os.ReadFile(s.logFile)
	if len(data) > 4<<10 {
		data = data[len(data)-4<<10:]
	}
	return "sshd log:\n" + string(data)
}

// trust makes sshd trust ca until the test ends.
func (s *server) trust(t testing.TB, ca ssh.PublicKey) {
	t.Helper()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca)))
	if err := s.setTrusted(line, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.setTrusted(line, false); err != nil {
			t.Error(err)
		}
	})
}

func (s *server) setTrusted(line string, trusted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if trusted {
		s.cas[line] = true
	} else {
		delete(s.cas, line)
	}
	var b strings.Builder
	for ca := range s.cas {
		b.WriteString(ca + "\n")
	}
	// Replaced by a rename, so that sshd never reads half a file.
	tmp := s.trustedCAs + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.trustedCAs)
}

// loginResult runs `echo ok` on the server as s.login with the private
// key in keyFile and the certificate in certFile. It reports whether sshd
// let it in; an error is anything other than an answer either way.
func (s *server) loginResult(ctx context.Context, keyFile, certFile string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.client,
		"-F", "/dev/null",
		"-i", keyFile,
		"-o", "CertificateFile="+certFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(s.port),
		s.login+"@127.0.0.1", "echo", "ok")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil && strings.TrimSpace(stdout.String()) == "ok":
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 255 && strings.Contains(stderr.String(), "Permission denied"):
		return false, nil
	case err == nil:
		return false, fmt.Errorf("ssh printed %q, want ok", stdout.String())
	default:
		return false, fmt.Errorf("ssh: %v: %s\n%s", err, strings.TrimSpace(stderr.String()), s.logTail())
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.

// writePrivateKey writes key to path in the OpenSSH format, readable by
// its owner alone.
func writePrivateKey(path string, key any) error {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}
