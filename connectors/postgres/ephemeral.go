package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/workflow"
)

// account is a login role the connector created for a grant.
type account struct {
	oid  uint32
	name string
}

// marker is the comment on the login role created for a grant, by which
// the connector recognises it as its own.
func (c *Connector) marker(grantID string) string {
	return "latch grant " + grantID + " of connector " + c.name
}

// grantEphemeral creates the login role for a's grant, or, if an earlier
// attempt created it, gives it a new password and expiry; either way the
// role ends a member of a.Entitlement, and the new password is returned
// in the message.
func (c *Connector) grantEphemeral(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	const op = "grant"
	role := a.Entitlement
	if err := checkEntitlement(role); err != nil {
		return workflow.Granted{}, c.fail(op, "", role, err)
	}
	if err := checkGrantID(a.GrantID); err != nil {
		return workflow.Granted{}, c.fail(op, "", role, err)
	}
	base, err := c.roleName(a.User)
	if err != nil {
		return workflow.Granted{}, c.fail(op, "", role, err)
	}
	name := ephemeralName(base, a.GrantID)
	password := newPassword()
	verifier, err := scramVerifier(password)
	if err != nil {
		return workflow.Granted{}, c.fail(op, name, role, err)
	}
	login := "LOGIN PASSWORD " + quoteLiteral(verifier) + " VALID UNTIL " + quoteLiteral(validUntil(a.ExpiresAt))
	refreshed := false

	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		r, err := lookup(ctx, tx, name, role)
		if err != nil {
			return err
		}
		if err := r.grantable(); err != nil {
			return err
		}
		accounts, err := c.accounts(ctx, tx, a.GrantID)
		if err != nil {
			return err
		}
		if len(accounts) > 0 {
			// An earlier attempt created it; it may have been made under
			// an older template, so keep its name.
			name = accounts[0].name
			if a.Refresh {
				// An extension: the beneficiary keeps the password they
				// were given; only the expiry moves.
				refreshed = true
				if _, err := tx.Exec(ctx, "ALTER ROLE "+ident(name)+" WITH LOGIN VALID UNTIL "+quoteLiteral(validUntil(a.ExpiresAt))); err != nil {
					return err
				}
				_, err = tx.Exec(ctx, "GRANT "+ident(role)+" TO "+ident(name))
				return err
			}
			if _, err := tx.Exec(ctx, "ALTER ROLE "+ident(name)+" WITH "+login); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "GRANT "+ident(role)+" TO "+ident(name))
			return err
		}
		if r.login != 0 {
			return ErrForeignRole
		}
		create := "CREATE ROLE " + ident(name) + " WITH NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS " +
			login + " IN ROLE " + ident(role)
		if _, err := tx.Exec(ctx, create); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "COMMENT ON ROLE "+ident(name)+" IS "+quoteLiteral(c.marker(a.GrantID)))
		return err
	})
	if err != nil {
		return workflow.Granted{}, c.fail(op, name, role, err)
	}
	facts := map[string]string{"account": name, "role": role, "valid_until": "infinity"}
	if !a.ExpiresAt.IsZero() {
		facts["valid_until"] = a.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if refreshed {
		return workflow.Granted{Facts: facts}, nil
	}
	return workflow.Granted{Message: c.credentials(a, name, password), Facts: facts}, nil
}

// revokeEphemeral ends the sessions of the login role created for a's
// grant and drops it.
func (c *Connector) revokeEphemeral(ctx context.Context, a workflow.Access) error {
	const op = "revoke"
	if err := checkGrantID(a.GrantID); err != nil {
		return c.fail(op, "", a.Entitlement, err)
	}
	accounts, err := c.accounts(ctx, c.pool, a.GrantID)
	if err != nil {
		return c.fail(op, "", a.Entitlement, err)
	}
	for _, acct := range accounts {
		if err := c.drop(ctx, acct); err != nil {
			return c.fail(op, acct.name, a.Entitlement, err)
		}
	}
	return nil
}

