package config

import (
	"slices"
	"strings"
	"testing"
)

// TestRules checks each validation rule: the base configuration with one
// patch must be reported at exactly the key paths the rule is about, and
// nowhere else. An empty want means the patch is valid.
func TestRules(t *testing.T) {
	isolateEnv(t)
	tests := []struct {
		name  string
		patch string
		want  []string
	}{
		// Keys.
		{"unknown top-level key", `stoer: {path: x}`, []string{"stoer"}},
		{"unknown policy key", `policies: {std: {aproval: {mode: parallel}}}`, []string{"policies.std.aproval"}},
		{"unknown key in a list element", `catalogue: {items: [{polcy: std}]}`, []string{"catalogue.items[0].polcy"}},
		{"unknown connector setting", `connectors: [{}, {settings: {comand: /bin/ls}}]`, []string{"connectors[1].settings.comand"}},
		{"slack bot token in the file", `slack: {bot_token: xoxb-1}`, []string{"slack.bot_token"}},
		{"slack app token in the file", `slack: {app_token: xapp-1}`, []string{"slack.app_token"}},
		{"admin token in the file", `admin: {token: abc}`, []string{"admin.token"}},
		{"literal connector password", `connectors: [{settings: {password: hunter2}}]`, []string{"connectors[0].settings.password"}},
		{"literal secret without a *_env key", `connectors: [{}, {settings: {api_token: t}}]`, []string{"connectors[1].settings.api_token"}},
		{"uppercase key", `Store: {path: x}`, []string{"Store"}},
		{"uppercase policy name", `policies: {Other: {visible_to: [eng], duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, []string{"policies.Other"}},
		{"mixed-case label key", `catalogue: {items: [{labels: {Env: prod}}]}`, nil},
		{"empty mapping of the wrong name", `catalog: {}`, []string{"catalog"}},
		{"misspelt key hides what it lacks", `policies: {std: {approval: null, aproval: {stages: [{approvers: [manager]}]}}}`, []string{"policies.std.aproval"}},
		{"misspelt key next to the real one", `policies: {std: {aproval: {mode: parallel}, approval: {mode: serial}}}`, []string{"policies.std.aproval", "policies.std.approval.mode"}},
		{"anchors under an x- key", `{x-stage: &stage {approvers: [manager]}, policies: {std: {approval: {stages: [*stage]}}}}`, nil},
		{"other unknown top-level key", `y-stage: {approvers: [manager]}`, []string{"y-stage"}},
		{"policy name with a dot", `{policies: {two.person: {visible_to: [eng], duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}, catalogue: {items: [{policy: two.person}]}}`, []string{"policies.two.person"}},

		// Types and durations.
		{"text for a number", `policies: {std: {approval: {stages: [{required: two}]}}}`, []string{"policies.std.approval.stages[0].required"}},
		{"text for a list", `policies: {std: {visible_to: eng}}`, []string{"policies.std.visible_to"}},
		{"list for text", `catalogue: {items: [{name: [a, b]}]}`, []string{"catalogue.items[0].name"}},
		{"unparseable duration", `policies: {std: {duration: {max: 8x}}}`, []string{"policies.std.duration.max"}},
		{"duration without unit", `connectors: [{}, {settings: {timeout: 30}}]`, []string{"connectors[1].settings.timeout"}},
		{"fraction for a count", `policies: {std: {approval: {stages: [{required: 1.9}]}}}`, []string{"policies.std.approval.stages[0].required"}},
		{"fraction for a length", `policies: {std: {justification: {min_length: 30.5}}}`, []string{"policies.std.justification.min_length"}},
		{"fraction for a port", `connectors: [{settings: {port: 5432.7}}]`, []string{"connectors[0].settings.port"}},
		{"fraction for a rate", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], rate_limit: {count: 2.5}}}}`, []string{"policies.std.breakglass.rate_limit.count"}},
		{"whole number written with a point", `policies: {std: {approval: {stages: [{approvers: [manager, "user:U0DBA"], required: 2.0}]}}}`, nil},
		{"negative duration", `policies: {std: {reminders: {remind_after: -1h}}}`, []string{"policies.std.reminders.remind_after"}},
		{"days accepted", `policies: {std: {duration: {max: 1d12h}}}`, nil},

		// Directory.
		{"user without slack id", `directory: {users: [{}, {}, {}, {email: new@example.com}]}`, []string{"directory.users[3].slack_id"}},
		{"slack id is a name", `directory: {users: [{}, {}, {}, {slack_id: alice, email: new@example.com}]}`, []string{"directory.users[3].slack_id"}},
		{"duplicate slack id", `directory: {users: [{}, {}, {}, {slack_id: U0ANA, email: new@example.com}]}`, []string{"directory.users[3].slack_id"}},
		{"user without email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW}]}`, []string{"directory.users[3].email"}},
		{"invalid email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW, email: "new at example"}]}`, []string{"directory.users[3].email"}},
		{"duplicate email", `directory: {users: [{}, {}, {}, {slack_id: U0NEW, email: ANA@example.com}]}`, []string{"directory.users[3].email"}},
		{"unknown manager", `directory: {users: [{manager: U0NOPE}]}`, []string{"directory.users[0].manager"}},
		{"unknown manager email", `directory: {users: [{manager: bos@example.com}]}`, []string{"directory.users[0].manager"}},
		{"own manager", `directory: {users: [{}, {manager: U0BOSS}]}`, []string{"directory.users[1].manager"}},
		{"user in unknown group", `directory: {users: [{groups: [eng, engg]}]}`, []string{"directory.users[0].groups[1]"}},
		{"user in slack group", `directory: {users: [{groups: [eng, sre]}]}`, []string{"directory.users[0].groups[1]"}},
		{"group without name", `directory: {groups: [{}, {}, {}, {description: x}]}`, []string{"directory.groups[3].name"}},
		{"duplicate group", `directory: {groups: [{}, {}, {}, {name: dba}]}`, []string{"directory.groups[3].name"}},
		{"duplicate group used in a stage", `{directory: {groups: [{}, {}, {}, {name: dba}]}, policies: {std: {approval: {stages: [{approvers: ["group:dba"]}]}}}}`, []string{"directory.groups[3].name"}},
		{"duplicate user is checked no further", `directory: {users: [{}, {}, {}, {slack_id: U0ANA, email: ana2@example.com, manager: U0NOPE}]}`, []string{"directory.users[3].slack_id"}},
		{"group name not a slug", `directory: {groups: [{}, {}, {}, {name: Security}]}`, []string{"directory.groups[3].name"}},
		{"group names differing in case", `directory: {groups: [{}, {}, {}, {name: DBA}]}`, []string{"directory.groups[3].name"}},
		{"unknown group source", `directory: {groups: [{}, {}, {}, {name: x, source: okta}]}`, []string{"directory.groups[3].source"}},
		{"static group with ref", `directory: {groups: [{ref: something}]}`, []string{"directory.groups[0].ref"}},
		{"slack group without ref", `directory: {groups: [{}, {}, {ref: null}]}`, []string{"directory.groups[2].ref"}},
		{"slack group ref with @", `directory: {groups: [{}, {}, {ref: "@sre"}]}`, []string{"directory.groups[2].ref"}},
		{"slack group with members", `directory: {groups: [{}, {}, {members: [U0ANA]}]}`, []string{"directory.groups[2].members"}},
		{"unknown group member", `directory: {groups: [{}, {members: [U0DBA, U0NOPE]}]}`, []string{"directory.groups[1].members[1]"}},
		{"ldap group without ldap connector", `directory: {groups: [{}, {}, {}, {name: fin, source: ldap, ref: "cn=fin,dc=example,dc=com"}]}`, []string{"directory.groups[3].connector"}},
		{"ldap group without DN", `directory: {groups: [{}, {}, {}, {name: fin, source: ldap}]}`, []string{"directory.groups[3].ref", "directory.groups[3].connector"}},
		{"connector on a static group", `directory: {groups: [{connector: pg}]}`, []string{"directory.groups[0].connector"}},

		// Connectors.
		{"connector without name", `connectors: [{}, {}, {type: exec, settings: {command: /bin/true}}]`, []string{"connectors[2].name"}},
		{"connector name not a slug", `connectors: [{}, {}, {name: My PG, type: exec, settings: {command: /bin/true}}]`, []string{"connectors[2].name"}},
		{"duplicate connector", `connectors: [{}, {}, {name: pg, type: exec, settings: {command: /bin/true}}]`, []string{"connectors[2].name"}},
		{"duplicate connector used by a target", `{connectors: [{}, {}, {name: pg, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x"}}], catalogue: {items: [{targets: [{entitlement: app_ro}]}]}}`, []string{"connectors[2].name"}},
		{"connector without type", `connectors: [{}, {}, {name: x}]`, []string{"connectors[2].type"}},
		{"unknown connector type", `connectors: [{type: postgress}]`, []string{"connectors[0].type"}},
		{"exec without command", `connectors: [{}, {settings: {command: null}}]`, []string{"connectors[1].settings.command"}},
		{"exec relative command", `connectors: [{}, {settings: {command: grant.sh}}]`, []string{"connectors[1].settings.command"}},
		{"exec env not NAME=value", `connectors: [{}, {settings: {env: ["1BAD=x"]}}]`, []string{"connectors[1].settings.env[0]"}},
		{"exec env literal secret", `connectors: [{}, {settings: {env: [DB_PASSWORD=hunter2]}}]`, []string{"connectors[1].settings.env[0]"}},
		{"exec env api key", `connectors: [{}, {settings: {env: [FLAGS_API_KEY=abcd]}}]`, []string{"connectors[1].settings.env[0]"}},
		{"exec env short password name", `connectors: [{}, {settings: {env: [DB_PASS=hunter2]}}]`, []string{"connectors[1].settings.env[0]"}},
		{"exec env URL with credentials", `connectors: [{}, {settings: {env: ["DATABASE_URL=postgres://u:p@h/db"]}}]`, []string{"connectors[1].settings.env[0]"}},
		{"exec arg after a secret flag", `connectors: [{}, {settings: {args: [--password, x]}}]`, []string{"connectors[1].settings.args[1]"}},
		{"exec arg with a secret flag", `connectors: [{}, {settings: {args: [--api-key=x]}}]`, []string{"connectors[1].settings.args[0]"}},
		{"exec arg URL with credentials", `connectors: [{}, {settings: {args: ["https://u:p@example.com/hook"]}}]`, []string{"connectors[1].settings.args[0]"}},
		{"exec env passed on", `connectors: [{}, {settings: {env: [DB_PASSWORD, MODE=fast]}}]`, nil},
		{"exec settings that only look secret", `connectors: [{}, {settings: {env: [PASSWORD_FILE=/run/pw, SSH_KEY=/etc/key, MONKEY=1, NOTIFY=ops@example.com, "API=https://flags.internal"], args: [--password-file, /run/pw, --key, /etc/key, --environment, production]}}]`, nil},
		{"postgres without host", `connectors: [{settings: {host: null}}]`, []string{"connectors[0].settings.host"}},
		{"postgres without database", `connectors: [{settings: {database: null}}]`, []string{"connectors[0].settings.database"}},
		{"postgres without user", `connectors: [{settings: {user: null}}]`, []string{"connectors[0].settings.user"}},
		{"postgres bad port", `connectors: [{settings: {port: 70000}}]`, []string{"connectors[0].settings.port"}},
		{"postgres unknown sslmode", `connectors: [{settings: {sslmode: verify}}]`, []string{"connectors[0].settings.sslmode"}},
		{"postgres without TLS to another host", `connectors: [{settings: {host: db.internal, sslmode: disable}}]`, []string{"connectors[0].settings.sslmode"}},
		{"postgres on a Unix socket", `connectors: [{settings: {host: /var/run/postgresql, sslmode: disable}}]`, nil},
		{"postgres unknown mode", `connectors: [{settings: {mode: temporary}}]`, []string{"connectors[0].settings.mode"}},
		{"password env and file", `connectors: [{settings: {password_file: /run/pg}}]`, []string{"connectors[0].settings.password_env"}},
		{"password env holds a secret", `connectors: [{settings: {password_env: "hunter2!"}}]`, []string{"connectors[0].settings.password_env"}},
		{"bad username template field", `connectors: [{settings: {username_template: "{{.Emial}}"}}]`, []string{"connectors[0].settings.username_template"}},
		{"unparseable username template", `connectors: [{settings: {username_template: "{{.Email"}}]`, []string{"connectors[0].settings.username_template"}},
		{"file sink", `audit: {sinks: [{name: local, type: file, path: /var/log/latch/audit.jsonl}]}`, nil},
		{"http sink in OCSF", `audit: {sinks: [{name: siem, type: http, url: "https://siem.example.com/in", secret_env: SIEM_SECRET, format: ocsf}]}`, nil},
		{"sink without type", `audit: {sinks: [{name: x}]}`, []string{"audit.sinks[0].type"}},
		{"two sinks, one name", `audit: {sinks: [{name: x, type: file, path: /a}, {name: x, type: file, path: /b}]}`, []string{"audit.sinks[1].name"}},
		{"file sink, relative path", `audit: {sinks: [{name: x, type: file, path: audit.jsonl}]}`, []string{"audit.sinks[0].path"}},
		{"http sink without secret", `audit: {sinks: [{name: x, type: http, url: "https://siem.example.com"}]}`, []string{"audit.sinks[0].secret_env"}},
		{"http sink in clear", `audit: {sinks: [{name: x, type: http, url: "http://siem.example.com", secret_env: S}]}`, []string{"audit.sinks[0].url"}},
		{"unknown sink format", `audit: {sinks: [{name: x, type: file, path: /a, format: cef}]}`, []string{"audit.sinks[0].format"}},
		{"checkpoints without a key", `audit: {checkpoints: {every: 5m}}`, []string{"audit.checkpoints.signing_key_file"}},
		{"checkpoints", `audit: {checkpoints: {signing_key_file: /run/secrets/cp.pem, every: 5m, file: /var/lib/latch/checkpoints.jsonl}}`, nil},
		{"reconcile removes from an unknown connector", `reconcile: {every: 1h, remove_unmanaged: [nope]}`, []string{"reconcile.remove_unmanaged[0]"}},
		{"sshcert without CA key", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {entitlements: [deploy]}}]`, []string{"connectors[2].settings.ca_key_file"}},
		{"sshcert without entitlements", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca}}]`, []string{"connectors[2].settings.entitlements"}},
		{"sshcert entitlement with a space", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, entitlements: [deploy, "a b"]}}]`, []string{"connectors[2].settings.entitlements[1]"}},
		{"sshcert principals from the entitlement", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, entitlements: [deploy], principals_template: "{{.Entitlement}},{{.LocalPart | lower}}"}}]`, nil},
		{"sshcert unknown extension", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, entitlements: [deploy], extensions: [permit-tty]}}]`, []string{"connectors[2].settings.extensions[0]"}},
		{"sshcert custom extension", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, entitlements: [deploy], extensions: [permit-pty, login@example.com]}}]`, nil},
		{"sshcert bad principals template", `connectors: [{}, {}, {name: ssh, type: sshcert, settings: {ca_key_file: /ca, entitlements: [deploy], principals_template: "{{.User}}"}}]`, []string{"connectors[2].settings.principals_template"}},
		{"ldap without url", `connectors: [{}, {}, {name: dir, type: ldap, settings: {user_base_dn: "dc=x"}}]`, []string{"connectors[2].settings.url"}},
		{"ldap url scheme", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "https://ldap", user_base_dn: "dc=x"}}]`, []string{"connectors[2].settings.url"}},
		{"ldap in clear", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldap://ldap.example.com", user_base_dn: "dc=x"}}]`, []string{"connectors[2].settings.start_tls"}},
		{"ldap bind dn without password", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", bind_dn: "cn=latch", user_base_dn: "dc=x"}}]`, []string{"connectors[2].settings.bind_password_env"}},
		{"ldap password without bind dn", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", bind_password_env: LDAP_PW, user_base_dn: "dc=x"}}]`, []string{"connectors[2].settings.bind_dn"}},
		{"ldap without user base", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap"}}]`, []string{"connectors[2].settings.user_base_dn"}},
		{"ldap filter without parentheses", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x", user_filter: "mail={{.Email}}"}}]`, []string{"connectors[2].settings.user_filter"}},
		{"ldap unknown group attribute", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x", group_attribute: memberOf}}]`, []string{"connectors[2].settings.group_attribute"}},
		{"ldap groupOfUniqueNames", `connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x", group_attribute: uniqueMember}}]`, nil},
		{"webhook over http", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "http://hooks.example.com/x", secret_env: HOOK}}]`, []string{"connectors[2].settings.url"}},
		{"webhook url with credentials", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://u:p@hooks.example.com/x", secret_env: HOOK}}]`, []string{"connectors[2].settings.url"}},
		{"webhook without secret", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://hooks.example.com/x"}}]`, []string{"connectors[2].settings.secret_env"}},
		{"webhook literal secret", `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://hooks.example.com/x", secret: s3cret}}]`, []string{"connectors[2].settings.secret"}},
		{"literal api key", `connectors: [{}, {settings: {api_key: k}}]`, []string{"connectors[1].settings.api_key"}},

		// Catalogue.
		{"item without id", `catalogue: {items: [{}, {name: X, targets: [{connector: pg, entitlement: x}], policy: std}]}`, []string{"catalogue.items[1].id"}},
		{"item id not a slug", `catalogue: {items: [{id: "Prod DB"}]}`, []string{"catalogue.items[0].id"}},
		{"duplicate item id", `catalogue: {items: [{}, {id: db, name: X, targets: [{connector: pg, entitlement: x}], policy: std}]}`, []string{"catalogue.items[1].id"}},
		{"item without name", `catalogue: {items: [{name: null}]}`, []string{"catalogue.items[0].name"}},
		{"duplicate item name", `catalogue: {items: [{}, {id: db2, name: Database, targets: [{connector: pg, entitlement: x}], policy: std}]}`, []string{"catalogue.items[1].name"}},
		{"unknown item kind", `catalogue: {items: [{kind: bundel}]}`, []string{"catalogue.items[0].kind"}},
		{"entitlement with two targets", `catalogue: {items: [{targets: [{}, {connector: run, entitlement: x}]}]}`, []string{"catalogue.items[0].targets"}},
		{"entitlement without target", `catalogue: {items: [{targets: null}]}`, []string{"catalogue.items[0].targets"}},
		{"bundle without targets", `catalogue: {items: [{kind: bundle, targets: null}]}`, []string{"catalogue.items[0].targets"}},
		{"bundle across connectors", `catalogue: {items: [{kind: bundle, targets: [{}, {connector: run, entitlement: x}]}]}`, nil},
		{"duplicate target", `catalogue: {items: [{kind: bundle, targets: [{}, {connector: pg, entitlement: ro}]}]}`, []string{"catalogue.items[0].targets[1]"}},
		{"unknown target connector", `catalogue: {items: [{targets: [{connector: pgg}]}]}`, []string{"catalogue.items[0].targets[0].connector"}},
		{"target without entitlement", `catalogue: {items: [{targets: [{entitlement: null}]}]}`, []string{"catalogue.items[0].targets[0].entitlement"}},
		{"postgres role name too long", `catalogue: {items: [{targets: [{entitlement: ` + strings.Repeat("r", 64) + `}]}]}`, []string{"catalogue.items[0].targets[0].entitlement"}},
		{"ldap entitlement not a DN", `{connectors: [{}, {}, {name: dir, type: ldap, settings: {url: "ldaps://ldap", user_base_dn: "dc=x"}}], catalogue: {items: [{targets: [{connector: dir, entitlement: admins}]}]}}`, []string{"catalogue.items[0].targets[0].entitlement"}},
		{"item without policy", `catalogue: {items: [{policy: null}]}`, []string{"catalogue.items[0].policy"}},
		{"unknown policy", `catalogue: {items: [{policy: stdd}]}`, []string{"catalogue.items[0].policy"}},
		{"unknown owner", `catalogue: {items: [{owners: [U0NOPE]}]}`, []string{"catalogue.items[0].owners[0]"}},
		{"owner neither id nor email", `catalogue: {items: [{owners: [dba-team]}]}`, []string{"catalogue.items[0].owners[0]"}},
		{"owners asked but item has none", `{catalogue: {items: [{owners: null}]}, policies: {std: {approval: {stages: [{approvers: [owners]}]}}}}`, []string{"catalogue.items[0].owners"}},
		{"too few owners", `policies: {std: {approval: {stages: [{approvers: [owners], required: 2}]}}}`, []string{"catalogue.items[0].owners"}},
		{"enough owners with others", `policies: {std: {approval: {stages: [{approvers: [owners, manager], required: 2}]}}}`, nil},

		// Policies.
		{"policy name not a slug", `policies: {9lives: {visible_to: [eng], duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, []string{"policies.9lives"}},
		{"unknown visible_to group", `policies: {std: {visible_to: [engg]}}`, []string{"policies.std.visible_to[0]"}},
		{"auto_approve does not compile", `policies: {std: {auto_approve: '"oncall" in requester.grops'}}`, []string{"policies.std.auto_approve"}},
		{"auto_reject does not compile", `policies: {std: {auto_reject: 'request.duration >'}}`, []string{"policies.std.auto_reject"}},
		{"visible is not bool", `policies: {std: {visible: 'item.name'}}`, []string{"policies.std.visible"}},
		{"conditions compile", `policies: {std: {visible: 'item.labels["env"] != "secret"', auto_approve: '"eng" in requester.groups', auto_reject: 'size(request.justification) < 3'}}`, nil},
		{"no max duration", `policies: {std: {duration: {max: null}}}`, []string{"policies.std.duration.max"}},
		{"default above max", `policies: {std: {duration: {default: 12h}}}`, []string{"policies.std.duration.default"}},
		{"min above default", `policies: {std: {duration: {min: 2h, default: 1h}}}`, []string{"policies.std.duration.min"}},
		{"choice outside range", `policies: {std: {duration: {choices: [1h, 10h]}}}`, []string{"policies.std.duration.choices[1]"}},
		{"choices without default", `policies: {std: {duration: {choices: [2h, 4h]}}}`, []string{"policies.std.duration.choices"}},
		{"duplicate choice", `policies: {std: {duration: {choices: [1h, 1h]}}}`, []string{"policies.std.duration.choices[1]"}},
		{"extension shorter than max", `policies: {std: {extension: {max_total: 4h}}}`, []string{"policies.std.extension.max_total"}},
		{"unknown approval mode", `policies: {std: {approval: {mode: serial}}}`, []string{"policies.std.approval.mode"}},
		{"no stages", `policies: {std: {approval: {stages: null}}}`, []string{"policies.std.approval.stages"}},
		{"stage without approvers", `policies: {std: {approval: {stages: [{approvers: null}]}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"unknown approver kind", `policies: {std: {approval: {stages: [{approvers: [manger]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"manager with a reference", `policies: {std: {approval: {stages: [{approvers: ["manager:U0ANA"]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"unknown user approver", `policies: {std: {approval: {stages: [{approvers: ["user:U0NOPE"]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"unknown user approver email", `policies: {std: {approval: {stages: [{approvers: ["user:nobody@example.com"]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"unknown group approver", `policies: {std: {approval: {stages: [{approvers: ["group:dbas"]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"bad slack user group", `policies: {std: {approval: {stages: [{approvers: ["usergroup:@oncall"]}]}}}`, []string{"policies.std.approval.stages[0].approvers[0]"}},
		{"duplicate approver", `policies: {std: {approval: {stages: [{approvers: [manager, manager]}]}}}`, []string{"policies.std.approval.stages[0].approvers[1]"}},
		{"required zero", `policies: {std: {approval: {stages: [{required: 0}]}}}`, []string{"policies.std.approval.stages[0].required"}},
		{"required above static approvers", `policies: {std: {approval: {stages: [{approvers: ["group:dba"], required: 2}]}}}`, []string{"policies.std.approval.stages[0].required"}},
		{"required above manager", `policies: {std: {approval: {stages: [{required: 2}]}}}`, []string{"policies.std.approval.stages[0].required"}},
		{"required met by group and user", `policies: {std: {approval: {stages: [{approvers: ["group:dba", "user:boss@example.com"], required: 2}]}}}`, nil},
		{"requester is the only approver", `policies: {std: {approval: {stages: [{approvers: ["user:ana@example.com"]}]}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"requester is one of two approvers needed", `policies: {std: {approval: {stages: [{approvers: ["group:dba", "user:ana@example.com"], required: 2}]}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"requester may approve", `policies: {std: {allow_self_approval: true, approval: {stages: [{approvers: ["user:ana@example.com"]}]}}}`, nil},
		{"requester cannot see the item", `policies: {std: {visible_to: [dba], approval: {stages: [{approvers: ["user:ana@example.com"]}]}}}`, nil},
		{"visibility read at run time", `policies: {std: {visible_to: [sre], approval: {stages: [{approvers: ["user:ana@example.com"]}]}}}`, nil},
		{"escalation to the requester alone", `policies: {std: {approval: {stages: [{approvers: ["user:ana@example.com"]}]}, reminders: {escalate_after: 4h, fallback_approvers: ["user:ana@example.com"]}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"escalation to people known at run time", `policies: {std: {approval: {stages: [{approvers: ["user:ana@example.com"]}]}, reminders: {escalate_after: 4h, fallback_approvers: ["group:sre"]}}}`, nil},
		{"escalation rescues the stage", `policies: {std: {approval: {stages: [{approvers: ["user:ana@example.com"]}]}, reminders: {escalate_after: 4h, fallback_approvers: ["group:dba"]}}}`, nil},
		{"manager counted once", `policies: {std: {approval: {stages: [{approvers: [manager, "user:boss@example.com"], required: 2}]}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"requester without a manager", `policies: {std: {visible_to: null}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"manager requests for their report", `{directory: {users: [{}, {manager: dba@example.com, groups: [eng]}]}, policies: {std: {on_behalf: {allowed: true, manager: true}}}}`, []string{"policies.std.approval.stages[0].approvers"}},
		{"manager does not request for others", `directory: {users: [{}, {manager: dba@example.com, groups: [eng]}]}`, nil},
		{"owner requests their own item", `{catalogue: {items: [{owners: [ana@example.com]}]}, policies: {std: {approval: {stages: [{approvers: [owners]}]}}}}`, []string{"catalogue.items[0].owners"}},
		{"owner among two", `{catalogue: {items: [{owners: [ana@example.com, U0DBA]}]}, policies: {std: {approval: {stages: [{approvers: [owners]}]}}}}`, nil},
		{"required unknown for slack groups", `policies: {std: {approval: {stages: [{approvers: ["usergroup:oncall", "group:sre"], required: 5}]}}}`, nil},
		{"duplicate stage name", `policies: {std: {approval: {stages: [{name: a}, {name: a, approvers: [manager]}]}}}`, []string{"policies.std.approval.stages[1].name"}},
		{"on_behalf rules while not allowed", `policies: {std: {on_behalf: {manager: true}}}`, []string{"policies.std.on_behalf.allowed"}},
		{"on_behalf allowed for nobody", `policies: {std: {on_behalf: {allowed: true}}}`, []string{"policies.std.on_behalf.allowed"}},
		{"on_behalf anyone and groups", `policies: {std: {on_behalf: {allowed: true, anyone: true, groups: [eng]}}}`, []string{"policies.std.on_behalf.groups"}},
		{"on_behalf unknown group", `policies: {std: {on_behalf: {allowed: true, groups: [engg]}}}`, []string{"policies.std.on_behalf.groups[0]"}},
		{"negative justification", `policies: {std: {justification: {min_length: -1}}}`, []string{"policies.std.justification.min_length"}},
		{"justification beyond Slack", `policies: {std: {justification: {min_length: 5000}}}`, []string{"policies.std.justification.min_length"}},
		{"reminder after timeout", `policies: {std: {reminders: {remind_after: 2d}}}`, []string{"policies.std.reminders.remind_after"}},
		{"escalation after timeout", `policies: {std: {reminders: {escalate_after: 2d, fallback_approvers: ["group:dba"]}}}`, []string{"policies.std.reminders.escalate_after"}},
		{"escalation to nobody", `policies: {std: {reminders: {escalate_after: 4h}}}`, []string{"policies.std.reminders.fallback_approvers"}},
		{"fallback never asked", `policies: {std: {reminders: {fallback_approvers: ["group:dba"]}}}`, []string{"policies.std.reminders.escalate_after"}},
		{"unknown fallback approver", `policies: {std: {reminders: {escalate_after: 4h, fallback_approvers: ["group:dbas"]}}}`, []string{"policies.std.reminders.fallback_approvers[0]"}},
		{"fallback to an empty group", `{policies: {std: {reminders: {escalate_after: 4h, fallback_approvers: ["group:eng2"]}}}, directory: {groups: [{}, {}, {}, {name: eng2}]}}`, []string{"policies.std.reminders.fallback_approvers"}},
		{"stage of an empty group", `{policies: {std: {approval: {stages: [{approvers: ["group:eng2"]}]}}}, directory: {groups: [{}, {}, {}, {name: eng2}]}}`, []string{"policies.std.approval.stages[0].required"}},
		{"warning not before expiry", `policies: {std: {warn_before: 8h}}`, []string{"policies.std.warn_before"}},
		{"warning not before the shortest grant", `policies: {std: {duration: {min: 30m}, warn_before: 30m}}`, []string{"policies.std.warn_before"}},
		{"warning off", `policies: {std: {warn_before: 0s}}`, nil},

		// Break-glass.
		{"break-glass", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}`, nil},
		{"break-glass without channels", `{channels: {breakglass: null}, policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}}`, []string{"policies.std.breakglass.channels"}},
		{"break-glass channel not declared", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], channels: [C0OTHER]}}}`, []string{"policies.std.breakglass.channels[0]"}},
		{"break-glass channel by name", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], channels: ["#incident"]}}}`, []string{"policies.std.breakglass.channels[0]"}},
		{"break-glass for nobody", `policies: {std: {breakglass: {enabled: true, reviewers: ["group:dba"]}}}`, []string{"policies.std.breakglass.groups"}},
		{"break-glass unknown group", `policies: {std: {breakglass: {enabled: true, groups: [oncal], reviewers: ["group:dba"]}}}`, []string{"policies.std.breakglass.groups[0]"}},
		{"break-glass without reviewers", `policies: {std: {breakglass: {enabled: true, groups: [eng]}}}`, []string{"policies.std.breakglass.reviewers"}},
		{"break-glass unknown reviewer", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["user:U0NOPE"]}}}`, []string{"policies.std.breakglass.reviewers[0]"}},
		{"break-glass reviewers in an empty group", `{directory: {groups: [{}, {}, {}, {name: security}]}, policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:security"]}}}}`, []string{"policies.std.breakglass.reviewers"}},
		{"break-glass longer than normal", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], max_duration: 12h}}}`, []string{"policies.std.breakglass.max_duration"}},
		{"break-glass negative rate", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], rate_limit: {count: -1}}}}`, []string{"policies.std.breakglass.rate_limit.count"}},
		{"break-glass reminder after deadline", `policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"], review_within: 2h, review_reminder: 3h}}}`, []string{"policies.std.breakglass.review_reminder"}},
		{"break-glass settings while disabled", `policies: {std: {breakglass: {groups: [eng]}}}`, []string{"policies.std.breakglass.enabled"}},
		{"break-glass without security channel", `{channels: {security: null}, catalogue: null, policies: {std: {breakglass: {enabled: true, groups: [eng], reviewers: ["group:dba"]}}}}`, []string{"channels.security", "catalogue.items"}},

		// Top level.
		{"no security channel", `channels: {security: null}`, []string{"channels.security"}},
		{"security channel by name", `channels: {security: "#security"}`, []string{"channels.security"}},
		{"break-glass channel list by name", `channels: {breakglass: [C0INC, incidents]}`, []string{"channels.breakglass[1]"}},
		{"duplicate break-glass channel", `channels: {breakglass: [C0INC, C0INC]}`, []string{"channels.breakglass[1]"}},
		{"slack api over http", `slack: {api_url: "http://slack.example.com/api/"}`, []string{"slack.api_url"}},
		{"slack api without slash", `slack: {api_url: "https://slack.com/api"}`, []string{"slack.api_url"}},
		{"slack api not a url", `slack: {api_url: "slack"}`, []string{"slack.api_url"}},
		{"slack api on loopback", `slack: {api_url: "http://127.0.0.1:9000/api/"}`, nil},
		{"unknown log level", `log: {level: verbose}`, []string{"log.level"}},
		{"admin listen not host:port", `admin: {listen: "8089"}`, []string{"admin.listen"}},
		{"admin listen public without token", `admin: {listen: "0.0.0.0:8089"}`, []string{"admin.listen"}},
		{"admin listen public with token file", `admin: {listen: "0.0.0.0:8089", token_file: /run/token}`, nil},
		{"unknown admin", `admin: {admins: [U0NOPE]}`, []string{"admin.admins[0]"}},
		{"admins by email", `admin: {admins: [ana@example.com, U0BOSS]}`, nil},
		{"unused policy", `policies: {spare: {visible_to: [eng], duration: {max: 1h}, approval: {stages: [{approvers: [manager]}]}}}`, nil},
		{"no items", `catalogue: {items: null}`, []string{"catalogue.items"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, patched(t, tt.patch))
			if !slices.Equal(sorted(paths(got)), sorted(tt.want)) {
				t.Errorf("problems = %v, want them at exactly %v", got, tt.want)
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
