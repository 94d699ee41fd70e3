package ldap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/workflow"
)

// DefaultCacheTTL is how long a Directory keeps what it read when
// DirectoryConfig.CacheTTL is zero.
const DefaultCacheTTL = time.Minute

// maxCached is the size of the cache above which expired results are
// swept out whenever a new one is kept.
const maxCached = 1024

// uidChunk is how many uids one search for the members of a posixGroup
// asks for.
const uidChunk = 50

// DirectoryConfig configures a Directory.
type DirectoryConfig struct {
	// Base knows people by Slack id: it gives their email address, and the
	// managers and groups latch's own configuration lists. Required.
	Base workflow.Directory

	// SlackID returns the Slack id of the person with an email address
	// read from the directory, or an error matching
	// workflow.ErrUnknownUser if latch knows nobody with that address.
	// nil uses Base's UserByEmail method, which *workflow.StaticDirectory
	// has.
	SlackID func(ctx context.Context, email string) (string, error)

	// Groups names LDAP groups: latch's name for the group, and its DN.
	// When Base has GroupNames and Group methods (as
	// *workflow.StaticDirectory does), its groups with source ldap that are
	// read through this connector (or name no connector) are added.
	Groups map[string]string

	// CacheTTL is how long a result is kept before the directory is asked
	// again; zero means DefaultCacheTTL. Failures are not kept.
	CacheTTL time.Duration

	// Now tells the time for the cache; nil means time.Now.
	Now func() time.Time
}

// Directory is a workflow.Directory that reads managers and groups from an
// LDAP directory, through a Connector's configuration and connections.
// People are still named by Slack id: Base maps a Slack id to an email
// address, the connector's user filter finds the person's entry by it, and
// SlackID maps the email address of an entry back to a Slack id.
//
//   - Email is Base's.
//   - Manager follows the manager attribute of the person's entry to the
//     manager's entry and its mail attribute. A manager entry that does not
//     exist, has no mail, or names someone latch does not know gives ""
//     (no manager). An entry without a manager attribute gives Base's
//     manager.
//   - Groups are Base's groups, then the groups whose member or
//     uniqueMember holds the person's DN, or whose memberUid holds their
//     uid: those under the connector's GroupBaseDN, and those of
//     DirectoryConfig.Groups. A group is named as DirectoryConfig.Groups
//     names its DN, or else by its cn.
//   - Members of a group of DirectoryConfig.Groups, or of a group Base does
//     not know that has that cn under GroupBaseDN, are read from the
//     group's entry; members that are not people latch knows (such as a
//     placeholder member) are left out. Other groups are Base's.
//
// A person whose entry the user filter does not find, or finds more than
// once, is an error matching workflow.ErrUnknownUser (or
// ErrAmbiguousPerson), for Manager and Groups alike. Results are kept for
// CacheTTL; failures are returned, as *Error, and not kept.
type Directory struct {
	conn    *Connector
	base    workflow.Directory
	slackID func(ctx context.Context, email string) (string, error)
	groups  map[string]string // latch name → DN
	names   map[string]string // folded DN → latch name
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cached
}

var (
	_ workflow.Directory  = (*Directory)(nil)
	_ workflow.UserGroups = (*Directory)(nil)
)

type cacheKey struct{ kind, key string }

type cached struct {
	value   any
	expires time.Time
}

// person is what the Directory keeps of a person's entry.
type person struct {
	dn, uid, manager string
}

