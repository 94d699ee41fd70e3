package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var now = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func testCatalogue(t testing.TB) *workflow.Catalogue {
	t.Helper()
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "db-admin", Name: "Database admin", Description: "Superuser on the production database", Kind: workflow.KindBundle,
			Policy: "admin", Targets: []workflow.Target{{Connector: "pg", Entitlement: "admin"}, {Connector: "ldap", Entitlement: "cn=dba"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func testPolicy() *workflow.Policy {
	return &workflow.Policy{Name: "admin",
		Duration:               workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour},
		Extension:              workflow.ExtensionRules{MaxTotal: 8 * time.Hour},
		JustificationMinLength: 10,
		OnBehalf:               workflow.OnBehalfRules{Allowed: true, Manager: true},
		Approval: workflow.Approval{Mode: workflow.Sequential, Stages: []workflow.Stage{
			{Name: "manager", Required: 1, Approvers: []workflow.Approver{{Kind: workflow.ApproverManager}}},
			{Name: "owners", Required: 2, Approvers: []workflow.Approver{{Kind: workflow.ApproverUser, Ref: "UCAROL"}, {Kind: workflow.ApproverUser, Ref: "UEVE"}}},
		}},
	}
}

// pendingRequest is a request in its second stage, with a hostile
// justification.
func pendingRequest() workflow.Request {
	return workflow.Request{
		ID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		Submitted: workflow.Submitted{
			Item: "db-admin", Policy: "admin", Requester: "UALICE", Beneficiary: "UALICE", Duration: 2 * time.Hour,
			Justification: "INC-4211: <!channel> please, ask <@U0BOSS> & fix <https://evil.example|this>",
			Ticket:        "INC-4211", Mode: workflow.Sequential,
			Stages: []workflow.StageState{
				{Name: "manager", Required: 1, Approvers: []string{"UDANA"}, Approvals: []string{"UDANA"}, Done: true},
				{Name: "owners", Required: 2, Approvers: []string{"UCAROL", "UEVE"}, Approvals: []string{"UCAROL"}, Reminders: 1},
			},
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "admin"}, {Connector: "ldap", Entitlement: "cn=dba"}},
		},
		State: workflow.RequestPending, Stage: 1, SubmittedAt: now.Add(-time.Hour),
	}
}

func activeRequest() workflow.Request {
	r := pendingRequest()
	r.State, r.DecidedBy, r.DecidedAt = workflow.RequestActive, "UEVE", now.Add(-30*time.Minute)
	r.ActiveAt, r.ExpiresAt = r.DecidedAt, r.DecidedAt.Add(2*time.Hour)
	for i := range r.Stages {
		r.Stages[i].Done = true
	}
	r.Stages[1].Approvals = []string{"UCAROL", "UEVE"}
	return r
}

// golden compares v, as indented JSON, with testdata/name.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", name, path, got)
	}
}

