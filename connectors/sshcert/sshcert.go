package sshcert

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/workflow"
)

const (
	// ClockSkew is how long before the grant a certificate's validity
	// starts, so that servers whose clocks run a little behind accept it
	// at once.
	ClockSkew = time.Minute

	// maxCAKeyFile bounds the certificate authority's key file.
	maxCAKeyFile = 1 << 20

	// maxGrantID bounds a grant id, which becomes the certificate's key
	// id and appears in sshd's logs.
	maxGrantID = 256
)

// knownExtensions are the certificate extensions OpenSSH knows. Others are
// written name@domain.
var knownExtensions = []string{
	"no-touch-required", "permit-X11-forwarding", "permit-agent-forwarding",
	"permit-port-forwarding", "permit-pty", "permit-user-rc",
}

// Config is an sshcert connector's configuration.
type Config struct {
	// Name is the connector's name in latch's configuration.
	Name string

	// CAKeyFile is the file holding the certificate authority's private
	// key, in the OpenSSH or the PEM format, without a passphrase. It is
	// read once, by New, and must be open to its owner alone (chmod 600).
	// Ed25519, ECDSA and RSA of at least MinRSABits bits are accepted.
	CAKeyFile string

	// Entitlements are the entitlements the connector grants, one name
	// each (letters, digits and . _ @ + -). An entitlement is a set of
	// principals: the template below decides which, and may name it as
	// .Entitlement. Any other entitlement is refused with a permanent
	// error. At least one is required.
	Entitlements []string

	// PrincipalsTemplate is a text/template that yields the certificate's
	// principals for a person, separated by commas or white space; empty
	// means DefaultPrincipalsTemplate. Its dot offers .Email, .LocalPart,
	// .Name (the same as .LocalPart), .SlackID and .Entitlement, and the
	// functions lower, upper and replace (old, new, s).
	PrincipalsTemplate string

	// Extensions are the certificate's extensions: any of
	// no-touch-required, permit-X11-forwarding, permit-agent-forwarding,
	// permit-port-forwarding, permit-pty and permit-user-rc, or
	// name@domain for one of your own. Nil means permit-pty alone; an
	// empty, non-nil list means none (commands, sftp and tunnels that need
	// no extension still work).
	Extensions []string

	// RevokedKeysFile, if set, is the absolute path of the key revocation
	// list that the servers' sshd reads through RevokedKeys: Revoke adds
	// the certificate's serial to it. Without it, Revoke does nothing and
	// a certificate lasts until it expires.
	RevokedKeysFile string

	// KeysDir, if set, is the absolute path of a directory of registered
	// public keys, one file named <Slack user id>.pub for each person,
	// such as U0123ABCD.pub. A request that carries no public_key input
	// gets a certificate for the registered key.
	KeysDir string

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Connector issues OpenSSH user certificates as grants, and revokes them
// in a key revocation list. It is safe for concurrent use.
type Connector struct {
	name         string
	ca           ssh.Signer
	caBlob       []byte
	entitlements []string
	principals   *template.Template
	extensions   map[string]string
	revokedKeys  string
	keysDir      string
	now          func() time.Time

	// sem serialises this connector's updates of the revoked keys file;
	// the file lock orders them with other connectors and processes.
	sem chan struct{}
}

var _ workflow.Provisioner = (*Connector)(nil)

// New returns the connector c describes, having read its certificate
// authority's key. Every error it returns wraps ErrInvalidConfig.
func New(c Config) (*Connector, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Name == "" {
		bad("the connector has no name")
	}

	var ca ssh.Signer
	if c.CAKeyFile == "" {
		bad("no ca key file: set the file holding the certificate authority's private key")
	} else if signer, err := loadCA(c.CAKeyFile); err != nil {
		bad("ca key file: %v", err)
	} else {
		ca = signer
	}

	entitlementsOK := len(c.Entitlements) > 0
	if !entitlementsOK {
		bad("no entitlements: list the entitlement names this connector grants")
	}
	for i, e := range c.Entitlements {
		switch {
		case !validPrincipal(e):
			bad("entitlement %q is not a plain name: use letters, digits and . _ @ + -", e)
			entitlementsOK = false
		case slices.Contains(c.Entitlements[:i], e):
			bad("entitlement %q is listed twice", e)
		}
	}

	text := c.PrincipalsTemplate
	if text == "" {
		text = DefaultPrincipalsTemplate
	}
	var tmpl *template.Template
	if entitlementsOK {
		var err error
		if tmpl, err = parsePrincipals(text, c.Entitlements); err != nil {
			bad("principals template %q does not work: %v; its fields are .Email, .LocalPart, .Name, .SlackID and .Entitlement", text, err)
		}
	}

	exts := c.Extensions
	if exts == nil {
		exts = []string{"permit-pty"}
	}
	extensions := make(map[string]string, len(exts))
	for _, e := range exts {
		switch {
		case e == "verify-required" || e == "force-command" || e == "source-address":
			bad("%s is a certificate critical option, not an extension; this connector sets no critical options", e)
		case !slices.Contains(knownExtensions, e) && !customExtension(e):
			bad("unknown certificate extension %q: use one of %s, or name@domain for one of your own", e, strings.Join(knownExtensions, ", "))
		}
		extensions[e] = ""
	}

	if c.RevokedKeysFile != "" {
		if err := checkRevokedKeysFile(c.RevokedKeysFile, ca); err != nil {
			bad("revoked keys file: %v", err)
		}
	}
	if c.KeysDir != "" {
		if err := checkDir(c.KeysDir); err != nil {
			bad("keys dir: %v", err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &Connector{
		name:         c.Name,
		ca:           ca,
		caBlob:       ca.PublicKey().Marshal(),
		entitlements: slices.Clone(c.Entitlements),
		principals:   tmpl,
		extensions:   extensions,
		revokedKeys:  c.RevokedKeysFile,
		keysDir:      c.KeysDir,
		now:          now,
		sem:          make(chan struct{}, 1),
	}, nil
}

// customExtension reports whether name has the form name@domain.
func customExtension(name string) bool {
	local, domain, ok := strings.Cut(name, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		!strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) })
}

// loadCA reads the certificate authority's private key.
func loadCA(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("%s is open to every user of this machine (mode %04o); make it readable by latch alone with chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCAKeyFile {
		return nil, fmt.Errorf("%s is longer than %d bytes, too long for a private key", path, maxCAKeyFile)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%s is protected by a passphrase, which latch cannot enter; give latch a copy without one (ssh-keygen -p -N '' -f <copy>), readable by latch alone", path)
	case err != nil:
		return nil, fmt.Errorf("%s does not hold a private key in the OpenSSH or the PEM format", path)
	}
	if err := checkKey(signer.PublicKey()); err != nil {
		return nil, fmt.Errorf("%s: the certificate authority's key: %w", path, err)
	}
	return signer, nil
}

// checkRevokedKeysFile checks that the revoked keys file can be written
// and, if it exists, read.
func checkRevokedKeysFile(path string, ca ssh.Signer) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return err
	}
	data, err := readRevoked(path)
	if err != nil || ca == nil {
		return err
	}
	if _, err := parseKRL(data, ca.PublicKey().Marshal()); err != nil {
		return revokedFileError(path, err)
	}
	return nil
}

