package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Environment variables that hold secrets. They are read when a secret is
// needed, never stored in Config.
const (
	envAppToken   = "SLACK_APP_TOKEN"
	envBotToken   = "SLACK_BOT_TOKEN"
	envAdminToken = "LATCH_ADMIN_TOKEN"
)

// Errors returned when a secret is resolved.
var (
	// ErrSecretMissing means neither the environment variable nor the file
	// that should hold a secret is set.
	ErrSecretMissing = errors.New("secret not set")
	// ErrSecretMalformed means a secret is set but cannot be the right kind.
	ErrSecretMalformed = errors.New("secret malformed")
	// ErrSecretConflict means a secret is given both by environment variable
	// and by file, so which one is meant is unclear.
	ErrSecretConflict = errors.New("secret set twice")
)

// secretSource says where one secret comes from. Messages name env and
// key, never the secret itself.
type secretSource struct {
	env  string // environment variable
	key  string // configuration key of the file
	file string // the file, if configured
}

func (s secretSource) read() (string, error) {
	val, inEnv := os.LookupEnv(s.env)
	inEnv = inEnv && val != ""
	switch {
	case inEnv && s.file != "":
		return "", fmt.Errorf("%w: both %s and %s are set; keep one", ErrSecretConflict, s.env, s.key)
	case inEnv:
		return strings.TrimSpace(val), nil
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", s.key, err)
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("%w: %s (%s) is empty", ErrSecretMissing, s.key, s.file)
		}
		return secret, nil
	}
	if s.key == "" {
		return "", fmt.Errorf("%w: set the %s environment variable", ErrSecretMissing, s.env)
	}
	return "", fmt.Errorf("%w: set the %s environment variable or %s", ErrSecretMissing, s.env, s.key)
}

// withPrefix reads the secret and checks that it starts with prefix.
func (s secretSource) withPrefix(prefix, what string) (string, error) {
	secret, err := s.read()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(secret, prefix) {
		from := s.env
		if s.file != "" {
			from = s.key
		}
		return "", fmt.Errorf("%w: the value from %s does not start with %q; it must be the %s", ErrSecretMalformed, from, prefix, what)
	}
	return secret, nil
}

// AppToken returns the Slack app-level token (xapp-…) used for Socket Mode,
// from SLACK_APP_TOKEN or slack.app_token_file.
func (s Slack) AppToken() (string, error) {
	return secretSource{env: envAppToken, key: "slack.app_token_file", file: s.AppTokenFile}.
		withPrefix("xapp-", "app-level token with the connections:write scope")
}

// BotToken returns the Slack bot token (xoxb-…), from SLACK_BOT_TOKEN or
// slack.bot_token_file.
func (s Slack) BotToken() (string, error) {
	return secretSource{env: envBotToken, key: "slack.bot_token_file", file: s.BotTokenFile}.
		withPrefix("xoxb-", "bot user OAuth token")
}

// minAdminToken is the shortest admin token accepted: 32 characters, such
// as the output of `openssl rand -hex 16`.
const minAdminToken = 32

// Token returns the admin API token, from LATCH_ADMIN_TOKEN or
// admin.token_file.
func (a Admin) Token() (string, error) {
	token, err := secretSource{env: envAdminToken, key: "admin.token_file", file: a.TokenFile}.read()
	if err != nil {
		return "", err
	}
	if len(token) < minAdminToken {
		return "", fmt.Errorf("%w: the admin token has %d characters, fewer than %d; generate one with `openssl rand -hex 32`", ErrSecretMalformed, len(token), minAdminToken)
	}
	return token, nil
}

// SecretRef says where a connector reads a secret: an environment variable
// or a file. At most one is set.
type SecretRef struct {
	Env  string
	File string
	key  string // the configuration key, for messages
}

// Set reports whether the secret is configured at all.
func (r SecretRef) Set() bool {
	return r.Env != "" || r.File != ""
}

// Read returns the secret.
func (r SecretRef) Read() (string, error) {
	if r.Env != "" {
		val := os.Getenv(r.Env)
		if val == "" {
			return "", fmt.Errorf("%w: %s names the environment variable %s, which is empty", ErrSecretMissing, r.key+"_env", r.Env)
		}
		return strings.TrimSpace(val), nil
	}
	if r.File == "" {
		return "", fmt.Errorf("%w: set %s_env or %s_file", ErrSecretMissing, r.key, r.key)
	}
	return secretSource{key: r.key + "_file", file: r.File}.read()
}

// envName is the form of an environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkSecretRef reports a secret given both ways, or missing when required.
// path is the secret's key without the _env or _file suffix.
func checkSecretRef(ps *problems, path string, ref SecretRef, required bool) {
	key := path[strings.LastIndex(path, ".")+1:]
	switch {
	case ref.Env != "" && ref.File != "":
		ps.add(path+"_env", "both %s_env and %s_file are set; keep one", key, key)
	case ref.Env != "" && !envName.MatchString(ref.Env):
		ps.add(path+"_env", "%q is not an environment variable name; give the name of the variable that holds the secret, not the secret", ref.Env)
	case required && !ref.Set():
		ps.add(path+"_env", "required; set %s_env to an environment variable name or %s_file to a file path", key, key)
	}
}
