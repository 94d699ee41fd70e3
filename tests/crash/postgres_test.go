package crash_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/internal/pgtest"
)

// The throwaway server's roles and database.
const (
	pgLatchUser = "latch"        // the role latch connects as: CREATEROLE and pg_signal_backend
	pgLatchPass = "latch-secret" // its password, given to latch through pgPasswordEnv
	pgDatabase  = "app"
	pgRole      = "app_readonly" // the entitlement: the only role that may read table secret

	pgPasswordEnv = "LATCH_CRASH_PG_PASSWORD"

	// pgMaxConnections leaves room for the sessions the simulated people
	// keep open besides latch's own.
	pgMaxConnections = 250
)

// pgServer is one PostgreSQL started for a test.
type pgServer struct {
	*pgtest.Server
}

// startPostgres starts a PostgreSQL for the test, set up with the roles
// and the table above, and removes it when the test ends. Without
// PostgreSQL's binaries the test skips (fails under LATCH_INTEGRATION=1).
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	initdb := connectortest.Binary(t, "initdb", "postgresql", "/usr/lib/postgresql/*/bin")
	srv, err := pgtest.Start(initdb, fmt.Sprintf("max_connections=%d", pgMaxConnections))
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(srv.Remove)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Exec(ctx, "postgres",
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", pgLatchUser, pgLatchPass),
		"GRANT pg_signal_backend TO "+pgLatchUser,
		"CREATE ROLE "+pgRole+" NOLOGIN",
		"CREATE DATABASE "+pgDatabase,
	); err != nil {
		t.Fatalf("set up PostgreSQL: %v", err)
	}
	if err := srv.Exec(ctx, pgDatabase,
		"CREATE TABLE secret (v int)",
		"INSERT INTO secret VALUES (42)",
		"REVOKE ALL ON secret FROM PUBLIC",
		"GRANT SELECT ON secret TO "+pgRole,
	); err != nil {
		t.Fatalf("set up PostgreSQL: %v", err)
	}
	return &pgServer{srv}
}

// latchRole is a login role latch created for a grant, found by the
// comment the connector puts on it.
type latchRole struct {
	name     string
	grantID  string
	sessions int // open sessions of the role
}

const markerPrefix = "latch grant "

// latchRoles lists the roles latch created, with their open sessions.
func (s *pgServer) latchRoles(ctx context.Context) ([]latchRole, error) {
	conn, err := s.SuperConn(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `
		SELECT r.rolname, d.description,
		       (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid)
		FROM pg_roles r
		JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
		WHERE d.description LIKE $1`, markerPrefix+"%")
	if err != nil {
		return nil, err
	}
	var out []latchRole
	for rows.Next() {
		var r latchRole
		var comment string
		if err := rows.Scan(&r.name, &comment, &r.sessions); err != nil {
			return nil, err
		}
		// "latch grant <grant id> of connector <name>"
		r.grantID, _, _ = strings.Cut(strings.TrimPrefix(comment, markerPrefix), " ")
		out = append(out, r)
	}
	return out, rows.Err()
}
