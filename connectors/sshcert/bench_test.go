package sshcert_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/workflow"
)

// reportPercentiles reports the median and the 99th percentile of
// durations in milliseconds.
func reportPercentiles(b *testing.B, durations []time.Duration) {
	b.Helper()
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	at := func(p float64) float64 {
		i := min(int(p*float64(len(durations))), len(durations)-1)
		return float64(durations[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkGrantRevoke times one grant and its revoke: reading the
// revoked keys file, signing a certificate, then adding its serial to the
// file (written anew, synced and renamed) under the lock. It needs no
// sshd: neither call talks to one.
func BenchmarkGrantRevoke(b *testing.B) {
	dir := b.TempDir()
	caFile, _ := newCA(b)
	c, err := sshcert.New(sshcert.Config{
		Name:            "ssh",
		CAKeyFile:       caFile,
		Entitlements:    []string{"login"},
		RevokedKeysFile: filepath.Join(dir, "revoked_keys"),
	})
	if err != nil {
		b.Fatal(err)
	}
	key := publicKey(b)
	var durations []time.Duration
	i := 0
	for b.Loop() {
		i++
		a := workflow.Access{
			GrantID:     fmt.Sprintf("grant-%d", i),
			User:        workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"},
			Entitlement: "login",
			ExpiresAt:   time.Now().Add(time.Hour),
			Params:      map[string]string{sshcert.ParamPublicKey: key},
		}
		start := time.Now()
		if _, err := c.Grant(b.Context(), a); err != nil {
			b.Fatal(err)
		}
		if err := c.Revoke(b.Context(), a); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	reportPercentiles(b, durations)
}

// BenchmarkLogin times one login to the real sshd on loopback with a
// certificate: the ssh client connects, sshd checks the certificate
// against its trusted authorities and the revoked keys file, and runs
// echo.
func BenchmarkLogin(b *testing.B) {
	srv := sshd(b)
	dir := b.TempDir()
	caFile, ca := newCA(b)
	srv.trust(b, ca)
	c, err := sshcert.New(sshcert.Config{
		Name:            "ssh",
		CAKeyFile:       caFile,
		Entitlements:    []string{srv.login},
		RevokedKeysFile: srv.revoked,
		// So that principals are the login alone.
		PrincipalsTemplate: "{{.Entitlement}}",
	})
	if err != nil {
		b.Fatal(err)
	}
	kp := newKeyPair(b, dir, "id_ed25519")
	g, err := c.Grant(b.Context(), workflow.Access{
		GrantID:     "grant-bench-login",
		User:        workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"},
		Entitlement: srv.login,
		ExpiresAt:   time.Now().Add(time.Hour),
		Params:      map[string]string{sshcert.ParamPublicKey: kp.line},
	})
	if err != nil {
		b.Fatal(err)
	}
	certFile := filepath.Join(dir, "id_ed25519-cert.pub")
	if err := os.WriteFile(certFile, []byte(certLine(g.Message)+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	var durations []time.Duration
	for b.Loop() {
		start := time.Now()
		ok, err := srv.loginResult(b.Context(), kp.file, certFile)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			b.Fatal("sshd refused the certificate")
		}
		durations = append(durations, time.Since(start))
	}
	reportPercentiles(b, durations)
}
