package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/workflow"
)

// timeIn returns the whole second sec seconds from now.
func timeIn(sec int) time.Time {
	return time.Now().Add(time.Duration(sec) * time.Second).UTC().Truncate(time.Second)
}

// validConfig is a configuration New accepts.
func validConfig() postgres.Config {
	return postgres.Config{
		Name:     "db",
		Host:     "db.example.com",
		Database: "app",
		User:     "latch",
		Password: "secret",
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*postgres.Config)
		field string // named in the error; "" if New succeeds
	}{
		{"valid", func(*postgres.Config) {}, ""},
		{"unix socket", func(c *postgres.Config) { c.Host = "/var/run/postgresql" }, ""},
		{"ephemeral", func(c *postgres.Config) { c.Mode = postgres.ModeEphemeral }, ""},
		{"every field", func(c *postgres.Config) {
			c.Port, c.SSLMode = 6432, "require"
			c.UsernameTemplate = "dev_{{.SlackID | lower}}"
			c.ConnectTimeout, c.Timeout, c.TerminateSessions = time.Second, time.Minute, true
			c.ConnectHost, c.ConnectPort, c.ConnectSSLMode = "pgbouncer.example.com", 6543, "verify-full"
		}, ""},
		{"no name", func(c *postgres.Config) { c.Name = "" }, "Name"},
		{"missing CA file", func(c *postgres.Config) { c.SSLRootCert = "/nonexistent/ca.pem" }, "SSLRootCert"},
		{"no host", func(c *postgres.Config) { c.Host = "" }, "Host"},
		{"port too big", func(c *postgres.Config) { c.Port = 70000 }, "Port"},
		{"negative port", func(c *postgres.Config) { c.Port = -1 }, "Port"},
		{"no database", func(c *postgres.Config) { c.Database = "" }, "Database"},
		{"no user", func(c *postgres.Config) { c.User = "" }, "User"},
		{"unknown sslmode", func(c *postgres.Config) { c.SSLMode = "on" }, "SSLMode"},
		{"unknown mode", func(c *postgres.Config) { c.Mode = "temporary" }, "Mode"},
		{"template does not parse", func(c *postgres.Config) { c.UsernameTemplate = "{{.LocalPart" }, "UsernameTemplate"},
		{"template names no field", func(c *postgres.Config) { c.UsernameTemplate = "{{.Nickname}}" }, "UsernameTemplate"},
		{"negative connect timeout", func(c *postgres.Config) { c.ConnectTimeout = -time.Second }, "ConnectTimeout"},
		{"negative timeout", func(c *postgres.Config) { c.Timeout = -time.Second }, "Timeout"},
		{"terminate sessions in ephemeral mode", func(c *postgres.Config) {
			c.Mode, c.TerminateSessions = postgres.ModeEphemeral, true
		}, "TerminateSessions"},
		{"connect port", func(c *postgres.Config) { c.ConnectPort = 65536 }, "ConnectPort"},
		{"connect sslmode", func(c *postgres.Config) { c.ConnectSSLMode = "yes" }, "ConnectSSLMode"},
		{"NUL in database", func(c *postgres.Config) { c.Database = "app\x00" }, "Database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.edit(&cfg)
			c, err := postgres.New(cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("New succeeded, want an error naming %s", tt.field)
			}
			if !errors.Is(err, postgres.ErrInvalidConfig) {
				t.Errorf("New: %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("New: %v, want it to name %s", err, tt.field)
			}
			if strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("New: %v holds the password", err)
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := postgres.New(postgres.Config{Port: -1, Mode: "x"})
	if err == nil {
		t.Fatal("New succeeded")
	}
	for _, field := range []string{"Name", "Host", "Port", "Database", "User", "Mode"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("New: %v, want it to name %s", err, field)
		}
	}
}

func TestNewDoesNotConnect(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()

	cfg := validConfig()
	cfg.Host, cfg.Port, cfg.SSLMode = "127.0.0.1", addr.Port, "disable"
	c, err := postgres.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer c.Close()
	a := workflow.Access{GrantID: "g1", User: jane, Entitlement: "readonly", ExpiresAt: timeIn(60)}
	_, err = c.Grant(t.Context(), a)
	var e *postgres.Error
	switch {
	case err == nil:
		t.Fatal("Grant with no server succeeded")
	case workflow.IsPermanent(err):
		t.Errorf("Grant with no server: %v: permanent, want transient", err)
	case !errors.As(err, &e):
		t.Errorf("Grant with no server: %v (%T), want an *Error", err, err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("Grant: %v holds latch's password", err)
	}
}

func TestClose(t *testing.T) {
	c, err := postgres.New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	err = c.Revoke(t.Context(), workflow.Access{GrantID: "g1", User: jane, Entitlement: "readonly"})
	if err == nil {
		t.Fatal("Revoke after Close succeeded")
	}
}

func TestRoleName(t *testing.T) {
	tests := []struct {
		template string
		user     workflow.User
		want     string // "" for ErrInvalidName
	}{
		{"{{.LocalPart}}", workflow.User{Email: "jane@example.com"}, "jane"},
		{"{{.LocalPart}}", workflow.User{Email: "Jane_Doe@example.com"}, "jane_doe"},
		{"{{.LocalPart}}", workflow.User{Email: "jane.doe@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "jane-doe@example.com"}, ""},
		{"{{.LocalPart | replace \".\" \"_\"}}", workflow.User{Email: "jane.doe@example.com"}, "jane_doe"},
		{"{{.LocalPart}}", workflow.User{Email: "2jane@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "jöhn@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "pg_monitor@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "public@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "none@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: `jane"; DROP ROLE latch; --@example.com`}, ""},
		{"{{.LocalPart}}", workflow.User{Email: "jane'@example.com"}, ""},
		{"{{.LocalPart}}", workflow.User{Email: strings.Repeat("a", 63) + "@example.com"}, strings.Repeat("a", 63)},
		{"{{.LocalPart}}", workflow.User{Email: strings.Repeat("a", 64) + "@example.com"}, ""},
		{"{{.Email}}", workflow.User{Email: "jane@example.com"}, ""},
		{"{{.SlackID}}", workflow.User{SlackID: "U0123ABCD"}, "u0123abcd"},
		{"dev_{{.SlackID | lower}}", workflow.User{SlackID: "U0123ABCD"}, "dev_u0123abcd"},
		{"_{{.LocalPart}}", workflow.User{Email: "jane@example.com"}, "_jane"},
	}
	for _, tt := range tests {
		t.Run(tt.template+" "+tt.user.Email+tt.user.SlackID, func(t *testing.T) {
			cfg := validConfig()
			cfg.UsernameTemplate = tt.template
			c, err := postgres.New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			got, err := postgres.RoleName(c, tt.user)
			if tt.want == "" {
				if !errors.Is(err, postgres.ErrInvalidName) {
					t.Errorf("RoleName = %q, %v; want ErrInvalidName", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("RoleName = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestInvalidNameIsPermanent(t *testing.T) {
	for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := validConfig()
			cfg.Mode = mode
			c, err := postgres.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Refused before anything is asked of the server, which
			// does not exist.
			a := workflow.Access{GrantID: "g1", User: workflow.User{Email: "jane.doe@example.com"}, Entitlement: "readonly"}
			_, err = c.Grant(t.Context(), a)
			var e *postgres.Error
			if !workflow.IsPermanent(err) || !errors.Is(err, postgres.ErrInvalidName) || !errors.As(err, &e) {
				t.Errorf("Grant: %v, want a permanent *Error wrapping ErrInvalidName", err)
			}
		})
	}
}

func TestInvalidEntitlementIsPermanent(t *testing.T) {
	for _, entitlement := range []string{"", "read\x00only", strings.Repeat("r", 64)} {
		for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
			t.Run(fmt.Sprintf("%s %q", mode, entitlement), func(t *testing.T) {
				cfg := validConfig()
				cfg.Mode = mode
				c, err := postgres.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				a := workflow.Access{GrantID: "g1", User: jane, Entitlement: entitlement}
				_, err = c.Grant(t.Context(), a)
				if !workflow.IsPermanent(err) || !errors.Is(err, postgres.ErrInvalidEntitlement) {
					t.Errorf("Grant: %v, want a permanent error wrapping ErrInvalidEntitlement", err)
				}
			})
		}
	}
}

func TestEphemeralName(t *testing.T) {
	tests := []struct {
		base, grant string
	}{
		{"jane", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
		{"jane", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"},
		{strings.Repeat("a", 63), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
		{strings.Repeat("b", 54), "g"},
		{strings.Repeat("c", 55), "g"},
	}
	seen := make(map[string]bool)
	for _, tt := range tests {
		got := postgres.EphemeralName(tt.base, tt.grant)
		if again := postgres.EphemeralName(tt.base, tt.grant); again != got {
			t.Errorf("EphemeralName(%q, %q) = %q, then %q", tt.base, tt.grant, got, again)
		}
		if len(got) > postgres.MaxNameLen {
			t.Errorf("EphemeralName(%q, %q) = %q: %d bytes, more than %d", tt.base, tt.grant, got, len(got), postgres.MaxNameLen)
		}
		prefix := tt.base[:min(len(tt.base), postgres.MaxNameLen-9)] + "_"
		if !strings.HasPrefix(got, prefix) || len(got) != len(prefix)+8 {
			t.Errorf("EphemeralName(%q, %q) = %q, want %q and 8 characters", tt.base, tt.grant, got, prefix)
		}
		for _, r := range got[len(prefix):] {
			if !('a' <= r && r <= 'z' || '2' <= r && r <= '7') {
				t.Errorf("EphemeralName(%q, %q) = %q: suffix character %q", tt.base, tt.grant, got, r)
			}
		}
		if seen[got] {
			t.Errorf("EphemeralName(%q, %q) = %q, given before for other arguments", tt.base, tt.grant, got)
		}
		seen[got] = true
	}
}

func TestScramVerifier(t *testing.T) {
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = byte(i)
	}
	got, err := postgres.ScramVerifierWith("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	const want = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	if got != want {
		t.Errorf("verifier = %s, want %s", got, want)
	}
}

func TestQuoteLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "E''"},
		{"abc", "E'abc'"},
		{"it's", "E'it''s'"},
		{`back\slash`, `E'back\\slash'`},
		{`\'; DROP ROLE x; --`, `E'\\''; DROP ROLE x; --'`},
	}
	for _, tt := range tests {
		if got := postgres.QuoteLiteral(tt.in); got != tt.want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"undefined object", pg("42704"), true},
		{"insufficient privilege", pg("42501"), true},
		{"reserved name", pg("42939"), true},
		{"invalid grant operation", pg("0LP01"), true},
		{"dependent objects", pg("2BP01"), true},
		{"bad text", pg("22021"), true},
		{"duplicate object from a concurrent call", pg("42710"), false},
		{"unique violation from a concurrent call", pg("23505"), false},
		{"admin shutdown", pg("57P01"), false},
		{"query canceled", pg("57014"), false},
		{"cannot connect now", pg("57P03"), false},
		{"serialization failure", pg("40001"), false},
		{"deadlock", pg("40P01"), false},
		{"tuple concurrently updated", pg("XX000"), false},
		{"too many connections", pg("53300"), false},
		{"latch's password refused", pg("28P01"), false},
		{"connection failure", pg("08006"), false},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"deadline", context.DeadlineExceeded, false},
		{"canceled", context.Canceled, false},
		{"unknown role", postgres.ErrUnknownRole, true},
		{"unknown account", postgres.ErrUnknownAccount, true},
		{"foreign role", postgres.ErrForeignRole, true},
		{"unsafe role", postgres.ErrUnsafeRole, true},
		{"invalid name", postgres.ErrInvalidName, true},
		{"invalid entitlement", postgres.ErrInvalidEntitlement, true},
		{"sessions remain", postgres.ErrSessionsRemain, false},
	}
	for _, tt := range tests {
		if got := postgres.PermanentCause(tt.err); got != tt.want {
			t.Errorf("%s: permanent = %t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestErrorHoldsSQLState(t *testing.T) {
	e := &postgres.Error{Connector: "db", Op: "grant", Role: "readonly", Account: "jane", Err: fmt.Errorf("x: %w", &pgconn.PgError{Code: "42501"})}
	if got := e.SQLState(); got != "42501" {
		t.Errorf("SQLState = %q, want 42501", got)
	}
	if got := (&postgres.Error{Err: context.Canceled}).SQLState(); got != "" {
		t.Errorf("SQLState of a context error = %q, want none", got)
	}
	if !errors.Is(e, e.Err) {
		t.Error("Error does not unwrap to its cause")
	}
}
