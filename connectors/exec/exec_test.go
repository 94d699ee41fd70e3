package exec_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	latchexec "github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/workflow"
)

// access returns the access the tests grant and revoke.
func access() workflow.Access {
	return workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		RequestID:   "0190a1b2-0000-7000-8000-000000000001",
		User:        workflow.User{SlackID: "U0123ABCD", Email: "jane@example.com"},
		Entitlement: "readers",
		ExpiresAt:   time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
	}
}

// shell returns a configuration that runs script with /bin/sh.
func shell(script string, env ...string) latchexec.Config {
	return latchexec.Config{Command: "/bin/sh", Args: []string{"-c", script}, Env: env}
}

func newConnector(t *testing.T, c latchexec.Config) *latchexec.Connector {
	t.Helper()
	conn, err := latchexec.New("test", c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return conn
}

// asError returns the *latchexec.Error in err, failing the test if there is none.
func asError(t *testing.T, err error) *latchexec.Error {
	t.Helper()
	var e *latchexec.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *exec.Error", err, err)
	}
	return e
}

// readPID reads the process id a script wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("read pid: %v", err)
	}
	return pid
}

// waitForFile waits until a script has created path.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s was not created", path)
}

// alive reports whether the process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// checkGone fails the test unless each of pids ends soon: SIGKILL is
// delivered asynchronously.
func checkGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d is still running", pid)
		}
	}
}

