package sshcert_test

import (
	"bytes"
	"context"
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/workflow"
)

// unit is a connector with no sshd behind it, its files in a temporary
// directory.
type unit struct {
	dir     string
	caFile  string
	ca      ssh.PublicKey
	keysDir string
	revoked string
	now     time.Time
}

func newUnit(t *testing.T) *unit {
	t.Helper()
	dir := t.TempDir()
	u := &unit{
		dir:     dir,
		keysDir: filepath.Join(dir, "keys"),
		revoked: filepath.Join(dir, "revoked_keys"),
		now:     time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
	}
	u.caFile, u.ca = newCA(t)
	if err := os.Mkdir(u.keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *unit) config() sshcert.Config {
	return sshcert.Config{
		Name:            "ssh",
		CAKeyFile:       u.caFile,
		Entitlements:    []string{"login", "deploy"},
		RevokedKeysFile: u.revoked,
		KeysDir:         u.keysDir,
		Now:             func() time.Time { return u.now },
	}
}

func (u *unit) connector(t *testing.T, mod ...func(*sshcert.Config)) *sshcert.Connector {
	t.Helper()
	c := u.config()
	for _, m := range mod {
		m(&c)
	}
	conn, err := sshcert.New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return conn
}

// access returns an access for jane, with her public key in the request.
func (u *unit) access(key string) workflow.Access {
	return workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		RequestID:   "0190a1b2-c3d4-7e5f-8a9b-000000000001",
		User:        workflow.User{SlackID: "U0123JANE", Email: "jane@example.com"},
		Entitlement: "login",
		ExpiresAt:   u.now.Add(2 * time.Hour),
		Params:      map[string]string{sshcert.ParamPublicKey: key},
	}
}

// publicKey returns a fresh Ed25519 public key line.
func publicKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(key)
}

// rsaKeys are generated once: RSA key generation is slow under -race.
var rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	long, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return short, long
})

func line(t testing.TB, pub any) string {
	t.Helper()
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(key)
}

// dsaKey returns a public key line of the DSA form; its numbers have the
// sizes DSA keys have, which is all a parser checks.
func dsaKey(t testing.TB) string {
	t.Helper()
	p := new(big.Int).SetBit(big.NewInt(1), 1023, 1)
	q := new(big.Int).SetBit(big.NewInt(1), 159, 1)
	return line(t, &dsa.PublicKey{Parameters: dsa.Parameters{P: p, Q: q, G: big.NewInt(2)}, Y: big.NewInt(12345)})
}

// checkCert verifies cert's signature by ca and its validity at now for
// the principal.
func checkCert(t *testing.T, cert *ssh.Certificate, ca ssh.PublicKey, principal string, now time.Time) {
	t.Helper()
	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), ca.Marshal()) },
		Clock:           func() time.Time { return now },
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		t.Errorf("the certificate does not pass for %s: %v", principal, err)
	}
}