// NewDirectory returns a Directory that reads through c. Every error it
// returns wraps ErrInvalidConfig.
func NewDirectory(c *Connector, dc DirectoryConfig) (*Directory, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: directory: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c == nil {
		return nil, fmt.Errorf("%w: directory: no connector", ErrInvalidConfig)
	}
	d := &Directory{
		conn:    c,
		base:    dc.Base,
		slackID: dc.SlackID,
		groups:  make(map[string]string),
		names:   make(map[string]string),
		ttl:     dc.CacheTTL,
		now:     dc.Now,
		cache:   make(map[cacheKey]cached),
	}
	if dc.Base == nil {
		bad("no base directory to tell people's email addresses")
	}
	if d.slackID == nil {
		if byEmail, ok := dc.Base.(interface {
			UserByEmail(string) (workflow.User, bool)
		}); ok {
			d.slackID = func(_ context.Context, email string) (string, error) {
				u, ok := byEmail.UserByEmail(email)
				if !ok {
					return "", fmt.Errorf("%w with email %s", workflow.ErrUnknownUser, email)
				}
				return u.SlackID, nil
			}
		} else if dc.Base != nil {
			bad("no SlackID lookup, and the base directory has no UserByEmail")
		}
	}
	if lister, ok := dc.Base.(interface {
		GroupNames() []string
		Group(string) (workflow.Group, bool)
	}); ok {
		for _, name := range lister.GroupNames() {
			g, _ := lister.Group(name)
			if g.Source == workflow.GroupLDAP && (g.Connector == "" || g.Connector == c.name) {
				d.groups[name] = g.Ref
			}
		}
	}
	maps.Copy(d.groups, dc.Groups)
	for _, name := range slices.Sorted(maps.Keys(d.groups)) {
		dn, err := parseDN(d.groups[name])
		if err != nil {
			bad("group %q: %v", name, err)
			continue
		}
		key := foldDN(dn)
		if other, dup := d.names[key]; dup {
			bad("groups %q and %q have the same DN %s", other, name, d.groups[name])
			continue
		}
		d.names[key] = name
	}
	switch {
	case d.ttl == 0:
		d.ttl = DefaultCacheTTL
	case d.ttl < 0:
		bad("cache TTL %s is not positive", d.ttl)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// foldDN returns a form of dn that is the same for DNs that differ only in
// case or spacing.
func foldDN(dn *goldap.DN) string { return strings.ToLower(dn.String()) }

// Email implements workflow.Directory: it is Base's.
func (d *Directory) Email(ctx context.Context, slackID string) (string, error) {
	return d.base.Email(ctx, slackID)
}

// UserGroupMembers implements workflow.UserGroups by asking Base, so that
// Slack user groups keep working when a Directory wraps a directory that
// reads them. If Base does not, it fails.
func (d *Directory) UserGroupMembers(ctx context.Context, handle string) ([]string, error) {
	ug, ok := d.base.(workflow.UserGroups)
	if !ok {
		return nil, fmt.Errorf("user group %s: %w", handle, ErrNoUserGroups)
	}
	return ug.UserGroupMembers(ctx, handle)
}

// Manager implements workflow.Directory.
func (d *Directory) Manager(ctx context.Context, slackID string) (string, error) {
	key := cacheKey{"manager", slackID}
	if v, ok := d.get(key); ok {
		return v.(string), nil
	}
	p, err := d.person(ctx, "manager", slackID)
	if err != nil {
		return "", err
	}
	if p.manager == "" {
		manager, err := d.base.Manager(ctx, slackID)
		if err != nil {
			return "", err
		}
		d.set(key, manager)
		return manager, nil
	}
	var mail string
	err = d.call(ctx, "manager", func(conn *goldap.Conn) error {
		e, err := readEntry(conn, p.manager, "mail")
		if e != nil {
			mail = e.GetAttributeValue("mail")
		}
		return err
	})
	if err != nil {
		return "", err
	}
	manager := ""
	if mail != "" {
		if manager, err = d.lookup(ctx, "manager", mail); err != nil {
			return "", err
		}
	}
	if manager == slackID {
		manager = ""
	}
	d.set(key, manager)
	return manager, nil
}

// Groups implements workflow.Directory.
func (d *Directory) Groups(ctx context.Context, slackID string) ([]string, error) {
	key := cacheKey{"groups", slackID}
	if v, ok := d.get(key); ok {
		return slices.Clone(v.([]string)), nil
	}
	groups, err := d.base.Groups(ctx, slackID)
	if err != nil {
		return nil, err
	}
	p, err := d.person(ctx, "groups", slackID)
	if err != nil {
		return nil, err
	}
	filter := "(|(member=" + goldap.EscapeFilter(p.dn) + ")(uniqueMember=" + goldap.EscapeFilter(p.dn) + ")"
	if p.uid != "" {
		filter += "(memberUid=" + goldap.EscapeFilter(p.uid) + ")"
	}
	filter += ")"
	var found []string
	add := func(entries []*goldap.Entry) {
		for _, e := range entries {
			if name := d.nameOf(e); name != "" && !slices.Contains(found, name) {
				found = append(found, name)
			}
		}
	}
	err = d.call(ctx, "groups", func(conn *goldap.Conn) error {
		found = found[:0]
		if base := d.conn.groupBase; base != nil {
			res, err := conn.Search(&goldap.SearchRequest{
				BaseDN:       d.conn.groupBaseDN,
				Scope:        goldap.ScopeWholeSubtree,
				DerefAliases: goldap.NeverDerefAliases,
				Filter:       filter,
				Attributes:   []string{"cn"},
			})
			if err != nil {
				return fmt.Errorf("search for the groups of %s under %s: %w", p.dn, d.conn.groupBaseDN, err)
			}
			add(res.Entries)
		}
		for _, name := range slices.Sorted(maps.Keys(d.groups)) {
			dn, _ := parseDN(d.groups[name])
			if d.conn.groupBase != nil && d.conn.groupBase.AncestorOfFold(dn) {
				continue // searched above
			}
			res, err := conn.Search(&goldap.SearchRequest{
				BaseDN:       d.groups[name],
				Scope:        goldap.ScopeBaseObject,
				DerefAliases: goldap.NeverDerefAliases,
				Filter:       filter,
				Attributes:   []string{"cn"},
			})
			switch {
			case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
				// A group that does not exist has no members.
			case err != nil:
				return fmt.Errorf("read group %s: %w", d.groups[name], err)
			default:
				add(res.Entries)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(found)
	for _, name := range found {
		if !slices.Contains(groups, name) {
			groups = append(groups, name)
		}
	}
	d.set(key, slices.Clone(groups))
	return groups, nil
}

// nameOf returns latch's name for a group entry: as DirectoryConfig.Groups
// names it, or its cn.
func (d *Directory) nameOf(e *goldap.Entry) string {
	if dn, err := parseDN(e.DN); err == nil {
		if name, ok := d.names[foldDN(dn)]; ok {
			return name
		}
	}
	return e.GetAttributeValue("cn")
}

// Members implements workflow.Directory.
func (d *Directory) Members(ctx context.Context, group string) ([]string, error) {
	key := cacheKey{"members", group}
	if v, ok := d.get(key); ok {
		return slices.Clone(v.([]string)), nil
	}
	dn, ok := d.groups[group]
	if !ok {
		members, err := d.base.Members(ctx, group)
		if err == nil || !errors.Is(err, workflow.ErrUnknownGroup) || d.conn.groupBase == nil {
			return members, err
		}
	}
	var mails []string
	err := d.call(ctx, "members", func(conn *goldap.Conn) error {
		mails = mails[:0]
		if dn == "" {
			var err error
			if dn, err = d.findGroup(conn, group); err != nil {
				return err
			}
		}
		g, err := readEntry(conn, dn, "member", "uniqueMember", "memberUid")
		switch {
		case err != nil:
			return fmt.Errorf("read group %s: %w", dn, err)
		case g == nil:
			return fmt.Errorf("%w: %s (%s) does not exist", ErrNoGroup, group, dn)
		}
		for _, m := range append(g.GetAttributeValues("member"), g.GetAttributeValues("uniqueMember")...) {
			e, err := readEntry(conn, m, "mail")
			if err != nil {
				return fmt.Errorf("read member %s of %s: %w", m, dn, err)
			}
			if e != nil {
				mails = append(mails, e.GetAttributeValues("mail")...)
			}
		}
		for uids := range slices.Chunk(g.GetAttributeValues("memberUid"), uidChunk) {
			var filter strings.Builder
			filter.WriteString("(|")
			for _, uid := range uids {
				filter.WriteString("(uid=" + goldap.EscapeFilter(uid) + ")")
			}
			filter.WriteString(")")
			res, err := conn.Search(&goldap.SearchRequest{
				BaseDN:       d.conn.userBase,
				Scope:        goldap.ScopeWholeSubtree,
				DerefAliases: goldap.NeverDerefAliases,
				Filter:       filter.String(),
				Attributes:   []string{"mail"},
			})
			if err != nil {
				return fmt.Errorf("search for the members of %s under %s: %w", dn, d.conn.userBase, err)
			}
			for _, e := range res.Entries {
				mails = append(mails, e.GetAttributeValues("mail")...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, mail := range mails {
		id, err := d.lookup(ctx, "members", mail)
		if err != nil {
			return nil, err
		}
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	d.set(key, slices.Clone(ids))
	return ids, nil
}

// findGroup returns the DN of the group with cn name under the group base
// DN.
func (d *Directory) findGroup(conn *goldap.Conn, name string) (string, error) {
	res, err := conn.Search(&goldap.SearchRequest{
		BaseDN:       d.conn.groupBaseDN,
		Scope:        goldap.ScopeWholeSubtree,
		DerefAliases: goldap.NeverDerefAliases,
		SizeLimit:    2,
		Filter: "(&(cn=" + goldap.EscapeFilter(name) + ")" +
			"(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)))",
	})
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || res != nil && len(res.Entries) > 1:
		return "", fmt.Errorf("%w: several groups under %s have the cn %s; name the one meant in the configuration", ErrNoGroup, d.conn.groupBaseDN, name)
	case err != nil:
		return "", fmt.Errorf("search for group %s under %s: %w", name, d.conn.groupBaseDN, err)
	case len(res.Entries) == 0:
		return "", fmt.Errorf("%w: no group %s under %s", ErrNoGroup, name, d.conn.groupBaseDN)
	}
	return res.Entries[0].DN, nil
}

// person returns what the directory holds of the person with a Slack id.
func (d *Directory) person(ctx context.Context, op, slackID string) (person, error) {
	email, err := d.base.Email(ctx, slackID)
	if err != nil {
		return person{}, err
	}
	key := cacheKey{"person", slackID + "\x00" + email}
	if v, ok := d.get(key); ok {
		return v.(person), nil
	}
	var p person
	err = d.call(ctx, op, func(conn *goldap.Conn) error {
		e, err := d.conn.findPerson(conn, workflow.User{SlackID: slackID, Email: email})
		if err != nil {
			return err
		}
		p = person{dn: e.DN, manager: e.GetAttributeValue("manager")}
		p.uid, _ = uidOf(e) // without a uid, no posixGroup can list the person
		return nil
	})
	if err != nil {
		return person{}, err
	}
	d.set(key, p)
	return p, nil
}

// lookup returns the Slack id of the person with an email address, or ""
// if latch knows nobody with it.
func (d *Directory) lookup(ctx context.Context, op, email string) (string, error) {
	id, err := d.slackID(ctx, email)
	switch {
	case errors.Is(err, workflow.ErrUnknownUser):
		return "", nil
	case err != nil:
		return "", &Error{Connector: d.conn.name, Op: op, Err: fmt.Errorf("look up %s: %w", email, err)}
	}
	return id, nil
}

// call runs fn on a connection within the connector's timeout, and turns
// a failure into an *Error.
func (d *Directory) call(ctx context.Context, op string, fn func(*goldap.Conn) error) error {
	callCtx, cancel := context.WithTimeout(ctx, d.conn.timeout)
	defer cancel()
	if err := d.conn.with(callCtx, fn); err != nil {
		return d.conn.failure(ctx, callCtx, op, "", err)
	}
	return nil
}

// readEntry reads attrs of the entry dn, or returns nil if there is none
// (or dn is not a DN).
func readEntry(conn *goldap.Conn, dn string, attrs ...string) (*goldap.Entry, error) {
	res, err := conn.Search(&goldap.SearchRequest{
		BaseDN:       dn,
		Scope:        goldap.ScopeBaseObject,
		DerefAliases: goldap.NeverDerefAliases,
		Filter:       "(objectClass=*)",
		Attributes:   attrs,
	})
	switch {
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultNoSuchObject, goldap.LDAPResultInvalidDNSyntax):
		return nil, nil
	case err != nil:
		return nil, err
	case len(res.Entries) == 0:
		return nil, nil
	}
	return res.Entries[0], nil
}

func (d *Directory) get(key cacheKey) (any, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.cache[key]
	if !ok || !d.now().Before(c.expires) {
		return nil, false
	}
	return c.value, true
}

func (d *Directory) set(key cacheKey, value any) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) >= maxCached {
		maps.DeleteFunc(d.cache, func(_ cacheKey, c cached) bool { return !now.Before(c.expires) })
	}
	d.cache[key] = cached{value: value, expires: now.Add(d.ttl)}
}
