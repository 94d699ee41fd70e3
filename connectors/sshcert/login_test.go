package sshcert_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/workflow"
)

var jane = workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"}

func grant(t *testing.T, c workflow.Provisioner, a workflow.Access) string {
	t.Helper()
	g, err := c.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant(%s): %v", a.GrantID, err)
	}
	return certLine(g.Message)
}

func revoke(t *testing.T, c workflow.Provisioner, a workflow.Access) {
	t.Helper()
	if err := c.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke(%s): %v", a.GrantID, err)
	}
}

// A revoke ends the grant's certificate at sshd, and only that one: a new
// grant for the same key works, and granting the revoked grant again lifts
// its revocation.
func TestLoginRevokeAndGrantAgain(t *testing.T) {
	tg := newTarget(t, jane)
	c := tg.connector(t, tg.config())
	first := tg.access("grant-first", jane)
	cert1 := grant(t, c, first)
	tg.wantLogin(t, jane.SlackID, cert1, true)

	revoke(t, c, first)
	tg.wantLogin(t, jane.SlackID, cert1, false)

	second := tg.access("grant-second", jane)
	cert2 := grant(t, c, second)
	tg.wantLogin(t, jane.SlackID, cert2, true)
	tg.wantLogin(t, jane.SlackID, cert1, false)

	again := grant(t, c, first)
	tg.wantLogin(t, jane.SlackID, again, true)
	tg.wantLogin(t, jane.SlackID, cert1, true) // the same grant, the same serial

	revoke(t, c, first)
	revoke(t, c, second)
	tg.wantLogin(t, jane.SlackID, again, false)
	tg.wantLogin(t, jane.SlackID, cert2, false)
}

// sshd itself refuses a certificate past its validity. The connector's
// clock is set back so that it issues one that has already ended.
func TestLoginExpired(t *testing.T) {
	tg := newTarget(t, jane)
	config := tg.config()
	config.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	c := tg.connector(t, config)

	ended := tg.access("grant-ended", jane)
	ended.ExpiresAt = time.Now().Add(-time.Hour)
	tg.wantLogin(t, jane.SlackID, grant(t, c, ended), false)

	current := tg.access("grant-current", jane)
	tg.wantLogin(t, jane.SlackID, grant(t, c, current), true)
}

// The request's key is certified when it carries one, and a certificate
// logs in only as one of its principals.
func TestLoginRequestKey(t *testing.T) {
	tg := newTarget(t, jane)
	config := tg.config()
	config.KeysDir = ""
	config.Entitlements = append(config.Entitlements, "someone-else")
	config.PrincipalsTemplate = "{{.Entitlement}}"
	c := tg.connector(t, config)

	kp := tg.register(t, jane.SlackID) // a key of her own, registered nowhere the connector reads
	a := tg.access("grant-request-key", jane)
	a.Params = map[string]string{sshcert.ParamPublicKey: kp.line + " jane@laptop"}
	tg.wantLogin(t, jane.SlackID, grant(t, c, a), true)

	other := a
	other.GrantID, other.Entitlement = "grant-other-account", "someone-else"
	tg.wantLogin(t, jane.SlackID, grant(t, c, other), false)

	a.Params = nil
	_, err := c.Grant(t.Context(), a)
	if !errors.Is(err, sshcert.ErrNoKey) || !workflow.IsPermanent(err) {
		t.Errorf("Grant without a key: %v, want a permanent ErrNoKey", err)
	}
}