func blocksJSON(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(blocks); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestGolden(t *testing.T) {
	cat := testCatalogue(t)
	p := testPolicy()
	pending, active := pendingRequest(), activeRequest()
	denied := pendingRequest()
	denied.State, denied.DecidedBy, denied.Reason, denied.DecidedAt = workflow.RequestRejected, "UEVE", "use the read-only role <!here>", now
	fi := &formItem{Item: mustItem(t, cat, "db-admin"), Policy: p, PublicKey: true}

	tests := []struct {
		name string
		v    any
	}{
		{"card_pending", ApprovalCard(cat, &pending, "UEVE")},
		{"card_voted", ApprovalCard(cat, &pending, "UCAROL")},
		{"card_denied", ApprovalCard(cat, &denied, "UEVE")},
		{"status_pending", StatusMessage(cat, &pending, "UALICE", now)},
		{"status_active", StatusMessage(cat, &active, "UALICE", now)},
		{"granted", GrantedMessage(cat, &active, []string{"user: alice_7f3a\npassword: s3cret"}, now)},
		{"expiring", ExpiringMessage(cat, &active, now)},
		{"form_empty", RequestForm(requestMeta{Channel: "C1"}, nil)},
		{"form_item", RequestForm(requestMeta{Channel: "C1", Item: "db-admin"}, fi)},
		{"form_deny", DenyForm(cat, &pending)},
		{"form_extend", ExtendForm(cat, &active, p, now)},
		{"search", SearchResults("db", cat.Items(), 14)},
		{"list", ListMessage(cat, "UALICE", []workflow.Request{active}, []workflow.Request{pending}, now)},
		{"home", HomeView(cat, "UALICE", []workflow.Request{active}, nil, []workflow.Request{pending}, []workflow.Request{active}, 1, true, now)},
		{"breakglass", BreakGlassMessage(cat, &active, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { golden(t, tt.name, tt.v) })
	}
}

func mustItem(t *testing.T, cat *workflow.Catalogue, id string) workflow.Item {
	t.Helper()
	it, ok := cat.Item(id)
	if !ok {
		t.Fatalf("no item %s", id)
	}
	return it
}

func TestCardButtons(t *testing.T) {
	cat := testCatalogue(t)
	pending := pendingRequest()
	tests := []struct {
		approver string
		buttons  bool
		says     string
	}{
		{"UEVE", true, ""},                // in the open stage, has not voted
		{"UCAROL", false, "You approved"}, // voted already
		{"UDANA", false, ""},              // an earlier stage, done
		{"UNOBODY", false, ""},            // not an approver
	}
	for _, tt := range tests {
		got := blocksJSON(t, ApprovalCard(cat, &pending, tt.approver))
		if has := strings.Contains(got, `"action_id":"approve"`) && strings.Contains(got, `"action_id":"deny"`); has != tt.buttons {
			t.Errorf("card for %s has buttons = %t, want %t", tt.approver, has, tt.buttons)
		}
		if tt.says != "" && !strings.Contains(got, tt.says) {
			t.Errorf("card for %s does not say %q", tt.approver, tt.says)
		}
	}
	// In parallel stages, a vote in one open stage is the approver's vote:
	// the engine refuses a second in a later stage, so no buttons.
	par := pendingRequest()
	par.Mode, par.Stage = workflow.Parallel, 0
	par.Stages = []workflow.StageState{
		{Name: "peers", Required: 2, Approvers: []string{"UEVE", "UCAROL"}, Approvals: []string{"UEVE"}},
		{Name: "owners", Required: 1, Approvers: []string{"UEVE", "UDANA"}},
	}
	if got := blocksJSON(t, ApprovalCard(cat, &par, "UEVE")); strings.Contains(got, `"action_id":"approve"`) {
		t.Error("an approver who voted in an earlier open stage is offered Approve again")
	}
	if got := blocksJSON(t, ApprovalCard(cat, &par, "UDANA")); !strings.Contains(got, `"action_id":"approve"`) {
		t.Error("an approver of the second open stage has no Approve")
	}
	decided := activeRequest()
	got := blocksJSON(t, ApprovalCard(cat, &decided, "UEVE"))
	if strings.Contains(got, `"action_id":"approve"`) || !strings.Contains(got, "Approved") || !strings.Contains(got, "<@UEVE>") {
		t.Errorf("decided card: %s", got)
	}
}

func TestUserTextIsHarmless(t *testing.T) {
	cat := testCatalogue(t)
	r := pendingRequest()
	for name, blocks := range map[string][]slack.Block{
		"card":   ApprovalCard(cat, &r, "UEVE"),
		"status": StatusMessage(cat, &r, "UALICE", now),
	} {
		got := blocksJSON(t, blocks)
		for _, bad := range []string{"<!channel>", "<@U0BOSS>", "<https://evil"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s renders %q from the justification", name, bad)
			}
		}
		if name == "card" && !strings.Contains(got, "&lt;!channel&gt;") {
			t.Errorf("%s lost the escaped justification: %s", name, got)
		}
	}
}

func TestGrantedMessageKeepsLongCredentials(t *testing.T) {
	cat := testCatalogue(t)
	r := activeRequest()
	cert := "ssh-ed25519-cert-v01@openssh.com " + strings.Repeat("AAAA&<>", 1000) + " grant\nline two"
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("message %d", i))
	}
	for name, messages := range map[string][]string{"long": {cert}, "many": many} {
		msgs := GrantedMessage(cat, &r, messages, now)
		var text strings.Builder
		for i, blocks := range msgs {
			if len(blocks) > maxMessageBlock {
				t.Errorf("%s: message %d has %d blocks", name, i, len(blocks))
			}
			for _, b := range blocks {
				if s, ok := b.(*slack.SectionBlock); ok && s.Text != nil {
					if n := utf8.RuneCountInString(s.Text.Text); n > maxSectionText {
						t.Errorf("%s: a section of %d characters", name, n)
					}
					text.WriteString(strings.TrimSuffix(strings.TrimPrefix(s.Text.Text, "```"), "```"))
				}
			}
		}
		for _, m := range messages {
			if !strings.Contains(text.String(), escape(m)) {
				t.Errorf("%s: the connector's message was cut or lost", name)
			}
		}
		if !strings.Contains(blocksJSON(t, msgs[0]), `"action_id":"release"`) {
			t.Errorf("%s: the first message has no Release button", name)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a bit too long", 10, "a bit too…"},
		{"ééééééééééé", 5, "éééé…"},
		{"abc &amp; def", 7, "abc …"}, // never half an entity
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.n); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		text string
		want Command
	}{
		{"", Command{Kind: CommandForm}},
		{"   ", Command{Kind: CommandForm}},
		{"help", Command{Kind: CommandHelp}},
		{"list", Command{Kind: CommandList}},
		{"LIST", Command{Kind: CommandList}},
		{"list everything", Command{Kind: CommandHelp, Problem: "`/access list` takes no more words."}},
		{"prod  database", Command{Kind: CommandSearch, Words: "prod database"}},
		{"breakglass prod-shell db on fire, INC-9", Command{Kind: CommandBreakGlass, Item: "prod-shell", Reason: "db on fire, INC-9"}},
		{"breakglass prod-shell", Command{Kind: CommandHelp, Problem: "Break-glass needs the item and a reason: `/access breakglass <item> <reason>`."}},
	}
	for _, tt := range tests {
		if got := ParseCommand(tt.text); got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}
