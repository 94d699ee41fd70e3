package config

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/latchhq/latch/workflow"
)

// Connector is a configured target system.
type Connector struct {
	Name string
	Type string
	// Settings is a pointer to the settings struct of Type: *ExecSettings,
	// *PostgresSettings, *SSHCertSettings, *LDAPSettings or *WebhookSettings.
	Settings any
}

// ExecSettings configure a connector that runs a program to grant and revoke.
type ExecSettings struct {
	Command string        `yaml:"command"` // absolute path of the program
	Args    []string      `yaml:"args"`
	Timeout time.Duration `yaml:"timeout"`
	// Env lists NAME=value pairs, or a bare NAME to pass that variable on
	// from latch's own environment (the way to hand over a secret).
	Env []string `yaml:"env"`
}

// PostgresSettings configure a PostgreSQL connector.
type PostgresSettings struct {
	// Host is a host name, or the directory of a Unix socket (/var/run/postgresql).
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// PasswordEnv or PasswordFile locate latch's own password; Password
	// reads it.
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	SSLMode      string `yaml:"sslmode"`
	// Mode is "role" (grant a role to the person's existing login role) or
	// "ephemeral" (create a login role that expires with the grant).
	Mode             string        `yaml:"mode"`
	UsernameTemplate string        `yaml:"username_template"`
	ConnectTimeout   time.Duration `yaml:"connect_timeout"`
	SSLRootCert      string        `yaml:"sslrootcert"` // CA file for verify-ca/verify-full
	Timeout          time.Duration `yaml:"timeout"`     // one grant or revoke
	// TerminateSessions ends the person's sessions on revoke in role mode.
	TerminateSessions bool `yaml:"terminate_sessions"`
	// ConnectHost, ConnectPort and ConnectSSLMode are what the beneficiary
	// is told to connect to, when it differs from latch's own connection.
	ConnectHost    string `yaml:"connect_host"`
	ConnectPort    int    `yaml:"connect_port"`
	ConnectSSLMode string `yaml:"connect_sslmode"`

	Password SecretRef `yaml:"-"` // where latch's password is read
}

// SSHCertSettings configure a connector that issues short-lived OpenSSH
// certificates.
type SSHCertSettings struct {
	CAKeyFile string `yaml:"ca_key_file"`
	// Entitlements are the only entitlements items may name; the
	// principals template can use the one granted as {{.Entitlement}}.
	Entitlements       []string `yaml:"entitlements"`
	PrincipalsTemplate string   `yaml:"principals_template"`
	RevokedKeysFile    string   `yaml:"revoked_keys_file"` // a KRL that sshd reads (RevokedKeys)
	KeysDir            string   `yaml:"keys_dir"`          // registered keys, <SlackID>.pub
	Extensions         []string `yaml:"extensions"`
}

// LDAPSettings configure an LDAP connector, which adds people to groups.
type LDAPSettings struct {
	URL              string `yaml:"url"`
	BindDN           string `yaml:"bind_dn"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	BindPasswordFile string `yaml:"bind_password_file"`
	UserBaseDN       string `yaml:"user_base_dn"`
	UserFilter       string `yaml:"user_filter"` // a name template
	GroupAttribute   string `yaml:"group_attribute"`
	// GroupBaseDN, if set, bounds the groups latch may change and is where
	// the directory source looks for a person's groups.
	GroupBaseDN string        `yaml:"group_base_dn"`
	StartTLS    bool          `yaml:"start_tls"`
	CAFile      string        `yaml:"ca_file"`
	Timeout     time.Duration `yaml:"timeout"`
	CacheTTL    time.Duration `yaml:"cache_ttl"` // directory lookups

	BindPassword SecretRef `yaml:"-"` // where the bind password is read
}

// WebhookSettings configure a connector that posts signed grant and revoke
// calls to an HTTP endpoint.
type WebhookSettings struct {
	URL        string        `yaml:"url"`
	SecretEnv  string        `yaml:"secret_env"`
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`

	Secret SecretRef `yaml:"-"` // where the signing secret is read
}

// connectorTypes maps each connector type to its settings struct.
var connectorTypes = map[string]reflect.Type{
	"exec":     reflect.TypeFor[ExecSettings](),
	"postgres": reflect.TypeFor[PostgresSettings](),
	"sshcert":  reflect.TypeFor[SSHCertSettings](),
	"ldap":     reflect.TypeFor[LDAPSettings](),
	"webhook":  reflect.TypeFor[WebhookSettings](),
}

