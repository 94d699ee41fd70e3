package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/workflow"
)

var _ workflow.Lister = (*Connector)(nil)

// List returns the members of each group the entitlements name, as the
// connector's group attribute lists them: the value (a DN, or a uid for
// memberUid) is the holding's Account, and the mail of the member's entry
// its Email, when the entry exists and has one. The bind DN, which the
// package doc suggests as a placeholder member, is left out; a group that
// does not exist has no members. Membership cannot be tied to a grant, so
// no holding has a GrantID. Each group is read within the connector's
// timeout. An error is an *Error.
func (c *Connector) List(ctx context.Context, entitlements []string) ([]workflow.Holding, error) {
	var bind *goldap.DN
	if c.bindDN != "" {
		bind, _ = goldap.ParseDN(c.bindDN)
	}
	mails := map[string]string{} // member value → mail, across groups
	var holdings []workflow.Holding
	for _, ent := range entitlements {
		group, err := c.groupDN(ent)
		if err != nil {
			return nil, &Error{Connector: c.name, Op: "list", Group: ent, Err: err}
		}
		var values []string
		callCtx, cancel := context.WithTimeout(ctx, c.timeout)
		err = c.with(callCtx, func(conn *goldap.Conn) error {
			g, err := readEntry(conn, group, c.attr)
			if err != nil || g == nil {
				values = nil
				return err
			}
			values = values[:0]
			for _, v := range g.GetAttributeValues(c.attr) {
				if groupAttributes[c.attr] && bind != nil {
					if dn, err := goldap.ParseDN(v); err == nil && dn.EqualFold(bind) {
						continue
					}
				}
				values = append(values, v)
			}
			return c.mails(conn, values, mails)
		})
		if err != nil {
			e := c.failure(ctx, callCtx, "list", group, err)
			cancel()
			return nil, e
		}
		cancel()
		for _, v := range values {
			holdings = append(holdings, workflow.Holding{Entitlement: ent, Account: v, Email: mails[v]})
		}
	}
	return holdings, nil
}

// mails looks up the mail of each member value that known does not hold
// yet, and adds it there ("" for a member without one): by reading the
// entry a DN names, or by searching the user base DN for uids.
func (c *Connector) mails(conn *goldap.Conn, values []string, known map[string]string) error {
	var todo []string
	for _, v := range values {
		if _, ok := known[v]; !ok && !slices.Contains(todo, v) {
			todo = append(todo, v)
		}
	}
	if groupAttributes[c.attr] {
		for _, dn := range todo {
			e, err := readEntry(conn, dn, "mail")
			if err != nil {
				return fmt.Errorf("read member %s: %w", dn, err)
			}
			known[dn] = ""
			if e != nil {
				known[dn] = e.GetAttributeValue("mail")
			}
		}
		return nil
	}
	for uids := range slices.Chunk(todo, uidChunk) {
		var filter strings.Builder
		filter.WriteString("(|")
		for _, uid := range uids {
			filter.WriteString("(uid=" + goldap.EscapeFilter(uid) + ")")
		}
		filter.WriteString(")")
		res, err := conn.Search(&goldap.SearchRequest{
			BaseDN:       c.userBase,
			Scope:        goldap.ScopeWholeSubtree,
			DerefAliases: goldap.NeverDerefAliases,
			Filter:       filter.String(),
			Attributes:   []string{"uid", "mail"},
		})
		if err != nil {
			return fmt.Errorf("search for members under %s: %w", c.userBase, err)
		}
		found := map[string][]string{}
		for _, e := range res.Entries {
			for _, uid := range e.GetAttributeValues("uid") {
				found[uid] = append(found[uid], e.GetAttributeValue("mail"))
			}
		}
		for _, uid := range uids {
			known[uid] = ""
			if m := found[uid]; len(m) == 1 {
				known[uid] = m[0] // a uid several entries share names nobody
			}
		}
	}
	return nil
}

// Remove takes one holding List returned out of its group: it deletes
// h.Account from the group attribute of the group h.Entitlement names,
// as it is, without looking for a person. A value the group does not hold
// is a success. Errors are as for Revoke.
func (c *Connector) Remove(ctx context.Context, h workflow.Holding) error {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	group, err := c.groupDN(h.Entitlement)
	if err == nil && h.Account == "" {
		err = fmt.Errorf("%w: no member to remove", ErrUnknownPerson)
	}
	if err == nil {
		err = c.with(callCtx, func(conn *goldap.Conn) error {
			req := goldap.NewModifyRequest(group, nil)
			req.Delete(c.attr, []string{h.Account})
			err := c.modify(conn, group, req)
			if groupAttributes[c.attr] && goldap.IsErrorWithCode(err, goldap.LDAPResultObjectClassViolation) {
				return fmt.Errorf("remove %s from %s: %w: %w", h.Account, group, ErrLastMember, err)
			}
			return err
		})
	}
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchAttribute):
		return nil
	case err != nil:
		return c.provisionError(ctx, callCtx, "revoke", h.Entitlement, err)
	}
	return nil
}
