package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
)

// Errors returned by a Directory.
var (
	// ErrUnknownUser means the directory has no person with that Slack id.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownGroup means the directory has no group with that name.
	ErrUnknownGroup = errors.New("unknown group")
	// ErrExternalGroup means the group's members are kept by another source
	// (Slack or LDAP) and must be asked of that source.
	ErrExternalGroup = errors.New("group membership is kept outside the static directory")
	// ErrDuplicateUser means two users share a Slack id or an email.
	ErrDuplicateUser = errors.New("duplicate user")
	// ErrDuplicateGroup means two groups share a name.
	ErrDuplicateGroup = errors.New("duplicate group")
)

// Directory tells the engine who a person is: their email, their manager and
// the groups they belong to. People are named by Slack user id.
type Directory interface {
	// Email returns the person's email address.
	Email(ctx context.Context, slackID string) (string, error)
	// Manager returns the Slack id of the person's manager, or "" if the
	// person has none.
	Manager(ctx context.Context, slackID string) (string, error)
	// Groups returns the names of the groups the person belongs to.
	Groups(ctx context.Context, slackID string) ([]string, error)
	// Members returns the Slack ids of the members of a group.
	Members(ctx context.Context, group string) ([]string, error)
}

// User is a person known to the directory.
type User struct {
	SlackID string   // the identity: a Slack user id such as U0123ABCD
	Email   string   // the address connectors derive account names from
	Manager string   // the manager's Slack id, or ""
	Groups  []string // names of the groups the person belongs to
}

// LocalPart returns the part of the email address before the "@".
func (u User) LocalPart() string {
	local, _, _ := strings.Cut(u.Email, "@")
	return local
}

// GroupSource says where a group's members come from.
type GroupSource string

// The sources of group membership.
const (
	GroupStatic GroupSource = "static" // listed in the configuration
	GroupSlack  GroupSource = "slack"  // a Slack user group, read at run time
	GroupLDAP   GroupSource = "ldap"   // an LDAP group, read at run time
)

// Group is a named set of people.
type Group struct {
	Name        string
	Description string
	Members     []string    // Slack ids; only for static groups
	Source      GroupSource // where the members come from
	Ref         string      // the Slack user group handle or LDAP DN, for other sources
	Connector   string      // the LDAP connector that reads an LDAP group
}

// StaticDirectory is a Directory built from the configuration. A user's
// groups are those the user lists plus the static groups that list the user.
type StaticDirectory struct {
	users   map[string]User // by Slack id
	byEmail map[string]string
	groups  map[string]Group
	order   []string // group names as given
}

// NewStaticDirectory builds a directory from users and groups. Emails are
// matched without regard to case. Membership declared on either side is
// merged, so User.Groups and Group.Members agree afterwards; a user's groups
// are those the user lists, then the others in the order of groups. Slack
// ids, emails and group names must be unique.
func NewStaticDirectory(users []User, groups []Group) (*StaticDirectory, error) {
	d := &StaticDirectory{
		users:   make(map[string]User, len(users)),
		byEmail: make(map[string]string, len(users)),
		groups:  make(map[string]Group, len(groups)),
	}
	for _, g := range groups {
		if _, dup := d.groups[g.Name]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicateGroup, g.Name)
		}
		g.Members = slices.Clone(g.Members)
		d.groups[g.Name] = g
		d.order = append(d.order, g.Name)
	}
	for _, u := range users {
		email := strings.ToLower(u.Email)
		_, dupID := d.users[u.SlackID]
		_, dupEmail := d.byEmail[email]
		if dupID || email != "" && dupEmail {
			return nil, fmt.Errorf("%w %s (%s)", ErrDuplicateUser, u.SlackID, u.Email)
		}
		u.Groups = slices.Clone(u.Groups)
		d.users[u.SlackID] = u
		if email != "" {
			d.byEmail[email] = u.SlackID
		}
		for _, name := range u.Groups {
			if g, ok := d.groups[name]; ok && !slices.Contains(g.Members, u.SlackID) {
				g.Members = append(g.Members, u.SlackID)
				d.groups[name] = g
			}
		}
	}
	for _, name := range d.order {
		for _, id := range d.groups[name].Members {
			if u, ok := d.users[id]; ok && !slices.Contains(u.Groups, name) {
				u.Groups = append(u.Groups, name)
				d.users[id] = u
			}
		}
	}
	return d, nil
}

