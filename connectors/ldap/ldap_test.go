package ldap_test

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/workflow"
)

func TestNew(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := ldap.Config{
		Name:         "corp",
		URL:          "ldaps://ldap.example.com",
		BindDN:       latchDN,
		BindPassword: latchPassword,
		UserBaseDN:   peopleDN,
	}
	tests := []struct {
		name   string
		change func(c *ldap.Config)
	}{
		{"no name", func(c *ldap.Config) { c.Name = "" }},
		{"no url", func(c *ldap.Config) { c.URL = "" }},
		{"http url", func(c *ldap.Config) { c.URL = "http://ldap.example.com" }},
		{"no host", func(c *ldap.Config) { c.URL = "ldap://:389" }},
		{"url with credentials", func(c *ldap.Config) { c.URL = "ldaps://admin:" + latchPassword + "@ldap.example.com" }},
		{"url with a path", func(c *ldap.Config) { c.URL = "ldaps://ldap.example.com/dc=example,dc=com" }},
		{"starttls on ldaps", func(c *ldap.Config) { c.StartTLS = true }},
		{"ca file in clear", func(c *ldap.Config) { c.URL, c.CAFile = "ldap://127.0.0.1", "/etc/ssl/certs/ca-certificates.crt" }},
		{"ca file missing", func(c *ldap.Config) { c.CAFile = "/nonexistent/ca.pem" }},
		{"ca file without certificates", func(c *ldap.Config) { c.CAFile = caFile }},
		{"password without bind dn", func(c *ldap.Config) { c.BindDN = "" }},
		{"bind dn without password", func(c *ldap.Config) { c.BindPassword = "" }},
		{"bind dn not a dn", func(c *ldap.Config) { c.BindDN = "latch" }},
		{"no user base", func(c *ldap.Config) { c.UserBaseDN = "" }},
		{"user base not a dn", func(c *ldap.Config) { c.UserBaseDN = "people" }},
		{"user filter not a template", func(c *ldap.Config) { c.UserFilter = "(mail={{.Email)" }},
		{"user filter unknown field", func(c *ldap.Config) { c.UserFilter = "(mail={{.Mail}})" }},
		{"user filter not a filter", func(c *ldap.Config) { c.UserFilter = "mail={{.Email}}" }},
		{"unknown group attribute", func(c *ldap.Config) { c.GroupAttribute = "members" }},
		{"group base not a dn", func(c *ldap.Config) { c.GroupBaseDN = "groups" }},
		{"negative timeout", func(c *ldap.Config) { c.Timeout = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			_, err := ldap.New(c)
			if !errors.Is(err, ldap.ErrInvalidConfig) {
				t.Fatalf("New: %v, want an error matching ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), latchPassword) {
				t.Errorf("New: %v: holds the bind password", err)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		// The server does not exist: New does not connect.
		c, err := ldap.New(ldap.Config{Name: "corp", URL: "ldap://127.0.0.1:1", UserBaseDN: peopleDN})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got, want := ldap.TimeoutOf(c), ldap.DefaultTimeout; got != want {
			t.Errorf("timeout = %s, want %s", got, want)
		}
		if got, want := ldap.AttributeOf(c), "member"; got != want {
			t.Errorf("group attribute = %q, want %q", got, want)
		}
		if got, want := c.Name(), "corp"; got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}
	})

	t.Run("group attribute case", func(t *testing.T) {
		c := valid
		c.GroupAttribute = "memberuid"
		conn, err := ldap.New(c)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got, want := ldap.AttributeOf(conn), "memberUid"; got != want {
			t.Errorf("group attribute = %q, want %q", got, want)
		}
	})
}

func TestGrantReportsFacts(t *testing.T) {
	s := slapd(t)
	group := s.newGroup(t, scratchDN, groupOfNames)
	c := newConnector(t, "ldap://"+s.addr, "member")
	got, err := c.Grant(t.Context(), access(jane, group))
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	want := map[string]string{"group": group, "member": dnOf[jane.Email]}
	if !maps.Equal(got.Facts, want) {
		t.Errorf("Facts = %v, want %v", got.Facts, want)
	}
	if !strings.Contains(got.Message, group) {
		t.Errorf("Message = %q, want it to name %s", got.Message, group)
	}
}

// TestFilterInjection checks that a person's fields cannot widen the user
// filter to match somebody else.
func TestFilterInjection(t *testing.T) {
	s := slapd(t)
	group := s.newGroup(t, scratchDN, groupOfNames)
	c := newConnector(t, "ldap://"+s.addr, "member")
	for _, email := range []string{
		"*",
		"*)(uid=*",
		"jane@example.com)(mail=*",
		"*)(|(mail=*",
		`jane@example.com\`,
		"jane@example.com\x00",
		"j*e@example.com",
	} {
		t.Run(email, func(t *testing.T) {
			_, err := c.Grant(t.Context(), access(workflow.User{SlackID: "U0EVIL", Email: email}, group))
			if !errors.Is(err, ldap.ErrUnknownPerson) || !workflow.IsPermanent(err) {
				t.Errorf("Grant for %q: %v, want a permanent ErrUnknownPerson", email, err)
			}
			if got, want := s.members(t, group, groupOfNames), []string{adminDN}; !slices.Equal(got, want) {
				t.Errorf("members = %q, want %q", got, want)
			}
		})
	}

	t.Run("template functions", func(t *testing.T) {
		c, err := ldap.New(ldap.Config{
			Name: "corp", URL: "ldap://" + s.addr, BindDN: latchDN, BindPassword: latchPassword,
			UserBaseDN: peopleDN, UserFilter: "(&(objectClass=inetOrgPerson)(uid={{.LocalPart | lower}}))",
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer c.Close()
		if _, err := c.Grant(t.Context(), access(workflow.User{SlackID: "U0EVIL", Email: "*)(uid=*@example.com"}, group)); !errors.Is(err, ldap.ErrUnknownPerson) {
			t.Errorf("Grant: %v, want ErrUnknownPerson", err)
		}
		if _, err := c.Grant(t.Context(), access(workflow.User{SlackID: "U0JANE", Email: "JANE@example.com"}, group)); err != nil {
			t.Errorf("Grant: %v", err)
		}
	})
}

// TestPermanentFailures checks the failures that retrying cannot fix,
// and that they change nothing.
func TestPermanentFailures(t *testing.T) {
	s := slapd(t)
	tests := []struct {
		name    string
		kind    groupKind
		attr    string // the connector's group attribute
		bind    [2]string
		user    workflow.User
		group   string // the entitlement; "" for a fresh group of kind
		revoke  bool
		wantErr error  // the sentinel the error matches, if any
		code    uint16 // the LDAP result code, if any
	}{
		{name: "ambiguous person", kind: groupOfNames, attr: "member",
			user: workflow.User{SlackID: "U0DUP", Email: "dup@example.com"}, wantErr: ldap.ErrAmbiguousPerson},
		{name: "person without email", kind: groupOfNames, attr: "member",
			user: workflow.User{SlackID: "U0NOMAIL"}, wantErr: ldap.ErrUnknownPerson},
		{name: "no uid for memberUid", kind: posixGroup, attr: "memberUid",
			user: workflow.User{SlackID: "U0NOUID", Email: "nouid@example.com"}, wantErr: ldap.ErrNoUID},
		{name: "insufficient access", kind: groupOfNames, attr: "member", bind: [2]string{readerDN, readerPassword},
			user: jane, code: goldap.LDAPResultInsufficientAccessRights},
		{name: "insufficient access to revoke", kind: groupOfNames, attr: "member", bind: [2]string{readerDN, readerPassword},
			user: jane, revoke: true, code: goldap.LDAPResultInsufficientAccessRights},
		{name: "wrong bind password", kind: groupOfNames, attr: "member", bind: [2]string{latchDN, "wrong-" + latchPassword},
			user: jane, code: goldap.LDAPResultInvalidCredentials},
		{name: "attribute the group does not allow", kind: posixGroup, attr: "member",
			user: jane, code: goldap.LDAPResultObjectClassViolation},
		{name: "entitlement not a dn", kind: groupOfNames, attr: "member",
			user: jane, group: "engineering", wantErr: ldap.ErrBadEntitlement},
		{name: "entitlement outside the group base", kind: groupOfNames, attr: "member",
			user: jane, group: "cn=engineering," + groupsDN, wantErr: ldap.ErrBadEntitlement},
		{name: "revoke from a missing group", kind: groupOfNames, attr: "member",
			user: jane, group: "cn=missing," + scratchDN, revoke: true, wantErr: ldap.ErrNoGroup, code: goldap.LDAPResultNoSuchObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := tt.group
			if group == "" {
				group = s.newGroup(t, scratchDN, tt.kind)
			}
			bind := tt.bind
			if bind[0] == "" {
				bind = [2]string{latchDN, latchPassword}
			}
			c, err := ldap.New(ldap.Config{
				Name: "corp", URL: "ldap://" + s.addr, BindDN: bind[0], BindPassword: bind[1],
				UserBaseDN: peopleDN, GroupAttribute: tt.attr, GroupBaseDN: scratchDN,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			var before []string
			if tt.group == "" {
				before = s.members(t, group, tt.kind)
			}
			a := access(tt.user, group)
			if tt.revoke {
				err = c.Revoke(t.Context(), a)
			} else {
				_, err = c.Grant(t.Context(), a)
			}
			wantPermanent(t, err, tt.wantErr, tt.code)
			if strings.Contains(err.Error(), bind[1]) {
				t.Errorf("error %v holds the bind password", err)
			}
			if tt.group == "" {
				if got := s.members(t, group, tt.kind); !slices.Equal(got, before) {
					t.Errorf("members = %q, want them unchanged: %q", got, before)
				}
			}
		})
	}
}

// TestLastMember checks that removing the last member of a groupOfNames
// fails, saying why, and leaves the group and the member as they were.
func TestLastMember(t *testing.T) {
	s := slapd(t)
	group := s.newGroup(t, scratchDN, groupOfNames, dnOf[jane.Email])
	c := newConnector(t, "ldap://"+s.addr, "member")
	err := c.Revoke(t.Context(), access(jane, group))
	wantPermanent(t, err, ldap.ErrLastMember, goldap.LDAPResultObjectClassViolation)
	if got, want := s.members(t, group, groupOfNames), []string{dnOf[jane.Email]}; !slices.Equal(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
}

func TestTransientFailures(t *testing.T) {
	group := "cn=engineering," + groupsDN
	tests := []struct {
		name     string
		url      func(t *testing.T) string
		timeout  time.Duration
		ctx      func(t *testing.T) context.Context
		timedOut bool
		cause    error
	}{
		{
			name: "connection refused",
			url: func(t *testing.T) string {
				p := newProxy(t, "127.0.0.1:1")
				p.Down()
				return "ldap://" + p.addr
			},
		},
		{
			name:     "no answer",
			url:      func(t *testing.T) string { return "ldap://" + hungServer(t) },
			timeout:  200 * time.Millisecond,
			timedOut: true,
			cause:    context.DeadlineExceeded,
		},
		{
			name: "canceled",
			url:  func(t *testing.T) string { return "ldap://" + hungServer(t) },
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			cause: context.Canceled,
		},
		{
			name:    "no answer over ldaps",
			url:     func(t *testing.T) string { return "ldaps://" + hungServer(t) },
			timeout: 200 * time.Millisecond, timedOut: true, cause: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ldap.New(ldap.Config{
				Name: "corp", URL: tt.url(t), BindDN: latchDN, BindPassword: latchPassword,
				UserBaseDN: peopleDN, Timeout: tt.timeout,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			for _, call := range []struct {
				name string
				run  func() error
			}{
				{"Grant", func() error { _, err := c.Grant(ctx, access(jane, group)); return err }},
				{"Revoke", func() error { return c.Revoke(ctx, access(jane, group)) }},
			} {
				start := time.Now()
				err := call.run()
				elapsed := time.Since(start)
				e, ok := errAs[*ldap.Error](err)
				switch {
				case err == nil:
					t.Fatalf("%s succeeded, want a transient error", call.name)
				case workflow.IsPermanent(err):
					t.Errorf("%s: %v: permanent, want transient", call.name, err)
				case !ok:
					t.Fatalf("%s: %v (%T), want an *ldap.Error", call.name, err, err)
				}
				if e.TimedOut != tt.timedOut {
					t.Errorf("%s: %v: TimedOut = %t, want %t", call.name, err, e.TimedOut, tt.timedOut)
				}
				if tt.cause != nil && !errors.Is(err, tt.cause) {
					t.Errorf("%s: %v, want it to match %v", call.name, err, tt.cause)
				}
				if elapsed > 5*time.Second {
					t.Errorf("%s took %s", call.name, elapsed)
				}
				if strings.Contains(err.Error(), latchPassword) {
					t.Errorf("%s: %v holds the bind password", call.name, err)
				}
			}
		})
	}
}

// TestKeptConnectionReplaced checks that a call on a kept connection that
// turns out to be broken dials again rather than failing.
func TestKeptConnectionReplaced(t *testing.T) {
	s := slapd(t)
	group := s.newGroup(t, scratchDN, groupOfNames)
	p := newProxy(t, s.addr)
	c := newConnector(t, "ldap://"+p.addr, "member")
	probe := s.admin(t)
	for i, a := range []workflow.Access{access(jane, group), access(omar, group)} {
		p.Poison()
		if _, err := c.Grant(t.Context(), a); err != nil {
			t.Fatalf("Grant %d: %v", i, err)
		}
	}
	p.Poison()
	if err := c.Revoke(t.Context(), access(jane, group)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	// One connection for each call: the first, and one to replace the
	// broken one for each of the others.
	if got, want := p.Accepted(), 3; got != want {
		t.Errorf("the connector dialled %d times, want %d", got, want)
	}
	for _, tt := range []struct {
		u    workflow.User
		want bool
	}{{jane, false}, {omar, true}} {
		if has, err := hasMember(probe, group, "member", dnOf[tt.u.Email]); err != nil || has != tt.want {
			t.Errorf("%s in %s = %t, %v; want %t", tt.u.Email, group, has, err, tt.want)
		}
	}
}

func TestTLS(t *testing.T) {
	s := slapd(t)
	group := s.newGroup(t, scratchDN, groupOfNames)
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	if _, err := writeCerts(filepath.Dir(otherCA)); err != nil {
		t.Fatal(err)
	}
	otherCA = filepath.Join(filepath.Dir(otherCA), "ca.pem")
	tests := []struct {
		name     string
		url      string
		startTLS bool
		caFile   string
		ok       bool
	}{
		{"ldaps", "ldaps://" + s.tlsAddr, false, s.caFile, true},
		{"starttls", "ldap://" + s.addr, true, s.caFile, true},
		{"ldaps with another ca", "ldaps://" + s.tlsAddr, false, otherCA, false},
		{"starttls with another ca", "ldap://" + s.addr, true, otherCA, false},
		{"ldaps with the system's cas", "ldaps://" + s.tlsAddr, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ldap.New(ldap.Config{
				Name: "corp", URL: tt.url, StartTLS: tt.startTLS, CAFile: tt.caFile,
				BindDN: latchDN, BindPassword: latchPassword, UserBaseDN: peopleDN,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			_, err = c.Grant(t.Context(), access(jane, group))
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Grant: %v", err)
			case tt.ok:
				if err := c.Revoke(t.Context(), access(jane, group)); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			case err == nil:
				t.Fatal("Grant succeeded with a server certificate it should not trust")
			default:
				if _, ok := errAs[*ldap.Error](err); !ok {
					t.Errorf("Grant: %v (%T), want an *ldap.Error", err, err)
				}
				if !strings.HasPrefix(tt.url, "ldaps") {
					break // go-ldap's StartTLS keeps only the text of the cause
				}
				if _, ok := errAs[*tls.CertificateVerificationError](err); !ok {
					t.Errorf("Grant: %v, want a certificate verification error", err)
				}
			}
		})
	}
}

func TestErrorPermanent(t *testing.T) {
	tests := []struct {
		err  ldap.Error
		want bool
	}{
		{ldap.Error{Code: goldap.LDAPResultInsufficientAccessRights}, true},
		{ldap.Error{Code: goldap.LDAPResultNoSuchObject}, true},
		{ldap.Error{Code: goldap.LDAPResultInvalidCredentials}, true},
		{ldap.Error{Code: goldap.LDAPResultObjectClassViolation}, true},
		{ldap.Error{Code: goldap.LDAPResultBusy}, false},
		{ldap.Error{Code: goldap.LDAPResultUnavailable}, false},
		{ldap.Error{Code: goldap.LDAPResultOther}, false},
		{ldap.Error{Code: goldap.LDAPResultTimeLimitExceeded}, false},
		{ldap.Error{Err: errors.New("connection refused")}, false},
		{ldap.Error{TimedOut: true, Err: context.DeadlineExceeded}, false},
		{ldap.Error{Err: ldap.ErrUnknownPerson}, true},
		{ldap.Error{Err: ldap.ErrAmbiguousPerson}, true},
		{ldap.Error{Err: ldap.ErrLastMember}, true},
	}
	for _, tt := range tests {
		if got := tt.err.Permanent(); got != tt.want {
			t.Errorf("%v: Permanent() = %t, want %t", &tt.err, got, tt.want)
		}
	}
}

// access returns an access to group for u.
func access(u workflow.User, group string) workflow.Access {
	return workflow.Access{
		GrantID:     "grant-" + u.SlackID,
		RequestID:   "request-" + u.SlackID,
		User:        u,
		Entitlement: group,
		ExpiresAt:   time.Now().Add(time.Hour),
	}
}

// wantPermanent fails the test unless err is a permanent *ldap.Error that
// matches sentinel (if not nil) and carries code (if not 0).
func wantPermanent(t *testing.T, err, sentinel error, code uint16) {
	t.Helper()
	e, ok := errAs[*ldap.Error](err)
	switch {
	case err == nil:
		t.Fatal("succeeded, want a permanent error")
	case !ok:
		t.Fatalf("%v (%T), want an *ldap.Error", err, err)
	case !workflow.IsPermanent(err):
		t.Errorf("%v: transient, want permanent", err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%v, want it to match %v", err, sentinel)
	}
	if code != 0 && e.Code != code {
		t.Errorf("%v: Code = %d, want %d", err, e.Code, code)
	}
}
