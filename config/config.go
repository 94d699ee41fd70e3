// Package config loads latch's YAML configuration, checks it and converts
// it into the workflow types.
//
// Every problem in a file is reported at once, each with the key path it is
// about and what to do; see InvalidError. Secrets never live in the file:
// Slack tokens, the admin token and connector passwords are read at run time
// from environment variables or files.
package config

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/latchhq/latch/workflow"
)

// EnvPrefix starts the name of every environment variable that overrides a
// key: store.path is overridden by LATCH_STORE_PATH.
const EnvPrefix = "LATCH_"

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
// checks the result. A file that cannot be read or parsed gives a
// *FileError; a configuration with problems gives an *InvalidError listing
// all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	if len(root.Content) > 0 && root.Content[0].Kind != yaml.MappingNode && root.Content[0].Tag != "!!null" {
		return nil, &FileError{File: path, Err: fmt.Errorf("line %d: the top level must be a mapping of keys such as slack, store and policies", root.Content[0].Line)}
	}
	v := viper.New()
	v.SetConfigType("yaml")
	for _, key := range envKeys() {
		if err := v.BindEnv(key, EnvVar(key)); err != nil {
			return nil, fmt.Errorf("bind %s: %w", key, err)
		}
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, &FileError{File: path, Err: err}
	}

	ps := &problems{}
	lines := scanYAML(ps, &root)
	cfg := build(ps, v.AllSettings())
	if len(ps.list) > 0 {
		for i := range ps.list {
			ps.list[i].Line = lineOf(lines, ps.list[i].Path)
		}
		slices.SortStableFunc(ps.list, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Path, b.Path))
		})
		return nil, &InvalidError{File: path, Problems: ps.list}
	}
	cfg.File = path
	return cfg, nil
}

// EnvVar returns the environment variable that overrides a key.
func EnvVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envKeys returns the keys environment variables can override: every
// single value reached from the top through mappings alone.
func envKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		fields := fieldKeys(t)
		for _, k := range sortedKeys(fields) {
			switch ft := fields[k]; ft.Kind() {
			case reflect.Struct:
				walk(joinPath(prefix, k), ft)
			case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
				keys = append(keys, joinPath(prefix, k))
			}
		}
	}
	walk("", reflect.TypeFor[document]())
	return keys
}

// build checks the settings and converts them.
func build(ps *problems, raw map[string]any) *Config {
	var doc document
	checkKeys(ps, "", raw, reflect.TypeFor[document]())
	// Policies are decoded one by one: mapstructure drops a whole map entry
	// when one of its values is wrong, and the rest of the policy would then
	// go unchecked.
	rest := maps.Clone(raw)
	delete(rest, "policies")
	decode(ps, "", rest, &doc)
	doc.Policies = make(map[string]policyDoc)
	switch rp := raw["policies"].(type) {
	case nil:
	case map[string]any:
		for name, v := range rp {
			var pd policyDoc
			decode(ps, "policies."+name, v, &pd)
			doc.Policies[name] = pd
		}
	default:
		ps.addTyped("policies", "wrong type: want a mapping of policy names to policies")
	}

	cfg := &Config{Slack: doc.Slack, Store: doc.Store, Log: doc.Log, Admin: doc.Admin, Channels: doc.Channels}
	cfg.Connectors = buildConnectors(ps, doc.Connectors)
	var pp people
	cfg.Directory, pp = buildDirectory(ps, doc.Directory, cfg.Connectors)
	checkSlack(ps, &cfg.Slack)
	checkStore(ps, &cfg.Store)
	checkLog(ps, &cfg.Log)
	checkAdmin(ps, &cfg.Admin, pp)
	checkChannels(ps, cfg.Channels)

	var reach map[string][]stageReach
	cfg.Policies, reach = buildPolicies(policyRefs{ps: ps, people: pp, dir: cfg.Directory, channels: cfg.Channels}, doc.Policies)
	cfg.Catalogue = buildCatalogue(ps, doc.Catalogue, cfg.Connectors, cfg.Policies, reach, pp)

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
	if c.Security != "" && !slackChannelID.MatchString(c.Security) {
		ps.add("channels.security", "%q is not a Slack channel id; use the id (C…), found in the channel's details", c.Security)
	}
	for i, ch := range c.BreakGlass {
		p := index("channels.breakglass", i)
		switch {
		case !slackChannelID.MatchString(ch):
			ps.add(p, "%q is not a Slack channel id; use the id (C…), found in the channel's details", ch)
		case slices.Index(c.BreakGlass, ch) < i:
			ps.add(p, "channel %s is listed twice; remove one", ch)
		}
	}
}
