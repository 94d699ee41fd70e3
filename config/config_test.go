package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latchhq/latch/workflow"
)

// baseYAML is a small valid configuration that the rule tests patch.
const baseYAML = `
channels:
  security: C0SEC
  breakglass: [C0INC]
directory:
  users:
    - {slack_id: U0ANA, email: ana@example.com, manager: boss@example.com, groups: [eng]}
    - {slack_id: U0BOSS, email: boss@example.com}
    - {slack_id: U0DBA, email: dba@example.com}
  groups:
    - {name: eng}
    - {name: dba, members: [U0DBA]}
    - {name: sre, source: slack, ref: sre-team}
connectors:
  - {name: pg, type: postgres, settings: {host: localhost, database: app, user: latch, password_env: PG_PASSWORD}}
  - {name: run, type: exec, settings: {command: /bin/true}}
catalogue:
  items:
    - {id: db, name: Database, owners: [U0DBA], targets: [{connector: pg, entitlement: ro}], policy: std}
policies:
  std:
    visible_to: [eng]
    duration: {max: 8h}
    approval:
      stages:
        - approvers: [manager]
`

// isolateEnv clears every variable Load reads or checks, so the tests do
// not depend on the environment they run in.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, EnvPrefix) {
			t.Setenv(name, "")
		}
	}
	for _, name := range []string{envAppToken, envBotToken} {
		t.Setenv(name, "")
	}
}

// writeFile writes content to a file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// merge returns base with patch laid over it: mappings merge key by key (a
// null value deletes the key), lists merge element by element (extra
// elements are appended), anything else replaces.
func merge(base, patch any) any {
	switch p := patch.(type) {
	case map[string]any:
		b, ok := base.(map[string]any)
		if !ok {
			return p
		}
		out := maps.Clone(b)
		for k, v := range p {
			if v == nil {
				delete(out, k)
				continue
			}
			out[k] = merge(b[k], v)
		}
		return out
	case []any:
		b, ok := base.([]any)
		if !ok {
			return p
		}
		out := slices.Clone(b)
		for i, v := range p {
			if i < len(out) {
				out[i] = merge(out[i], v)
			} else {
				out = append(out, v)
			}
		}
		return out
	}
	return patch
}

// patched returns baseYAML with the YAML patch merged into it.
func patched(t *testing.T, patch string) string {
	t.Helper()
	var base, p any
	if err := yaml.Unmarshal([]byte(baseYAML), &base); err != nil {
		t.Fatalf("base: %v", err)
	}
	if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("patch %q: %v", patch, err)
	}
	out, err := yaml.Marshal(merge(base, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// problemsOf loads content and returns its problems; a valid file has none.
func problemsOf(t *testing.T, content string) []Problem {
	t.Helper()
	_, err := Load(writeFile(t, "latch.yaml", content))
	if err == nil {
		return nil
	}
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Load error = %v, want an *InvalidError", err)
	}
	return ie.Problems
}

func paths(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Path
	}
	return out
}

