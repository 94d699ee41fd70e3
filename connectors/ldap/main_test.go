package ldap_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/connectors/connectortest"
)

// The test directory.
const (
	suffix         = "dc=example,dc=com"
	adminDN        = "cn=admin,dc=example,dc=com"
	adminPassword  = "admin-secret"
	latchDN        = "cn=latch,ou=services,dc=example,dc=com"
	latchPassword  = "latch-bind-secret"
	readerDN       = "cn=reader,ou=services,dc=example,dc=com"
	readerPassword = "reader-secret"
	peopleDN       = "ou=people,dc=example,dc=com"
	groupsDN       = "ou=groups,dc=example,dc=com"
	// scratchDN holds the groups tests make for themselves, apart from
	// the seeded ones the directory tests read.
	scratchDN = "ou=scratch,dc=example,dc=com"
)

// seed is the directory's content. People: jane and omar report to ann;
// lee is in the directory but not in latch's; dup1 and dup2 share an
// address; "no uid" has no uid; dangler's manager does not exist; kim is
// for the cache test alone.
const seed = `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=scratch,dc=example,dc=com
objectClass: organizationalUnit
ou: scratch

dn: ou=services,dc=example,dc=com
objectClass: organizationalUnit
ou: services

dn: cn=latch,ou=services,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: latch
userPassword: latch-bind-secret

dn: cn=reader,ou=services,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: reader-secret

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann Lead
sn: Lead
mail: ann@example.com

dn: uid=jane,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jane
cn: Jane Doe
sn: Doe
mail: jane@example.com
manager: uid=ann,ou=people,dc=example,dc=com

dn: uid=omar,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: omar
cn: Omar Haddad
sn: Haddad
mail: omar@example.com
manager: uid=ann,ou=people,dc=example,dc=com

dn: uid=lee,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: lee
cn: Lee Park
sn: Park
mail: lee@example.com
manager: uid=ann,ou=people,dc=example,dc=com

dn: uid=kim,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: kim
cn: Kim Lund
sn: Lund
mail: kim@example.com
manager: uid=lee,ou=people,dc=example,dc=com

dn: uid=dup1,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dup1
cn: Dup One
sn: One
mail: dup@example.com

dn: uid=dup2,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dup2
cn: Dup Two
sn: Two
mail: dup@example.com

dn: cn=No Uid,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
cn: No Uid
sn: Uid
mail: nouid@example.com

dn: uid=dangler,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dangler
cn: Dan Gler
sn: Gler
mail: dangler@example.com
manager: uid=gone,ou=people,dc=example,dc=com

dn: cn=engineering,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: engineering
member: cn=admin,dc=example,dc=com
member: uid=jane,ou=people,dc=example,dc=com
member: uid=omar,ou=people,dc=example,dc=com

dn: cn=dba,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: dba
member: cn=admin,dc=example,dc=com
member: uid=omar,ou=people,dc=example,dc=com

dn: cn=ops,ou=groups,dc=example,dc=com
objectClass: posixGroup
cn: ops
gidNumber: 5000
memberUid: jane
memberUid: lee
`

// slapdConf is the server's configuration; %[1]s is its directory.
const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key

database mdb
maxsize 67108864
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-secret
directory %[1]s/db
index objectClass,mail,uid,cn,member,memberUid eq

access to attrs=userPassword
	by anonymous auth
	by * none
access to *
	by dn.exact="cn=latch,ou=services,dc=example,dc=com" write
	by users read
	by * none
