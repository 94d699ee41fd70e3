package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/workflow"
)

const (
	// DefaultTimeout bounds one Grant, Revoke or Directory lookup, from
	// dialling to the last answer, when Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second

	// DefaultUserFilter finds a person's entry by email address.
	DefaultUserFilter = "(mail={{.Email}})"

	// DefaultGroupAttribute is the attribute of a groupOfNames.
	DefaultGroupAttribute = "member"

	// maxIdle is how many connections are kept open between calls.
	maxIdle = 2
)

// groupAttributes are the group attributes the connector can manage, and
// whether their values are DNs (rather than uids).
var groupAttributes = map[string]bool{
	"member":       true, // groupOfNames
	"uniqueMember": true, // groupOfUniqueNames
	"memberUid":    false,
}

// Config is an ldap connector's configuration.
type Config struct {
	Name string // the connector's name in latch's configuration

	// URL is the directory server: ldap://host[:port] or
	// ldaps://host[:port]. Plain ldap:// sends the bind password in clear
	// unless StartTLS is set.
	URL string

	// BindDN and BindPassword are the account latch binds as; it needs to
	// search people and write the group attribute of the groups it
	// manages. Both empty binds anonymously. The caller reads the password
	// from the environment or a file; it never appears in errors.
	BindDN       string
	BindPassword string

	// UserBaseDN is where people's entries are searched (whole subtree),
	// e.g. ou=people,dc=example,dc=com.
	UserBaseDN string

	// UserFilter is a workflow name template that yields the LDAP filter
	// finding a person's entry; empty means DefaultUserFilter. The
	// person's fields are escaped for a filter before the template sees
	// them, so an email address cannot change the filter's meaning.
	UserFilter string

	// GroupAttribute is the attribute that lists a group's members:
	// "member" (groupOfNames; the value is the person's DN, the default),
	// "uniqueMember" (groupOfUniqueNames; the DN) or "memberUid"
	// (posixGroup; the person's uid).
	GroupAttribute string

	// GroupBaseDN, if set, is where the groups are: the connector refuses
	// entitlements outside it, and the Directory searches it for a
	// person's groups.
	GroupBaseDN string

	// StartTLS upgrades an ldap:// connection to TLS before binding.
	StartTLS bool

	// CAFile is a PEM file of the certificates that may sign the server's
	// certificate, for ldaps:// or StartTLS; empty means the system's.
	CAFile string

	// Timeout bounds one call, from dialling to the last answer; zero
	// means DefaultTimeout.
	Timeout time.Duration
}

// Connector adds people to LDAP groups and removes them; see the package
// doc. It is safe for concurrent use.
type Connector struct {
	name         string
	addr         string // host:port
	ldaps        bool
	startTLS     bool
	tls          *tls.Config // nil for plain ldap://
	bindDN       string
	bindPassword string
	userBase     string
	userFilter   *workflow.NameTemplate
	attr         string
	groupBase    *goldap.DN // nil when unset
	groupBaseDN  string
	timeout      time.Duration

	mu     sync.Mutex
	idle   []*goldap.Conn
	closed bool
}

var _ workflow.Provisioner = (*Connector)(nil)