// sshExtensions are the certificate extensions OpenSSH knows. Others are
// written name@domain.
var sshExtensions = []string{
	"no-touch-required", "permit-X11-forwarding", "permit-agent-forwarding",
	"permit-port-forwarding", "permit-pty", "permit-user-rc",
}

// customExtension is the form of an extension of one's own.
var customExtension = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

// buildConnectors checks the connectors and decodes their settings. A
// connector whose name is missing or taken is checked but left out.
func buildConnectors(ps *problems, docs []connectorDoc) []Connector {
	var out []Connector
	names := identity{list: "connectors", key: "name", form: slugForm,
		missing: "name the connector so items can refer to it"}
	for i, d := range docs {
		path := index("connectors", i)
		named := names.check(ps, i, d.Name)
		t, known := connectorTypes[d.Type]
		switch {
		case d.Type == "":
			ps.add(path+".type", "required; use one of %s", strings.Join(sortedKeys(connectorTypes), ", "))
			continue
		case !known:
			ps.add(path+".type", "unknown connector type %q%s", d.Type, oneOf(d.Type, sortedKeys(connectorTypes)))
			if named {
				// Kept, without settings, so items using it are not reported too.
				out = append(out, Connector{Name: d.Name, Type: d.Type})
			}
			continue
		}
		settings := reflect.New(t).Interface()
		sp := path + ".settings"
		decode(ps, sp, d.Settings, settings)
		checkSettings(ps, sp, settings)
		if named {
			out = append(out, Connector{Name: d.Name, Type: d.Type, Settings: settings})
		}
	}
	return out
}

// checkSettings checks one connector's settings and fills in defaults.
func checkSettings(ps *problems, path string, settings any) {
	switch s := settings.(type) {
	case *ExecSettings:
		checkExec(ps, path, s)
	case *PostgresSettings:
		checkPostgres(ps, path, s)
	case *SSHCertSettings:
		checkSSHCert(ps, path, s)
	case *LDAPSettings:
		checkLDAP(ps, path, s)
	case *WebhookSettings:
		checkWebhook(ps, path, s)
	}
}

func checkExec(ps *problems, path string, s *ExecSettings) {
	switch {
	case s.Command == "":
		ps.add(path+".command", "required; the absolute path of the program to run")
	case !filepath.IsAbs(s.Command):
		ps.add(path+".command", "%q is not an absolute path; give the full path so a changed PATH cannot substitute another program", s.Command)
	}
	s.Timeout = positive(ps, path+".timeout", s.Timeout, defaultExecTimeout)
	for i, kv := range s.Env {
		name, value, _ := strings.Cut(kv, "=")
		p := index(path+".env", i)
		if !envName.MatchString(name) {
			ps.add(p, "is not NAME=value or NAME; write an environment variable name, then = and its value")
		} else if why := literalSecret(name, value); why != "" {
			ps.add(p, "%s %s, which the configuration file must not hold; write just %s to pass it on from latch's environment", name, why, name)
		}
	}
	for i, arg := range s.Args {
		flag, value, _ := strings.Cut(arg, "=")
		if !strings.HasPrefix(arg, "-") {
			// A value after a flag: --password hunter2.
			flag, value = "", arg
			if i > 0 && strings.HasPrefix(s.Args[i-1], "-") && !strings.Contains(s.Args[i-1], "=") {
				flag = s.Args[i-1]
			}
		}
		if why := literalSecret(flag, value); why != "" {
			ps.add(index(path+".args", i), "%s, which the configuration file must not hold; list a variable under env and have the program read the secret from it", why)
		}
	}
}

var pgSSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