// User returns the person with a Slack id.
func (d *StaticDirectory) User(slackID string) (User, bool) {
	u, ok := d.users[slackID]
	return u, ok
}

// UserByEmail returns the person with an email address, ignoring case.
func (d *StaticDirectory) UserByEmail(email string) (User, bool) {
	id, ok := d.byEmail[strings.ToLower(email)]
	if !ok {
		return User{}, false
	}
	return d.User(id)
}

// Group returns the group with a name.
func (d *StaticDirectory) Group(name string) (Group, bool) {
	g, ok := d.groups[name]
	return g, ok
}

// GroupNames returns the names of all groups, in the order they were given.
func (d *StaticDirectory) GroupNames() []string {
	return slices.Clone(d.order)
}

func (d *StaticDirectory) user(slackID string) (User, error) {
	u, ok := d.users[slackID]
	if !ok {
		return User{}, fmt.Errorf("%w %q", ErrUnknownUser, slackID)
	}
	return u, nil
}

// Email implements Directory.
func (d *StaticDirectory) Email(_ context.Context, slackID string) (string, error) {
	u, err := d.user(slackID)
	return u.Email, err
}

// Manager implements Directory.
func (d *StaticDirectory) Manager(_ context.Context, slackID string) (string, error) {
	u, err := d.user(slackID)
	return u.Manager, err
}

// Groups implements Directory.
func (d *StaticDirectory) Groups(_ context.Context, slackID string) ([]string, error) {
	u, err := d.user(slackID)
	return slices.Clone(u.Groups), err
}

// Members implements Directory. For a group whose source is not static it
// returns ErrExternalGroup.
func (d *StaticDirectory) Members(_ context.Context, group string) ([]string, error) {
	g, ok := d.groups[group]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownGroup, group)
	}
	if g.Source != GroupStatic && g.Source != "" {
		return nil, fmt.Errorf("group %q from %s: %w", group, g.Source, ErrExternalGroup)
	}
	return slices.Clone(g.Members), nil
}

// NameTemplate derives an account name (a database role, a certificate
// principal, an LDAP filter) from a User. It is a text/template whose dot is
// the User, e.g. "{{.LocalPart}}" or "latch_{{.SlackID | lower}}". Besides
// the template built-ins it offers lower, upper and replace (old, new, s).
type NameTemplate struct {
	tmpl *template.Template
}

// sampleUser is the person a NameTemplate is tried on when it is parsed, so
// that a misspelt field fails then rather than at the first request.
var sampleUser = User{
	SlackID: "U0SAMPLE1",
	Email:   "jane.doe@example.com",
	Manager: "U0SAMPLE2",
	Groups:  []string{"engineering"},
}

var nameTemplateFuncs = template.FuncMap{
	"lower":   strings.ToLower,
	"upper":   strings.ToUpper,
	"replace": func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
}

// ErrNameTemplate means a NameTemplate does not parse, or yields no name
// for a person.
var ErrNameTemplate = errors.New("invalid name template")

// ParseNameTemplate parses text and tries it on a sample user. It fails,
// with an error matching ErrNameTemplate, if the template does not parse,
// names a field User does not have, or yields an empty name.
func ParseNameTemplate(text string) (*NameTemplate, error) {
	t, err := template.New("name").Funcs(nameTemplateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNameTemplate, err)
	}
	nt := &NameTemplate{tmpl: t}
	if _, err := nt.Execute(sampleUser); err != nil {
		return nil, err
	}
	return nt, nil
}

// Execute returns the name for u. It fails, with an error matching
// ErrNameTemplate, when the template cannot be run for u or yields an
// empty name.
func (nt *NameTemplate) Execute(u User) (string, error) {
	var b strings.Builder
	if err := nt.tmpl.Execute(&b, u); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNameTemplate, err)
	}
	name := strings.TrimSpace(b.String())
	if name == "" {
		return "", fmt.Errorf("%w: the template yields an empty name", ErrNameTemplate)
	}
	return name, nil
}