func TestGrantIssuesCertificate(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t, func(c *sshcert.Config) {
		c.PrincipalsTemplate = "{{.LocalPart}}, {{.Entitlement}}-{{.SlackID | lower}} ops"
		c.Extensions = []string{"permit-pty", "permit-port-forwarding", "login@example.com"}
	})
	key := publicKey(t)
	a := u.access(key + " jane@laptop")
	got, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	cert := parseCert(t, got.Message)
	checkCert(t, cert, u.ca, "jane", u.now)

	if got, want := authorizedKey(cert.Key), key; got != want {
		t.Errorf("certified key = %s, want %s", got, want)
	}
	if cert.CertType != ssh.UserCert {
		t.Errorf("CertType = %d, want %d (user)", cert.CertType, ssh.UserCert)
	}
	if cert.KeyId != a.GrantID {
		t.Errorf("KeyId = %q, want %q", cert.KeyId, a.GrantID)
	}
	if want := []string{"jane", "login-u0123jane", "ops"}; !slices.Equal(cert.ValidPrincipals, want) {
		t.Errorf("ValidPrincipals = %q, want %q", cert.ValidPrincipals, want)
	}
	if got, want := cert.ValidAfter, uint64(u.now.Add(-sshcert.ClockSkew).Unix()); got != want {
		t.Errorf("ValidAfter = %d, want %d", got, want)
	}
	if got, want := cert.ValidBefore, uint64(a.ExpiresAt.Unix()); got != want {
		t.Errorf("ValidBefore = %d, want %d", got, want)
	}
	if got, want := cert.Serial, sshcert.SerialOf(a.GrantID); got != want || got == 0 {
		t.Errorf("Serial = %d, want %d", got, want)
	}
	wantExt := map[string]string{"permit-pty": "", "permit-port-forwarding": "", "login@example.com": ""}
	if !mapsEqual(cert.Extensions, wantExt) || len(cert.CriticalOptions) != 0 {
		t.Errorf("Extensions, CriticalOptions = %v, %v, want %v and none", cert.Extensions, cert.CriticalOptions, wantExt)
	}
	if !strings.Contains(got.Message, "~/.ssh/id_ed25519-cert.pub") || !strings.Contains(got.Message, "2030-01-02 17:04:05 UTC") {
		t.Errorf("the message does not say where to save the certificate and until when it works:\n%s", got.Message)
	}

	wantFacts := map[string]string{
		"key_id":       a.GrantID,
		"serial":       strconv.FormatUint(cert.Serial, 10),
		"principals":   "jane,login-u0123jane,ops",
		"fingerprint":  ssh.FingerprintSHA256(cert.Key),
		"valid_after":  "2030-01-02T15:03:05Z",
		"valid_before": "2030-01-02T17:04:05Z",
		"key_source":   "request",
	}
	if !mapsEqual(got.Facts, wantFacts) {
		t.Errorf("Facts = %v, want %v", got.Facts, wantFacts)
	}

	// A retry issues an equivalent certificate.
	again, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant again: %v", err)
	}
	cert2 := parseCert(t, again.Message)
	if cert2.Serial != cert.Serial || cert2.KeyId != cert.KeyId || !slices.Equal(cert2.ValidPrincipals, cert.ValidPrincipals) || cert2.ValidBefore != cert.ValidBefore {
		t.Errorf("a retried grant issued a different certificate: %+v, want one like %+v", cert2, cert)
	}
	if !mapsEqual(again.Facts, got.Facts) {
		t.Errorf("a retried grant's facts = %v, want %v", again.Facts, got.Facts)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDefaults(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t, func(c *sshcert.Config) { c.RevokedKeysFile, c.KeysDir, c.Now = "", "", nil })
	a := u.access(publicKey(t))
	a.ExpiresAt = time.Now().Add(time.Hour)
	got, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	cert := parseCert(t, got.Message)
	if want := []string{"jane"}; !slices.Equal(cert.ValidPrincipals, want) {
		t.Errorf("ValidPrincipals = %q, want %q", cert.ValidPrincipals, want)
	}
	if want := map[string]string{"permit-pty": ""}; !mapsEqual(cert.Extensions, want) {
		t.Errorf("Extensions = %v, want %v", cert.Extensions, want)
	}
	if got, want := cert.ValidBefore, uint64(a.ExpiresAt.Unix()); got != want {
		t.Errorf("ValidBefore = %d, want %d (the expiry, rounded down to the second)", got, want)
	}
	// Without a revoked keys file, a revoke leaves the certificate to its
	// expiry.
	if err := c.Revoke(t.Context(), a); err != nil {
		t.Errorf("Revoke: %v", err)
	}

	none := u.connector(t, func(c *sshcert.Config) { c.Extensions = []string{} })
	got, err = none.Grant(t.Context(), u.access(publicKey(t)))
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if cert := parseCert(t, got.Message); len(cert.Extensions) != 0 {
		t.Errorf("Extensions = %v, want none", cert.Extensions)
	}
}