func checkPostgres(ps *problems, path string, s *PostgresSettings) {
	required(ps, path+".host", s.Host, "the database server's host name")
	required(ps, path+".database", s.Database, "the database to connect to")
	required(ps, path+".user", s.User, "the role latch connects as; it needs CREATEROLE")
	if s.Port == 0 {
		s.Port = defaultPGPort
	} else if s.Port < 1 || s.Port > 65535 {
		ps.add(path+".port", "%d is not a TCP port; use 1 to 65535", s.Port)
	}
	s.Password = secretRef(ps, path+".password", s.PasswordEnv, s.PasswordFile, false)
	if s.SSLMode == "" {
		s.SSLMode = defaultPGSSLMode
	}
	switch {
	case !slices.Contains(pgSSLModes, s.SSLMode):
		ps.add(path+".sslmode", "unknown sslmode %q%s", s.SSLMode, oneOf(s.SSLMode, pgSSLModes))
	case s.SSLMode == "disable" && !isLoopback(s.Host) && !filepath.IsAbs(s.Host):
		ps.add(path+".sslmode", "disable sends the password and grants in clear to %s; use verify-full (or require)", s.Host)
	}
	if s.Mode == "" {
		s.Mode = "role"
	}
	if modes := []string{"role", "ephemeral"}; !slices.Contains(modes, s.Mode) {
		ps.add(path+".mode", "unknown mode %q%s", s.Mode, oneOf(s.Mode, modes))
	}
	s.UsernameTemplate = nameTemplate(ps, path+".username_template", s.UsernameTemplate, defaultNameTemplate)
	s.ConnectTimeout = positive(ps, path+".connect_timeout", s.ConnectTimeout, defaultPGConnTimeout)
	s.Timeout = positive(ps, path+".timeout", s.Timeout, defaultPGTimeout)
	if s.TerminateSessions && s.Mode == "ephemeral" {
		ps.add(path+".terminate_sessions", "ephemeral mode always ends the sessions of the roles it drops; remove terminate_sessions")
	}
	if s.ConnectPort != 0 && (s.ConnectPort < 1 || s.ConnectPort > 65535) {
		ps.add(path+".connect_port", "%d is not a TCP port; use 1 to 65535", s.ConnectPort)
	}
	if s.ConnectSSLMode != "" && !slices.Contains(pgSSLModes, s.ConnectSSLMode) {
		ps.add(path+".connect_sslmode", "unknown sslmode %q%s", s.ConnectSSLMode, oneOf(s.ConnectSSLMode, pgSSLModes))
	}
}

func checkSSHCert(ps *problems, path string, s *SSHCertSettings) {
	required(ps, path+".ca_key_file", s.CAKeyFile, "the file holding the certificate authority's private key")
	if len(s.Entitlements) == 0 {
		ps.add(path+".entitlements", "list the entitlements items may name, e.g. [deploy, admin]; the principals template can use them as {{.Entitlement}}")
	}
	for i, e := range s.Entitlements {
		if strings.TrimSpace(e) == "" || strings.ContainsAny(e, ", \t\n") {
			ps.add(index(path+".entitlements", i), "%q is not a usable entitlement; use a single word", e)
		}
	}
	if s.PrincipalsTemplate == "" {
		s.PrincipalsTemplate = defaultNameTemplate
	} else if err := checkPrincipals(s.PrincipalsTemplate); err != nil {
		ps.add(path+".principals_template", "%v; use fields .Email, .LocalPart, .Name, .SlackID and .Entitlement, and functions lower, upper and replace", err)
	}
	for key, p := range map[string]string{".revoked_keys_file": s.RevokedKeysFile, ".keys_dir": s.KeysDir} {
		if p != "" && !filepath.IsAbs(p) {
			ps.add(path+key, "%q is relative; use an absolute path", p)
		}
	}
	for i, ext := range s.Extensions {
		if !slices.Contains(sshExtensions, ext) && !customExtension.MatchString(ext) {
			ps.add(index(path+".extensions", i), "unknown certificate extension %q%s", ext, hint(ext, sshExtensions, "use one of "+strings.Join(sshExtensions, ", ")+", or name@domain for one of your own"))
		}
	}
}

func checkLDAP(ps *problems, path string, s *LDAPSettings) {
	if u := checkURL(ps, path+".url", s.URL, "ldap", "ldaps"); u != nil && u.Scheme == "ldap" && !s.StartTLS && !isLoopback(u.Hostname()) {
		ps.add(path+".start_tls", "ldap:// to %s without start_tls sends the bind password in clear; use ldaps:// or set start_tls: true", u.Hostname())
	}
	s.BindPassword = secretRef(ps, path+".bind_password", s.BindPasswordEnv, s.BindPasswordFile, s.BindDN != "")
	if s.BindDN == "" && s.BindPassword.Set() {
		ps.add(path+".bind_dn", "a bind password is set but no bind_dn; set the DN latch binds as")
	}
	required(ps, path+".user_base_dn", s.UserBaseDN, "where people's entries are searched, e.g. ou=people,dc=example,dc=com")
	s.UserFilter = nameTemplate(ps, path+".user_filter", s.UserFilter, defaultLDAPUserFilter)
	if f := s.UserFilter; !strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") {
		ps.add(path+".user_filter", "an LDAP filter is wrapped in parentheses, e.g. (mail={{.Email}})")
	}
	if s.GroupAttribute == "" {
		s.GroupAttribute = defaultGroupAttribute
	}
	if attrs := []string{"member", "uniqueMember", "memberUid"}; !slices.Contains(attrs, s.GroupAttribute) {
		ps.add(path+".group_attribute", "unknown group attribute %q%s", s.GroupAttribute, oneOf(s.GroupAttribute, attrs))
	}
	if s.StartTLS && strings.HasPrefix(s.URL, "ldaps://") {
		ps.add(path+".start_tls", "ldaps:// is TLS already; remove start_tls")
	}
	s.Timeout = positive(ps, path+".timeout", s.Timeout, defaultLDAPTimeout)
	s.CacheTTL = positive(ps, path+".cache_ttl", s.CacheTTL, defaultLDAPCacheTTL)
}