// New returns the connector c describes. It checks the configuration and
// reads CAFile but does not connect: the server is first contacted by the
// first call. Every error it returns wraps ErrInvalidConfig.
func New(c Config) (*Connector, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	conn := &Connector{
		name:         c.Name,
		startTLS:     c.StartTLS,
		bindDN:       c.BindDN,
		bindPassword: c.BindPassword,
		userBase:     c.UserBaseDN,
		timeout:      c.Timeout,
	}
	if c.Name == "" {
		bad("the connector has no name")
	}

	host := ""
	switch u, err := url.Parse(c.URL); {
	case c.URL == "":
		bad("no url: set it to ldap://host or ldaps://host")
	case err != nil || u.Hostname() == "" || u.Opaque != "":
		bad("url %q is not a URL like ldaps://ldap.example.com", redactURL(c.URL))
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		bad("url scheme %q is not supported; use ldap:// or ldaps://", u.Scheme)
	case u.User != nil:
		bad("the url carries credentials; set BindDN and BindPassword instead")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		bad("url %q has a path or query; give just the scheme, host and port", c.URL)
	default:
		host = u.Hostname()
		port := u.Port()
		conn.ldaps = u.Scheme == "ldaps"
		if port == "" {
			port = "389"
			if conn.ldaps {
				port = "636"
			}
		}
		conn.addr = net.JoinHostPort(host, port)
		if conn.ldaps && c.StartTLS {
			bad("StartTLS is for ldap:// URLs; an ldaps:// connection is encrypted from the start")
		}
	}
	if conn.ldaps || c.StartTLS {
		conn.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			roots := x509.NewCertPool()
			switch {
			case err != nil:
				bad("ca file: %v", err)
			case !roots.AppendCertsFromPEM(pem):
				bad("ca file %s holds no PEM certificate", c.CAFile)
			default:
				conn.tls.RootCAs = roots
			}
		}
	} else if c.CAFile != "" && host != "" {
		bad("a CA file is set but the connection is not encrypted; use ldaps:// or StartTLS")
	}

	switch {
	case c.BindDN == "" && c.BindPassword != "":
		bad("a bind password is set but no bind DN")
	case c.BindDN != "" && c.BindPassword == "":
		bad("bind DN %q has no password; an unauthenticated bind cannot write groups", c.BindDN)
	case c.BindDN != "":
		if _, err := parseDN(c.BindDN); err != nil {
			bad("bind DN: %v", err)
		}
	}
	if c.UserBaseDN == "" {
		bad("no user base DN: set where people's entries are, e.g. ou=people,dc=example,dc=com")
	} else if _, err := parseDN(c.UserBaseDN); err != nil {
		bad("user base DN: %v", err)
	}
	filter := c.UserFilter
	if filter == "" {
		filter = DefaultUserFilter
	}
	if t, err := workflow.ParseNameTemplate(filter); err != nil {
		bad("user filter: %v", err)
	} else {
		conn.userFilter = t
		if _, err := conn.filterFor(workflow.User{SlackID: "U0SAMPLE1", Email: "jane.doe@example.com"}); err != nil {
			bad("user filter %q: %v", filter, err)
		}
	}
	switch attr := c.GroupAttribute; {
	case attr == "":
		conn.attr = DefaultGroupAttribute
	default:
		for name := range groupAttributes {
			if strings.EqualFold(attr, name) {
				conn.attr = name
			}
		}
		if conn.attr == "" {
			bad("group attribute %q is not one of member, uniqueMember, memberUid", attr)
		}
	}
	if c.GroupBaseDN != "" {
		dn, err := parseDN(c.GroupBaseDN)
		if err != nil {
			bad("group base DN: %v", err)
		}
		conn.groupBase, conn.groupBaseDN = dn, c.GroupBaseDN
	}
	switch {
	case c.Timeout == 0:
		conn.timeout = DefaultTimeout
	case c.Timeout < 0:
		bad("timeout %s is not positive", c.Timeout)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return conn, nil
}

// Name returns the connector's name.
func (c *Connector) Name() string { return c.name }

// Grant adds the person to the group a.Entitlement names: their entry's DN
// to the group's member (or uniqueMember) attribute, or their uid to its
// memberUid. A person who is a member already is a success. The facts are
// the group's DN ("group") and the value, under the attribute's name
// ("member": the person's DN, or "memberUid": their uid). An error is an
// *Error, marked with workflow.Permanent when retrying cannot fix it.
func (c *Connector) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var value string
	group, err := c.groupDN(a.Entitlement)
	if err == nil {
		err = c.with(callCtx, func(conn *goldap.Conn) error {
			p, err := c.findPerson(conn, a.User)
			if err != nil {
				return err
			}
			if value, err = c.memberValue(p); err != nil {
				return err
			}
			req := goldap.NewModifyRequest(group, nil)
			req.Add(c.attr, []string{value})
			return c.modify(conn, group, req)
		})
	}
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultAttributeOrValueExists):
		// A member already.
	case err != nil:
		return workflow.Granted{}, c.provisionError(ctx, callCtx, "grant", a.Entitlement, err)
	}
	return workflow.Granted{
		Message: fmt.Sprintf("You are now a member of the LDAP group %s. Systems that cache group membership may take a few minutes to notice.", group),
		Facts:   map[string]string{"group": group, c.attr: value},
	}, nil
}

// Revoke removes the person from the group a.Entitlement names. A person
// who is not a member is a success; a group that does not exist is not
// (it may have been renamed with the person still in it), nor is removing
// the last member of a groupOfNames (ErrLastMember). Errors are as for
// Grant.
func (c *Connector) Revoke(ctx context.Context, a workflow.Access) error {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	group, err := c.groupDN(a.Entitlement)
	if err == nil {
		err = c.with(callCtx, func(conn *goldap.Conn) error {
			p, err := c.findPerson(conn, a.User)
			if err != nil {
				return err
			}
			value, err := c.memberValue(p)
			if err != nil {
				return err
			}
			req := goldap.NewModifyRequest(group, nil)
			req.Delete(c.attr, []string{value})
			err = c.modify(conn, group, req)
			if groupAttributes[c.attr] && goldap.IsErrorWithCode(err, goldap.LDAPResultObjectClassViolation) {
				return fmt.Errorf("remove %s from %s: %w: %w", value, group, ErrLastMember, err)
			}
			return err
		})
	}
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchAttribute):
		return nil // not a member
	case err != nil:
		return c.provisionError(ctx, callCtx, "revoke", a.Entitlement, err)
	}
	return nil
}

