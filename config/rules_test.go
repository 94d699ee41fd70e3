package config

import (
	"slices"
	"strings"
	"testing"
)

// TestRules checks each validation rule: the base configuration with one
// patch must be reported at the key path the rule is about. An empty want
// means the patch is valid.
func TestRules(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		name  string
		patch string
		want  string
	}{
		// Keys.
		{"unknown top-level key", `stoer: {path: x}`, "stoer"},
		{"unknown policy key", `policies: {std: {aproval: {mode: parallel}}}`, "policies.std.aproval"},
		{"unknown key in a list element", `catalogue: {items: [{polcy: std}]}`, "catalogue.items[0].polcy"},
		{"unknown connector setting", `connectors: [{}, {settings: {comand: /bin/ls}}]`, "connectors[1].settings.comand"},
		{"slack bot token in the file", `slack: {bot_token: xoxb-1}`, "slack.bot_token"},
		{"slack app token in the file", `slack: {app_token: xapp-1}`, "slack.app_token"},
		{"admin token in the file", `admin: {token: abc}`, "admin.token"},
		{"literal connector password", `connectors: [{settings: {password: hunter2}}]`, "connectors[0].settings.password"},
		{"literal secret without a *_env key", `connectors: [{}, {settings: {api_token: t}}]`, "connectors[1].settings.api_token"},
		{"uppercase key", `Store: {path: x}`, "Store"},
		{"uppercase policy name", `policies: {Other: {duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, "policies.Other"},
		{"uppercase label key", `catalogue: {items: [{labels: {Env: prod}}]}`, "catalogue.items[0].labels.Env"},

		// Types and durations.
		{"text for a number", `policies: {std: {approval: {stages: [{required: two}]}}}`, "policies.std.approval.stages[0].required"},
		{"text for a list", `policies: {std: {visible_to: eng}}`, "policies.std.visible_to"},
		{"list for text", `catalogue: {items: [{name: [a, b]}]}`, "catalogue.items[0].name"},
		{"unparseable duration", `policies: {std: {duration: {max: 8x}}}`, "policies.std.duration.max"},
		{"duration without unit", `connectors: [{}, {settings: {timeout: 30}}]`, "connectors[1].settings.timeout"},
		{"negative duration", `policies: {std: {reminders: {remind_after: -1h}}}`, "policies.std.reminders.remind_after"},
		{"days accepted", `policies: {std: {duration: {max: 1d12h}}}`, ""},

		// Directory.
		{"user without slack id", `directory: {users: [{}, {}, {}, {email: new@example.com}]}`, "directory.users[3].slack_id"},
		{"slack id is a name", `directory: {users: [{}, {}, {}, {slack_id: alice, email: new@example.com}]}`, "directory.users[3].slack_id"},
		{"duplicate slack id", `directory: {users: [{}, {}, {}, {slack_id: U0ANA, email: new@example.com}]}`, "directory.users[3].slack_id"},
		{"user without email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW}]}`, "directory.users[3].email"},
		{"invalid email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW, email: "new at example"}]}`, "directory.users[3].email"},
		{"duplicate email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW, email: ANA@example.com}]}`, "directory.users[3].email"},
		{"unknown manager", `directory: {users: [{manager: U0NOPE}]}`, "directory.users[0].manager"},
		{"unknown manager email", `directory: {users: [{manager: bos@example.com}]}`, "directory.users[0].manager"},
		{"own manager", `directory: {users: [{}, {manager: U0BOSS}]}`, "directory.users[1].manager"},
		{"user in unknown group", `directory: {users: [{groups: [eng, engg]}]}`, "directory.users[0].groups[1]"},
		{"user in slack group", `directory: {users: [{groups: [eng, sre]}]}`, "directory.users[0].groups[1]"},
		{"group without name", `directory: {groups: [{}, {}, {}, {description: x}]}`, "directory.groups[3].name"},
		{"duplicate group", `directory: {groups: [{}, {}, {}, {name: dba}]}`, "directory.groups[3].name"},
		{"unknown group source", `directory: {groups: [{}, {}, {}, {name: x, source: okta}]}`, "directory.groups[3].source"},
		{"static group with ref", `directory: {groups: [{ref: something}]}`, "directory.groups[0].ref"},
		{"slack group without ref", `directory: {groups: [{}, {}, {ref: null}]}`, "directory.groups[2].ref"},
		{"slack group ref with @", `directory: {groups: [{}, {}, {ref: "@sre"}]}`, "directory.groups[2].ref"},
		{"slack group with members", `directory: {groups: [{}, {}, {members: [U0ANA]}]}`, "directory.groups[2].members"},
		{"unknown group member", `directory: {groups: [{}, {members: [U0DBA, U0NOPE]}]}`, "directory.groups[1].members[1]"},
		{"ldap group without ldap connector", `directory: {groups: [{}, {}, {}, {name: fin, source: ldap, ref: "cn=fin,dc=example,dc=com"}]}`, "directory.groups[3].connector"},
		{"ldap group without DN", `directory: {groups: [{}, {}, {}, {name: fin, source: ldap}]}`, "directory.groups[3].ref"},
		{"connector on a static group", `directory: {groups: [{connector: pg}]}`, "directory.groups[0].connector"},

		// Connectors.
		{"connector without name", `connectors: [{}, {}, {type: exec, settings: {command: /bin/true}}]`, "connectors[2].name"},
		{"connector name not a slug", `connectors: [{}, {}, {name: My PG, type: exec, settings: {command: /bin/true}}]`, "connectors[2].name"},
		{"duplicate connector", `connectors: [{}, {}, {name: pg, type: exec, settings: {command: /bin/true}}]`, "connectors[2].name"},
		{"connector without type", `connectors: [{}, {}, {name: x}]`, "connectors[2].type"},
		{"unknown connector type", `connectors: [{type: postgress}]`, "connectors[0].type"},
		{"exec without command", `connectors: [{}, {settings: {command: null}}]`, "connectors[1].settings.command"},
		{"exec relative command", `connectors: [{}, {settings: {command: grant.sh}}]`, "connectors[1].settings.command"},
		{"exec env not NAME=value", `connectors: [{}, {settings: {env: ["1BAD=x"]}}]`, "connectors[1].settings.env[0]"},
		{"exec env literal secret", `connectors: [{}, {settings: {env: [DB_PASSWORD=hunter2]}}]`, "connectors[1].settings.env[0]"},
		{"exec env passed on", `connectors: [{}, {settings: {env: [DB_PASSWORD, MODE=fast]}}]`, ""},
		{"postgres without host", `connectors: [{settings: {host: null}}]`, "connectors[0].settings.host"},
		{"postgres without database", `connectors: [{settings: {database: null}}]`, "connectors[0].settings.database"},
		{"postgres without user", `connectors: [{settings: {user: null}}]`, "connectors[0].settings.user"},
		{"postgres bad port", `connectors: [{settings: {port: 70000}}]`, "connectors[0].settings.port"},
		{"postgres unknown sslmode", `connectors: [{settings: {sslmode: verify}}]`, "connectors[0].settings.sslmode"},
		{"postgres without TLS to another host", `connectors: [{settings: {host: db.internal, sslmode: disable}}]`, "connectors[0].settings.sslmode"},
		{"postgres unknown mode", `connectors: [{settings: {mode: temporary}}]`, "connectors[0].settings.mode"},
		{"password env and file", `connectors: [{settings: {password_file: /run/pg}}]`, "connectors[0].settings.password_env"},
		{"password env holds a secret", `connectors: [{settings: {password_env: "hunter2!"}}]`, "connectors[0].settings.password_env"},
		{"bad username template field", `connectors: [{settings: {username_template: "{{.Emial}}"}}]`, "connectors[0].settings.username_template"},
		{"unparseable username template", `connectors: [{settings: {username_template: "{{.Email"}}]`, "connectors[0].settings.username_template"},
		{"sshcert without CA key", `connectors: [{}, {}, {name: ssh, type: sshcert}]`, "connectors[2].settings.ca_key_file"},
		{"sshcert unknown extension", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, extensions: [permit-tty]}}]`, "connectors[2].settings.extensions[0]"},
		{"sshcert bad principals template", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, principals_template: "{{.User}}"}}]`, "connectors[2].settings.principals_template"},
		{"ldap without url", `connectors: [{}, {}, {name: dir, type: ldap, settings: {user_base_dn: "dc=x"}}]`, "connectors[2].settings.url"},
		{"ldap url scheme", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "https://ldap", user_base_dn: "dc=x"}}]`, "connectors[2].settings.url"},
		{"ldap in clear", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldap://ldap.example.com", user_base_dn: "dc=x"}}]`, "connectors[2].settings.start_tls"},
		{"ldap bind dn without password", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", bind_dn: "cn=latch", user_base_dn: "dc=x"}}]`, "connectors[2].settings.bind_password_env"},
		{"ldap password without bind dn", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", bind_password_env: LDAP_PW, user_base_dn: "dc=x"}}]`, "connectors[2].settings.bind_dn"},
		{"ldap without user base", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap"}}]`, "connectors[2].settings.user_base_dn"},
		{"ldap filter without parentheses", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x", user_filter: "mail={{.Email}}"}}]`, "connectors[2].settings.user_filter"},
		{"ldap unknown group attribute", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x", group_attribute: uniqueMember}}]`, "connectors[2].settings.group_attribute"},
		{"webhook over http", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "http://hooks.example.com/x", secret_env: HOOK}}]`, "connectors[2].settings.url"},
		{"webhook url with credentials", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://u:p@hooks.example.com/x", secret_env: HOOK}}]`, "connectors[2].settings.url"},
		{"webhook without secret", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://hooks.example.com/x"}}]`, "connectors[2].settings.secret_env"},
		{"webhook literal secret", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://hooks.example.com/x", secret: s3cret}}]`, "connectors[2].settings.secret"},

		// Catalogue.
		{"item without id", `catalogue: {items: [{}, {name: X, targets: [{connector: pg, entitlement: x}], policy: std}]}`, "catalogue.items[1].id"},
		{"item id not a slug", `catalogue: {items: [{id: "Prod DB"}]}`, "catalogue.items[0].id"},
		{"duplicate item id", `catalogue: {items: [{}, {id: db, name: X, targets: [{connector: pg, entitlement: x}], policy: std}]}`, "catalogue.items[1].id"},
		{"item without name", `catalogue: {items: [{name: null}]}`, "catalogue.items[0].name"},
		{"duplicate item name", `catalogue: {items: [{}, {id: db2, name: Database, targets: [{connector: pg, entitlement: x}], policy: std}]}`, "catalogue.items[1].name"},
		{"unknown item kind", `catalogue: {items: [{kind: bundel}]}`, "catalogue.items[0].kind"},
		{"entitlement with two targets", `catalogue: {items: [{targets: [{}, {connector: run, entitlement: x}]}]}`, "catalogue.items[0].targets"},
		{"entitlement without target", `catalogue: {items: [{targets: null}]}`, "catalogue.items[0].targets"},
		{"bundle without targets", `catalogue: {items: [{kind: bundle, targets: null}]}`, "catalogue.items[0].targets"},
		{"bundle across connectors", `catalogue: {items: [{kind: bundle, targets: [{}, {connector: run, entitlement: x}]}]}`, ""},
		{"duplicate target", `catalogue: {items: [{kind: bundle, targets: [{}, {connector: pg, entitlement: ro}]}]}`, "catalogue.items[0].targets[1]"},
		{"unknown target connector", `catalogue: {items: [{targets: [{connector: pgg}]}]}`, "catalogue.items[0].targets[0].connector"},
		{"target without entitlement", `catalogue: {items: [{targets: [{entitlement: null}]}]}`, "catalogue.items[0].targets[0].entitlement"},
		{"postgres role name too long", `catalogue: {items: [{targets: [{entitlement: ` + strings.Repeat("r", 64) + `}]}]}`, "catalogue.items[0].targets[0].entitlement"},
		{"ldap entitlement not a DN", `{connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x"}}], catalogue: {items: [{targets: [{connector: dir, entitlement: admins}]}]}}`, "catalogue.items[0].targets[0].entitlement"},
		{"item without policy", `catalogue: {items: [{policy: null}]}`, "catalogue.items[0].policy"},
		{"unknown policy", `catalogue: {items: [{policy: stdd}]}`, "catalogue.items[0].policy"},
		{"unknown owner", `catalogue: {items: [{owners: [U0NOPE]}]}`, "catalogue.items[0].owners[0]"},
		{"owner neither id nor email", `catalogue: {items: [{owners: [dba-team]}]}`, "catalogue.items[0].owners[0]"},
		{"owners asked but item has none", `{catalogue: {items: [{owners: null}]}, policies: {std: {approval: {stages: [{approvers: [owners]}]}}}}`, "catalogue.items[0].owners"},
		{"too few owners", `policies: {std: {approval: {stages: [{approvers: [owners], required: 2}]}}}`, "catalogue.items[0].owners"},
		{"enough owners with others", `policies: {std: {approval: {stages: [{approvers: [owners, manager], required: 2}]}}}`, ""},

		// Policies.
		{"policy name not a slug", `policies: {9lives: {duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, "policies.9lives"},
		{"unknown visible_to group", `policies: {std: {visible_to: [engg]}}`, "policies.std.visible_to[0]"},
		{"auto_approve does not compile", `policies: {std: {auto_approve: '"oncall" in requester.grops'}}`, "policies.std.auto_approve"},
		{"auto_reject does not compile", `policies: {std: {auto_reject: 'request.duration >'}}`, "policies.std.auto_reject"},
		{"visible is not bool", `policies: {std: {visible: 'item.name'}}`, "policies.std.visible"},
		{"conditions compile", `policies: {std: {visible: 'item.labels["env"] != "secret"', auto_approve: '"eng" in requester.groups', auto_reject: 'size(request.justification) < 3'}}`, ""},
		{"no max duration", `policies: {std: {duration: {max: null}}}`, "policies.std.duration.max"},
		{"default above max", `policies: {std: {duration: {default: 12h}}}`, "policies.std.duration.default"},
		{"min above default", `policies: {std: {duration: {min: 2h, default: 1h}}}`, "policies.std.duration.min"},
		{"choice outside range", `policies: {std: {duration: {choices: [1h, 10h]}}}`, "policies.std.duration.choices[1]"},
		{"choices without default", `policies: {std: {duration: {choices: [2h, 4h]}}}`, "policies.std.duration.choices"},
		{"duplicate choice", `policies: {std: {duration: {choices: [1h, 1h]}}}`, "policies.std.duration.choices[1]"},
		{"extension shorter than max", `policies: {std: {extension: {max_total: 4h}}}`, "policies.std.extension.max_total"},
		{"unknown approval mode", `policies: {std: {approval: {mode: serial}}}`, "policies.std.approval.mode"},
		{"no stages", `policies: {std: {approval: {stages: null}}}`, "policies.std.approval.stages"},
		{"stage without approvers", `policies: {std: {approval: {stages: [{approvers: null}]}}}`, "policies.std.approval.stages[0].approvers"},
		{"unknown approver kind", `policies: {std: {approval: {stages: [{approvers: [manger]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"manager with a reference", `policies: {std: {approval: {stages: [{approvers: ["manager:U0ANA"]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"unknown user approver", `policies: {std: {approval: {stages: [{approvers: ["user:U0NOPE"]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"unknown user approver email", `policies: {std: {approval: {stages: [{approvers: ["user:nobody@example.com"]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"unknown group approver", `policies: {std: {approval: {stages: [{approvers: ["group:dbas"]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"bad slack user group", `policies: {std: {approval: {stages: [{approvers: ["usergroup:@oncall"]}]}}}`, "policies.std.approval.stages[0].approvers[0]"},
		{"duplicate approver", `policies: {std: {approval: {stages: [{approvers: [manager, manager]}]}}}`, "policies.std.approval.stages[0].approvers[1]"},
		{"required zero", `policies: {std: {approval: {stages: [{required: 0}]}}}`, "policies.std.approval.stages[0].required"},
		{"required above static approvers", `policies: {std: {approval: {stages: [{approvers: ["group:dba"], required: 2}]}}}`, "policies.std.approval.stages[0].required"},
		{"required above manager", `policies: {std: {approval: {stages: [{required: 2}]}}}`, "policies.std.approval.stages[0].required"},
		{"required met by group and user", `policies: {std: {approval: {stages: [{approvers: ["group:dba", "user:ana@example.com"], required: 2}]}}}`, ""},
		{"required unknown for slack groups", `policies: {std: {approval: {stages: [{approvers: ["usergroup:oncall", "group:sre"], required: 5}]}}}`, ""},
		{"duplicate stage name", `policies: {std: {approval: {stages: [{name: a}, {name: a, approvers: [manager]}]}}}`, "policies.std.approval.stages[1].name"},
		{"on_behalf rules while not allowed", `policies: {std: {on_behalf: {manager: true}}}`, "policies.std.on_behalf.allowed"},
		{"on_behalf allowed for nobody", `policies: {std: {on_behalf: {allowed: true}}}`, "policies.std.on_behalf.allowed"},
		{"on_behalf anyone and groups", `policies: {std: {on_behalf: {allowed: true, anyone: true, groups: [eng]}}}`, "policies.std.on_behalf.groups"},
		{"on_behalf unknown group", `policies: {std: {on_behalf: {allowed: true, groups: [engg]}}}`, "policies.std.on_behalf.groups[0]"},
		{"negative justification", `policies: {std: {justification: {min_length: -1}}}`, "policies.std.justification.min_length"},
		{"justification beyond Slack", `policies: {std: {justification: {min_length: 5000}}}`, "policies.std.justification.min_length"},
		{"reminder after timeout", `policies: {std: {reminders: {remind_after: 2d}}}`, "policies.std.reminders.remind_after"},
		{"escalation after timeout", `policies: {std: {reminders: {escalate_after: 2d, fallback_approvers: ["group:dba"]}}}`, "policies.std.reminders.escalate_after"},
		{"escalation to nobody", `policies: {std: {reminders: {escalate_after: 4h}}}`, "policies.std.reminders.fallback_approvers"},
		{"fallback never asked", `policies: {std: {reminders: {fallback_approvers: ["group:dba"]}}}`, "policies.std.reminders.escalate_after"},
		{"unknown fallback approver", `policies: {std: {reminders: {escalate_after: 4h, fallback_approvers: ["group:dbas"]}}}`, "policies.std.reminders.fallback_approvers[0]"},
		{"warning not before expiry", `policies: {std: {warn_before: 8h}}`, "policies.std.warn_before"},
		{"warning off", `policies: {std: {warn_before: 0s}}`, ""},

		// Break-glass.
		{"break-glass", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}`, ""},
		{"break-glass without channels", `{channels: {breakglass: null}, policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}}`, "policies.std.breakglass.channels"},
		{"break-glass channel not declared", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], channels: [C0OTHER]}}}`, "policies.std.breakglass.channels[0]"},
		{"break-glass channel by name", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], channels: ["#incident"]}}}`, "policies.std.breakglass.channels[0]"},
		{"break-glass for nobody", `policies: {std: {breakglass: {enabled: true, reviewers: ["group:dba"]}}}`, "policies.std.breakglass.groups"},
		{"break-glass unknown group", `policies: {std: {breakglass: {enabled: true, groups: [oncal], reviewers: ["group:dba"]}}}`, "policies.std.breakglass.groups[0]"},
		{"break-glass without reviewers", `policies: {std: {breakglass: {enabled: true, groups: [eng]}}}`, "policies.std.breakglass.reviewers"},
		{"break-glass unknown reviewer", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["user:U0NOPE"]}}}`, "policies.std.breakglass.reviewers[0]"},
		{"break-glass longer than normal", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], max_duration: 12h}}}`, "policies.std.breakglass.max_duration"},
		{"break-glass negative rate", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], rate_limit: {count: -1}}}}`, "policies.std.breakglass.rate_limit.count"},
		{"break-glass reminder after deadline", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], review_within: 2h, review_reminder: 3h}}}`, "policies.std.breakglass.review_reminder"},
		{"break-glass settings while disabled", `policies: {std: {breakglass: {groups: [eng]}}}`, "policies.std.breakglass.enabled"},
		{"break-glass without security channel", `{channels: {security: null}, catalogue: null, policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}}`, "channels.security"},

		// Top level.
		{"no security channel", `channels: {security: null}`, "channels.security"},
		{"security channel by name", `channels: {security: "#security"}`, "channels.security"},
		{"break-glass channel list by name", `channels: {breakglass: [C0INC, incidents]}`, "channels.breakglass[1]"},
		{"duplicate break-glass channel", `channels: {breakglass: [C0INC, C0INC]}`, "channels.breakglass[1]"},
		{"slack api over http", `slack: {api_url: "http://slack.example.com/api/"}`, "slack.api_url"},
		{"slack api without slash", `slack: {api_url: "https://slack.com/api"}`, "slack.api_url"},
		{"slack api not a url", `slack: {api_url: "slack"}`, "slack.api_url"},
		{"slack api on loopback", `slack: {api_url: "http://127.0.0.1:9000/api/"}`, ""},
		{"unknown log level", `log: {level: verbose}`, "log.level"},
		{"admin listen not host:port", `admin: {listen: "8089"}`, "admin.listen"},
		{"admin listen public without token", `admin: {listen: "0.0.0.0:8089"}`, "admin.listen"},
		{"admin listen public with token file", `admin: {listen: "0.0.0.0:8089", token_file: /run/token}`, ""},
		{"unknown admin", `admin: {admins: [U0NOPE]}`, "admin.admins[0]"},
		{"admins by email", `admin: {admins: [ana@example.com, U0BOSS]}`, ""},
		{"unused policy", `policies: {spare: {duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, patched(t, tt.patch))
			if tt.want == "" {
				if len(got) > 0 {
					t.Fatalf("problems = %v, want none", got)
				}
				return
			}
			if !slices.Contains(paths(got), tt.want) {
				t.Fatalf("problems = %v, want one at %s", got, tt.want)
			}
		})
	}
}

func TestAdminListenWithTokenEnv(t *testing.T) {
	isolateEnv(t)
	t.Setenv(envAdminToken, strings.Repeat("x", minAdminToken))
	if got := problemsOf(t, patched(t, `admin: {listen: "0.0.0.0:8089"}`)); len(got) > 0 {
		t.Fatalf("problems = %v, want none when %s is set", got, envAdminToken)
	}
}

func TestUnknownKeySuggestion(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		patch, path, want string
	}{
		{`policies: {std: {aproval: {mode: parallel}}}`, "policies.std.aproval", `"approval"`},
		{`catalogue: {items: [{polcy: std}]}`, "catalogue.items[0].polcy", `"policy"`},
		{`policies: {std: {justification: {min_len: 3}}}`, "policies.std.justification.min_len", `"min_length"`},
		{`catalogue: {items: [{policy: stdd}]}`, "catalogue.items[0].policy", `"std"`},
		{`connectors: [{type: postgress}]`, "connectors[0].type", `"postgres"`},
	}
	for _, tt := range tests {
		got := problemsOf(t, patched(t, tt.patch))
		i := slices.IndexFunc(got, func(p Problem) bool { return p.Path == tt.path })
		if i < 0 {
			t.Errorf("problems = %v, want one at %s", got, tt.path)
			continue
		}
		if !strings.Contains(got[i].Message, "did you mean "+tt.want) {
			t.Errorf("%s: message %q does not suggest %s", tt.path, got[i].Message, tt.want)
		}
	}
}
