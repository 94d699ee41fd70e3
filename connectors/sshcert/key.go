package sshcert

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/workflow"
)

const (
	// ParamPublicKey is the request input that carries the beneficiary's
	// public key: one line in the authorized_keys form, such as the
	// content of ~/.ssh/id_ed25519.pub.
	ParamPublicKey = "public_key"

	// MinRSABits is the shortest RSA key the connector certifies, and the
	// shortest RSA key it accepts as the certificate authority.
	MinRSABits = 2048

	// maxKeyLine bounds one public key line; a 16384-bit RSA key takes
	// under 3 KiB.
	maxKeyLine = 16 << 10

	// maxKeyFile bounds a registered key's file.
	maxKeyFile = 64 << 10
)

// Where the key a certificate is issued for came from, as recorded in the
// "key_source" fact.
const (
	sourceRequest    = "request"
	sourceRegistered = "registered"
)

// keyFileName is the form of a Slack user id that may name a registered
// key's file: no dot, no slash, so that it cannot leave KeysDir.
var keyFileName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// supply is the advice every refused key ends with.
const supply = "supply the one line of your public key file, such as ~/.ssh/id_ed25519.pub " +
	"(make a key pair with ssh-keygen -t ed25519 if you have none)"

// userKey returns the key a certificate for a is issued for, and where it
// came from: the request's public_key input, or else the key registered
// for the person in the keys directory.
func (c *Connector) userKey(a workflow.Access) (ssh.PublicKey, string, error) {
	if line := a.Params[ParamPublicKey]; strings.TrimSpace(line) != "" {
		key, err := parsePublicKey(line)
		if err != nil {
			return nil, "", fmt.Errorf("the request's %s: %w", ParamPublicKey, err)
		}
		return key, sourceRequest, nil
	}
	if c.keysDir == "" {
		return nil, "", fmt.Errorf("%w for %s: the request carries none; %s in the request's %s field",
			ErrNoKey, a.User.SlackID, supply, ParamPublicKey)
	}
	key, err := c.registeredKey(a.User.SlackID)
	if err != nil {
		return nil, "", err
	}
	return key, sourceRegistered, nil
}

// registeredKey reads the key registered for the person with the Slack
// user id slackID, from <KeysDir>/<slackID>.pub.
func (c *Connector) registeredKey(slackID string) (ssh.PublicKey, error) {
	noKey := fmt.Errorf("%w for %s: the request carries none and none is registered; %s in the request's %s field, or have it registered as %s.pub",
		ErrNoKey, slackID, supply, ParamPublicKey, slackID)
	if !keyFileName.MatchString(slackID) {
		return nil, fmt.Errorf("%w for %q: the request carries none, and a registered one cannot be found by this Slack user id; %s in the request's %s field",
			ErrNoKey, slackID, supply, ParamPublicKey)
	}
	f, err := os.Open(filepath.Join(c.keysDir, slackID+".pub"))
	if errors.Is(err, fs.ErrNotExist) {
		// A keys directory that is gone (unmounted, say) is a failure of
		// the connector's host, not a person without a key.
		if _, err := os.Stat(c.keysDir); err != nil {
			return nil, fmt.Errorf("the keys directory: %w", err)
		}
		return nil, noKey
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("the registered key %s.pub: %w: not a regular file", slackID, ErrInvalidKey)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("the registered key %s.pub: %w: the file is longer than %d bytes; keep one public key line in it", slackID, ErrInvalidKey, maxKeyFile)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	switch len(lines) {
	case 0:
		return nil, noKey
	case 1:
	default:
		return nil, fmt.Errorf("the registered key %s.pub: %w: the file holds %d lines; keep one public key line in it", slackID, ErrInvalidKey, len(lines))
	}
	key, err := parsePublicKey(lines[0])
	if err != nil {
		return nil, fmt.Errorf("the registered key %s.pub: %w", slackID, err)
	}
	return key, nil
}

// parsePublicKey parses one public key line in the authorized_keys form
// and checks that it is a key fit to certify. Its errors never quote the
// text, which might be a private key pasted by mistake.
func parsePublicKey(text string) (ssh.PublicKey, error) {
	text = strings.TrimSpace(text)
	switch {
	case strings.Contains(text, "PRIVATE KEY"):
		return nil, fmt.Errorf("%w: this is a private key, which must never leave your machine; as it has, make a new key pair with ssh-keygen -t ed25519 "+
			"and supply its public key, the one line of the .pub file next to it", ErrInvalidKey)
	case len(text) > maxKeyLine:
		return nil, fmt.Errorf("%w: longer than %d bytes; %s", ErrInvalidKey, maxKeyLine, supply)
	case strings.ContainsAny(text, "\r\n"):
		return nil, fmt.Errorf("%w: more than one line; %s", ErrInvalidKey, supply)
	}
	key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(text))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not an OpenSSH public key; %s", ErrInvalidKey, supply)
	case len(options) > 0:
		return nil, fmt.Errorf("%w: it starts with authorized_keys options; supply the key alone, starting with its type such as ssh-ed25519", ErrInvalidKey)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// checkKey refuses a certificate, and keys too weak to certify.
func checkKey(key ssh.PublicKey) error {
	if _, ok := key.(*ssh.Certificate); ok {
		return fmt.Errorf("%w: it is a certificate, not a key; supply the public key it was issued for (the .pub file without -cert in its name)", ErrInvalidKey)
	}
	switch key.Type() {
	case ssh.InsecureKeyAlgoDSA:
		return fmt.Errorf("%w: DSA keys are no longer safe; make an Ed25519 key pair with ssh-keygen -t ed25519 and supply its public key", ErrWeakKey)
	case ssh.KeyAlgoRSA:
		if bits := rsaBits(key); bits < MinRSABits {
			return fmt.Errorf("%w: an RSA key of %d bits is too short (at least %d); make an Ed25519 key pair with ssh-keygen -t ed25519 and supply its public key",
				ErrWeakKey, bits, MinRSABits)
		}
	}
	return nil
}

// rsaBits returns the size of an RSA key's modulus, or 0 if key is not
// one.
func rsaBits(key ssh.PublicKey) int {
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	pub, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return pub.N.BitLen()
}

// keyFileBase returns the usual file name of a private key of key's type
// in ~/.ssh, such as id_ed25519.
func keyFileBase(key ssh.PublicKey) string {
	switch key.Type() {
	case ssh.KeyAlgoED25519:
		return "id_ed25519"
	case ssh.KeyAlgoSKED25519:
		return "id_ed25519_sk"
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return "id_ecdsa"
	case ssh.KeyAlgoSKECDSA256:
		return "id_ecdsa_sk"
	case ssh.KeyAlgoRSA:
		return "id_rsa"
	}
	return "id_key"
}