// modify runs req against group, naming a missing group ErrNoGroup.
func (c *Connector) modify(conn *goldap.Conn, group string, req *goldap.ModifyRequest) error {
	err := conn.Modify(req)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return fmt.Errorf("%w: %s does not exist: %w", ErrNoGroup, group, err)
	}
	return err
}

// groupDN checks that entitlement is a DN the connector manages and
// returns it.
func (c *Connector) groupDN(entitlement string) (string, error) {
	dn, err := parseDN(entitlement)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrBadEntitlement, err)
	case c.groupBase != nil && !c.groupBase.AncestorOfFold(dn):
		return "", fmt.Errorf("%w: %s is not under the group base DN %s", ErrBadEntitlement, entitlement, c.groupBaseDN)
	}
	return entitlement, nil
}

// parseDN parses a non-empty DN.
func parseDN(s string) (*goldap.DN, error) {
	dn, err := goldap.ParseDN(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a DN: %w", s, err)
	case len(dn.RDNs) == 0:
		return nil, fmt.Errorf("%q is not a DN", s)
	}
	return dn, nil
}

// personAttributes are read from a person's entry: the Directory uses mail
// and manager.
var personAttributes = []string{"uid", "mail", "manager"}

// findPerson returns the one entry under the user base DN that the user
// filter matches for u.
func (c *Connector) findPerson(conn *goldap.Conn, u workflow.User) (*goldap.Entry, error) {
	if u.Email == "" {
		return nil, fmt.Errorf("%w: %s has no email address", ErrUnknownPerson, u.SlackID)
	}
	// Some servers end a value at a NUL even when it is escaped.
	if strings.ContainsFunc(u.Email+u.SlackID, unicode.IsControl) {
		return nil, fmt.Errorf("%w: %q holds a control character", ErrUnknownPerson, u.Email)
	}
	filter, err := c.filterFor(u)
	if err != nil {
		return nil, err
	}
	res, err := conn.Search(&goldap.SearchRequest{
		BaseDN:       c.userBase,
		Scope:        goldap.ScopeWholeSubtree,
		DerefAliases: goldap.NeverDerefAliases,
		SizeLimit:    2,
		Filter:       filter,
		Attributes:   personAttributes,
	})
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || res != nil && len(res.Entries) > 1:
		return nil, fmt.Errorf("%w: %s matches several entries under %s", ErrAmbiguousPerson, u.Email, c.userBase)
	case err != nil:
		return nil, fmt.Errorf("search for %s under %s: %w", u.Email, c.userBase, err)
	case len(res.Entries) == 0:
		return nil, fmt.Errorf("%w: %s, under %s", ErrUnknownPerson, u.Email, c.userBase)
	}
	return res.Entries[0], nil
}

// filterFor returns the user filter for u, whose fields are escaped first.
func (c *Connector) filterFor(u workflow.User) (string, error) {
	esc := workflow.User{
		SlackID: goldap.EscapeFilter(u.SlackID),
		Email:   goldap.EscapeFilter(u.Email),
		Manager: goldap.EscapeFilter(u.Manager),
	}
	for _, g := range u.Groups {
		esc.Groups = append(esc.Groups, goldap.EscapeFilter(g))
	}
	filter, err := c.userFilter.Execute(esc)
	if err != nil {
		return "", err
	}
	if _, err := goldap.CompileFilter(filter); err != nil {
		return "", fmt.Errorf("the user filter yields %q, which is not an LDAP filter: %w", filter, err)
	}
	return filter, nil
}

// memberValue returns the value of the group attribute that names the
// person of entry p.
func (c *Connector) memberValue(p *goldap.Entry) (string, error) {
	if groupAttributes[c.attr] {
		return p.DN, nil
	}
	return uidOf(p)
}

// uidOf returns the uid of a person's entry: the one in its RDN, or else
// its only uid value.
func uidOf(p *goldap.Entry) (string, error) {
	if dn, err := goldap.ParseDN(p.DN); err == nil && len(dn.RDNs) > 0 {
		for _, at := range dn.RDNs[0].Attributes {
			if strings.EqualFold(at.Type, "uid") {
				return at.Value, nil
			}
		}
	}
	switch uids := p.GetAttributeValues("uid"); len(uids) {
	case 1:
		return uids[0], nil
	case 0:
		return "", fmt.Errorf("%w: %s has no uid", ErrNoUID, p.DN)
	default:
		return "", fmt.Errorf("%w: %s has %d uid values and none in its DN", ErrNoUID, p.DN, len(uids))
	}
}

// redactURL drops anything that could be a credential from a URL that
// did not parse.
func redactURL(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…" + raw[i:]
		}
		return "…" + raw[i:]
	}
	return raw
}