// checkDir checks that path is the absolute path of a directory.
func checkDir(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}

// Name returns the connector's name.
func (c *Connector) Name() string { return c.name }

// PublicKey returns the certificate authority's public key in the
// authorized_keys form: the line the servers' TrustedUserCAKeys file lists.
func (c *Connector) PublicKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.ca.PublicKey())))
}

// Grant issues a certificate for the person's public key, valid from
// ClockSkew ago until a.ExpiresAt (to the second, rounded down). Granting
// again signs an equivalent certificate, with the same serial and key id.
// If an earlier Revoke of the same grant put the serial in the revoked
// keys file, Grant takes it out again. An error is an *Error, marked
// permanent when retrying cannot fix it.
func (c *Connector) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	if err := ctx.Err(); err != nil {
		return workflow.Granted{}, c.fail("grant", err)
	}
	cert, source, err := c.certificate(a)
	if err != nil {
		return workflow.Granted{}, c.fail("grant", err)
	}
	if c.revokedKeys != "" {
		err := c.updateRevoked(ctx, func(k *krl) (bool, error) {
			if why := k.refusal(cert.Key, c.ca.PublicKey(), cert.KeyId); why != "" {
				return false, fmt.Errorf("%w: %s", ErrKeyRevoked, why)
			}
			if !k.serials.contains(cert.Serial) {
				return false, nil
			}
			k.serials = k.serials.remove(cert.Serial)
			return true, nil
		})
		if err != nil {
			return workflow.Granted{}, c.fail("grant", err)
		}
	}
	if err := cert.SignCert(rand.Reader, c.ca); err != nil {
		return workflow.Granted{}, c.fail("grant", fmt.Errorf("sign the certificate: %w", err))
	}
	return granted(cert, source), nil
}

// Revoke adds the serial of the grant's certificate to the revoked keys
// file, so that sshd refuses it from its next login on. It does nothing
// without a revoked keys file, and nothing once a.ExpiresAt has passed,
// since the certificate has then ended by itself. Revoking twice, or
// revoking a grant that was never granted, succeeds. Errors are as for
// Grant.
func (c *Connector) Revoke(ctx context.Context, a workflow.Access) error {
	if c.revokedKeys == "" || a.GrantID == "" {
		return nil
	}
	if !c.now().Before(validBefore(a.ExpiresAt)) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return c.fail("revoke", err)
	}
	serial := serialOf(a.GrantID)
	err := c.updateRevoked(ctx, func(k *krl) (bool, error) {
		if k.serials.contains(serial) {
			return false, nil
		}
		k.serials = k.serials.add(serial)
		return true, nil
	})
	if err != nil {
		return c.fail("revoke", err)
	}
	return nil
}