`

// server is a slapd started for this test binary.
type server struct {
	dir     string
	addr    string // host:port of ldap://
	tlsAddr string // host:port of ldaps://
	caFile  string // the CA that signed the server's certificate
	cmd     *exec.Cmd
	exited  chan struct{}
	stderr  *lockedBuffer
	seq     atomic.Int64
}

// shared is the one slapd of this test binary, started by the first test
// that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
	}
	os.Exit(code)
}

// slapd returns the shared server, starting it the first time. It skips
// the test, or fails it under LATCH_INTEGRATION=1, without slapd.
func slapd(t testing.TB) *server {
	t.Helper()
	bin := connectortest.Binary(t, "slapd", "slapd", "/usr/sbin")
	slapadd := connectortest.Binary(t, "slapadd", "slapd", "/usr/sbin")
	for _, schema := range []string{"core", "cosine", "inetorgperson", "nis"} {
		if _, err := os.Stat("/etc/ldap/schema/" + schema + ".schema"); err != nil {
			msg := "/etc/ldap/schema/" + schema + ".schema is missing; install the slapd package to run this test"
			if connectortest.Integration() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	shared.once.Do(func() { shared.srv, shared.err = startServer(bin, slapadd) })
	if shared.err != nil {
		t.Fatalf("start slapd: %v", shared.err)
	}
	return shared.srv
}

func startServer(bin, slapadd string) (*server, error) {
	dir, err := os.MkdirTemp("", "latch-ldap-test-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, exited: make(chan struct{}), stderr: &lockedBuffer{}}
	fail := func(err error) (*server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return fail(err)
	}
	if s.caFile, err = writeCerts(dir); err != nil {
		return fail(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, slapdConf, dir), 0o600); err != nil {
		return fail(err)
	}
	ldif := filepath.Join(dir, "seed.ldif")
	if err := os.WriteFile(ldif, []byte(seed), 0o600); err != nil {
		return fail(err)
	}
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("slapadd: %w: %s", err, out))
	}
	ports, err := freePorts(2)
	if err != nil {
		return fail(err)
	}
	s.addr = net.JoinHostPort("127.0.0.1", ports[0])
	s.tlsAddr = net.JoinHostPort("127.0.0.1", ports[1])
	s.cmd = exec.Command(bin, "-f", conf, "-d", "0", "-h", "ldap://"+s.addr+"/ ldaps://"+s.tlsAddr+"/")
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	if err := s.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start %s: %w", bin, err))
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(15 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server until it accepts connections on both
// listeners.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, addr := range []string{s.addr, s.tlsAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-s.exited:
				return fmt.Errorf("slapd exited: %s", s.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("slapd does not listen on %s after %s: %s", addr, limit, s.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// freePorts returns n TCP ports on loopback that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it into dir, and returns the CA's file.
func writeCerts(dir string) (string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "latch test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	files := []struct {
		name, kind string
		der        []byte
	}{
		{"ca.pem", "CERTIFICATE", caDER},
		{"server.pem", "CERTIFICATE", leafDER},
		{"server.key", "PRIVATE KEY", keyDER},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "ca.pem"), nil
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// admin returns a connection bound as the directory's root, apart from any
// connector's, closed when the test ends.
func (s *server) admin(t testing.TB) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL("ldap://" + s.addr)
	if err != nil {
		t.Fatalf("dial slapd: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(10 * time.Second)
	if err := conn.Bind(adminDN, adminPassword); err != nil {
		t.Fatalf("bind as %s: %v", adminDN, err)
	}
	return conn
}

// groupKind is a kind of group and the attribute that lists its members.
type groupKind struct {
	class, attr string
}

var (
	groupOfNames       = groupKind{"groupOfNames", "member"}
	groupOfUniqueNames = groupKind{"groupOfUniqueNames", "uniqueMember"}
	posixGroup         = groupKind{"posixGroup", "memberUid"}
)

// newGroup makes a group of kind under parent, with a name of its own and
// the given members, for one test; see addGroup.
func (s *server) newGroup(t testing.TB, parent string, kind groupKind, members ...string) string {
	t.Helper()
	return s.addGroup(t, parent, fmt.Sprintf("%s-%d", strings.ToLower(kind.class), s.seq.Add(1)), kind, members...)
}

// addGroup makes the group cn under parent, of kind, with the given
// members (for a groupOfNames with none, the admin's DN as a placeholder),
// and deletes it when the test ends. It returns the group's DN.
func (s *server) addGroup(t testing.TB, parent, cn string, kind groupKind, members ...string) string {
	t.Helper()
	dn := "cn=" + cn + "," + parent
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{kind.class})
	req.Attribute("cn", []string{cn})
	switch {
	case kind == posixGroup:
		req.Attribute("gidNumber", []string{fmt.Sprint(20000 + s.seq.Add(1))})
	case len(members) == 0:
		members = []string{adminDN}
	}
	if len(members) > 0 {
		req.Attribute(kind.attr, members)
	}
	conn := s.admin(t)
	if err := conn.Add(req); err != nil {
		t.Fatalf("add group %s: %v", dn, err)
	}
	t.Cleanup(func() {
		if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			t.Errorf("delete group %s: %v", dn, err)
		}
	})
	return dn
}

// members returns the values of the group's member attribute, read as the
// admin.
func (s *server) members(t testing.TB, group string, kind groupKind) []string {
	t.Helper()
	res, err := s.admin(t).Search(goldap.NewSearchRequest(group, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{kind.attr}, nil))
	if err != nil {
		t.Fatalf("read group %s: %v", group, err)
	}
	return res.Entries[0].GetAttributeValues(kind.attr)
}

// hasMember reports whether the group's attribute holds value, asking the
// server as the admin over conn. A group that does not exist has no
// members.
func hasMember(conn *goldap.Conn, group, attr, value string) (bool, error) {
	res, err := conn.Search(goldap.NewSearchRequest(group, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"("+attr+"="+goldap.EscapeFilter(value)+")", []string{"1.1"}, nil))
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return false, nil
	case err != nil:
		return false, err
	}
	return len(res.Entries) == 1, nil
}

// proxy relays TCP connections on loopback to a server, and can be taken
// down and brought back up on the same port.
type proxy struct {
	target string
	addr   string

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool // client and server sides being relayed
	poisoned map[net.Conn]bool // client sides to break at their next request
	accepted int
	wg       sync.WaitGroup
}

// newProxy starts a proxy to target, stopped when the test ends.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]bool), poisoned: make(map[net.Conn]bool)}
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted++
			p.mu.Unlock()
			p.wg.Go(func() { p.relay(c) })
		}
	})
}

// relay copies between c and a new connection to the target until either
// side ends, the proxy goes down, or c is poisoned and sends a request.
func (p *proxy) relay(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			c.Close()
			up.Close()
		})
	}
	var copies sync.WaitGroup
	copies.Go(func() {
		defer done()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				p.mu.Lock()
				poisoned := p.poisoned[c]
				p.mu.Unlock()
				if poisoned {
					return
				}
				if _, err := up.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	copies.Go(func() { io.Copy(c, up); done() })
	copies.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	delete(p.poisoned, c)
	p.mu.Unlock()
}

// Poison makes the connections being relayed break when their client next
// sends a request, as connections do that a server or a firewall dropped
// without the client noticing.
func (p *proxy) Poison() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.poisoned[c] = true
	}
}

// Accepted returns how many connections the proxy has accepted.
func (p *proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Down stops accepting connections and cuts those being relayed.
func (p *proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.wg.Wait()
}

// Up accepts connections again on the same port.
func (p *proxy) Up(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy up on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// hungServer accepts connections and never answers, until the test ends.
func hungServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// errAs reports whether err holds a *T.
func errAs[T error](err error) (T, bool) {
	var target T
	ok := errors.As(err, &target)
	return target, ok
}