// drop takes acct's login away, ends its sessions, and drops it.
func (c *Connector) drop(ctx context.Context, acct account) error {
	// First, so that no new session can start while the others end.
	_, err := c.pool.Exec(ctx, "ALTER ROLE "+ident(acct.name)+" WITH NOLOGIN PASSWORD NULL VALID UNTIL 'now'")
	if isCode(err, "42704") {
		return nil // dropped meanwhile
	}
	if err != nil {
		return err
	}
	if err := endSessions(ctx, c.pool, acct.oid); err != nil {
		return err
	}
	_, err = c.pool.Exec(ctx, "DROP ROLE IF EXISTS "+ident(acct.name))
	if isCode(err, "2BP01") {
		err = c.dropOwned(ctx, acct)
	}
	if err != nil {
		return err
	}
	// A session that was authenticating as the login was taken away may
	// have registered since: end it too.
	return endSessions(ctx, c.pool, acct.oid)
}

// dropOwned drops acct after handing what it owns in the connector's
// database to latch's role and dropping its privileges there. Objects or
// privileges in other databases still stop the drop, with 2BP01.
func (c *Connector) dropOwned(ctx context.Context, acct account) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var version int
		if err := tx.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return err
		}
		// REASSIGN OWNED and DROP OWNED need the privileges of the role;
		// from PostgreSQL 16 a membership must say so to give them.
		grant := "GRANT " + ident(acct.name) + " TO CURRENT_USER"
		if version >= 160000 {
			grant += " WITH INHERIT TRUE"
		}
		for _, stmt := range []string{
			grant,
			"REASSIGN OWNED BY " + ident(acct.name) + " TO CURRENT_USER",
			"DROP OWNED BY " + ident(acct.name),
			"DROP ROLE " + ident(acct.name),
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// accounts returns the login roles the connector created for the grant
// grantID: normally none or one.
func (c *Connector) accounts(ctx context.Context, q querier, grantID string) ([]account, error) {
	rows, err := q.Query(ctx, `SELECT r.oid, r.rolname
		FROM pg_catalog.pg_roles r
		JOIN pg_catalog.pg_shdescription d
			ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::regclass
		WHERE d.description = $1
		ORDER BY r.rolname`, c.marker(grantID))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (account, error) {
		var a account
		err := row.Scan(&a.oid, &a.name)
		return a, err
	})
}

// credentials is the message for the beneficiary of an ephemeral grant.
func (c *Connector) credentials(a workflow.Access, user, password string) string {
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(c.host, strconv.Itoa(c.port)),
		Path:     "/" + c.database,
		RawQuery: "sslmode=" + url.QueryEscape(c.sslMode),
	}
	if strings.HasPrefix(c.host, "/") {
		u.Host = ""
		u.RawQuery = url.Values{"host": {c.host}, "port": {strconv.Itoa(c.port)}}.Encode()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Your PostgreSQL login with role %s%s:\n\n", a.Entitlement, until(a))
	fmt.Fprintf(&b, "  user:      %s\n", user)
	fmt.Fprintf(&b, "  password:  %s\n", password)
	fmt.Fprintf(&b, "  host:      %s\n", c.host)
	fmt.Fprintf(&b, "  port:      %d\n", c.port)
	fmt.Fprintf(&b, "  database:  %s\n", c.database)
	fmt.Fprintf(&b, "\nConnection string (keep it secret):\n  %s\n", u.String())
	b.WriteString("\nThe login stops working when the access ends, and open sessions are closed then.")
	return b.String()
}

// validUntil is the VALID UNTIL of an access expiring at t: never, for a
// zero t.
func validUntil(t time.Time) string {
	if t.IsZero() {
		return "infinity"
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}

// checkGrantID refuses, with ErrInvalidAccess, a grant id the login role
// cannot be derived from or marked with.
func checkGrantID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: no grant id", ErrInvalidAccess)
	case strings.ContainsRune(id, 0):
		return fmt.Errorf("%w: the grant id holds a NUL byte", ErrInvalidAccess)
	}
	return nil
}

// isCode reports whether err is a server error with SQLSTATE code.
func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}
