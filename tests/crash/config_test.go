package crash_test

import (
	"os"
	"path/filepath"
	"testing"
	"text/template"

	"github.com/latchhq/latch/bot/slackemu"
)

// configTemplate is latch's configuration for the crash test: the
// emulator's people, the PostgreSQL connector in ephemeral mode, and two
// items whose grants last seconds, so that many expire during a run.
var configTemplate = template.Must(template.New("latch.yaml").Parse(`store:
  path: {{.Store}}

log:
  level: warn

admin:
  listen: 127.0.0.1:0

channels:
  security: {{.C.security}}

directory:
  users:
    - {slack_id: {{.U.alice}}, email: alice@example.com, manager: {{.U.carol}}, groups: [engineering]}
    - {slack_id: {{.U.bob}}, email: bob@example.com, manager: {{.U.carol}}, groups: [engineering]}
    - {slack_id: {{.U.carol}}, email: carol@example.com, manager: {{.U.heidi}}, groups: [engineering]}
    - {slack_id: {{.U.dave}}, email: dave@example.com, manager: {{.U.heidi}}, groups: [engineering]}
    - {slack_id: {{.U.erin}}, email: erin@example.com, manager: {{.U.grace}}, groups: [security]}
    - {slack_id: {{.U.frank}}, email: frank@example.com, manager: {{.U.grace}}, groups: [engineering]}
    - {slack_id: {{.U.grace}}, email: grace@example.com, manager: {{.U.heidi}}, groups: [security]}
    - {slack_id: {{.U.heidi}}, email: heidi@example.com}
  groups:
    - name: engineering
    - name: security

connectors:
  - name: pg
    type: postgres
    settings:
      host: 127.0.0.1
      port: {{.Port}}
      database: app
      user: latch
      password_env: {{.PasswordEnv}}
      sslmode: disable
      mode: ephemeral
      connect_timeout: 2s
      timeout: 5s

catalogue:
  items:
    - id: db-quick
      name: App database, read-only (quick)
      description: Read the secret table, granted at once.
      targets: [{connector: pg, entitlement: app_readonly}]
      policy: quick
    - id: db-approved
      name: App database, read-only (approved)
      description: Read the secret table once your manager approves.
      targets: [{connector: pg, entitlement: app_readonly}]
      policy: approved

policies:
  quick:
    visible_to: [engineering]
    duration: {default: 20s, min: 10s, max: 1m, choices: [10s, 20s, 1m]}
    auto_approve: 'request.duration <= duration("1m")'
    approval:
      stages:
        - {name: manager, approvers: [manager]}
    justification: {min_length: 10}
  approved:
    visible_to: [engineering]
    duration: {default: 30s, min: 15s, max: 2m, choices: [15s, 30s, 2m]}
    approval:
      stages:
        - {name: manager, approvers: [manager]}
    justification: {min_length: 10}
`))

// writeConfig writes the configuration for the emulator's workspace and
// the PostgreSQL on port, and returns its path.
func writeConfig(t *testing.T, emu *slackemu.Server, dir string, port int) string {
	t.Helper()
	data := map[string]any{
		"Store":       filepath.Join(dir, "latch.db"),
		"Port":        port,
		"PasswordEnv": pgPasswordEnv,
		"U":           map[string]string{},
		"C":           map[string]string{"security": emu.Channel("security").ID},
	}
	for _, u := range emu.Users() {
		data["U"].(map[string]string)[u.Name] = u.ID
	}
	path := filepath.Join(dir, "latch.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := configTemplate.Execute(f, data); err != nil {
		t.Fatal(err)
	}
	return path
}