// The revoked keys file is a KRL that ssh-keygen reads, and that the
// connector keeps whole when an operator adds to it with ssh-keygen.
func TestRevokedKeysFileAndSSHKeygen(t *testing.T) {
	keygen := connectortest.Binary(t, "ssh-keygen", "openssh-client")
	u := newUnit(t)
	u.now = time.Now()
	c := u.connector(t)
	revoked, kept := u.access(""), u.access("")
	revoked.GrantID, kept.GrantID = "grant-revoked", "grant-kept"
	revoked.Params = map[string]string{sshcert.ParamPublicKey: publicKey(t)}
	kept.Params = map[string]string{sshcert.ParamPublicKey: publicKey(t)}
	certFile := func(a workflow.Access) string {
		g, err := c.Grant(t.Context(), a)
		if err != nil {
			t.Fatalf("Grant: %v", err)
		}
		path := filepath.Join(u.dir, a.GrantID+"-cert.pub")
		writeFile(t, path, []byte(certLine(g.Message)+"\n"), 0o644)
		return path
	}
	revokedCert, keptCert := certFile(revoked), certFile(kept)
	if err := c.Revoke(t.Context(), revoked); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	// ssh-keygen -Q exits 1 when a key or certificate is revoked.
	query := func(cert string) bool {
		t.Helper()
		out, err := exec.Command(keygen, "-Q", "-f", u.revoked, cert).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return false
		case errors.As(err, &exit) && exit.ExitCode() == 1 && strings.Contains(string(out), "REVOKED"):
			return true
		}
		t.Fatalf("ssh-keygen -Q: %v: %s", err, out)
		return false
	}
	if !query(revokedCert) {
		t.Errorf("ssh-keygen does not find the revoked certificate revoked")
	}
	if query(keptCert) {
		t.Errorf("ssh-keygen finds the other certificate revoked")
	}

	// An operator revokes serials, a key id and a key with ssh-keygen.
	caPub := filepath.Join(u.dir, "ca.pub")
	writeFile(t, caPub, []byte(authorizedKey(u.ca)+"\n"), 0o644)
	banned := publicKey(t)
	spec := filepath.Join(u.dir, "spec")
	writeFile(t, spec, []byte("serial: 5-9\nserial: 11\nid: grant-banned\n"), 0o644)
	keyFile := filepath.Join(u.dir, "banned.pub")
	writeFile(t, keyFile, []byte(banned+"\n"), 0o644)
	for _, args := range [][]string{
		{"-k", "-u", "-s", caPub, "-f", u.revoked, spec},
		{"-k", "-u", "-f", u.revoked, keyFile},
	} {
		if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}

	// The connector reads what ssh-keygen wrote, and keeps it.
	if err := c.Revoke(t.Context(), kept); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	serials, ids, err := sshcert.Revoked(u.revoked, u.ca)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint64{5, 9, 11, sshcert.SerialOf("grant-revoked"), sshcert.SerialOf("grant-kept")} {
		if !slices.ContainsFunc(serials, func(r [2]uint64) bool { return r[0] <= s && s <= r[1] }) {
			t.Errorf("serial %d is not revoked any more: %v", s, serials)
		}
	}
	if slices.ContainsFunc(serials, func(r [2]uint64) bool { return r[0] <= 10 && 10 <= r[1] }) {
		t.Errorf("serial 10 is revoked: %v", serials)
	}
	if !slices.Equal(ids, []string{"grant-banned"}) {
		t.Errorf("revoked key ids = %q, want grant-banned", ids)
	}
	if !query(keyFile) || !query(keptCert) {
		t.Errorf("ssh-keygen lost a revocation")
	}

	// Grants the operator's revocations refuse fail for good.
	bannedKey := u.access(banned)
	bannedKey.GrantID = "grant-banned-key"
	_, err = c.Grant(t.Context(), bannedKey)
	wantRefusal(t, err, "grant", sshcert.ErrKeyRevoked)
	bannedID := u.access(publicKey(t))
	bannedID.GrantID = "grant-banned"
	_, err = c.Grant(t.Context(), bannedID)
	wantRefusal(t, err, "grant", sshcert.ErrKeyRevoked)

	// ssh-keygen still reads the file the connector wrote last.
	if out, err := exec.Command(keygen, "-Q", "-l", "-f", u.revoked).CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Q -l: %v: %s", err, out)
	}
}
