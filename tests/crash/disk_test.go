package crash_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// TestFullDisk runs latch serve until its store cannot grow (a file size
// limit put on the running process stands in for a full disk: the kernel
// refuses the writes past it, as it does on a full disk) and checks what
// people and operators see: forms and approvals refused with a message
// that says why, the security channel told, /healthz and /readyz failing,
// latch_store_writable 0, access still taken back at its expiry; then,
// restarted with room, that the log verifies, holds every request whose
// form was accepted, records the expiry, and takes new requests.
func TestFullDisk(t *testing.T) {
	pg := startPostgres(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "latch")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latchhq/latch/cmd/latch").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	emu, err := slackemu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg := writeConfig(t, emu, dir, pg.Port)
	admin := freeAddr(t)
	setAdminListen(t, cfg, admin)
	db := filepath.Join(dir, "latch.db")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice, bob, carol := emu.User("alice").ID, emu.User("bob").ID, emu.User("carol").ID

	srv := startServe(t, emu, bin, cfg)
	accepted := map[string]bool{} // justifications of the forms latch cleared

	// Access that will expire while the disk is full, and a request
	// waiting for Carol.
	quick := "full disk test: access that expires"
	if ack := submitForm(ctx, t, emu, alice, "db-quick", "20s", quick); !isClear(ack.Payload) {
		t.Fatalf("the first request was not accepted: %+v", ack)
	}
	accepted[quick] = true
	// It is active once its login role exists (and expires 20 s after
	// it was approved, at the latest now).
	if roles := waitRoles(ctx, t, pg, 1, time.Now().Add(30*time.Second)); len(roles) != 1 {
		t.Fatalf("the first request's role never appeared: %v", roles)
	}
	expiresAt := time.Now().Add(20 * time.Second)
	if ack := submitForm(ctx, t, emu, bob, "db-approved", "15s", "full disk test: waiting for carol"); !isClear(ack.Payload) {
		t.Fatalf("the request for approval was not accepted: %+v", ack)
	}
	accepted["full disk test: waiting for carol"] = true
	card, err := emu.WaitDM(ctx, carol, "full disk test: waiting for carol")
	if err != nil {
		t.Fatalf("no approval card for carol: %v", err)
	}

	// The disk fills. bbolt grows its file ahead of use, sparsely: on a
	// full disk, the writes that fail are those of pages past the ones in
	// use, which need new blocks. So the limit is put a little past the
	// pages in use.
	used, err := pagesInUse(db)
	if err != nil {
		t.Fatal(err)
	}
	limit := used + 32<<10
	if err := unix.Prlimit(srv.cmd.Process.Pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}

	// People go on asking until latch cannot record a request.
	var refusal slackemu.Ack
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatalf("the store never filled up (%d bytes): %d requests accepted", limit, len(accepted))
		}
		why := fmt.Sprintf("full disk test: request %d%s", i, strings.Repeat(" and a long story", 100))
		ack := submitForm(ctx, t, emu, []string{alice, bob}[i%2], "db-approved", "15s", why)
		if isClear(ack.Payload) {
			accepted[why] = true
			continue
		}
		refusal = ack
		break
	}
	t.Logf("the store filled up after %d accepted requests (pages in use %d bytes, limit %d)", len(accepted), used, limit)
	if time.Now().After(expiresAt.Add(-time.Second)) {
		t.Fatalf("filling the store took so long that the first grant expired before: the test cannot tell who revoked it")
	}
	const why = "latch cannot write its audit log"
	if !slices.ContainsFunc(mapValues(refusal.Errors), func(e string) bool { return strings.Contains(e, why) }) {
		t.Errorf("the refused form says %v, want %q", refusal.Errors, why)
	}

	// Another request is refused the same way, at once.
	if ack := submitForm(ctx, t, emu, bob, "db-quick", "10s", "full disk test: one more"); isClear(ack.Payload) ||
		!slices.ContainsFunc(mapValues(ack.Errors), func(e string) bool { return strings.Contains(e, why) }) {
		t.Errorf("a request on the full disk got %+v, want the form kept open saying %q", ack, why)
	}
	// So is an approval.
	if _, err := emu.Click(ctx, carol, card, "approve"); err != nil {
		t.Fatalf("carol clicks approve: %v", err)
	}
	if _, err := emu.WaitEphemeral(ctx, carol, "Approval not recorded: "+why); err != nil {
		t.Errorf("carol was not told why her approval was not recorded: %v", err)
	}
	// The operators are told what happened and what to do.
	security := emu.Channel("security").ID
	if m, err := emu.WaitMessage(ctx, security, why); err != nil {
		t.Errorf("the security channel was not told: %v", err)
	} else if text := m.Render(); !strings.Contains(text, "size limit") || !strings.Contains(text, "restart latch") {
		t.Errorf("the security channel's notice does not say what to do:\n%s", text)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, "http://"+admin+p); status != 503 || !strings.Contains(body, "failing: store") {
			t.Errorf("GET %s = %d %q, want 503 naming the store", p, status, body)
		}
	}
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "\nlatch_store_writable 0\n") {
		t.Errorf("/metrics does not say latch_store_writable 0")
	}

	// The access granted before the disk filled is taken back at its
	// expiry all the same.
	if roles := waitRoles(ctx, t, pg, 0, expiresAt.Add(revokeSlack+time.Second)); len(roles) > 0 {
		t.Fatalf("role %s outlived its expiry by %s while the disk was full", roles[0].name, time.Since(expiresAt))
	}
	if _, err := emu.WaitMessage(ctx, security, "not yet recorded"); err != nil {
		t.Errorf("the security channel was not told of the unrecorded revoke: %v", err)
	}

	// latch stops cleanly, and its log says what to do.
	out := srv.stop(t)
	if !strings.Contains(out, "the audit log cannot be written") || !strings.Contains(out, "size limit") {
		t.Errorf("latch's log does not say the audit log cannot be written and why:\n%s", tail([]byte(out)))
	}

	// With room again: nothing lost, nothing corrupt.
	if out, err := exec.Command(bin, "audit", "verify", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("latch audit verify after the full disk: %v\n%s", err, out)
	}
	srv = startServe(t, emu, bin, cfg)
	defer srv.stop(t)
	if ack := submitForm(ctx, t, emu, alice, "db-quick", "10s", "full disk test: after the restart"); !isClear(ack.Payload) {
		t.Errorf("a request after the restart was not accepted: %+v", ack)
	}
	srv.stop(t)
	s, err := store.Open(db, store.Options{ReadOnly: true, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	folded, _, err := foldLog(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[string]*workflow.Request{} // by justification
	for _, r := range folded {
		inLog[r.Justification] = r
	}
	for why := range accepted {
		if inLog[why] == nil {
			t.Errorf("an accepted request is not in the log: %.60q", why)
		}
	}
	if r := inLog[quick]; r == nil || r.State != workflow.RequestEnded || r.Outcome != workflow.OutcomeExpired {
		t.Errorf("the request that expired while the disk was full: %+v, want ended (expired) in the log", r)
	}
	if inLog["full disk test: after the restart"] == nil {
		t.Errorf("the request after the restart is not in the log")
	}
}

// waitRoles waits until PostgreSQL holds n latch roles or until the
// deadline, and returns the roles it holds then.
func waitRoles(ctx context.Context, t *testing.T, pg *pgServer, n int, deadline time.Time) []latchRole {
	t.Helper()
	for {
		roles, err := pg.latchRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(roles) == n || time.Now().After(deadline) {
			return roles
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pagesInUse reads from a bbolt file's meta pages how many bytes of it
// hold pages in use (its high-water mark). The file is read as it is on
// disk, while latch holds it: bbolt writes its meta pages last.
func pagesInUse(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// A page starts with a 16-byte header; the meta that follows holds
	// magic, version, page size, flags (4 bytes each), the root bucket
	// (16), the free list page (8), the high-water page id (8) and the
	// transaction id (8). bbolt writes them in the machine's byte order.
	meta := func(off int64) (pageSize uint32, pgid, txid uint64, err error) {
		var b [72]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return 0, 0, 0, err
		}
		if binary.NativeEndian.Uint32(b[16:]) != 0xED0CDAED {
			return 0, 0, 0, fmt.Errorf("%s: no bbolt meta page at %d", path, off)
		}
		return binary.NativeEndian.Uint32(b[24:]), binary.NativeEndian.Uint64(b[56:]), binary.NativeEndian.Uint64(b[64:]), nil
	}
	size, pgid0, tx0, err := meta(0)
	if err != nil {
		return 0, err
	}
	_, pgid1, tx1, err := meta(int64(size))
	if err != nil {
		return 0, err
	}
	pgid := pgid0
	if tx1 > tx0 {
		pgid = pgid1
	}
	return pgid * uint64(size), nil
}

// serveProcess is one latch serve started by a test.
type serveProcess struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
	once   sync.Once
	log    string
}

// startServe starts latch serve and waits until it is connected to Slack.
// Its output goes to a pipe, which no file size limit applies to.
func startServe(t *testing.T, emu *slackemu.Server, bin, cfg string) *serveProcess {
	t.Helper()
	hellos := emu.Hellos()
	p := &serveProcess{cmd: exec.Command(bin, "serve", "--config", cfg), out: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(),
		"SLACK_BOT_TOKEN="+emu.BotToken(),
		"SLACK_APP_TOKEN="+emu.AppToken(),
		"LATCH_SLACK_API_URL="+emu.APIURL(),
		pgPasswordEnv+"="+pgLatchPass,
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emu.Wait(ctx, func() bool { return emu.Hellos() > hellos }); err != nil {
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("latch serve did not connect: %v\n%s", err, tail(p.out.Bytes()))
	}
	return p
}

// stop sends SIGTERM, waits for latch to exit, requires exit 0, and
// returns its output.
func (p *serveProcess) stop(t *testing.T) string {
	t.Helper()
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("latch serve after SIGTERM: %v\n%s", err, tail(p.out.Bytes()))
			}
		case <-time.After(time.Minute):
			p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("latch serve did not stop within a minute of SIGTERM\n%s", tail(p.out.Bytes()))
		}
		p.log = string(p.out.Bytes())
	})
	return p.log
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// submitForm asks for item through /access and submits the form with a
// duration and a justification, returning the submission's ack.
func submitForm(ctx context.Context, t *testing.T, emu *slackemu.Server, user, item, duration, why string) slackemu.Ack {
	t.Helper()
	before := len(emu.Ephemerals(user))
	if _, err := emu.Slash(ctx, user, "", "/access", item); err != nil {
		t.Fatalf("/access %s: %v", item, err)
	}
	var results slackemu.Message
	if err := emu.Wait(ctx, func() bool {
		eph := emu.Ephemerals(user)
		for _, m := range eph[min(before, len(eph)):] {
			if m.HasAction("request_item") && strings.Contains(m.Render(), "`"+item+"`") {
				results = m
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no search results for %s: %v", item, err)
	}
	if _, err := emu.ClickByValue(ctx, user, results, "request_item", item); err != nil {
		t.Fatalf("click Request: %v", err)
	}
	v, err := emu.WaitView(ctx, user, "Why do you need it?")
	if err != nil {
		t.Fatalf("no request form: %v", err)
	}
	ack, err := emu.Submit(ctx, user, v, map[string]string{"duration": duration, "justification": why})
	if err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	if !isClear(ack.Payload) {
		// Close the form kept open, as a person giving up would.
		_ = emu.CloseView(ctx, user, v)
	}
	return ack
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := connectortest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// setAdminListen points admin.listen of the configuration at addr.
func setAdminListen(t *testing.T, cfg, addr string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(b, []byte("listen: 127.0.0.1:0"), []byte("listen: "+addr), 1)
	if bytes.Equal(changed, b) {
		t.Fatal("the configuration has no admin.listen to change")
	}
	if err := os.WriteFile(cfg, changed, 0o600); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
