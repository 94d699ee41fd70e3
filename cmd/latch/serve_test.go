package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/bot/slackemu"
)

// serveFixture is the demo's configuration against an emulator.
func serveFixture(t *testing.T) (*slackemu.Server, string) {
	t.Helper()
	emu := slackemu.Start(t)
	d := &demo{emu: emu, dir: t.TempDir()}
	if _, err := d.writeConfig(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LATCH_SLACK_API_URL", emu.APIURL())
	return emu, filepath.Join(d.dir, "latch.yaml")
}

func TestServeRefusesBadTokens(t *testing.T) {
	emu, cfg := serveFixture(t)
	tests := []struct {
		name, bot, app string
		want           string
	}{
		{"no bot token", "", emu.AppToken(), "SLACK_BOT_TOKEN"},
		{"a user token as the bot token", "xoxp-1-2-3", emu.AppToken(), "does not start with xoxb-"},
		{"bot token refused", "xoxb-not-this-one", emu.AppToken(), "Slack refused the bot token"},
		{"no app token", emu.BotToken(), "", "SLACK_APP_TOKEN"},
		{"app token refused", emu.BotToken(), "xapp-1-A-2-nope", "connections:write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SLACK_BOT_TOKEN", tt.bot)
			t.Setenv("SLACK_APP_TOKEN", tt.app)
			r := latch(t, "serve", "--config", cfg)
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("serve = %+v, want exit 1 saying %q", r, tt.want)
			}
			for _, secret := range []string{emu.BotToken(), emu.AppToken(), "xoxb-not-this-one", "xapp-1-A-2-nope"} {
				if strings.Contains(r.stderr+r.stdout, secret) {
					t.Errorf("the output shows a token: %s", r.stderr)
				}
			}
		})
	}
	emu.TakeProblems() // the refused tokens were meant to be refused
}

func TestServeRunsUntilStopped(t *testing.T) {
	emu, cfg := serveFixture(t)
	t.Setenv("SLACK_BOT_TOKEN", emu.BotToken())
	t.Setenv("SLACK_APP_TOKEN", emu.AppToken())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LATCH_ADMIN_LISTEN", addr)
	token, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "admin_token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errOut) }()

	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitConnected(wait, 1); err != nil {
		t.Fatalf("serve did not connect: %v", err)
	}
	alice := emu.User("alice").ID
	if _, err := emu.Slash(wait, alice, emu.Channel("incidents").ID, "/access", "help"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitEphemeral(wait, alice, "/access list"); err != nil {
		t.Fatalf("no help shown: %v", err)
	}

	// Health, metrics and the admin API on admin.listen.
	get := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(wait, http.MethodGet, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := get("/metrics", ""); code != http.StatusOK || !strings.Contains(body, "latch_slack_envelope_ack_seconds") {
		t.Errorf("/metrics = %d, without the ack latency:\n%s", code, body)
	}
	if code, _ := get("/api/v1/grants", ""); code != http.StatusUnauthorized {
		t.Errorf("the admin API without a token = %d, want 401", code)
	}
	if code, body := get("/api/v1/grants", strings.TrimSpace(string(token))); code != http.StatusOK || !strings.Contains(body, `"grants"`) {
		t.Errorf("the admin API with the token = %d %s", code, body)
	}
	stop() // as SIGTERM does
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d after the signal, want 0\n%s", code, errOut.String())
		}
	case <-wait.Done():
		t.Fatal("serve did not stop")
	}
	for _, secret := range []string{emu.BotToken(), emu.AppToken()} {
		if strings.Contains(errOut.String()+out.String(), secret) {
			t.Error("the log shows a token")
		}
	}
}

func TestServeStreamsAndCheckpoints(t *testing.T) {
	emu, cfg := serveFixture(t)
	t.Setenv("SLACK_BOT_TOKEN", emu.BotToken())
	t.Setenv("SLACK_APP_TOKEN", emu.AppToken())
	dir := filepath.Dir(cfg)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cp.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := audit.PublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cp.pub"), pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\naudit:\n  sinks:\n    - {name: local, type: file, path: %s/audit.jsonl}\n  checkpoints:\n    signing_key_file: %s/cp.pem\n    every: 1h\n    file: %s/checkpoints.jsonl\n", dir, dir, dir)
	f.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errOut) }()
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := emu.WaitConnected(wait, 1); err != nil {
		t.Fatalf("serve did not connect: %v\n%s", err, errOut.String())
	}
	dave := emu.User("dave").ID
	if _, err := emu.Slash(wait, dave, emu.Channel("incidents").ID, "/access", "breakglass prod-shell the database is down"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitMessage(wait, emu.Channel("security").ID, "Break-glass"); err != nil {
		t.Fatal(err)
	}
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exited %d\n%s", code, errOut.String())
	}
	db := filepath.Join(dir, "latch.db")
	v := latch(t, "audit", "verify", "--db", db, "--checkpoint", filepath.Join(dir, "checkpoints.jsonl"), "--public-key", filepath.Join(dir, "cp.pub"))
	if v.code != exitOK || !strings.Contains(v.stdout, "checkpoint ok") {
		t.Fatalf("verify against the shutdown checkpoint = %+v", v)
	}
	// Every event reached the file sink, in order, exactly as exported:
	// at shutdown the sinks get to deliver the last events.
	exported := latch(t, "audit", "export", "--db", db)
	streamed, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if exported.stdout == "" || string(streamed) != exported.stdout {
		t.Errorf("the file sink holds:\n%s\nwant the export:\n%s", streamed, exported.stdout)
	}
	if _, err := emu.WaitMessage(wait, emu.Channel("security").ID, "Audit log checkpoint"); err != nil {
		t.Errorf("no checkpoint in the security channel: %v", err)
	}
}
