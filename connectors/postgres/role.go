package postgres

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/workflow"
)

// querier is what the connector runs statements on: the pool, or a
// transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// grantRole grants a.Entitlement to the person's login role.
func (c *Connector) grantRole(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	const op = "grant"
	role := a.Entitlement
	if err := checkEntitlement(role); err != nil {
		return workflow.Granted{}, c.fail(op, "", role, err)
	}
	login, err := c.roleName(a.User)
	if err != nil {
		return workflow.Granted{}, c.fail(op, "", role, err)
	}
	r, err := lookup(ctx, c.pool, login, role)
	if err == nil {
		err = r.grantable()
	}
	if err == nil && r.login == 0 {
		err = ErrUnknownAccount
	}
	if err != nil {
		return workflow.Granted{}, c.fail(op, login, role, err)
	}
	// Granting a membership the role has already is no error.
	if _, err := c.pool.Exec(ctx, "GRANT "+ident(role)+" TO "+ident(login)); err != nil {
		return workflow.Granted{}, c.fail(op, login, role, err)
	}
	return workflow.Granted{
		Message: fmt.Sprintf("Your PostgreSQL role %s is now a member of %s on %s%s.",
			login, role, c.where(), until(a)),
		Facts: map[string]string{"account": login, "role": role},
	}, nil
}

// revokeRole revokes a.Entitlement from the person's login role, and ends
// their sessions if the connector is configured to.
func (c *Connector) revokeRole(ctx context.Context, a workflow.Access) error {
	const op = "revoke"
	role := a.Entitlement
	if err := checkEntitlement(role); err != nil {
		return c.fail(op, "", role, err)
	}
	login, err := c.roleName(a.User)
	if err != nil {
		return c.fail(op, "", role, err)
	}
	r, err := lookup(ctx, c.pool, login, role)
	switch {
	case err != nil:
		return c.fail(op, login, role, err)
	case r.login == 0 || r.role == 0:
		// Without either role there is no membership to take back.
		return nil
	}
	// Revoking a membership the role does not have is no error.
	if _, err := c.pool.Exec(ctx, "REVOKE "+ident(role)+" FROM "+ident(login)); err != nil {
		return c.fail(op, login, role, err)
	}
	if c.endAll {
		if err := endSessions(ctx, c.pool, r.login); err != nil {
			return c.fail(op, login, role, err)
		}
	}
	return nil
}

// roles is what the server knows of the roles a call concerns.
type roles struct {
	login uint32 // the login role's oid, or zero if there is none
	role  uint32 // the entitlement's oid, or zero if there is none
	// unsafe says the entitlement is a superuser role or the role latch
	// connects as, which latch never grants.
	unsafe bool
}

// lookup returns what the server knows of the roles called login and
// role.
func lookup(ctx context.Context, q querier, login, role string) (roles, error) {
	var r roles
	err := q.QueryRow(ctx, `SELECT
		coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1), 0),
		coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2), 0),
		coalesce((SELECT rolsuper OR rolname = current_user FROM pg_catalog.pg_roles WHERE rolname = $2), false)`,
		login, role).Scan(&r.login, &r.role, &r.unsafe)
	return r, err
}

// grantable refuses an entitlement r says does not exist or is unsafe.
func (r roles) grantable() error {
	switch {
	case r.role == 0:
		return ErrUnknownRole
	case r.unsafe:
		return ErrUnsafeRole
	}
	return nil
}

// endSessions ends every session of the role oid, on every database of
// the server, and waits up to terminateWait for them to be gone. It fails
// with ErrSessionsRemain if some are still open then.
func endSessions(ctx context.Context, q querier, oid uint32) error {
	if _, err := q.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid)
		FROM pg_catalog.pg_stat_activity
		WHERE usesysid = $1 AND pid <> pg_catalog.pg_backend_pid()`, oid); err != nil {
		return err
	}
	// pg_terminate_backend only signals; its own wait checks in steps of
	// 100 ms, where a session usually ends within a few. Each count is
	// a statement of its own, so that it reads the sessions afresh.
	deadline := time.Now().Add(terminateWait)
	pause := time.Millisecond
	for {
		var remaining int
		err := q.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_stat_activity
			WHERE usesysid = $1 AND pid <> pg_catalog.pg_backend_pid()`, oid).Scan(&remaining)
		switch {
		case err != nil:
			return err
		case remaining == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%w: %d after waiting %s", ErrSessionsRemain, remaining, terminateWait)
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// where describes the database a beneficiary connects to.
func (c *Connector) where() string {
	if strings.HasPrefix(c.host, "/") {
		return fmt.Sprintf("database %s (socket in %s, port %d)", c.database, c.host, c.port)
	}
	return fmt.Sprintf("database %s at %s", c.database, net.JoinHostPort(c.host, strconv.Itoa(c.port)))
}

// until says when a's access ends, for a message.
func until(a workflow.Access) string {
	if a.ExpiresAt.IsZero() {
		return ""
	}
	return ", until " + a.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC")
}