func mustLoad(t *testing.T, content string) *Config {
	t.Helper()
	cfg, err := Load(writeFile(t, "latch.yaml", content))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestBaseConfigIsValid(t *testing.T) {
	isolateEnv(t)
	mustLoad(t, baseYAML)
}

func TestExampleConfigLoads(t *testing.T) {
	isolateEnv(t)
	cfg, err := Load(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatalf("Load(config.example.yaml): %v", err)
	}
	if cfg.Catalogue.Len() == 0 || len(cfg.Policies) == 0 || len(cfg.Connectors) == 0 {
		t.Fatalf("example has %d items, %d policies, %d connectors; want some of each",
			cfg.Catalogue.Len(), len(cfg.Policies), len(cfg.Connectors))
	}
	// The example must show what the product promises.
	ro := cfg.Policies["prod-readonly"]
	if ro == nil || ro.AutoApprove == nil {
		t.Fatalf("prod-readonly has no auto_approve")
	}
	if !strings.Contains(ro.AutoApprove.String(), `"oncall" in requester.groups`) {
		t.Errorf("prod-readonly auto_approve = %q, want the on-call rule", ro.AutoApprove)
	}
	admin := cfg.Policies["prod-admin"]
	if admin == nil || admin.Approval.Mode != workflow.Sequential || len(admin.Approval.Stages) != 2 ||
		admin.Approval.Stages[0].Approvers[0].Kind != workflow.ApproverManager {
		t.Errorf("prod-admin approval = %+v, want manager then DBA owners, sequential", admin)
	}
	var parallel, breakGlass bool
	for _, p := range cfg.Policies {
		parallel = parallel || p.Approval.Mode == workflow.Parallel
		breakGlass = breakGlass || p.BreakGlass.Enabled
	}
	if !parallel || !breakGlass {
		t.Errorf("example has parallel policy %v, break-glass policy %v; want both", parallel, breakGlass)
	}
	types := map[string]bool{}
	for _, c := range cfg.Connectors {
		types[c.Type] = true
	}
	for typ := range connectorTypes {
		if !types[typ] {
			t.Errorf("example has no %s connector", typ)
		}
	}
	bundle := false
	for _, it := range cfg.Catalogue.Items() {
		bundle = bundle || it.Kind == workflow.KindBundle && len(it.Connectors()) >= 2
	}
	if !bundle {
		t.Errorf("example has no bundle across two connectors")
	}
}

func TestLoadConverts(t *testing.T) {
	isolateEnv(t)
	cfg := mustLoad(t, patched(t, `
catalogue:
  items:
    - labels: {env: prod}
policies:
  std:
    auto_approve: '"eng" in requester.groups && request.duration <= duration("2h")'
    duration: {default: 2h, min: 30m, max: 1d}
    approval:
      stages:
        - {}
        - name: dba
          approvers: [owners, group:dba, user:boss@example.com]
          required: 2
`))
	p := cfg.Policies["std"]
	if got, want := p.Duration, (workflow.DurationRules{Default: 2 * time.Hour, Min: 30 * time.Minute, Max: 24 * time.Hour,
		Choices: []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour}}); !durationRulesEqual(got, want) {
		t.Errorf("Duration = %+v, want %+v", got, want)
	}
	if got := p.Approval.Mode; got != workflow.Sequential {
		t.Errorf("Mode = %q, want sequential", got)
	}
	stages := p.Approval.Stages
	if len(stages) != 2 || stages[0].Name != "stage 1" || stages[0].Required != 1 || stages[1].Required != 2 {
		t.Fatalf("Stages = %+v, want stage 1 (required 1) and dba (required 2)", stages)
	}
	if got, want := stages[1].Approvers[2], (workflow.Approver{Kind: workflow.ApproverUser, Ref: "U0BOSS"}); got != want {
		t.Errorf("user approver = %+v, want the email resolved to %+v", got, want)
	}
	if !p.Extension.RequiresApproval || p.Extension.MaxTotal != 24*time.Hour {
		t.Errorf("Extension = %+v, want approval required and max_total = max", p.Extension)
	}
	if p.Reminders.PendingTimeout != defaultPendingTimeout || p.WarnBefore != defaultWarnBefore {
		t.Errorf("PendingTimeout %v, WarnBefore %v; want defaults", p.Reminders.PendingTimeout, p.WarnBefore)
	}
	it, ok := cfg.Catalogue.Item("db")
	if !ok || it.Kind != workflow.KindEntitlement || it.Labels["env"] != "prod" || !slices.Equal(it.Owners, []string{"U0DBA"}) {
		t.Errorf("item db = %+v, want an entitlement owned by U0DBA labelled env=prod", it)
	}
	if mgr, _ := cfg.Directory.User("U0ANA"); mgr.Manager != "U0BOSS" {
		t.Errorf("manager of U0ANA = %q, want the email resolved to U0BOSS", mgr.Manager)
	}
	pg, ok := cfg.Connector("pg")
	if !ok {
		t.Fatalf("connector pg missing")
	}
	s, ok := pg.Settings.(*PostgresSettings)
	if !ok || s.Port != 5432 || s.SSLMode != "verify-full" || s.Mode != "role" || s.Password.Env != "PG_PASSWORD" {
		t.Errorf("pg settings = %+v, want defaults filled in", pg.Settings)
	}
	if cfg.Store.Path != DefaultStorePath || cfg.Admin.Listen != DefaultAdminListen || cfg.Slack.APIURL != DefaultSlackAPIURL || cfg.Log.Level != DefaultLogLevel {
		t.Errorf("top-level defaults = %+v %+v %+v %+v", cfg.Store, cfg.Admin, cfg.Slack, cfg.Log)
	}
}

