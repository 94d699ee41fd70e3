package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// FuzzLoad loads arbitrary bytes as a configuration file. Load must return
// a configuration or an *InvalidError or *FileError, never panic, and never
// repeat a value that the file holds where a secret would be: under a key
// that names a secret, after a secret-looking flag or NAME= in a list, in
// the credentials of a URL.
func FuzzLoad(f *testing.F) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, EnvPrefix) {
			f.Setenv(name, "")
		}
	}
	for _, name := range []string{envAppToken, envBotToken, envAdminToken} {
		f.Setenv(name, "")
	}
	seeds := []string{
		"",
		"{}",
		"- a\n- b\n",
		"a: [",
		baseYAML,
		strings.Replace(baseYAML, "password_env: PG_PASSWORD", "password: hunter2Zq9Xv7", 1),
		strings.Replace(baseYAML, "password_env: PG_PASSWORD", "password_env: s3cretValue9Kx!", 1),
		strings.Replace(baseYAML, "host: localhost", "host: postgres://latch:pa55w0rdQz@db.example.com/app", 1),
		strings.Replace(baseYAML, "command: /bin/true", "command: /bin/true, env: [API_TOKEN=tok3nValue88Q], args: [--password, p4ssArgValue7, --key=k3yValue12345]", 1),
		"slack:\n  bot_token: xoxb-1234567890-abcdefXYZ\n  app_token: xapp-1-A0123456789-abcdef\n",
		"admin:\n  token: 0123456789abcdef0123456789abcdef\n  admins: [U1]\n",
		"store:\n  path: /var/lib/latch/latch.db\nlog:\n  level: LOUD\n",
		"a: &x {b: 1}\nc: *x\nd:\n  <<: *x\n",
		"policies:\n  p:\n    auto_approve: '\"oncall\" in requester.groups && request.duration <= duration(\"6h\")'\n",
		"channels: {security: xoxb-999888777-SECRETtoken}\n",
		"directory:\n  users:\n    - {slack_id: xoxp-55555-Token99, email: a@example.com}\n",
	}
	if data, err := os.ReadFile(filepath.Join("..", "config.example.yaml")); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "latch.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		var invalid *InvalidError
		var file *FileError
		switch {
		case err == nil:
			if cfg == nil {
				t.Fatal("Load returned neither a configuration nor an error")
			}
			return
		case cfg != nil:
			t.Fatalf("Load returned a configuration and an error: %v", err)
		case errors.As(err, &invalid):
			if len(invalid.Problems) == 0 {
				t.Fatal("an *InvalidError with no problems")
			}
		case errors.As(err, &file):
		default:
			t.Fatalf("Load returned %T, want *InvalidError or *FileError: %v", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			for _, s := range secretsIn(data) {
				if !strings.Contains(line, s) || strings.Contains(path, s) {
					continue
				}
				t.Fatalf("the error repeats the secret-looking value %q:\n%s", s, err)
			}
		}
	})
}

// secretsIn returns the values of a YAML document that sit where a secret
// would, long and random-looking enough that an error message could not
// contain them by chance, and found nowhere else in the document.
func secretsIn(data []byte) []string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	// Keys are named in problems' paths, as they should be: only values
	// can be secrets.
	var candidates, others, keys []string
	consider := func(s string, secret bool) {
		if secret {
			candidates = append(candidates, s)
		} else {
			others = append(others, s)
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				keys = append(keys, k.Value)
				if v.Kind == yaml.ScalarNode {
					consider(v.Value, looksSecret(k.Value))
					continue
				}
				walk(v)
			}
			return
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					walk(c)
					continue
				}
				after := i > 0 && n.Content[i-1].Kind == yaml.ScalarNode &&
					strings.HasPrefix(n.Content[i-1].Value, "-") && looksSecret(n.Content[i-1].Value)
				consider(c.Value, after)
			}
			return
		case yaml.ScalarNode:
			consider(n.Value, false)
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	// Parts of values: NAME=secret, --flag=secret, and URL credentials.
	parts := append([]string(nil), candidates...)
	values := append(append([]string(nil), candidates...), others...)
	all := append(append([]string(nil), values...), keys...)
	for _, s := range values {
		if name, value, ok := strings.Cut(s, "="); ok && looksSecret(name) {
			parts = append(parts, value)
		}
		if i := strings.Index(s, "://"); i >= 0 && hasUserinfo(s) {
			rest := s[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
					parts = append(parts, pw)
				} else {
					parts = append(parts, rest[:at])
				}
			}
		}
	}
	var secrets []string
	for _, s := range parts {
		if !randomLooking(s) {
			continue
		}
		holders := 0
		for _, o := range all {
			if strings.Contains(o, s) {
				holders++
			}
		}
		// Only the value that holds it (itself, NAME=secret, a URL).
		if holders == 1 {
			secrets = append(secrets, s)
		}
	}
	return secrets
}

// randomLooking reports whether s is long enough and mixes letters and
// digits, so that no fixed text of a message could hold it.
func randomLooking(s string) bool {
	if len(s) < 8 {
		return false
	}
	var letter, digit bool
	for _, r := range s {
		letter = letter || unicode.IsLetter(r)
		digit = digit || unicode.IsDigit(r)
	}
	return letter && digit
}

func TestTokensAndBombsInTheFile(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct {
		yaml, secret, want string
	}{
		"a token as the channel":                     {"channels: {security: xoxb-1234-5678-abcdefSECRET}\n", "abcdefSECRET", "channels.security"},
		"a URL with a password where a mapping goes": {"audit: \"https://u:Pw0rdSECRET@host/x\"\n", "Pw0rdSECRET", "audit"},
		"aliases of aliases":                         {"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "", "more than"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a problem about %s", name, err, tt.want)
			continue
		}
		if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
			t.Errorf("%s: the error repeats the secret: %v", name, err)
		}
	}
}
