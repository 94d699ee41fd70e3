package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/workflow"
)

// Mode says how the connector gives access; see the package doc.
type Mode string

const (
	// ModeRole grants the entitlement role to the person's existing login
	// role, and revokes it.
	ModeRole Mode = "role"

	// ModeEphemeral creates, for every grant, a login role of its own
	// that is a member of the entitlement role and expires with the
	// grant, and drops it on revoke.
	ModeEphemeral Mode = "ephemeral"
)

const (
	// DefaultPort is the server's port when Config.Port is zero.
	DefaultPort = 5432

	// DefaultSSLMode is the sslmode when Config.SSLMode is empty.
	DefaultSSLMode = "verify-full"

	// DefaultUsernameTemplate derives a person's role name when
	// Config.UsernameTemplate is empty.
	DefaultUsernameTemplate = "{{.LocalPart}}"

	// DefaultConnectTimeout bounds one connection attempt when
	// Config.ConnectTimeout is zero.
	DefaultConnectTimeout = 5 * time.Second

	// DefaultTimeout bounds one Grant or Revoke when Config.Timeout is
	// zero.
	DefaultTimeout = 30 * time.Second

	// MaxNameLen is the longest role name PostgreSQL keeps; it silently
	// truncates longer identifiers, so the connector refuses them.
	MaxNameLen = 63

	// maxConns bounds the connections the connector has open at once,
	// and maxIdle those it keeps between calls.
	maxConns = 4
	maxIdle  = 2

	// suffixLen is the length of the grant's suffix in an ephemeral role's
	// name, after an underscore.
	suffixLen = 8

	// terminateWait is how long a revoke waits for the sessions it ends
	// to be gone.
	terminateWait = 5 * time.Second
)

// sslModes are the values Config.SSLMode may take, as in libpq.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Config is a PostgreSQL connector's configuration.
type Config struct {
	Name string // the connector's name in latch's configuration

	// Host is the server's host name or address, or the absolute path of
	// the directory holding its Unix socket (/var/run/postgresql).
	Host     string
	Port     int    // the server's port; zero means DefaultPort
	Database string // the database latch connects to
	User     string // the role latch connects as; see the package doc for what it needs

	// Password is latch's own password, read by the caller from the
	// environment or a file. Empty means none, or one from PGPASSWORD or
	// the password file, as in libpq.
	Password string

	// SSLMode is libpq's sslmode: disable, allow, prefer, require,
	// verify-ca or verify-full; empty means DefaultSSLMode. It does not
	// apply to a Unix socket.
	SSLMode string

	// SSLRootCert is the file of the certificate authorities that sign the
	// server's certificate, for verify-ca and verify-full; empty means the
	// system's.
	SSLRootCert string

	// Mode is ModeRole or ModeEphemeral; empty means ModeRole.
	Mode Mode

	// UsernameTemplate derives the role name from the person: a
	// workflow.NameTemplate over workflow.User, such as "{{.LocalPart}}"
	// (the default) or "dev_{{.SlackID | lower}}". Its result is
	// lower-cased and must then be a plain role name (see ErrInvalidName).
	// In role mode it names the person's existing login role; in
	// ephemeral mode it is the start of the new role's name.
	UsernameTemplate string

	// ConnectTimeout bounds one connection attempt; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// Timeout bounds one Grant or Revoke; zero means DefaultTimeout.
	Timeout time.Duration

	// TerminateSessions makes a revoke in role mode also end the person's
	// open sessions, on every database, so that a session that switched
	// to the entitlement with SET ROLE cannot keep using it. It ends
	// their unrelated work too. Ephemeral mode always ends the role's
	// sessions.
	TerminateSessions bool

	// ConnectHost, ConnectPort and ConnectSSLMode are the host, port and
	// sslmode written in the credentials an ephemeral grant hands to the
	// beneficiary, where they differ from how latch reaches the server
	// (through a proxy, a private address). Empty or zero means Host, Port
	// and SSLMode.
	ConnectHost    string
	ConnectPort    int
	ConnectSSLMode string
}

// Connector grants and revokes access to a PostgreSQL server; see the
// package doc. It is safe for concurrent use. Close releases its
// connections.
type Connector struct {
	name     string
	mode     Mode
	template *workflow.NameTemplate
	timeout  time.Duration
	endAll   bool // role mode: end the person's sessions on revoke
	pool     *pool

	// Where the beneficiary of an ephemeral grant connects.
	host, database, sslMode string
	port                    int
}

