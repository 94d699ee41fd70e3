package sshcert_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/workflow"
)

// keyPair is a person's key pair, its private half in a file.
type keyPair struct {
	pub  ssh.PublicKey
	file string // the private key, mode 0600
	line string // the public key in the authorized_keys form
}

func newKeyPair(t testing.TB, dir, name string) keyPair {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := writePrivateKey(file, priv); err != nil {
		t.Fatal(err)
	}
	return keyPair{pub: sshPub, file: file, line: authorizedKey(sshPub)}
}

// newCA writes a fresh certificate authority's key into a file of its
// own, mode 0600, and returns the file and the public key.
func newCA(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca")
	if err := writePrivateKey(file, priv); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return file, sshPub
}

func authorizedKey(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// certLine returns the certificate line of a grant's message, or "".
func certLine(message string) string {
	for line := range strings.Lines(message) {
		line = strings.TrimSpace(line)
		if typ, _, ok := strings.Cut(line, " "); ok && strings.HasSuffix(typ, "-cert-v01@openssh.com") {
			return line
		}
	}
	return ""
}

// parseCert returns the certificate a grant's message holds.
func parseCert(t testing.TB, message string) *ssh.Certificate {
	t.Helper()
	line := certLine(message)
	if line == "" {
		t.Fatalf("the message holds no certificate:\n%s", message)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parse the certificate: %v", err)
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		t.Fatalf("the message's key line is a %T, not a certificate", key)
	}
	return cert
}

// target is one test's slice of the shared sshd: a certificate authority
// sshd trusts, key pairs for people, a keys directory, and a way to the
// shared revoked keys file that the test can cut.
type target struct {
	srv     *server
	dir     string
	caFile  string
	ca      ssh.PublicKey
	keysDir string
	// link is a symbolic link to the server's revoked keys directory;
	// the connector reaches the file through it.
	link string

	mu    sync.Mutex
	keys  map[string]keyPair // by Slack user id
	certs map[string]string  // the last certificate line granted, by grant id
}

func newTarget(t *testing.T, people ...workflow.User) *target {
	t.Helper()
	srv := sshd(t)
	dir := t.TempDir()
	tg := &target{
		srv:     srv,
		dir:     dir,
		keysDir: filepath.Join(dir, "keys"),
		link:    filepath.Join(dir, "revoked"),
		keys:    map[string]keyPair{},
		certs:   map[string]string{},
	}
	tg.caFile, tg.ca = newCA(t)
	srv.trust(t, tg.ca)
	if err := os.Mkdir(tg.keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tg.up(t)
	for _, p := range people {
		tg.register(t, p.SlackID)
	}
	return tg
}

// register makes a key pair for the person and registers its public key.
func (tg *target) register(t testing.TB, slackID string) keyPair {
	t.Helper()
	kp := newKeyPair(t, tg.dir, "id_"+slackID)
	if err := os.WriteFile(filepath.Join(tg.keysDir, slackID+".pub"), []byte(kp.line+" "+slackID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg.mu.Lock()
	tg.keys[slackID] = kp
	tg.mu.Unlock()
	return kp
}

// config returns a connector configuration for the target; the
// entitlement is the account sshd lets its principal log in as.
func (tg *target) config() sshcert.Config {
	return sshcert.Config{
		Name:               "ssh",
		CAKeyFile:          tg.caFile,
		Entitlements:       []string{tg.srv.login},
		PrincipalsTemplate: "{{.Entitlement}},{{.LocalPart}}",
		RevokedKeysFile:    filepath.Join(tg.link, filepath.Base(tg.srv.revoked)),
		KeysDir:            tg.keysDir,
	}
}

func (tg *target) connector(t testing.TB, c sshcert.Config) *sshcert.Connector {
	t.Helper()
	conn, err := sshcert.New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return conn
}

// down cuts the connector's way to the revoked keys file, as an unmounted
// or unwritable directory would; sshd still reads the file.
func (tg *target) down(t *testing.T) {
	t.Helper()
	if err := os.Remove(tg.link); err != nil {
		t.Fatal(err)
	}
}

func (tg *target) up(t *testing.T) {
	t.Helper()
	if err := os.Symlink(tg.srv.revokedDir, tg.link); err != nil {
		t.Fatal(err)
	}
}

// login reports whether the person logs in with their key and the
// certificate line.
func (tg *target) login(ctx context.Context, slackID, cert string) (bool, error) {
	tg.mu.Lock()
	kp, ok := tg.keys[slackID]
	tg.mu.Unlock()
	if !ok || cert == "" {
		return false, nil
	}
	f, err := os.CreateTemp(tg.dir, "cert-*.pub")
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(cert + "\n"); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	return tg.srv.loginResult(ctx, kp.file, f.Name())
}

// wantLogin fails the test unless the person's login with cert succeeds
// exactly when want is true.
func (tg *target) wantLogin(t *testing.T, slackID, cert string, want bool) {
	t.Helper()
	got, err := tg.login(t.Context(), slackID, cert)
	if err != nil {
		t.Fatalf("login of %s: %v", slackID, err)
	}
	if got != want {
		t.Errorf("login of %s = %t, want %t", slackID, got, want)
	}
}

// recorder passes grants and revokes on to a connector, and keeps each
// grant's certificate as the beneficiary would.
type recorder struct {
	conn *sshcert.Connector
	tg   *target
}

func (r recorder) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	g, err := r.conn.Grant(ctx, a)
	if err == nil {
		r.tg.mu.Lock()
		r.tg.certs[a.GrantID] = certLine(g.Message)
		r.tg.mu.Unlock()
	}
	return g, err
}

func (r recorder) Revoke(ctx context.Context, a workflow.Access) error {
	return r.conn.Revoke(ctx, a)
}

// has logs in with the certificate the beneficiary got for a's grant.
func (tg *target) has(ctx context.Context, a workflow.Access) (bool, error) {
	tg.mu.Lock()
	cert := tg.certs[a.GrantID]
	tg.mu.Unlock()
	return tg.login(ctx, a.User.SlackID, cert)
}

// access returns an access for the person to the target's login account,
// for an hour.
func (tg *target) access(grant string, u workflow.User) workflow.Access {
	return workflow.Access{
		GrantID:     grant,
		RequestID:   "request-" + grant,
		User:        u,
		Entitlement: tg.srv.login,
		ExpiresAt:   time.Now().Add(time.Hour).Truncate(time.Second),
	}
}

func isConnectorError(err error) bool {
	var e *sshcert.Error
	return errors.As(err, &e)
}
