// Package config loads latch's YAML configuration, checks it and converts
// it into the workflow types.
//
// Every problem in a file is reported at once, each with the key path it is
// about and what to do; see InvalidError. Secrets never live in the file:
// Slack tokens, the admin token and connector passwords are read at run time
// from environment variables or files.
package config

import (
	"cmp"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/workflow"
)

// Config is a loaded, valid configuration.
type Config struct {
	File     string // the file it was loaded from
	Slack    Slack
	Store    Store
	Log      Log
	Admin    Admin // Admins hold Slack ids
	Channels Channels

	Directory  *workflow.StaticDirectory
	Connectors []Connector
	Catalogue  *workflow.Catalogue
	Policies   map[string]*workflow.Policy
	Audit      Audit
	Reconcile  Reconcile
}

// Connector returns the connector with a name.
func (c *Config) Connector(name string) (Connector, bool) {
	i := slices.IndexFunc(c.Connectors, func(c Connector) bool { return c.Name == name })
	if i < 0 {
		return Connector{}, false
	}
	return c.Connectors[i], true
}

// Load reads the YAML file at path, applies environment overrides and
// checks the result. A file that cannot be read, is not YAML or is not a
// mapping gives a *FileError; a configuration with problems gives an
// *InvalidError listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	ps := &problems{}
	tree, lines, err := readYAML(ps, path, data)
	if err != nil {
		return nil, err
	}
	var cfg *Config
	if len(tree) == 0 {
		ps.add("", "the file is empty; a configuration needs at least directory.users, connectors, catalogue.items, policies and channels.security: start from config.example.yaml")
	} else {
		from, err := applyEnv(tree)
		if err != nil {
			return nil, err
		}
		cfg = build(ps, tree)
		checkEnv(ps, cfg)
		for i, p := range ps.list {
			if env := envOf(from, p.Path); env != "" {
				ps.list[i].Env, ps.list[i].Line = env, 0
			} else if p.Line == 0 {
				ps.list[i].Line = lineOf(lines, p.Path)
			}
		}
	}
	if len(ps.list) > 0 {
		slices.SortStableFunc(ps.list, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Path, b.Path), strings.Compare(a.Env, b.Env))
		})
		return nil, &InvalidError{File: path, Problems: ps.list}
	}
	cfg.File = path
	return cfg, nil
}

// build checks the settings and converts them.
func build(ps *problems, raw map[string]any) *Config {
	var doc document
	decode(ps, "", raw, &doc)
	if rp, ok := raw["policies"].(map[string]any); ok {
		for _, name := range sortedKeys(rp) {
			if m, isMap := rp[name].(map[string]any); rp[name] == nil || isMap && len(m) == 0 {
				ps.addOnly("policies."+name, "empty; a policy needs at least duration.max and approval.stages")
			}
		}
	}

	cfg := &Config{Slack: doc.Slack, Store: doc.Store, Log: doc.Log, Admin: doc.Admin, Channels: doc.Channels,
		Audit: doc.Audit, Reconcile: doc.Reconcile}
	cfg.Connectors = buildConnectors(ps, doc.Connectors)
	var pp people
	cfg.Directory, pp = buildDirectory(ps, doc.Directory, cfg.Connectors)
	checkSlack(ps, &cfg.Slack)
	checkStore(ps, &cfg.Store)
	checkLog(ps, &cfg.Log)
	checkAdmin(ps, &cfg.Admin, pp)
	checkChannels(ps, cfg.Channels)
	checkAudit(ps, &cfg.Audit)
	checkReconcile(ps, &cfg.Reconcile, cfg.Connectors)

	var reaches map[string]policyReach
	cfg.Policies, reaches = buildPolicies(policyRefs{ps: ps, people: pp, dir: cfg.Directory, channels: cfg.Channels}, doc.Policies)
	cfg.Catalogue = buildCatalogue(ps, doc.Catalogue, cfg.Connectors, cfg.Policies, reaches, pp)

	breakGlass := false
	for _, p := range cfg.Policies {
		breakGlass = breakGlass || p.BreakGlass.Enabled
	}
	if cfg.Channels.Security == "" {
		switch {
		case cfg.Catalogue.Len() > 0:
			ps.add("channels.security", "required; revoke failures and audit checkpoints are posted there: give the security team's channel id (C…)")
		case breakGlass:
			ps.add("channels.security", "required; break-glass grants are announced there: give the security team's channel id (C…)")
		}
	}
	return cfg
}

func checkSlack(ps *problems, s *Slack) {
	if s.APIURL == "" {
		s.APIURL = DefaultSlackAPIURL
	}
	u := checkURL(ps, "slack.api_url", s.APIURL, "https", "http")
	switch {
	case u == nil:
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		ps.add("slack.api_url", "http:// to %s would send the tokens in clear; use https://", u.Hostname())
	case !strings.HasSuffix(u.Path, "/"):
		ps.add("slack.api_url", "must end with /, as in %s", DefaultSlackAPIURL)
	}
}

func checkStore(ps *problems, s *Store) {
	if s.Path == "" {
		s.Path = DefaultStorePath
	}
}

func checkLog(ps *problems, l *Log) {
	if l.Level == "" {
		l.Level = DefaultLogLevel
	}
	if _, err := zerolog.ParseLevel(l.Level); err != nil {
		ps.add("log.level", "unknown level %q; use trace, debug, info, warn, error or disabled", l.Level)
	}
}

func checkAdmin(ps *problems, a *Admin, pp people) {
	if a.Listen == "" {
		a.Listen = DefaultAdminListen
	}
	host, port, err := net.SplitHostPort(a.Listen)
	switch {
	case err != nil || port == "":
		ps.add("admin.listen", "%q is not host:port; write it like %s", a.Listen, DefaultAdminListen)
	case !isLoopback(host) && a.TokenFile == "" && os.Getenv(envAdminToken) == "":
		ps.add("admin.listen", "%s is reachable from other machines but no admin token is set; set admin.token_file or %s, or listen on 127.0.0.1", a.Listen, envAdminToken)
	}
	a.Admins = pp.resolveAll(ps, "admin.admins", a.Admins)
}

func checkChannels(ps *problems, c Channels) {
	if msg := channelForm(c.Security); c.Security != "" && msg != "" {
		ps.add("channels.security", "%s", msg)
	}
	for i, ch := range c.BreakGlass {
		p := index("channels.breakglass", i)
		if msg := channelForm(ch); msg != "" {
			ps.add(p, "%s", msg)
		} else if slices.Index(c.BreakGlass, ch) < i {
			ps.add(p, "channel %s is listed twice; remove one", ch)
		}
	}
}