var _ workflow.Provisioner = (*Connector)(nil)

// New returns a connector for the server c describes. It checks c but
// does not connect: the first Grant or Revoke does. Every error it
// returns wraps ErrInvalidConfig and names the field at fault.
func New(c Config) (*Connector, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Name == "" {
		bad("Name: the connector has no name")
	}
	if c.Host == "" {
		bad("Host: not set; give the server's host name, or the directory of its Unix socket")
	}
	port := c.Port
	switch {
	case port == 0:
		port = DefaultPort
	case port < 1 || port > 65535:
		bad("Port: %d is not a TCP port; use 1 to 65535", c.Port)
	}
	if c.Database == "" {
		bad("Database: not set; give the database latch connects to")
	}
	if c.User == "" {
		bad("User: not set; give the role latch connects as")
	}
	sslMode := c.SSLMode
	if sslMode == "" {
		sslMode = DefaultSSLMode
	}
	if !slices.Contains(sslModes, sslMode) {
		bad("SSLMode: unknown sslmode %q; use one of %s", c.SSLMode, strings.Join(sslModes, ", "))
	}
	mode := c.Mode
	switch mode {
	case "":
		mode = ModeRole
	case ModeRole, ModeEphemeral:
	default:
		bad("Mode: unknown mode %q; use %q or %q", c.Mode, ModeRole, ModeEphemeral)
	}
	text := c.UsernameTemplate
	if text == "" {
		text = DefaultUsernameTemplate
	}
	tmpl, err := workflow.ParseNameTemplate(text)
	if err != nil {
		bad("UsernameTemplate: %v", err)
	}
	connectTimeout := c.ConnectTimeout
	switch {
	case connectTimeout == 0:
		connectTimeout = DefaultConnectTimeout
	case connectTimeout < 0:
		bad("ConnectTimeout: %s is not positive", c.ConnectTimeout)
	}
	timeout := c.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		bad("Timeout: %s is not positive", c.Timeout)
	}
	if c.TerminateSessions && mode != ModeRole {
		bad("TerminateSessions: applies to role mode only; ephemeral mode always ends sessions")
	}
	connectPort := c.ConnectPort
	switch {
	case connectPort == 0:
		connectPort = port
	case connectPort < 1 || connectPort > 65535:
		bad("ConnectPort: %d is not a TCP port; use 1 to 65535", c.ConnectPort)
	}
	connectSSLMode := c.ConnectSSLMode
	if connectSSLMode == "" {
		connectSSLMode = sslMode
	}
	if !slices.Contains(sslModes, connectSSLMode) {
		bad("ConnectSSLMode: unknown sslmode %q; use one of %s", c.ConnectSSLMode, strings.Join(sslModes, ", "))
	}
	for _, f := range [][2]string{
		{"Name", c.Name}, {"Host", c.Host}, {"Database", c.Database}, {"User", c.User},
		{"SSLRootCert", c.SSLRootCert}, {"ConnectHost", c.ConnectHost},
	} {
		if strings.ContainsRune(f[1], 0) {
			bad("%s: holds a NUL byte", f[0])
		}
	}
	if c.SSLRootCert != "" {
		if _, err := os.Stat(c.SSLRootCert); err != nil {
			bad("SSLRootCert: %v", err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	cc, err := connConfig(c, port, sslMode, connectTimeout)
	if err != nil {
		return nil, err
	}
	host := c.ConnectHost
	if host == "" {
		host = c.Host
	}
	return &Connector{
		name:     c.Name,
		mode:     mode,
		template: tmpl,
		timeout:  timeout,
		endAll:   c.TerminateSessions,
		pool:     newPool(cc, maxConns, maxIdle),
		host:     host,
		port:     connectPort,
		database: c.Database,
		sslMode:  connectSSLMode,
	}, nil
}

// connConfig returns the configuration of the connector's connections.
// The password is set on the parsed configuration, never written into the
// connection string, so that no parse error can quote it. Settings c does
// not make are taken from libpq's environment variables, as in libpq.
func connConfig(c Config, port int, sslMode string, connectTimeout time.Duration) (*pgx.ConnConfig, error) {
	settings := [][2]string{
		{"host", c.Host},
		{"port", strconv.Itoa(port)},
		{"dbname", c.Database},
		{"user", c.User},
		{"sslmode", sslMode},
		{"application_name", "latch"},
	}
	if c.SSLRootCert != "" {
		settings = append(settings, [2]string{"sslrootcert", c.SSLRootCert})
	}
	var dsn strings.Builder
	for _, kv := range settings {
		fmt.Fprintf(&dsn, "%s='%s' ", kv[0], strings.ReplaceAll(strings.ReplaceAll(kv[1], `\`, `\\`), `'`, `\'`))
	}
	cc, err := pgx.ParseConfig(dsn.String())
	if err != nil {
		return nil, fmt.Errorf("%w: connection settings: %w", ErrInvalidConfig, err)
	}
	if c.Password != "" {
		cc.Password = c.Password
	}
	cc.ConnectTimeout = connectTimeout
	return cc, nil
}

// Name returns the connector's name.
func (c *Connector) Name() string { return c.name }

// Mode returns the connector's mode.
func (c *Connector) Mode() Mode { return c.mode }

// Close closes the connector's idle connections; those of calls in
// progress are closed as the calls end. Calls after Close fail.
func (c *Connector) Close() { c.pool.close() }

// Grant gives a.User the role a.Entitlement: in role mode by granting it
// to their login role, in ephemeral mode by creating a login role for the
// grant whose credentials are in the Granted's message. An error is an
// *Error, marked permanent when retrying cannot fix it.
func (c *Connector) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.mode == ModeEphemeral {
		return c.grantEphemeral(ctx, a)
	}
	return c.grantRole(ctx, a)
}

// Revoke takes the access back: in role mode it revokes the role from the
// person's login role, in ephemeral mode it ends the grant's login role's
// sessions and drops it. Revoking access that does not exist succeeds.
// Errors are as for Grant.
func (c *Connector) Revoke(ctx context.Context, a workflow.Access) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.mode == ModeEphemeral {
		return c.revokeEphemeral(ctx, a)
	}
	return c.revokeRole(ctx, a)
}

// roleName returns the role name the template gives for u: lower-cased,
// and refused with ErrInvalidName unless it is a plain role name.
func (c *Connector) roleName(u workflow.User) (string, error) {
	name, err := c.template.Execute(u)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	name = strings.ToLower(name)
	if err := checkName(name); err != nil {
		return "", err
	}
	return name, nil
}

// checkName refuses, with ErrInvalidName, a name that is not a plain role
// name: one that needs no quoting and that PostgreSQL neither truncates
// nor reserves.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrInvalidName, name, MaxNameLen)
	case strings.HasPrefix(name, "pg_"):
		return fmt.Errorf("%w: %q: names that start with pg_ are reserved", ErrInvalidName, name)
	case name == "public" || name == "none":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	}
	for i, r := range name {
		ok := 'a' <= r && r <= 'z' || r == '_' || i > 0 && '0' <= r && r <= '9'
		if !ok {
			return fmt.Errorf("%w: %q: use lower-case letters, digits and _, starting with a letter or _", ErrInvalidName, name)
		}
	}
	return nil
}

// checkEntitlement refuses, with ErrInvalidEntitlement, an entitlement
// that cannot name a role. Any other text is a role name, always quoted
// when written into SQL.
func checkEntitlement(role string) error {
	switch {
	case role == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidEntitlement)
	case len(role) > MaxNameLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidEntitlement, MaxNameLen)
	case strings.ContainsRune(role, 0):
		return fmt.Errorf("%w: it holds a NUL byte", ErrInvalidEntitlement)
	}
	return nil
}

// ephemeralName returns the name of the login role for the grant grantID
// of the person whose role name is base: base, cut so that the whole fits
// in MaxNameLen, an underscore, and a suffix derived from the grant id
// alone, so that a retried grant finds the same name.
func ephemeralName(base, grantID string) string {
	sum := sha256.Sum256([]byte(grantID))
	suffix := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:suffixLen]
	if limit := MaxNameLen - 1 - suffixLen; len(base) > limit {
		base = base[:limit]
	}
	return base + "_" + suffix
}

// ident quotes a role name for SQL.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
