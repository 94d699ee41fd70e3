package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchhq/latch/workflow"
)

const (
	// DefaultTimeout is how long the command may run when Config.Timeout
	// is zero.
	DefaultTimeout = 30 * time.Second

	// DefaultPath is the PATH the command gets unless Config.Env sets one.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	// drainTimeout bounds the wait for the command's output once it has
	// exited, in case a process it detached from its group still holds
	// standard output or standard error open.
	drainTimeout = time.Second

	// maxParam bounds one input's value, well below the kernel's limit on
	// one environment string.
	maxParam = 32 << 10

	reservedPrefix = "LATCH_"
)

// Config is an exec connector's configuration.
type Config struct {
	Command string        // absolute path of the program to run
	Args    []string      // its arguments, passed as they are
	Timeout time.Duration // how long one run may take; zero means DefaultTimeout
	Env     []string      // NAME=value to set, or a bare NAME to pass on latch's own value
}

// Connector grants and revokes access by running a command; see the package
// doc for the command's side of the contract. It is safe for concurrent use.
type Connector struct {
	name    string
	command string
	args    []string
	timeout time.Duration
	env     []envVar
}

// envVar is one entry of Config.Env.
type envVar struct {
	name  string
	value string
	pass  bool // a bare NAME: take the value from latch's environment
}

var _ workflow.Provisioner = (*Connector)(nil)

// New returns the connector called name that runs c.Command. Every error it
// returns wraps ErrInvalidConfig.
func New(name string, c Config) (*Connector, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if name == "" {
		bad("the connector has no name")
	}
	switch {
	case c.Command == "":
		bad("no command: set it to the absolute path of the program to run")
	case !filepath.IsAbs(c.Command):
		bad("command %q is not an absolute path", c.Command)
	case strings.ContainsRune(c.Command, 0):
		bad("command holds a NUL byte")
	}
	for i, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			bad("argument %d holds a NUL byte", i+1)
		}
	}
	timeout := c.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		bad("timeout %s is not positive", c.Timeout)
	}
	env := make([]envVar, 0, len(c.Env))
	seen := make(map[string]bool)
	for _, entry := range c.Env {
		name, value, hasValue := strings.Cut(entry, "=")
		switch {
		case !validEnvName(name):
			bad("env entry %q: want NAME=value or NAME, with a name of letters, digits and _", entry)
		case strings.HasPrefix(name, reservedPrefix):
			bad("env entry %q: names that start with %s are reserved", name, reservedPrefix)
		case seen[name]:
			bad("env entry %q is set twice", name)
		case strings.ContainsRune(value, 0):
			bad("env entry %q holds a NUL byte", name)
		default:
			seen[name] = true
			env = append(env, envVar{name: name, value: value, pass: !hasValue})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Connector{
		name:    name,
		command: c.Command,
		args:    append([]string(nil), c.Args...),
		timeout: timeout,
		env:     env,
	}, nil
}

// Name returns the connector's name.
func (c *Connector) Name() string { return c.name }

// Grant runs the command with LATCH_ACTION=grant. Its standard output
// becomes the message for the beneficiary and the facts (see the package
// doc). An error is an *Error, marked permanent if the command exited with
// ExitPermanent, or wraps ErrInvalidInput.
func (c *Connector) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	out := &headBuffer{max: maxStdout}
	if err := c.run(ctx, "grant", a, out); err != nil {
		return workflow.Granted{}, err
	}
	message, facts := splitOutput(out.text())
	return workflow.Granted{Message: message, Facts: facts}, nil
}

// Revoke runs the command with LATCH_ACTION=revoke. Errors are as for
// Grant.
func (c *Connector) Revoke(ctx context.Context, a workflow.Access) error {
	return c.run(ctx, "revoke", a, nil)
}