func durationRulesEqual(a, b workflow.DurationRules) bool {
	return a.Default == b.Default && a.Min == b.Min && a.Max == b.Max && slices.Equal(a.Choices, b.Choices)
}

func TestLoadReportsEveryProblem(t *testing.T) {
	isolateEnv(t)
	got := problemsOf(t, patched(t, `
stoer: {path: x}
catalogue:
  items:
    - {polcy: std, targets: [{connector: pgg}]}
policies:
  std:
    aproval: {mode: parallel}
    duration: {default: 12h}
    auto_approve: '"oncall" in requester.grops'
`))
	want := []string{
		"stoer",
		"catalogue.items[0].polcy",
		"catalogue.items[0].targets[0].connector",
		"policies.std.aproval",
		"policies.std.duration.default",
		"policies.std.auto_approve",
	}
	for _, w := range want {
		if !slices.Contains(paths(got), w) {
			t.Errorf("problems %v lack %s", paths(got), w)
		}
	}
	for _, p := range got {
		if p.Line == 0 {
			t.Errorf("problem %v has no line", p)
		}
		if strings.Contains(p.String(), "\n") {
			t.Errorf("problem %q spans lines, want one", p)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b Problem) int { return a.Line - b.Line }) {
		t.Errorf("problems are not in file order: %v", got)
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	isolateEnv(t)
	_, err := Load(writeFile(t, "latch.yaml", patched(t, `policies: {std: {aproval: {mode: x}}}`)))
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Load error = %v, want *InvalidError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `policies.std.aproval: unknown key; did you mean "approval"?`) {
		t.Errorf("Error() = %q, want the problem line", msg)
	}
}

func TestLoadFileErrors(t *testing.T) {
	isolateEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing)
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want a *FileError for %s wrapping fs.ErrNotExist", err, missing)
	}

	tests := []struct {
		name, content string
		line          int
		syntax        bool // wraps ErrSyntax
	}{
		{"not YAML", "store:\n  path: a\n    oops: [\n", 3, true},
		{"unclosed quote", "log:\n  level: 'info\n", 2, true},
		{"a list", "- store\n", 1, false},
		{"a scalar", "\n\nlatch\n", 3, false},
	}
	for _, tt := range tests {
		path := writeFile(t, "bad.yaml", tt.content)
		_, err := Load(path)
		if !errors.As(err, &fe) || fe.File != path {
			t.Errorf("%s: Load error = %v, want a *FileError for %s", tt.name, err, path)
			continue
		}
		if fe.Line != tt.line || errors.Is(err, ErrSyntax) != tt.syntax {
			t.Errorf("%s: Load error = %v at line %d, want line %d, syntax error %v", tt.name, err, fe.Line, tt.line, tt.syntax)
		}
		if want := fmt.Sprintf("%s:%d: ", path, tt.line); !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: Error() = %q, want it to start with %q", tt.name, err, want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	isolateEnv(t)
	t.Setenv("LATCH_STORE_PATH", "/data/latch.db")
	t.Setenv("LATCH_ADMIN_LISTEN", "127.0.0.1:9999")
	t.Setenv("LATCH_SLACK_API_URL", "http://127.0.0.1:4000/api/")
	t.Setenv("LATCH_LOG_LEVEL", "debug")
	t.Setenv("LATCH_CHANNELS_SECURITY", "C0OTHER")
	cfg := mustLoad(t, patched(t, `{store: {path: /var/lib/latch.db}, log: {level: warn}}`))
	if cfg.Store.Path != "/data/latch.db" {
		t.Errorf("store.path = %q, want the environment's /data/latch.db", cfg.Store.Path)
	}
	if cfg.Admin.Listen != "127.0.0.1:9999" {
		t.Errorf("admin.listen = %q, want 127.0.0.1:9999", cfg.Admin.Listen)
	}
	if cfg.Slack.APIURL != "http://127.0.0.1:4000/api/" {
		t.Errorf("slack.api_url = %q, want http://127.0.0.1:4000/api/", cfg.Slack.APIURL)
	}
	if cfg.Log.Level != "debug" {
		t.Errorf("log.level = %q, want debug", cfg.Log.Level)
	}
	if cfg.Channels.Security != "C0OTHER" {
		t.Errorf("channels.security = %q, want C0OTHER", cfg.Channels.Security)
	}
}