// certificate returns the unsigned certificate for a, and where its key
// came from.
func (c *Connector) certificate(a workflow.Access) (*ssh.Certificate, string, error) {
	if !slices.Contains(c.entitlements, a.Entitlement) {
		return nil, "", fmt.Errorf("%w %q: this connector grants %s", ErrUnknownEntitlement, a.Entitlement, strings.Join(c.entitlements, ", "))
	}
	now := c.now()
	switch {
	case a.GrantID == "":
		return nil, "", fmt.Errorf("%w: no grant id", ErrInvalidAccess)
	case len(a.GrantID) > maxGrantID || strings.ContainsFunc(a.GrantID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return nil, "", fmt.Errorf("%w: the grant id is not a plain name of at most %d bytes", ErrInvalidAccess, maxGrantID)
	case a.ExpiresAt.IsZero():
		return nil, "", fmt.Errorf("%w: the access has no end, and certificates from this connector always expire; request it for a duration", ErrInvalidAccess)
	case !now.Before(validBefore(a.ExpiresAt)):
		return nil, "", fmt.Errorf("%w: the access ended at %s, before it could be granted", ErrInvalidAccess, a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	key, source, err := c.userKey(a)
	if err != nil {
		return nil, "", err
	}
	names, err := principals(c.principals, a.User, a.Entitlement)
	if err != nil {
		return nil, "", err
	}
	extensions := make(map[string]string, len(c.extensions))
	for name := range c.extensions {
		extensions[name] = ""
	}
	return &ssh.Certificate{
		Key:             key,
		Serial:          serialOf(a.GrantID),
		CertType:        ssh.UserCert,
		KeyId:           a.GrantID,
		ValidPrincipals: names,
		ValidAfter:      uint64(max(now.Add(-ClockSkew).Unix(), 0)),
		ValidBefore:     uint64(validBefore(a.ExpiresAt).Unix()),
		Permissions:     ssh.Permissions{Extensions: extensions},
	}, source, nil
}

// validBefore is the end of a certificate for access that ends at t: t
// rounded down to the second, as certificates count in seconds.
func validBefore(t time.Time) time.Time { return t.Truncate(time.Second) }

// serialOf returns the serial of the certificates of the grant with the
// id grantID: the first 8 bytes of a SHA-256 of it, never 0 (a KRL cannot
// revoke serial 0).
func serialOf(grantID string) uint64 {
	sum := sha256.Sum256([]byte("latch sshcert serial\x00" + grantID))
	return max(binary.BigEndian.Uint64(sum[:8]), 1)
}

// granted returns the message and the facts of a signed certificate.
func granted(cert *ssh.Certificate, source string) workflow.Granted {
	base := keyFileBase(cert.Key)
	fingerprint := ssh.FingerprintSHA256(cert.Key)
	until := time.Unix(int64(cert.ValidBefore), 0).UTC()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	var b strings.Builder
	fmt.Fprintf(&b, "Your SSH certificate is valid until %s, for the principals %s.\n\n",
		until.Format("2006-01-02 15:04:05 UTC"), strings.Join(cert.ValidPrincipals, ", "))
	fmt.Fprintf(&b, "Save the line below as ~/.ssh/%s-cert.pub, next to the private key ~/.ssh/%s it was issued for (%s): "+
		"ssh then offers it along with that key. For a key kept elsewhere, save it next to the key as <key file>-cert.pub, "+
		"or pass ssh -o CertificateFile=<file>.\n\n", base, base, fingerprint)
	fmt.Fprintf(&b, "```\n%s\n```", line)
	return workflow.Granted{
		Message: b.String(),
		Facts: map[string]string{
			"key_id":       cert.KeyId,
			"serial":       strconv.FormatUint(cert.Serial, 10),
			"principals":   strings.Join(cert.ValidPrincipals, ","),
			"fingerprint":  fingerprint,
			"valid_after":  time.Unix(int64(cert.ValidAfter), 0).UTC().Format(time.RFC3339),
			"valid_before": until.Format(time.RFC3339),
			"key_source":   source,
		},
	}
}

// fail wraps err, the failure of op, in an *Error, marked permanent when
// err is a refusal of the access.
func (c *Connector) fail(op string, err error) error {
	e := &Error{Connector: c.name, Op: op, Err: err}
	for _, refusal := range []error{ErrNoKey, ErrInvalidKey, ErrWeakKey, ErrKeyRevoked, ErrUnknownEntitlement, ErrInvalidPrincipal, ErrInvalidAccess} {
		if errors.Is(err, refusal) {
			return workflow.Permanent(e)
		}
	}
	return e
}
