package config

import (
	"errors"
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
    duration: {max: 8h}
    approval:
      stages:
        - approvers: [manager]
`

// isolateEnv clears every variable Load reads, so the tests do not depend
// on the environment they run in.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, key := range envKeys() {
		t.Setenv(EnvVar(key), "")
	}
	for _, name := range []string{envAppToken, envBotToken, envAdminToken} {
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
          approvers: [owners, group:dba, user:ana@example.com]
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
	if got, want := stages[1].Approvers[2], (workflow.Approver{Kind: workflow.ApproverUser, Ref: "U0ANA"}); got != want {
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
	if !ok || s.Port != 5432 || s.SSLMode != "verify-full" || s.Mode != "role" || s.Password().Env != "PG_PASSWORD" {
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

	bad := writeFile(t, "bad.yaml", "store:\n  path: a\n    oops: [\n")
	_, err = Load(bad)
	if !errors.As(err, &fe) || fe.File != bad {
		t.Fatalf("Load(bad) error = %v, want a *FileError for %s", err, bad)
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Load(bad) error = %q, want the YAML line", err)
	}

	dup := writeFile(t, "dup.yaml", "store: {path: a}\nstore: {path: b}\n")
	if _, err := Load(dup); !errors.As(err, &fe) {
		t.Errorf("Load(duplicate key) error = %v, want a *FileError", err)
	}

	list := writeFile(t, "list.yaml", "- store\n")
	if _, err := Load(list); !errors.As(err, &fe) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Load(a list) error = %v, want a *FileError naming line 1", err)
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
	got := problemsOf(t, baseYAML)
	if !slices.Contains(paths(got), "log.level") {
		t.Errorf("problems %v lack log.level", paths(got))
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