func TestEnvOverrideIsValidated(t *testing.T) {
	isolateEnv(t)
	t.Setenv("LATCH_LOG_LEVEL", "loud")
	got := problemsOf(t, patched(t, `log: {level: info}`))
	if len(got) != 1 {
		t.Fatalf("problems = %v, want one about log.level", got)
	}
	if p := got[0]; p.Path != "log.level" || p.Env != "LATCH_LOG_LEVEL" || p.Line != 0 {
		t.Errorf("problem = %+v, want log.level from LATCH_LOG_LEVEL, with no file line", p)
	}
	if s := got[0].String(); !strings.HasPrefix(s, "log.level (from LATCH_LOG_LEVEL): ") {
		t.Errorf("String() = %q, want it to name the variable", s)
	}
}

func TestUnknownEnvVariables(t *testing.T) {
	tests := []struct {
		name    string
		env     string // a variable set to "x"
		suggest string // the variable suggested, if any
	}{
		{"misspelt key", "LATCH_STORE_PATHH", "LATCH_STORE_PATH"},
		{"missing separator", "LATCH_LOGLEVEL", "LATCH_LOG_LEVEL"},
		{"key that cannot be overridden", "LATCH_POLICIES_STD_DURATION_MAX", ""},
		{"read elsewhere", "LATCH_CONFIG", ""},
		{"used by tests", "LATCH_INTEGRATION", ""},
		{"named by password_env", "LATCH_PG_PASSWORD", ""},
		{"passed on to a program", "LATCH_FLAGS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			t.Setenv(tt.env, "x")
			got := problemsOf(t, patched(t, `connectors: [{settings: {password_env: LATCH_PG_PASSWORD}}, {settings: {env: [LATCH_FLAGS]}}]`))
			unknown := !slices.Contains(slices.Concat(otherEnv, []string{"LATCH_PG_PASSWORD", "LATCH_FLAGS"}), tt.env)
			if !unknown {
				if len(got) > 0 {
					t.Errorf("problems = %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Env != tt.env || got[0].Path != "" {
				t.Fatalf("problems = %+v, want one about %s alone", got, tt.env)
			}
			if tt.suggest != "" && !strings.Contains(got[0].Message, `did you mean "`+tt.suggest+`"?`) {
				t.Errorf("message %q does not suggest %s", got[0].Message, tt.suggest)
			}
		})
	}
}

// edit returns baseYAML with old replaced by new; old must be there.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(baseYAML, old) {
		t.Fatalf("baseYAML lacks %q", old)
	}
	return strings.Replace(baseYAML, old, new, 1)
}

// TestRulesOfTheFileItself checks what patches cannot express: keys
// without values, keys given twice, anchors and merges.
func TestRulesOfTheFileItself(t *testing.T) {
	isolateEnv(t)
	const spare = "  spare: {visible_to: [eng], duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}\n"
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"empty key of the wrong name", baseYAML + "catalog:\n", []string{"catalog"}},
		{"empty policy", strings.Replace(edit(t, "policies:\n", "policies:\n  two-person:\n"), "policy: std}", "policy: two-person}", 1), []string{"policies.two-person"}},
		{"empty mapping for a policy", strings.Replace(edit(t, "policies:\n", "policies:\n  two-person: {}\n"), "policy: std}", "policy: two-person}", 1), []string{"policies.two-person"}},
		{"policy given twice", edit(t, "policies:\n", "policies:\n"+spare+spare), []string{"policies.spare"}},
		{"key given twice, and other problems", edit(t, "policies:\n", "log: {level: loud}\npolicies:\n"+spare+spare), []string{"log.level", "policies.spare"}},
		{"anchors and merge keys", edit(t, "  std:\n", "  std: &std\n    description: std\n") + "  other:\n    <<: *std\n    description: other\n", nil},
		{"merge key of a list", baseYAML + "  other:\n    <<: [{visible_to: [eng]}, {visible_to: [dba], duration: {max: 1h}}]\n    approval: {stages: [{approvers: [manager]}]}\n", nil},
		{"anchor holder", "x-eng: &eng [eng]\n" + edit(t, "visible_to: [eng]", "visible_to: *eng"), nil},
		{"merge of a scalar", baseYAML + "  other:\n    <<: 5\n    description: x\n", []string{"policies.other.<<", "policies.other.approval.stages", "policies.other.duration.max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, tt.content)
			if !slices.Equal(sorted(paths(got)), sorted(tt.want)) {
				t.Errorf("problems = %v, want them at exactly %v", got, tt.want)
			}
		})
	}
}

