package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/bot/slackemu"
)

// TestServeKeepsSecrets runs serve against the emulator with every kind of
// secret configured (Slack tokens, the admin token, a secret an exec
// connector passes on, a database password that a connection attempt
// uses), makes latch grant through both connectors and answer the admin
// API, and then checks that no secret appears in anything latch printed or
// logged, at debug level, nor in any event of its audit log; that the store
// is readable by its owner only; and that the admin API refuses a missing or
// wrong token with a bare 401.
func TestServeKeepsSecrets(t *testing.T) {
	emu, cfg := serveFixture(t)
	dir := filepath.Dir(cfg)
	execSecret := "exec-" + rand.Text()
	dbPassword := "pg-" + rand.Text()
	t.Setenv("SLACK_BOT_TOKEN", emu.BotToken())
	t.Setenv("SLACK_APP_TOKEN", emu.AppToken())
	t.Setenv("TARGET_API_SECRET", execSecret)
	t.Setenv("TARGET_PG_PASSWORD", dbPassword)
	t.Setenv("LATCH_LOG_LEVEL", "debug")

	// A port nobody listens on, so that the database connector fails
	// after it has used its password.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LATCH_ADMIN_LISTEN", addr)

	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, edit := range []struct{ old, new string }{
		{`env: ["STATE_DIR=`, `env: ["TARGET_API_SECRET", "STATE_DIR=`},
		{"\ncatalogue:\n", "  - name: pgdown\n    type: postgres\n    settings: {host: 127.0.0.1, port: " + strconv.Itoa(deadPort) +
			", database: app, user: latch, password_env: TARGET_PG_PASSWORD, connect_timeout: 2s, timeout: 3s}\n\ncatalogue:\n"},
		{"    - id: prod-shell\n", "    - id: prod-pg\n      name: Production database (break-glass)\n      targets: [{connector: pgdown, entitlement: pg_read_all_data}]\n      policy: breakglass\n    - id: prod-shell\n"},
	} {
		if !strings.Contains(text, edit.old) {
			t.Fatalf("the demo configuration no longer has %q", edit.old)
		}
		text = strings.Replace(text, edit.old, edit.new, 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenBytes, err := os.ReadFile(filepath.Join(dir, "admin_token"))
	if err != nil {
		t.Fatal(err)
	}
	adminToken := strings.TrimSpace(string(tokenBytes))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errOut) }()
	wait, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emu.WaitConnected(wait, 1); err != nil {
		stop()
		<-done
		t.Fatalf("serve did not connect: %v\n%s", err, errOut.String())
	}

	dave, incidents, security := emu.User("dave").ID, emu.Channel("incidents").ID, emu.Channel("security").ID
	for _, cmd := range []string{"breakglass prod-shell the database is down", "breakglass prod-pg the database is down"} {
		if _, err := emu.Slash(wait, dave, incidents, "/access", cmd); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := emu.WaitMessage(wait, security, "Production shell"); err != nil {
		t.Fatalf("no break-glass announcement for the shell: %v", err)
	}
	// The database grant fails: connecting to a closed port, with the
	// password, is refused; the security team hears of it.
	if _, err := emu.WaitMessage(wait, security, "Production database"); err != nil {
		t.Fatalf("no announcement for the database: %v", err)
	}

	// The admin API: refused without the token, with a wrong one, with the
	// right one in the wrong scheme; answered with it.
	call := func(method, path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(wait, method, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var refusals []string
	for _, tt := range []struct{ method, path, auth string }{
		{http.MethodGet, "/api/v1/grants", ""},
		{http.MethodGet, "/api/v1/grants", "Bearer " + strings.Repeat("0", len(adminToken))},
		{http.MethodGet, "/api/v1/grants", "Bearer " + adminToken[:len(adminToken)-1]},
		{http.MethodGet, "/api/v1/grants", "Basic " + adminToken},
		{http.MethodGet, "/api/v1/grants", adminToken},
		{http.MethodPost, "/api/v1/grants/anything/revoke", "Bearer wrong"},
	} {
		code, body := call(tt.method, tt.path, tt.auth)
		if code != http.StatusUnauthorized {
			t.Errorf("%s %s with Authorization %.12q… = %d, want 401", tt.method, tt.path, tt.auth, code)
		}
		if len(body) > 200 || strings.Contains(body, "grant") || strings.Contains(strings.ToLower(body), "expected") {
			t.Errorf("%s %s refused with detail: %q", tt.method, tt.path, body)
		}
		refusals = append(refusals, body)
	}
	if code, body := call(http.MethodGet, "/api/v1/grants", "Bearer "+adminToken); code != http.StatusOK {
		t.Errorf("the admin API with the token = %d %s", code, body)
	}

	stop()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d\n%s", code, errOut.String())
		}
	case <-wait.Done():
		t.Fatal("serve did not stop")
	}

	db := filepath.Join(dir, "latch.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("the store's mode is %v, want -rw-------", perm)
	}
	export := latch(t, "audit", "export", "--db", db)
	if export.code != exitOK {
		t.Fatalf("audit export = %+v", export)
	}
	csv := latch(t, "audit", "export", "--db", db, "--format", "csv")
	for _, want := range []string{"request.submitted", "grant.active", "grant.failed"} {
		if !strings.Contains(export.stdout, want) {
			t.Errorf("the audit log has no %s event; the scan below saw less than intended", want)
		}
	}
	if !strings.Contains(errOut.String(), "pgdown") && !strings.Contains(export.stdout, "pgdown") {
		t.Error("nothing mentions the database connector's failure; the scan below saw less than intended")
	}

	seen := map[string]string{
		"serve's standard output":       out.String(),
		"serve's log":                   errOut.String(),
		"the audit export (JSONL)":      export.stdout + export.stderr,
		"the audit export (CSV)":        csv.stdout + csv.stderr,
		"the admin API's refusals":      strings.Join(refusals, "\n"),
		"the messages posted to Slack":  messagesText(emu.Messages(security)) + messagesText(emu.Messages(incidents)) + messagesText(emu.DMs(dave)),
		"the audit file sink, if any":   readIfExists(filepath.Join(dir, "audit.jsonl")),
		"the connector's state on disk": dirText(t, filepath.Join(dir, "target")),
	}
	secrets := map[string]string{
		"the Slack bot token":       emu.BotToken(),
		"the Slack app token":       emu.AppToken(),
		"the admin token":           adminToken,
		"the exec connector secret": execSecret,
		"the database password":     dbPassword,
	}
	t.Logf("scanned %d bytes of log, %d bytes of export", errOut.Len()+out.Len(), len(export.stdout))
	for where, text := range seen {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %s", where, what)
			}
		}
	}
	emu.TakeProblems()
}

// messagesText is the text and blocks of messages.
func messagesText(ms []slackemu.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Text + "\n" + string(m.Blocks) + "\n")
	}
	return b.String()
}

func readIfExists(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// dirText returns the names and contents of the files under dir.
func dirText(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b.WriteString(path + "\n" + readIfExists(path) + "\n")
		return nil
	})
	return b.String()
}