func checkWebhook(ps *problems, path string, s *WebhookSettings) {
	if u := checkURL(ps, path+".url", s.URL, "https", "http"); u != nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		ps.add(path+".url", "http:// to %s sends grants in clear; use https://", u.Hostname())
	}
	s.Secret = secretRef(ps, path+".secret", s.SecretEnv, s.SecretFile, true)
	s.Timeout = positive(ps, path+".timeout", s.Timeout, defaultWebhookTimeout)
}

// checkURL parses a required URL with one of the given schemes. It returns
// nil if there is a problem.
func checkURL(ps *problems, path, raw string, schemes ...string) *url.URL {
	if raw == "" {
		ps.add(path, "required; a URL starting with %s://", schemes[0])
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		ps.add(path, "%q is not a URL; write it like %s://host/…", redactURL(raw), schemes[0])
		return nil
	case !slices.Contains(schemes, u.Scheme):
		ps.add(path, "scheme %q is not supported; use %s://", u.Scheme, strings.Join(schemes, ":// or "))
		return nil
	case u.User != nil:
		ps.add(path, "the URL carries credentials; remove them and use the *_env or *_file keys")
		return nil
	}
	return u
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// required reports an empty value.
func required(ps *problems, path, value, what string) {
	if value == "" {
		ps.add(path, "required; %s", what)
	}
}

// positive returns d, or def when d is unset, reporting a negative d.
func positive(ps *problems, path string, d, def time.Duration) time.Duration {
	if d < 0 {
		ps.add(path, "%s is negative; give a positive duration", workflow.FormatDuration(d))
	}
	if d <= 0 {
		return def
	}
	return d
}

// nameTemplate checks a template that derives a name from a person, or
// returns def when it is unset.
func nameTemplate(ps *problems, path, text, def string) string {
	if text == "" {
		return def
	}
	if _, err := workflow.ParseNameTemplate(text); err != nil {
		ps.add(path, "template %q does not work: %v; the fields are .SlackID, .Email, .LocalPart, .Manager and .Groups", text, err)
	}
	return text
}

// checkPrincipals parses a principals template and runs it on a sample
// person, so that an unknown field or function is found now.
func checkPrincipals(text string) error {
	t, err := template.New("principals").Option("missingkey=error").Funcs(template.FuncMap{
		"lower": strings.ToLower, "upper": strings.ToUpper,
		"replace": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	}).Parse(text)
	if err != nil {
		return err
	}
	sample := struct{ Email, LocalPart, Name, SlackID, Entitlement string }{"jane@example.com", "jane", "jane", "U0123", "deploy"}
	return t.Execute(io.Discard, sample)
}

// entitlementProblem checks an entitlement against what its connector can
// grant, returning "" if it looks right.
func entitlementProblem(c Connector, entitlement string) string {
	switch c.Settings.(type) {
	case *PostgresSettings:
		if len(entitlement) > 63 {
			return fmt.Sprintf("PostgreSQL role names have at most 63 bytes; %q has %d", entitlement, len(entitlement))
		}
	case *LDAPSettings:
		if !strings.Contains(entitlement, "=") {
			return fmt.Sprintf("an ldap entitlement is the group's DN, e.g. cn=%s,ou=groups,dc=example,dc=com", entitlement)
		}
	case *SSHCertSettings:
		if s := c.Settings.(*SSHCertSettings); len(s.Entitlements) > 0 && !slices.Contains(s.Entitlements, entitlement) {
			return fmt.Sprintf("%q is not in the entitlements of connector %s (%s); add it there", entitlement, c.Name, strings.Join(s.Entitlements, ", "))
		}
	}
	return ""
}