func TestDuplicateKeyLines(t *testing.T) {
	isolateEnv(t)
	content := "store: {path: a}\n" + baseYAML + "store: {path: b}\n"
	got := problemsOf(t, content)
	second := strings.Count(content, "\n")
	if len(got) != 1 || got[0].Path != "store" || got[0].Line != second {
		t.Errorf("problems = %+v, want one for store, at its second line %d", got, second)
	}
}

func TestMergedPolicy(t *testing.T) {
	isolateEnv(t)
	cfg := mustLoad(t, edit(t, "  std:\n", "  std: &std\n")+"  other:\n    <<: *std\n    duration: {max: 2h}\n")
	other, std := cfg.Policies["other"], cfg.Policies["std"]
	if other == nil || other.Duration.Max != 2*time.Hour || len(other.Approval.Stages) != 1 || !slices.Equal(other.VisibleTo, std.VisibleTo) {
		t.Errorf("policy other = %+v, want std's with max 2h", other)
	}
}

func TestEmptyFile(t *testing.T) {
	isolateEnv(t)
	for _, content := range []string{"", "# nothing yet\n", "---\n", "{}\n"} {
		got := problemsOf(t, content)
		if len(got) != 1 || got[0].Path != "" {
			t.Errorf("problems of %q = %v, want one about the whole file", content, got)
		}
	}
}

// TestSecretsNotRepeated checks that a problem about a value that may be a
// secret does not repeat the value.
func TestSecretsNotRepeated(t *testing.T) {
	isolateEnv(t)
	const secret = "Sup3r-S3cret"
	tests := []struct {
		patch, path string
	}{
		{`connectors: [{settings: {password_env: "Sup3r-S3cret!"}}]`, "connectors[0].settings.password_env"},
		{`slack: {api_url: "https://bot:Sup3r-S3cret@slack.example.com/api/"}`, "slack.api_url"},
		{`slack: {api_url: "https://bot:Sup3r-S3cret@sla ck/api/"}`, "slack.api_url"},
		{`slack: {api_url: "bot:Sup3r-S3cret@slack"}`, "slack.api_url"},
		{`connectors: [{}, {settings: {env: ["1DB_PASS=Sup3r-S3cret"]}}]`, "connectors[1].settings.env[0]"},
		{`connectors: [{}, {settings: {env: ["DB_PASS=Sup3r-S3cret"]}}]`, "connectors[1].settings.env[0]"},
		{`connectors: [{}, {settings: {args: [--token, Sup3r-S3cret]}}]`, "connectors[1].settings.args[1]"},
	}
	for _, tt := range tests {
		got := problemsOf(t, patched(t, tt.patch))
		if !slices.Contains(paths(got), tt.path) {
			t.Errorf("%s: problems = %v, want one at %s", tt.patch, got, tt.path)
		}
		for _, p := range got {
			if strings.Contains(p.Message, secret) {
				t.Errorf("%s: problem %q repeats the secret", tt.patch, p)
			}
		}
	}
}

func TestEnvVar(t *testing.T) {
	if got := EnvVar("slack.api_url"); got != "LATCH_SLACK_API_URL" {
		t.Errorf("EnvVar(slack.api_url) = %q, want LATCH_SLACK_API_URL", got)
	}
	for _, key := range []string{"store.path", "admin.listen", "slack.api_url", "admin.token_file"} {
		if !slices.Contains(envKeys(), key) {
			t.Errorf("envKeys() lacks %s", key)
		}
	}
}
