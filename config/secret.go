package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
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

// SecretRef says where a secret is read: an environment variable or a
// file. Errors about it name the variable and the configuration key, never
// the secret.
type SecretRef struct {
	Env  string // the environment variable
	File string // the file
	key  string // the configuration key, without _env or _file
}

// Set reports whether the secret is configured at all.
func (r SecretRef) Set() bool {
	return r.Env != "" || r.File != ""
}

// Read returns the secret, without surrounding white space. When both the
// variable and the file hold one, which is meant is unclear, and Read fails
// with ErrSecretConflict.
func (r SecretRef) Read() (string, error) {
	val := ""
	if r.Env != "" {
		val = strings.TrimSpace(os.Getenv(r.Env))
	}
	switch {
	case val != "" && r.File != "":
		return "", fmt.Errorf("%w: both the %s environment variable and %s_file are set; keep one", ErrSecretConflict, r.Env, r.key)
	case val != "":
		return val, nil
	case r.File != "":
		b, err := os.ReadFile(r.File)
		if err != nil {
			return "", fmt.Errorf("read %s_file: %w", r.key, err)
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("%w: %s_file (%s) is empty", ErrSecretMissing, r.key, r.File)
		}
		return secret, nil
	case r.Env != "":
		return "", fmt.Errorf("%w: set the %s environment variable or %s_file", ErrSecretMissing, r.Env, r.key)
	}
	return "", fmt.Errorf("%w: set %s_env or %s_file", ErrSecretMissing, r.key, r.key)
}

// readPrefixed reads the secret and checks that it starts with prefix.
func (r SecretRef) readPrefixed(prefix, what string) (string, error) {
	secret, err := r.Read()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(secret, prefix) {
		from := r.Env
		if r.File != "" {
			from = r.key + "_file"
		}
		return "", fmt.Errorf("%w: the value from %s does not start with %q; it must be the %s", ErrSecretMalformed, from, prefix, what)
	}
	return secret, nil
}

// AppToken returns the Slack app-level token (xapp-…) used for Socket Mode,
// from SLACK_APP_TOKEN or slack.app_token_file.
func (s Slack) AppToken() (string, error) {
	return SecretRef{Env: envAppToken, File: s.AppTokenFile, key: "slack.app_token"}.
		readPrefixed("xapp-", "app-level token with the connections:write scope")
}

// BotToken returns the Slack bot token (xoxb-…), from SLACK_BOT_TOKEN or
// slack.bot_token_file.
func (s Slack) BotToken() (string, error) {
	return SecretRef{Env: envBotToken, File: s.BotTokenFile, key: "slack.bot_token"}.
		readPrefixed("xoxb-", "bot user OAuth token")
}

// minAdminToken is the shortest admin token accepted: 32 characters, such
// as the output of `openssl rand -hex 16`.
const minAdminToken = 32

// Token returns the admin API token, from LATCH_ADMIN_TOKEN or
// admin.token_file.
func (a Admin) Token() (string, error) {
	token, err := SecretRef{Env: envAdminToken, File: a.TokenFile, key: "admin.token"}.Read()
	if err != nil {
		return "", err
	}
	if len(token) < minAdminToken {
		return "", fmt.Errorf("%w: the admin token has %d characters, fewer than %d; generate one with `openssl rand -hex 32`", ErrSecretMalformed, len(token), minAdminToken)
	}
	return token, nil
}

// envName is the form of an environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretRef checks the *_env and *_file keys of a secret at path (the key
// without the suffix) and returns where the secret is read.
func secretRef(ps *problems, path, env, file string, required bool) SecretRef {
	key := path[strings.LastIndex(path, ".")+1:]
	switch {
	case env != "" && file != "":
		ps.add(path+"_env", "both %s_env and %s_file are set; keep one", key, key)
	case env != "" && !envName.MatchString(env):
		// The value may well be the secret itself: never repeat it.
		ps.add(path+"_env", "is not an environment variable name; give the name of the variable that holds the secret, not the secret")
	case required && env == "" && file == "":
		ps.add(path+"_env", "required; set %s_env to an environment variable name or %s_file to a file path", key, key)
	}
	return SecretRef{Env: env, File: file, key: path}
}

// Words in a name that say it holds a secret: stems found anywhere in a
// word (DBPASSWORD), and short words that must stand alone (DB_PASS, but
// not PASSENGER).
var (
	secretStems = []string{"password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "privatekey"}
	secretWords = []string{"pass", "pwd", "key", "auth", "private", "creds"}
	// A last word that makes the name one of a place holding a secret.
	secretPlaces = []string{"file", "path", "dir", "env"}
)

// looksSecret reports whether a name (a key, a variable, a flag) suggests it
// holds a secret, rather than where one is kept (password_file).
func looksSecret(name string) bool {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) == 0 || slices.Contains(secretPlaces, words[len(words)-1]) {
		return false
	}
	return slices.ContainsFunc(words, func(w string) bool {
		return slices.Contains(secretWords, w) || slices.ContainsFunc(secretStems, func(s string) bool { return strings.Contains(w, s) })
	})
}

// literalSecret says how a value written under a name looks like a secret
// written into the file, or returns "". A path is taken for where a secret
// is kept, not for one.
func literalSecret(name, value string) string {
	switch {
	case hasUserinfo(value):
		return "holds credentials in a URL"
	case value != "" && !filepath.IsAbs(value) && looksSecret(name):
		return "looks like a secret"
	}
	return ""
}

// hasUserinfo reports whether value is a URL with credentials in it.
func hasUserinfo(value string) bool {
	return strings.Contains(value, "://") && redactURL(value) != value
}

// redactURL returns raw with the credentials of a URL (user:password@)
// replaced by "…", so that it can be quoted.
// redactToken hides a value that looks like a Slack token (a token pasted
// where an id or a name was wanted), keeping only its kind.
func redactToken(v string) string {
	for _, prefix := range []string{"xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxs-", "xapp-"} {
		if strings.HasPrefix(v, prefix) {
			return prefix + "…"
		}
	}
	return v
}

func redactURL(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return prefix + "…@" + rest[at+1:]
}
