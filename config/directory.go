package config

import (
	"cmp"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/latchhq/latch/workflow"
)

// Slack identifier forms.
var (
	slackUserID    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	// A Slack user group is named by its handle or its id (S…).
	slackUserGroup = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]*|S[A-Z0-9]{2,})$`)
)

var groupSources = []string{string(workflow.GroupStatic), string(workflow.GroupSlack), string(workflow.GroupLDAP)}

// people resolves references to people, written as a Slack id or an email,
// against the directory.
type people struct {
	dir   *workflow.StaticDirectory
	order []string // every Slack id, in the order of directory.users
	refs  []string // every Slack id and email, for suggestions
	// vague holds the users whose manager was given but names nobody.
	vague map[string]bool
}

// resolve returns the Slack id ref names, reporting it if it names nobody.
func (p people) resolve(ps *problems, path, ref string) (string, bool) {
	if strings.Contains(ref, "@") {
		if u, ok := p.dir.UserByEmail(ref); ok {
			return u.SlackID, true
		}
		ps.add(path, "no user with email %q in directory.users%s", ref, hint(ref, p.refs, "add the person there"))
		return "", false
	}
	if _, ok := p.dir.User(ref); ok {
		return ref, true
	}
	if !slackUserID.MatchString(ref) {
		ps.add(path, "%q is neither a Slack user id (U…) nor an email", ref)
		return "", false
	}
	ps.add(path, "no user with Slack id %q in directory.users%s", ref, hint(ref, p.refs, "add the person there"))
	return "", false
}

// resolveAll resolves a list of references, dropping duplicates and the
// references that name nobody.
func (p people) resolveAll(ps *problems, path string, refs []string) []string {
	var ids []string
	for i, ref := range refs {
		if id, ok := p.resolve(ps, index(path, i), ref); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// users returns every user, in the order of directory.users.
func (p people) users() []workflow.User {
	out := make([]workflow.User, 0, len(p.order))
	for _, id := range p.order {
		u, _ := p.dir.User(id)
		out = append(out, u)
	}
	return out
}

// who names a person in a message: by email, or Slack id if there is none.
func who(u workflow.User) string {
	return cmp.Or(u.Email, u.SlackID)
}

// buildDirectory checks the static directory and builds it. Users and
// groups whose identity is missing or taken are checked but left out, so
// that they cause no further, misleading problems.
func buildDirectory(ps *problems, doc directoryDoc, connectors []Connector) (*workflow.StaticDirectory, people) {
	slackIDs := identity{list: "directory.users", key: "slack_id", form: slackIDForm,
		missing: "the person's Slack member id (U…), found in their Slack profile under “Copy member ID”"}
	emails := identity{list: "directory.users", key: "email", form: emailForm, fold: true,
		missing: "connectors derive account names from it"}
	var users []workflow.User
	var from []int // the entry of doc.Users each user comes from
	pp := people{vague: make(map[string]bool)}
	for i, d := range doc.Users {
		u := workflow.User{SlackID: d.SlackID}
		okID := slackIDs.check(ps, i, d.SlackID)
		if emails.check(ps, i, d.Email) {
			u.Email = d.Email
		}
		if okID {
			users, from = append(users, u), append(from, i)
			pp.order = append(pp.order, u.SlackID)
			pp.refs = append(pp.refs, u.SlackID)
			if u.Email != "" {
				pp.refs = append(pp.refs, u.Email)
			}
		}
	}
	pp.dir = newDirectory(ps, users, nil)

	var groups []workflow.Group
	groupNames := identity{list: "directory.groups", key: "name", form: slugForm,
		missing: "policies and conditions refer to the group by name"}
	for i, d := range doc.Groups {
		ok := groupNames.check(ps, i, d.Name)
		g := buildGroup(ps, index("directory.groups", i), d, pp, connectors)
		if ok {
			groups = append(groups, g)
		}
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}

	for k, u := range users {
		d := doc.Users[from[k]]
		path := index("directory.users", from[k])
		if d.Manager != "" {
			id, ok := pp.resolve(ps, path+".manager", d.Manager)
			if ok && id == u.SlackID {
				ps.add(path+".manager", "a person cannot be their own manager")
				ok = false
			}
			if ok {
				users[k].Manager = id
			} else {
				pp.vague[u.SlackID] = true
			}
		}
		for j, name := range d.Groups {
			p := index(path+".groups", j)
			i := slices.IndexFunc(groups, func(g workflow.Group) bool { return g.Name == name })
			switch {
			case i < 0:
				ps.add(p, "unknown group %q%s", name, hint(name, names, "declare it under directory.groups"))
			case groups[i].Source != workflow.GroupStatic:
				ps.add(p, "group %q takes its members from %s; remove it here", name, groups[i].Source)
			default:
				users[k].Groups = append(users[k].Groups, name)
			}
		}
	}
	pp.dir = newDirectory(ps, users, groups)
	return pp.dir, pp
}

// newDirectory builds a directory from entries already checked to be
// unique.
func newDirectory(ps *problems, users []workflow.User, groups []workflow.Group) *workflow.StaticDirectory {
	dir, err := workflow.NewStaticDirectory(users, groups)
	if err != nil {
		ps.add("directory", "%v", err) // a duplicate the checks above missed
		dir, _ = workflow.NewStaticDirectory(nil, nil)
	}
	return dir
}

func buildGroup(ps *problems, path string, g groupDoc, pp people, connectors []Connector) workflow.Group {
	out := workflow.Group{Name: g.Name, Description: g.Description, Source: workflow.GroupSource(g.Source), Ref: g.Ref, Connector: g.Connector}
	if out.Source == "" {
		out.Source = workflow.GroupStatic
	}
	switch out.Source {
	case workflow.GroupStatic:
		if g.Ref != "" {
			ps.add(path+".ref", "a static group lists its members; ref is for slack and ldap groups")
		}
		out.Members = pp.resolveAll(ps, path+".members", g.Members)
	case workflow.GroupSlack:
		switch {
		case g.Ref == "":
			ps.add(path+".ref", "required; the Slack user group's handle (without @) or id (S…)")
		case !slackUserGroup.MatchString(g.Ref):
			ps.add(path+".ref", "%q is not a Slack user group handle or id; write the handle without @, e.g. oncall", g.Ref)
		}
	case workflow.GroupLDAP:
		if !strings.Contains(g.Ref, "=") {
			ps.add(path+".ref", "required; the LDAP group's DN, e.g. cn=dba,ou=groups,dc=example,dc=com")
		}
		out.Connector = ldapConnector(ps, path+".connector", g.Connector, connectors)
	default:
		ps.add(path+".source", "unknown source %q%s", g.Source, oneOf(g.Source, groupSources))
	}
	if out.Source != workflow.GroupStatic && len(g.Members) > 0 {
		ps.add(path+".members", "the members of a %s group come from %s; remove members", out.Source, out.Source)
	}
	if out.Source != workflow.GroupLDAP && g.Connector != "" {
		ps.add(path+".connector", "only ldap groups are read through a connector; remove it")
	}
	return out
}

// ldapConnector picks the ldap connector an ldap group is read through: the
// one named, or the only one there is.
func ldapConnector(ps *problems, path, name string, connectors []Connector) string {
	var ldap []string
	for _, c := range connectors {
		if c.Type == "ldap" {
			ldap = append(ldap, c.Name)
		}
	}
	switch {
	case name != "" && slices.Contains(ldap, name):
		return name
	case name != "":
		ps.add(path, "%q is not an ldap connector%s", name, hint(name, ldap, "name an ldap connector from connectors"))
	case len(ldap) == 1:
		return ldap[0]
	case len(ldap) == 0:
		ps.add(path, "ldap groups are read through an ldap connector; add one under connectors")
	default:
		ps.add(path, "required when there are several ldap connectors; name one of %s", strings.Join(ldap, ", "))
	}
	return ""
}

func slackIDForm(v string) string {
	if slackUserID.MatchString(v) {
		return ""
	}
	return fmt.Sprintf("%q is not a Slack user id; use the member id (U… or W…), not a name", redactToken(v))
}

// channelForm says what is wrong with a value that is not a Slack channel id.
func channelForm(v string) string {
	if slackChannelID.MatchString(v) {
		return ""
	}
	return fmt.Sprintf("%q is not a Slack channel id; use the id (C…), found in the channel's details", redactToken(v))
}

func emailForm(v string) string {
	if a, err := mail.ParseAddress(v); err == nil && a.Address == v {
		return ""
	}
	return fmt.Sprintf("%q is not an email address", v)
}
