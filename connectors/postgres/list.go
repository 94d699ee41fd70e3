package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/workflow"
)

// ErrMembershipRemains means a membership that Remove revoked is still
// there afterwards: it was granted by another role, whose grant latch's
// role cannot revoke (PostgreSQL 16 and later record who granted each
// membership). Someone with that role, or a superuser, must revoke it.
var ErrMembershipRemains = errors.New("the membership was granted by another role and is still there")

var _ workflow.Lister = (*Connector)(nil)

// List returns the access the connector manages on the server.
//
// In ephemeral mode it is every login role the connector created (those
// whose comment marks them as made for a grant by this connector, whatever
// the entitlements asked for), each with the grant it was made for and
// the role it is a member of: one holding per membership, or one with no
// entitlement for a role that is a member of none.
//
// In role mode it is, for each entitlement, the login roles that are
// direct members of it, by role name (Account); the grant cannot be told.
// latch's own role is left out, as are memberships that give neither the
// role's privileges nor SET ROLE to it (PostgreSQL 16's ADMIN-only
// memberships), and login roles an ephemeral connector created, which
// that connector lists.
//
// An error is an *Error, as for Grant.
func (c *Connector) List(ctx context.Context, entitlements []string) ([]workflow.Holding, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		holdings []workflow.Holding
		err      error
	)
	if c.mode == ModeEphemeral {
		holdings, err = c.listEphemeral(ctx)
	} else {
		holdings, err = c.listRole(ctx, entitlements)
	}
	if err != nil {
		return nil, c.fail("list", "", "", err)
	}
	return holdings, nil
}

// markerParts returns what comes before and after the grant id in the
// connector's marker.
func (c *Connector) markerParts() (prefix, suffix string) {
	prefix, suffix, _ = strings.Cut(c.marker("\x00"), "\x00")
	return prefix, suffix
}

// listEphemeral returns the login roles the connector created, with their
// memberships.
func (c *Connector) listEphemeral(ctx context.Context) ([]workflow.Holding, error) {
	prefix, suffix := c.markerParts()
	rows, err := c.pool.Query(ctx, `SELECT r.rolname, d.description, coalesce(g.rolname, '')
		FROM pg_catalog.pg_roles r
		JOIN pg_catalog.pg_shdescription d
			ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
		LEFT JOIN pg_catalog.pg_auth_members m ON m.member = r.oid
		LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE length(d.description) > length($1) + length($2)
			AND left(d.description, length($1)) = $1
			AND right(d.description, length($2)) = $2
		ORDER BY r.rolname, 3`, prefix, suffix)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (workflow.Holding, error) {
		var h workflow.Holding
		var description string
		if err := row.Scan(&h.Account, &description, &h.Entitlement); err != nil {
			return h, err
		}
		h.GrantID = strings.TrimSuffix(strings.TrimPrefix(description, prefix), suffix)
		return h, nil
	})
}

// listRole returns the login roles that are members of the entitlements.
func (c *Connector) listRole(ctx context.Context, entitlements []string) ([]workflow.Holding, error) {
	if len(entitlements) == 0 {
		return nil, nil
	}
	prefix, _ := c.markerParts()
	// pg_auth_members has inherit_option and set_option from PostgreSQL
	// 16 on; read through jsonb, a server without them has neither.
	rows, err := c.pool.Query(ctx, `SELECT g.rolname, r.rolname
		FROM pg_catalog.pg_auth_members m
		JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		JOIN pg_catalog.pg_roles r ON r.oid = m.member
		WHERE g.rolname = ANY($1::text[])
			AND r.rolcanlogin
			AND r.rolname <> current_user
			AND (coalesce((to_jsonb(m) ->> 'inherit_option')::bool, true)
				OR coalesce((to_jsonb(m) ->> 'set_option')::bool, true))
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_shdescription d
				WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
					AND left(d.description, length($2)) = $2)
		GROUP BY 1, 2
		ORDER BY 1, 2`, entitlements, prefix)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (workflow.Holding, error) {
		var h workflow.Holding
		err := row.Scan(&h.Entitlement, &h.Account)
		return h, err
	})
}

// Remove takes away one holding List returned, by what List said of it
// rather than by a person: in ephemeral mode it drops the login role made
// for h.GrantID, as Revoke does; in role mode it revokes h.Entitlement
// from the login role h.Account (and ends its sessions if the connector
// is configured to). Taking away what is gone already succeeds. Errors
// are as for Revoke; a membership still there afterwards is
// ErrMembershipRemains.
func (c *Connector) Remove(ctx context.Context, h workflow.Holding) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.mode == ModeEphemeral {
		return c.revokeEphemeral(ctx, workflow.Access{GrantID: h.GrantID, Entitlement: h.Entitlement})
	}
	const op = "revoke"
	role, login := h.Entitlement, h.Account
	if err := checkEntitlement(role); err != nil {
		return c.fail(op, login, role, err)
	}
	if err := checkEntitlement(login); err != nil {
		return c.fail(op, login, role, ErrInvalidName)
	}
	r, err := lookup(ctx, c.pool, login, role)
	switch {
	case err != nil:
		return c.fail(op, login, role, err)
	case r.login == 0 || r.role == 0:
		return nil
	}
	if _, err := c.pool.Exec(ctx, "REVOKE "+ident(role)+" FROM "+ident(login)); err != nil {
		return c.fail(op, login, role, err)
	}
	var remains bool
	if err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members
		WHERE roleid = $1 AND member = $2)`, r.role, r.login).Scan(&remains); err != nil {
		return c.fail(op, login, role, err)
	}
	if remains {
		return workflow.Permanent(&Error{Connector: c.name, Op: op, Account: login, Role: role, Err: ErrMembershipRemains})
	}
	if c.endAll {
		if err := endSessions(ctx, c.pool, r.login); err != nil {
			return c.fail(op, login, role, err)
		}
	}
	return nil
}