// checkNoGoroutineLeak fails the test if, once it has ended, more
// goroutines run than when it started.
func checkNoGoroutineLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := runtime.NumGoroutine(); got > before {
			t.Errorf("%d goroutines left running, want %d", got, before)
		}
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name        string
		connector   string
		config      latchexec.Config
		wantErr     bool
		wantTimeout time.Duration
	}{
		{name: "defaults", connector: "files", config: latchexec.Config{Command: "/bin/true"}, wantTimeout: latchexec.DefaultTimeout},
		{name: "timeout", connector: "files", config: latchexec.Config{Command: "/bin/true", Timeout: 5 * time.Second}, wantTimeout: 5 * time.Second},
		{name: "env", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"A=1", "HOME", "PATH=/opt/bin", "EMPTY=", "B=x=y"}}, wantTimeout: latchexec.DefaultTimeout},
		{name: "no name", config: latchexec.Config{Command: "/bin/true"}, wantErr: true},
		{name: "no command", connector: "files", wantErr: true},
		{name: "relative command", connector: "files", config: latchexec.Config{Command: "bin/grant.sh"}, wantErr: true},
		{name: "bare command", connector: "files", config: latchexec.Config{Command: "grant.sh"}, wantErr: true},
		{name: "negative timeout", connector: "files", config: latchexec.Config{Command: "/bin/true", Timeout: -time.Second}, wantErr: true},
		{name: "NUL in argument", connector: "files", config: latchexec.Config{Command: "/bin/true", Args: []string{"a\x00b"}}, wantErr: true},
		{name: "reserved env name", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"LATCH_USER=U1"}}, wantErr: true},
		{name: "reserved bare env name", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"LATCH_SLACK_BOT_TOKEN"}}, wantErr: true},
		{name: "env name with a dash", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"A-B=1"}}, wantErr: true},
		{name: "env name with a digit first", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"1A=1"}}, wantErr: true},
		{name: "empty env entry", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{""}}, wantErr: true},
		{name: "env set twice", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"A=1", "A"}}, wantErr: true},
		{name: "NUL in env value", connector: "files", config: latchexec.Config{Command: "/bin/true", Env: []string{"A=\x00"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := latchexec.New(tt.connector, tt.config)
			if tt.wantErr {
				if !errors.Is(err, latchexec.ErrInvalidConfig) {
					t.Fatalf("New: got error %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got.Name() != tt.connector {
				t.Errorf("Name() = %q, want %q", got.Name(), tt.connector)
			}
			if timeout := latchexec.TimeoutOf(got); timeout != tt.wantTimeout {
				t.Errorf("timeout = %s, want %s", timeout, tt.wantTimeout)
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := latchexec.New("files", latchexec.Config{Command: "grant.sh", Timeout: -1, Env: []string{"LATCH_X=1"}})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("New: got %v, want several errors", err)
	}
	if got := len(joined.Unwrap()); got != 3 {
		t.Errorf("New reported %d problems, want 3: %v", got, err)
	}
}

// The command sees only PATH, the LATCH_ variables and its configured env:
// none of latch's own environment, which holds tokens.
func TestEnvironment(t *testing.T) {
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-not-a-real-token")
	t.Setenv("LATCH_SLACK_APP_TOKEN", "xapp-not-a-real-token")
	t.Setenv("PASSED_ON", "from latch")
	t.Setenv("NOT_SET", "")
	os.Unsetenv("NOT_SET")

	base := map[string]string{
		"PATH":              latchexec.DefaultPath,
		"LATCH_ACTION":      "grant",
		"LATCH_CONNECTOR":   "test",
		"LATCH_GRANT_ID":    "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		"LATCH_REQUEST_ID":  "0190a1b2-0000-7000-8000-000000000001",
		"LATCH_USER":        "U0123ABCD",
		"LATCH_EMAIL":       "jane@example.com",
		"LATCH_ENTITLEMENT": "readers",
		"LATCH_EXPIRES_AT":  "2030-01-02T15:04:05Z",
	}
	with := func(changes map[string]string) map[string]string {
		m := maps.Clone(base)
		for k, v := range changes {
			if v == "-" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	tests := []struct {
		name   string
		env    []string
		access func(*workflow.Access)
		want   map[string]string
	}{
		{
			name: "nothing configured",
			want: base,
		},
		{
			name: "configured env",
			env:  []string{"STATE_DIR=/var/lib/files", "PASSED_ON", "NOT_SET", "EMPTY=", "URL=https://x/?a=b"},
			want: with(map[string]string{"STATE_DIR": "/var/lib/files", "PASSED_ON": "from latch", "EMPTY": "", "URL": "https://x/?a=b"}),
		},
		{
			name: "configured PATH",
			env:  []string{"PATH=/opt/target/bin:/usr/bin"},
			want: with(map[string]string{"PATH": "/opt/target/bin:/usr/bin"}),
		},
		{
			name:   "expiry in another zone is given in UTC",
			access: func(a *workflow.Access) { a.ExpiresAt = time.Date(2030, 7, 1, 12, 0, 0, 999, paris) },
			want:   with(map[string]string{"LATCH_EXPIRES_AT": time.Date(2030, 7, 1, 12, 0, 0, 0, paris).UTC().Format(time.RFC3339)}),
		},
		{
			name:   "no expiry",
			access: func(a *workflow.Access) { a.ExpiresAt = time.Time{} },
			want:   with(map[string]string{"LATCH_EXPIRES_AT": ""}),
		},
		{
			name: "params",
			access: func(a *workflow.Access) {
				a.Params = map[string]string{"public_key": "ssh-ed25519 AAAA jane", "db.schema": "sales", "team-name": "", "Ticket": "SEC-1"}
			},
			want: with(map[string]string{
				"LATCH_PARAM_PUBLIC_KEY": "ssh-ed25519 AAAA jane",
				"LATCH_PARAM_DB_SCHEMA":  "sales",
				"LATCH_PARAM_TEAM_NAME":  "",
				"LATCH_PARAM_TICKET":     "SEC-1",
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConnector(t, latchexec.Config{Command: "/usr/bin/env", Env: tt.env})
			a := access()
			if tt.access != nil {
				tt.access(&a)
			}
			granted, err := c.Grant(t.Context(), a)
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			got := make(map[string]string)
			for line := range strings.Lines(granted.Message) {
				name, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
				got[name] = value
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("environment:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestRevokeEnvironment(t *testing.T) {
	dir := t.TempDir()
	c := newConnector(t, shell(`printf '%s' "$LATCH_ACTION" >"$DIR/action"`, "DIR="+dir))
	if err := c.Revoke(t.Context(), access()); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "action"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "revoke" {
		t.Errorf("LATCH_ACTION = %q, want revoke", got)
	}
}

func TestGrantOutput(t *testing.T) {
	tests := []struct {
		name        string
		script      string
		wantMessage string
		wantFacts   map[string]string
	}{
		{name: "nothing", script: `true`},
		{name: "message", script: `printf '\n  Connect with: psql -U latch_jane  \n\n'`, wantMessage: "Connect with: psql -U latch_jane"},
		{
			name:        "message and facts",
			script:      `echo "latch-fact account=latch_jane"; echo "Your password: s3cret"; echo "latch-fact role = readonly "; echo "Valid until $LATCH_EXPIRES_AT."`,
			wantMessage: "Your password: s3cret\nValid until 2030-01-02T15:04:05Z.",
			wantFacts:   map[string]string{"account": "latch_jane", "role": "readonly"},
		},
		{name: "facts only", script: `echo "latch-fact account=latch_jane"`, wantFacts: map[string]string{"account": "latch_jane"}},
		{name: "value with =", script: `echo "latch-fact dn=cn=jane,ou=people"`, wantFacts: map[string]string{"dn": "cn=jane,ou=people"}},
		{name: "no value", script: `echo "latch-fact sessions_terminated"`, wantFacts: map[string]string{"sessions_terminated": ""}},
		{name: "no key is dropped", script: `echo "latch-fact =x"; echo hello`, wantMessage: "hello"},
		{name: "last value wins", script: `echo "latch-fact a=1"; echo "latch-fact a=2"`, wantFacts: map[string]string{"a": "2"}},
		{name: "only at the start of a line", script: `echo "see latch-fact a=1"; echo "latch-factor=2"`, wantMessage: "see latch-fact a=1\nlatch-factor=2"},
		{name: "invalid UTF-8 is replaced", script: `printf 'caf\351\n'`, wantMessage: "caf\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConnector(t, shell(tt.script))
			got, err := c.Grant(t.Context(), access())
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			if got.Message != tt.wantMessage {
				t.Errorf("Message = %q, want %q", got.Message, tt.wantMessage)
			}
			if !maps.Equal(got.Facts, tt.wantFacts) {
				t.Errorf("Facts = %v, want %v", got.Facts, tt.wantFacts)
			}
		})
	}
}

// A command that writes more than is kept is neither blocked nor failed,
// and the message is cut at a character boundary.
func TestGrantOutputIsBounded(t *testing.T) {
	// 1 byte, then two-byte characters: the limit falls inside one.
	c := newConnector(t, shell(`printf x; i=0; while [ $i -lt 40000 ]; do printf '\303\251'; i=$((i+1)); done; echo "latch-fact late=1"`))
	got, err := c.Grant(t.Context(), access())
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if len(got.Message) > latchexec.MaxStdout || len(got.Message) < latchexec.MaxStdout-utf8.UTFMax {
		t.Errorf("message is %d bytes long, want about %d", len(got.Message), latchexec.MaxStdout)
	}
	if !utf8.ValidString(got.Message) || strings.ContainsRune(got.Message, utf8.RuneError) {
		t.Errorf("message is cut inside a character: ...%q", got.Message[len(got.Message)-8:])
	}
	if got.Facts != nil {
		t.Errorf("Facts = %v, want none: the fact came after the limit", got.Facts)
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name          string
		script        string
		wantErr       bool
		wantPermanent bool
		wantExit      int
		wantSignal    syscall.Signal
	}{
		{name: "success", script: `exit 0`},
		{name: "data error", script: `echo "no such user" >&2; exit 65`, wantErr: true, wantPermanent: true, wantExit: 65},
		{name: "failure", script: `echo "connection refused" >&2; exit 1`, wantErr: true, wantExit: 1},
		{name: "usage", script: `exit 64`, wantErr: true, wantExit: 64},
		{name: "command not found", script: `/nonexistent/grant`, wantErr: true, wantExit: 127},
		{name: "killed", script: `kill -KILL $$`, wantErr: true, wantExit: -1, wantSignal: syscall.SIGKILL},
		{name: "terminated", script: `kill -TERM $$`, wantErr: true, wantExit: -1, wantSignal: syscall.SIGTERM},
	}
	for _, tt := range tests {
		for _, action := range []string{"grant", "revoke"} {
			t.Run(tt.name+"/"+action, func(t *testing.T) {
				c := newConnector(t, shell(tt.script))
				var err error
				if action == "grant" {
					_, err = c.Grant(t.Context(), access())
				} else {
					err = c.Revoke(t.Context(), access())
				}
				if !tt.wantErr {
					if err != nil {
						t.Fatalf("got error %v, want none", err)
					}
					return
				}
				e := asError(t, err)
				if got := errors.Is(err, workflow.ErrPermanent); got != tt.wantPermanent {
					t.Errorf("permanent = %v, want %v (%v)", got, tt.wantPermanent, err)
				}
				if e.Action != action || e.Connector != "test" {
					t.Errorf("Action, Connector = %q, %q, want %q, test", e.Action, e.Connector, action)
				}
				if e.ExitCode != tt.wantExit {
					t.Errorf("ExitCode = %d, want %d", e.ExitCode, tt.wantExit)
				}
				if e.Signal != tt.wantSignal {
					t.Errorf("Signal = %v, want %v", e.Signal, tt.wantSignal)
				}
				if e.TimedOut {
					t.Errorf("TimedOut = true, want false")
				}
				var exitErr *exec.ExitError
				if !errors.As(err, &exitErr) {
					t.Errorf("error %v does not wrap an *os/exec.ExitError", err)
				}
			})
		}
	}
}

func TestStderrTail(t *testing.T) {
	long := `i=0; while [ $i -lt 3000 ]; do printf 'line %d\n' $i >&2; i=$((i+1)); done; printf 'the cause\n' >&2; exit 1`
	tests := []struct {
		name       string
		script     string
		want       string // the whole tail, or "" to check only wantSuffix
		wantSuffix string
	}{
		{name: "short", script: `printf '\n  cannot reach ldap.example.com  \n' >&2; exit 1`, want: "cannot reach ldap.example.com"},
		{name: "none", script: `exit 1`, want: ""},
		{name: "long", script: long, wantSuffix: "line 2999\nthe cause"},
		{name: "cut inside a character", script: `i=0; while [ $i -lt 3000 ]; do printf '\303\251' >&2; i=$((i+1)); done; printf x >&2; exit 1`, wantSuffix: "ééx"},
		{name: "invalid UTF-8", script: `printf 'bad \377 byte' >&2; exit 1`, want: "bad \uFFFD byte"},
		{name: "stdout is not stderr", script: `echo "to stdout"; exit 1`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConnector(t, shell(tt.script))
			_, err := c.Grant(t.Context(), access())
			e := asError(t, err)
			got := e.Stderr
			if len(got) > latchexec.MaxStderr {
				t.Errorf("Stderr is %d bytes long, want at most %d", len(got), latchexec.MaxStderr)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Stderr is not valid UTF-8: %q", got)
			}
			if tt.wantSuffix == "" && got != tt.want {
				t.Errorf("Stderr = %q, want %q", got, tt.want)
			}
			if tt.wantSuffix != "" && (!strings.HasSuffix(got, tt.wantSuffix) || len(got) < latchexec.MaxStderr-utf8.UTFMax-1) {
				t.Errorf("Stderr = %q (%d bytes), want the last %d bytes, ending in %q", got, len(got), latchexec.MaxStderr, tt.wantSuffix)
			}
			if got != "" && !strings.Contains(err.Error(), got) {
				t.Errorf("the error's text does not carry the stderr tail: %v", err)
			}
		})
	}
}

// spawner is a script that starts a sleeping child, records both process
// ids, and waits for the child.
const spawner = `sleep 60 & echo $! >"$DIR/child.tmp"; echo $$ >"$DIR/parent.tmp"
mv "$DIR/child.tmp" "$DIR/child"; mv "$DIR/parent.tmp" "$DIR/parent"
echo "started" >&2
wait`

func TestTimeoutKillsProcessGroup(t *testing.T) {
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	config := shell(spawner, "DIR="+dir)
	config.Timeout = 500 * time.Millisecond
	c := newConnector(t, config)

	start := time.Now()
	_, err := c.Grant(t.Context(), access())
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Grant took %s with a timeout of %s", elapsed, config.Timeout)
	}
	e := asError(t, err)
	if !e.TimedOut || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v (TimedOut %v), want a timeout", err, e.TimedOut)
	}
	if workflow.IsPermanent(err) {
		t.Errorf("a timeout is permanent, want transient: %v", err)
	}
	if e.Stderr != "started" {
		t.Errorf("Stderr = %q, want %q", e.Stderr, "started")
	}
	checkGone(t, readPID(t, filepath.Join(dir, "parent")), readPID(t, filepath.Join(dir, "child")))
}

func TestCancelKillsProcessGroup(t *testing.T) {
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	c := newConnector(t, shell(spawner, "DIR="+dir))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Revoke(ctx, access()) }()
	waitForFile(t, filepath.Join(dir, "parent"))
	cancel()

	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("Revoke did not return after its context was canceled")
	}
	e := asError(t, err)
	if !errors.Is(err, context.Canceled) || e.TimedOut {
		t.Errorf("got %v (TimedOut %v), want a cancelation", err, e.TimedOut)
	}
	if workflow.IsPermanent(err) {
		t.Errorf("a cancelation is permanent, want transient: %v", err)
	}
	checkGone(t, readPID(t, filepath.Join(dir, "parent")), readPID(t, filepath.Join(dir, "child")))
}

func TestCanceledBeforeStart(t *testing.T) {
	dir := t.TempDir()
	c := newConnector(t, shell(`touch "$DIR/ran"`, "DIR="+dir))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Grant(ctx, access())
	if !errors.Is(err, context.Canceled) || workflow.IsPermanent(err) {
		t.Errorf("got %v, want a transient cancelation", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran")
	}
}

// grantPromptly runs a grant whose command prints "done" and leaves a
// sleeping process behind, and checks that it returns without waiting for
// that process.
func grantPromptly(t *testing.T, c *latchexec.Connector) {
	t.Helper()
	start := time.Now()
	got, err := c.Grant(t.Context(), access())
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Grant took %s: it waited for the process left behind", elapsed)
	}
	if got.Message != "done" {
		t.Errorf("Message = %q, want %q", got.Message, "done")
	}
}

// Processes a command leaves behind in its group are killed when it exits,
// even if they hold its output open.
func TestExitKillsWhatIsLeftBehind(t *testing.T) {
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	grantPromptly(t, newConnector(t, shell(`sleep 60 & echo $! >"$DIR/child"; echo "done"`, "DIR="+dir)))
	checkGone(t, readPID(t, filepath.Join(dir, "child")))
}

// A process that left the command's group keeps running, but does not keep
// Grant waiting for the end of the output it holds open.
func TestDetachedProcessDoesNotHoldUp(t *testing.T) {
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Skip("no setsid(1) to detach a process with")
	}
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(dir, "child")); err == nil {
			pid := readPID(t, filepath.Join(dir, "child"))
			syscall.Kill(pid, syscall.SIGKILL)
			checkGone(t, pid)
		}
	})
	// The script waits until the detached process has written its pid, so
	// it has left the group when the script exits.
	grantPromptly(t, newConnector(t, shell(setsid+` sh -c 'echo $$ >"$DIR/child.tmp"; mv "$DIR/child.tmp" "$DIR/child"; exec sleep 60' &
while [ ! -e "$DIR/child" ]; do sleep 0.01; done
echo "done"`, "DIR="+dir)))
	if pid := readPID(t, filepath.Join(dir, "child")); !alive(pid) {
		t.Errorf("the detached process %d was killed", pid)
	}
}

func TestStartFailure(t *testing.T) {
	notExecutable := filepath.Join(t.TempDir(), "grant.sh")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
		want    error
	}{
		{"missing", "/nonexistent/grant.sh", os.ErrNotExist},
		{"not executable", notExecutable, os.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConnector(t, latchexec.Config{Command: tt.command})
			err := c.Revoke(t.Context(), access())
			e := asError(t, err)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if e.ExitCode != -1 || workflow.IsPermanent(err) {
				t.Errorf("got ExitCode %d, permanent %v, want -1 and transient", e.ExitCode, workflow.IsPermanent(err))
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	tests := []struct {
		name   string
		access func(*workflow.Access)
	}{
		{"params that become the same variable", func(a *workflow.Access) { a.Params = map[string]string{"public_key": "a", "public-key": "b"} }},
		{"params that differ in case only", func(a *workflow.Access) { a.Params = map[string]string{"key": "a", "KEY": "b"} }},
		{"param without a name", func(a *workflow.Access) { a.Params = map[string]string{"": "a"} }},
		{"NUL in a param", func(a *workflow.Access) { a.Params = map[string]string{"key": "a\x00b"} }},
		{"param too long", func(a *workflow.Access) { a.Params = map[string]string{"key": strings.Repeat("a", 1<<20)} }},
		{"NUL in the entitlement", func(a *workflow.Access) { a.Entitlement = "readers\x00" }},
		{"NUL in the email", func(a *workflow.Access) { a.User.Email = "jane@example.com\x00" }},
	}
	dir := t.TempDir()
	c := newConnector(t, shell(`touch "$DIR/ran"`, "DIR="+dir))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := access()
			tt.access(&a)
			_, err := c.Grant(t.Context(), a)
			if !errors.Is(err, latchexec.ErrInvalidInput) || !workflow.IsPermanent(err) {
				t.Errorf("got %v, want a permanent ErrInvalidInput", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
}

// The example script keeps its state in a file; running it again, in any
// order, changes nothing more.
func TestExampleScript(t *testing.T) {
	command, err := filepath.Abs("testdata/example.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("the example script needs flock(1)")
	}
	dir := t.TempDir()
	c := newConnector(t, exampleConfig(command, dir))
	jane, john := access(), access()
	john.GrantID, john.User = "0190a1b2-c3d4-7e5f-8a9b-000000000002", workflow.User{SlackID: "U0456EFGH", Email: "john@example.com"}

	grant := func(a workflow.Access) error { _, err := c.Grant(t.Context(), a); return err }
	revoke := func(a workflow.Access) error { return c.Revoke(t.Context(), a) }
	steps := []struct {
		name        string
		call        func(workflow.Access) error
		access      workflow.Access
		wantMembers string
	}{
		{"revoke never granted", revoke, jane, ""},
		{"grant", grant, jane, "jane@example.com\n"},
		{"grant again", grant, jane, "jane@example.com\n"},
		{"grant another", grant, john, "jane@example.com\njohn@example.com\n"},
		{"revoke", revoke, jane, "john@example.com\n"},
		{"revoke again", revoke, jane, "john@example.com\n"},
		{"revoke the other", revoke, john, ""},
		{"revoke the other again", revoke, john, ""},
	}
	for _, step := range steps {
		if err := step.call(step.access); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "readers"))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if string(got) != step.wantMembers {
			t.Errorf("%s: members = %q, want %q", step.name, got, step.wantMembers)
		}
	}

	failures := []struct {
		name          string
		config        latchexec.Config
		access        func(*workflow.Access)
		wantPermanent bool
	}{
		{"unknown group", exampleConfig(command, dir), func(a *workflow.Access) { a.Entitlement = "admins" }, true},
		{"no email", exampleConfig(command, dir), func(a *workflow.Access) { a.User.Email = "" }, true},
		{"unusual email", exampleConfig(command, dir), func(a *workflow.Access) { a.User.Email = "jane@example.com\nroot" }, true},
		{"no state directory", latchexec.Config{Command: command}, func(*workflow.Access) {}, false},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			a := access()
			tt.access(&a)
			_, err := newConnector(t, tt.config).Grant(t.Context(), a)
			e := asError(t, err)
			if got := workflow.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.wantPermanent, err)
			}
			if e.Stderr == "" {
				t.Errorf("the script did not say what went wrong")
			}
		})
	}
}

// exampleConfig returns the example script's configuration with its state
// in dir.
func exampleConfig(command, dir string) latchexec.Config {
	return latchexec.Config{Command: command, Env: []string{"STATE_DIR=" + dir}}
}