// run runs the command once for action and waits until it, everything left
// in its process group, and the copying of its output have ended. stdout
// may be nil to discard standard output.
func (c *Connector) run(ctx context.Context, action string, a workflow.Access, stdout io.Writer) error {
	env, err := c.environ(action, a)
	if err != nil {
		return workflow.Permanent(fmt.Errorf("exec connector %q: %s: %w", c.name, action, err))
	}
	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	cmd := osexec.CommandContext(runCtx, c.command, c.args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	stderr := &tailBuffer{max: maxStderr}
	var copying sync.WaitGroup
	var readEnds []*os.File
	defer func() {
		for _, f := range readEnds {
			f.Close()
		}
	}()
	// The command writes to pipes of our own rather than ones os/exec
	// makes, so that Wait returns when the command exits even if a process
	// it left behind holds them open; that process is killed below.
	attach := func(w io.Writer) (*os.File, error) {
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		readEnds = append(readEnds, r)
		copying.Go(func() { io.Copy(w, r) })
		return pw, nil
	}
	var writeEnds []*os.File
	if stdout != nil {
		if cmd.Stdout, err = attach(stdout); err != nil {
			return c.failure(action, -1, 0, err, "")
		}
		writeEnds = append(writeEnds, cmd.Stdout.(*os.File))
	}
	if cmd.Stderr, err = attach(stderr); err != nil {
		closeAll(writeEnds)
		return c.failure(action, -1, 0, err, "")
	}
	writeEnds = append(writeEnds, cmd.Stderr.(*os.File))

	err = cmd.Start()
	closeAll(writeEnds) // the child has its copies; EOF comes when it and its children are done
	if err != nil {
		closeAll(readEnds)
		copying.Wait()
		return c.failure(action, -1, 0, err, "")
	}
	pid := cmd.Process.Pid
	waitErr := cmd.Wait()
	killGroup(pid) // whatever the command left running in its group
	drain(&copying, readEnds)

	state := cmd.ProcessState
	if state.Success() {
		return nil
	}
	var signal syscall.Signal
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		signal = ws.Signal()
	}
	code := state.ExitCode()
	if code < 0 && runCtx.Err() != nil {
		if ctx.Err() != nil {
			return c.failure(action, code, signal, ctx.Err(), stderr.text())
		}
		e := c.failure(action, code, signal, context.DeadlineExceeded, stderr.text())
		e.TimedOut = true
		return e
	}
	e := c.failure(action, code, signal, waitErr, stderr.text())
	if code == ExitPermanent {
		return workflow.Permanent(e)
	}
	return e
}

func (c *Connector) failure(action string, code int, signal syscall.Signal, err error, stderr string) *Error {
	return &Error{
		Connector: c.name,
		Action:    action,
		ExitCode:  code,
		Signal:    signal,
		Stderr:    stderr,
		Err:       err,
		timeout:   c.timeout,
	}
}

// environ returns the command's whole environment for action on a.
func (c *Connector) environ(action string, a workflow.Access) ([]string, error) {
	expires := ""
	if !a.ExpiresAt.IsZero() {
		expires = a.ExpiresAt.UTC().Format(time.RFC3339)
	}
	vars := []struct{ name, value string }{
		{"LATCH_ACTION", action},
		{"LATCH_CONNECTOR", c.name},
		{"LATCH_GRANT_ID", a.GrantID},
		{"LATCH_REQUEST_ID", a.RequestID},
		{"LATCH_USER", a.User.SlackID},
		{"LATCH_EMAIL", a.User.Email},
		{"LATCH_ENTITLEMENT", a.Entitlement},
		{"LATCH_EXPIRES_AT", expires},
	}
	env := make([]string, 0, 1+len(vars)+len(a.Params)+len(c.env))
	path := DefaultPath
	for _, v := range vars {
		if strings.ContainsRune(v.value, 0) {
			return nil, fmt.Errorf("%w: %s holds a NUL byte", ErrInvalidInput, v.name)
		}
		env = append(env, v.name+"="+v.value)
	}
	params, err := paramVars(a.Params)
	if err != nil {
		return nil, err
	}
	env = append(env, params...)
	for _, v := range c.env {
		value, ok := v.value, true
		if v.pass {
			value, ok = os.LookupEnv(v.name)
		}
		switch {
		case v.name == "PATH":
			if ok {
				path = value
			}
		case ok:
			env = append(env, v.name+"="+value)
		}
	}
	return append(env, "PATH="+path), nil
}

// paramVars returns the LATCH_PARAM_ variables for params, sorted by name.
func paramVars(params map[string]string) ([]string, error) {
	byVar := make(map[string]string, len(params))
	vars := make([]string, 0, len(params))
	for name, value := range params {
		v := paramVar(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("%w: an input has no name", ErrInvalidInput)
		case byVar[v] != "":
			return nil, fmt.Errorf("%w: inputs %q and %q both become %s", ErrInvalidInput, min(name, byVar[v]), max(name, byVar[v]), v)
		case strings.ContainsRune(value, 0):
			return nil, fmt.Errorf("%w: input %q holds a NUL byte", ErrInvalidInput, name)
		case len(value) > maxParam:
			return nil, fmt.Errorf("%w: input %q is longer than %d bytes", ErrInvalidInput, name, maxParam)
		}
		byVar[v] = name
		vars = append(vars, v+"="+value)
	}
	slices.Sort(vars)
	return vars, nil
}

// paramVar returns the variable that carries the input called name.
func paramVar(name string) string {
	return reservedPrefix + "PARAM_" + strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_':
			return r
		}
		return '_'
	}, strings.ToUpper(name))
}

func validEnvName(name string) bool {
	if name == "" || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// drain waits for the copying of the command's output to end, and ends it
// after drainTimeout by closing the read ends of the pipes.
func drain(copying *sync.WaitGroup, readEnds []*os.File) {
	done := make(chan struct{})
	go func() {
		copying.Wait()
		close(done)
	}()
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		closeAll(readEnds)
		<-done
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