func TestCAKeyFormats(t *testing.T) {
	_, long := rsaKeys()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	openssh := func(key any) []byte {
		block, err := ssh.MarshalPrivateKey(key, "ca")
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(block)
	}
	tests := []struct {
		name string
		pem  []byte
		pub  any
	}{
		{"OpenSSH Ed25519", openssh(edKey), edKey.Public()},
		{"OpenSSH RSA", openssh(long), long.Public()},
		{"PEM RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(long)}), long.Public()},
		{"PEM ECDSA", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), ecKey.Public()},
		{"PEM PKCS #8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), edKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			if err := os.WriteFile(u.caFile, tt.pem, 0o600); err != nil {
				t.Fatal(err)
			}
			c := u.connector(t)
			caPub, err := ssh.NewPublicKey(tt.pub)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.PublicKey(), authorizedKey(caPub); got != want {
				t.Errorf("PublicKey() = %s, want %s", got, want)
			}
			got, err := c.Grant(t.Context(), u.access(publicKey(t)))
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			cert := parseCert(t, got.Message)
			checkCert(t, cert, caPub, "jane", u.now)
			// sshd refuses SHA-1 signatures by default.
			if caPub.Type() == ssh.KeyAlgoRSA && cert.Signature.Format == ssh.KeyAlgoRSA {
				t.Errorf("an RSA authority signs with %s (SHA-1), want rsa-sha2-256 or rsa-sha2-512", cert.Signature.Format)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	short, _ := rsaKeys()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(edKey, "ca", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	withPassphrase := pem.EncodeToMemory(block)
	block, err = ssh.MarshalPrivateKey(short, "ca")
	if err != nil {
		t.Fatal(err)
	}
	shortRSA := pem.EncodeToMemory(block)

	tests := []struct {
		name   string
		setup  func(t *testing.T, u *unit)
		config func(c *sshcert.Config)
		want   string // what the error must mention, if anything
	}{
		{name: "no name", config: func(c *sshcert.Config) { c.Name = "" }},
		{name: "no ca key file", config: func(c *sshcert.Config) { c.CAKeyFile = "" }},
		{name: "missing ca key file", config: func(c *sshcert.Config) { c.CAKeyFile += ".missing" }},
		{name: "world-readable ca key", setup: func(t *testing.T, u *unit) { chmod(t, u.caFile, 0o644) }, want: "chmod 600"},
		{name: "world-writable ca key", setup: func(t *testing.T, u *unit) { chmod(t, u.caFile, 0o602) }, want: "chmod 600"},
		{name: "ca key with a passphrase", setup: func(t *testing.T, u *unit) { writeFile(t, u.caFile, withPassphrase, 0o600) }, want: "passphrase"},
		{name: "not a key", setup: func(t *testing.T, u *unit) { writeFile(t, u.caFile, []byte("hello\n"), 0o600) }},
		{name: "public key as ca key", setup: func(t *testing.T, u *unit) { writeFile(t, u.caFile, []byte(publicKey(t)+"\n"), 0o600) }},
		{name: "short RSA ca key", setup: func(t *testing.T, u *unit) { writeFile(t, u.caFile, shortRSA, 0o600) }, want: "2048"},
		{name: "no entitlements", config: func(c *sshcert.Config) { c.Entitlements = nil }},
		{name: "entitlement with a comma", config: func(c *sshcert.Config) { c.Entitlements = []string{"a,b"} }},
		{name: "entitlement twice", config: func(c *sshcert.Config) { c.Entitlements = []string{"login", "login"} }},
		{name: "template does not parse", config: func(c *sshcert.Config) { c.PrincipalsTemplate = "{{.LocalPart" }},
		{name: "template names an unknown field", config: func(c *sshcert.Config) { c.PrincipalsTemplate = "{{.Manager}}" }},
		{name: "template yields no principal", config: func(c *sshcert.Config) { c.PrincipalsTemplate = "{{/* none */}}" }},
		{name: "template yields a bad principal", config: func(c *sshcert.Config) { c.PrincipalsTemplate = "-{{.LocalPart}}" }},
		{name: "unknown extension", config: func(c *sshcert.Config) { c.Extensions = []string{"permit-everything"} }},
		{name: "critical option as extension", config: func(c *sshcert.Config) { c.Extensions = []string{"verify-required"} }},
		{name: "relative revoked keys file", config: func(c *sshcert.Config) { c.RevokedKeysFile = "revoked_keys" }},
		{name: "revoked keys file in a missing directory", config: func(c *sshcert.Config) { c.RevokedKeysFile = "/nonexistent/revoked_keys" }},
		{name: "revoked keys file is a plain list", setup: func(t *testing.T, u *unit) {
			writeFile(t, u.revoked, []byte(publicKey(t)+"\n"), 0o644)
		}, want: "ssh-keygen -k"},
		{name: "missing keys dir", config: func(c *sshcert.Config) { c.KeysDir += "/missing" }},
		{name: "relative keys dir", config: func(c *sshcert.Config) { c.KeysDir = "keys" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			if tt.setup != nil {
				tt.setup(t, u)
			}
			c := u.config()
			if tt.config != nil {
				tt.config(&c)
			}
			conn, err := sshcert.New(c)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error", conn)
			}
			if !errors.Is(err, sshcert.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// wantRefusal fails the test unless err is a permanent *Error for op that
// wraps want.
func wantRefusal(t *testing.T, err error, op string, want error) {
	t.Helper()
	var e *sshcert.Error
	switch {
	case err == nil:
		t.Fatalf("%s succeeded, want %v", op, want)
	case !errors.As(err, &e):
		t.Errorf("error %v (%T) is not an *sshcert.Error", err, err)
	case e.Op != op || e.Connector != "ssh":
		t.Errorf("Op, Connector = %q, %q, want %q, ssh", e.Op, e.Connector, op)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %v does not wrap %v", err, want)
	}
	if !workflow.IsPermanent(err) {
		t.Errorf("error %v is transient, want permanent", err)
	}
}

// wantTransient fails the test unless err is a transient *Error for op.
func wantTransient(t *testing.T, err error, op string) {
	t.Helper()
	var e *sshcert.Error
	switch {
	case err == nil:
		t.Fatalf("%s succeeded, want a transient error", op)
	case !errors.As(err, &e):
		t.Errorf("error %v (%T) is not an *sshcert.Error", err, err)
	case e.Op != op:
		t.Errorf("Op = %q, want %q", e.Op, op)
	}
	if workflow.IsPermanent(err) {
		t.Errorf("error %v is permanent, want transient", err)
	}
}

func TestPublicKeyRefused(t *testing.T) {
	short, long := rsaKeys()
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u := newUnit(t)
	c := u.connector(t)
	issued, err := c.Grant(t.Context(), u.access(publicKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(long)})

	tests := []struct {
		name string
		key  string
		want error // nil: accepted
	}{
		{"Ed25519", publicKey(t), nil},
		{"Ed25519 with a comment and a newline", publicKey(t) + " jane@laptop\n", nil},
		{"ECDSA", line(t, ecKey.Public()), nil},
		{"RSA 2048", line(t, long.Public()), nil},
		{"RSA 1024", line(t, short.Public()), sshcert.ErrWeakKey},
		{"DSA", dsaKey(t), sshcert.ErrWeakKey},
		{"certificate", certLine(issued.Message), sshcert.ErrInvalidKey},
		{"private key", string(privPEM), sshcert.ErrInvalidKey},
		{"garbage", "hello world", sshcert.ErrInvalidKey},
		{"truncated", publicKey(t)[:40], sshcert.ErrInvalidKey},
		{"two keys", publicKey(t) + "\n" + publicKey(t), sshcert.ErrInvalidKey},
		{"options", `command="/bin/sh" ` + publicKey(t), sshcert.ErrInvalidKey},
		{"too long", "ssh-ed25519 " + strings.Repeat("A", 20<<10), sshcert.ErrInvalidKey},
		{"white space only, no registered key", " \n", sshcert.ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Grant(t.Context(), u.access(tt.key))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Grant: %v", err)
				}
				return
			}
			wantRefusal(t, err, "grant", tt.want)
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "AAAA") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestRegisteredKey(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t)
	jane := publicKey(t)
	writeFile(t, filepath.Join(u.keysDir, "U0123JANE.pub"), []byte("# jane's laptop\n\n"+jane+" jane@laptop\n"), 0o644)

	a := u.access("")
	a.Params = nil
	got, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant with a registered key: %v", err)
	}
	if cert := parseCert(t, got.Message); authorizedKey(cert.Key) != jane {
		t.Errorf("certified %s, want the registered key %s", authorizedKey(cert.Key), jane)
	}
	if got.Facts["key_source"] != "registered" {
		t.Errorf("key_source = %q, want registered", got.Facts["key_source"])
	}

	// A key in the request comes first.
	other := publicKey(t)
	got, err = c.Grant(t.Context(), u.access(other))
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if cert := parseCert(t, got.Message); authorizedKey(cert.Key) != other || got.Facts["key_source"] != "request" {
		t.Errorf("certified %s from %s, want the request's key %s", authorizedKey(cert.Key), got.Facts["key_source"], other)
	}

	if err := os.Mkdir(filepath.Join(u.keysDir, "U0DIR.pub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(u.keysDir, "U0TWO.pub"), []byte(publicKey(t)+"\n"+publicKey(t)+"\n"), 0o644)
	writeFile(t, filepath.Join(u.keysDir, "U0EMPTY.pub"), []byte("# nothing yet\n"), 0o644)
	writeFile(t, filepath.Join(u.keysDir, "U0WEAK.pub"), []byte(dsaKey(t)+"\n"), 0o644)
	writeFile(t, filepath.Join(u.dir, "U0OUTSIDE.pub"), []byte(publicKey(t)+"\n"), 0o644)
	tests := []struct {
		slackID string
		want    error
	}{
		{"U0NOBODY", sshcert.ErrNoKey},
		{"", sshcert.ErrNoKey},
		{"../U0OUTSIDE", sshcert.ErrNoKey},
		{"U0DIR", sshcert.ErrInvalidKey},
		{"U0TWO", sshcert.ErrInvalidKey},
		{"U0EMPTY", sshcert.ErrNoKey},
		{"U0WEAK", sshcert.ErrWeakKey},
	}
	for _, tt := range tests {
		t.Run(tt.slackID, func(t *testing.T) {
			a := u.access("")
			a.User.SlackID = tt.slackID
			_, err := c.Grant(t.Context(), a)
			wantRefusal(t, err, "grant", tt.want)
		})
	}

	// A keys directory that is gone is the host's failure, not the person's.
	t.Run("keys dir gone", func(t *testing.T) {
		if err := os.RemoveAll(u.keysDir); err != nil {
			t.Fatal(err)
		}
		a := u.access("")
		_, err := c.Grant(t.Context(), a)
		wantTransient(t, err, "grant")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v does not wrap fs.ErrNotExist", err)
		}
	})
}

func TestPrincipalsRefused(t *testing.T) {
	tests := []struct {
		name     string
		template string
		email    string
		slackID  string
		want     []string // nil: refused
	}{
		{name: "comma in the local part", template: "{{.LocalPart}}", email: "jane,root@example.com"},
		{name: "newline in the local part", template: "{{.LocalPart}}", email: "jane\nroot@example.com"},
		{name: "space in the email", template: "{{.Email}}", email: "jane@example.com root"},
		{name: "tab in the name", template: "{{.Name}}", email: "jane\troot@example.com"},
		{name: "control character", template: "{{.LocalPart}}", email: "jane\x00@example.com"},
		{name: "comma in the Slack id", template: "u-{{.SlackID}}", slackID: "U1,root"},
		{name: "option-like principal", template: "{{.LocalPart}}", email: "-oProxyCommand=x@example.com"},
		{name: "pattern principal", template: "{{.LocalPart}}", email: "*@example.com"},
		{name: "non-ASCII principal", template: "{{.LocalPart}}", email: "jané@example.com"},
		{name: "no principal", template: "{{.LocalPart}}", email: "@example.com"},
		{name: "no email", template: "{{.Email}}", email: ""},
		{name: "lower and replace", template: `{{.LocalPart | lower | replace "." "_"}}`, email: "Jane.Doe@example.com", want: []string{"jane_doe"}},
		{name: "separators from the template", template: "{{.LocalPart}},{{.Entitlement}} {{.LocalPart}}", email: "jane@example.com", want: []string{"jane", "login"}},
		{name: "email principal", template: "{{.Email}}", email: "jane+ops@example.com", want: []string{"jane+ops@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			c := u.connector(t, func(c *sshcert.Config) { c.PrincipalsTemplate = tt.template })
			a := u.access(publicKey(t))
			a.User.Email = tt.email
			if tt.slackID != "" {
				a.User.SlackID = tt.slackID
			}
			got, err := c.Grant(t.Context(), a)
			if tt.want == nil {
				wantRefusal(t, err, "grant", sshcert.ErrInvalidPrincipal)
				return
			}
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			if cert := parseCert(t, got.Message); !slices.Equal(cert.ValidPrincipals, tt.want) {
				t.Errorf("ValidPrincipals = %q, want %q", cert.ValidPrincipals, tt.want)
			}
		})
	}
}

func TestAccessRefused(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t)
	tests := []struct {
		name   string
		access func(a *workflow.Access)
		want   error
	}{
		{"unknown entitlement", func(a *workflow.Access) { a.Entitlement = "admins" }, sshcert.ErrUnknownEntitlement},
		{"unknown entitlement and no key", func(a *workflow.Access) { a.Entitlement, a.Params = "admins", nil }, sshcert.ErrUnknownEntitlement},
		{"no grant id", func(a *workflow.Access) { a.GrantID = "" }, sshcert.ErrInvalidAccess},
		{"grant id with a newline", func(a *workflow.Access) { a.GrantID = "g1\nAccepted publickey" }, sshcert.ErrInvalidAccess},
		{"no expiry", func(a *workflow.Access) { a.ExpiresAt = time.Time{} }, sshcert.ErrInvalidAccess},
		{"expired", func(a *workflow.Access) { a.ExpiresAt = u.now }, sshcert.ErrInvalidAccess},
		{"expires within the second", func(a *workflow.Access) { a.ExpiresAt = u.now.Add(time.Second / 2) }, sshcert.ErrInvalidAccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := u.access(publicKey(t))
			tt.access(&a)
			_, err := c.Grant(t.Context(), a)
			wantRefusal(t, err, "grant", tt.want)
		})
	}
}

// Facts go to the audit log, which everyone reads: they must hold nothing
// of the certificate authority's key, the certificate or the message.
func TestFactsHoldNoSecret(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t)
	caPEM, err := os.ReadFile(u.caFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Grant(t.Context(), u.access(publicKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	cert := certLine(got.Message)
	_, certBlob, _ := strings.Cut(cert, " ")
	certBlob, _, _ = strings.Cut(certBlob, " ")
	block, _ := pem.Decode(caPEM)
	for name, value := range got.Facts {
		for _, secret := range []string{string(caPEM), string(block.Bytes), certBlob, cert} {
			if strings.Contains(value, secret) || (len(value) > 16 && strings.Contains(secret, value)) {
				t.Errorf("fact %s = %q holds part of a secret", name, value)
			}
		}
		if strings.Contains(value, "PRIVATE") || strings.Contains(value, "\n") {
			t.Errorf("fact %s = %q", name, value)
		}
	}
}

func TestRevokeFile(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t)
	a := u.access(publicKey(t))
	serial := sshcert.SerialOf(a.GrantID)

	if err := c.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke never granted: %v", err)
	}
	wantSerials(t, u, serial)
	info, err := os.Stat(u.revoked)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o644 {
		t.Errorf("the revoked keys file's mode = %04o, want 0644", got)
	}

	if _, err := c.Grant(t.Context(), a); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	wantSerials(t, u) // the grant lifted its own revocation

	if err := c.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	before := readFile(t, u.revoked)
	if err := c.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke again: %v", err)
	}
	if after := readFile(t, u.revoked); !bytes.Equal(after, before) {
		t.Errorf("revoking twice rewrote the file")
	}
	wantSerials(t, u, serial)

	// Another grant of the same key is not revoked with the first.
	b := a
	b.GrantID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"
	if _, err := c.Grant(t.Context(), b); err != nil {
		t.Fatalf("Grant of another grant id: %v", err)
	}
	wantSerials(t, u, serial)

	// Once the access has expired, the certificate has ended by itself.
	expired := b
	expired.ExpiresAt = u.now
	if err := c.Revoke(t.Context(), expired); err != nil {
		t.Fatalf("Revoke after expiry: %v", err)
	}
	wantSerials(t, u, serial)

	// A revoke without a grant id has nothing to revoke.
	none := a
	none.GrantID = ""
	if err := c.Revoke(t.Context(), none); err != nil {
		t.Errorf("Revoke without a grant id: %v", err)
	}

}

func wantSerials(t *testing.T, u *unit, serials ...uint64) {
	t.Helper()
	got, ids, err := sshcert.Revoked(u.revoked, u.ca)
	if err != nil {
		t.Fatalf("read the revoked keys file: %v", err)
	}
	var want [][2]uint64
	for _, s := range slices.Sorted(slices.Values(serials)) {
		want = append(want, [2]uint64{s, s})
	}
	if !slices.Equal(got, want) || len(ids) != 0 {
		t.Errorf("revoked serials, key ids = %v, %q, want %v and none", got, ids, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Revokes at the same time, from two connectors with authorities of their
// own sharing the file, lose nothing.
func TestConcurrentRevokes(t *testing.T) {
	u := newUnit(t)
	other := newUnit(t)
	c1 := u.connector(t)
	c2 := other.connector(t, func(c *sshcert.Config) { c.RevokedKeysFile = u.revoked })
	const n = 20
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		for _, c := range []*sshcert.Connector{c1, c2} {
			wg.Go(func() {
				a := u.access("")
				a.GrantID = fmt.Sprintf("grant-%d", i)
				errs <- c.Revoke(t.Context(), a)
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Revoke: %v", err)
		}
	}
	for _, ca := range []ssh.PublicKey{u.ca, other.ca} {
		got, _, err := sshcert.Revoked(u.revoked, ca)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, r := range got {
			count += int(r[1] - r[0] + 1)
		}
		if count != n {
			t.Errorf("the file revokes %d serials of an authority, want %d", count, n)
		}
	}
}

func TestRevokedKeysFileTrouble(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, u *unit)
		want    error
	}{
		{"lock cannot be opened", func(t *testing.T, u *unit) {
			if err := os.Mkdir(u.revoked+".lock", 0o755); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"directory gone", func(t *testing.T, u *unit) {
			if err := os.Rename(u.dir, u.dir+".moved"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Rename(u.dir+".moved", u.dir) })
		}, fs.ErrNotExist},
		{"plain list of keys", func(t *testing.T, u *unit) {
			writeFile(t, u.revoked, []byte(publicKey(t)+"\n"), 0o644)
		}, sshcert.ErrRevokedKeysFile},
		{"damaged list", func(t *testing.T, u *unit) {
			writeFile(t, u.revoked, []byte("SSHKRL\n\x00\x00\x00\x00\x01\x00"), 0o644)
		}, sshcert.ErrRevokedKeysFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			// The CA key lives in a directory of its own, which survives.
			c := u.connector(t)
			a := u.access(publicKey(t))
			tt.breakIt(t, u)
			_, err := c.Grant(t.Context(), a)
			wantTransient(t, err, "grant")
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Grant: %v, want %v", err, tt.want)
			}
			err = c.Revoke(t.Context(), a)
			wantTransient(t, err, "revoke")
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Revoke: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCanceled(t *testing.T) {
	u := newUnit(t)
	c := u.connector(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := u.access(publicKey(t))
	_, err := c.Grant(ctx, a)
	wantTransient(t, err, "grant")
	err = c.Revoke(ctx, a)
	wantTransient(t, err, "revoke")
	if _, statErr := os.Stat(u.revoked); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("a canceled revoke wrote the file (%v)", statErr)
	}
}
