package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment variable that overrides a
// key: store.path is overridden by LATCH_STORE_PATH.
const EnvPrefix = "LATCH_"

// otherEnv lists the variables with EnvPrefix that latch reads for other
// purposes than overriding a key.
var otherEnv = []string{"LATCH_CONFIG", envAdminToken, "LATCH_INTEGRATION", "LATCH_SERVER"}

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
			switch ft := fields[k].Type; ft.Kind() {
			case reflect.Struct:
				walk(joinPath(prefix, k), ft)
			case reflect.String, reflect.Bool, reflect.Int:
				keys = append(keys, joinPath(prefix, k))
			}
		}
	}
	walk("", reflect.TypeFor[document]())
	return keys
}

// applyEnv lays the environment overrides over the values read from the
// file, and returns the variable behind each key it set. An empty variable
// overrides nothing.
func applyEnv(tree map[string]any) (map[string]string, error) {
	v := viper.New()
	from := make(map[string]string)
	for _, key := range envKeys() {
		if err := v.BindEnv(key, EnvVar(key)); err != nil {
			return nil, fmt.Errorf("bind %s: %w", key, err)
		}
		if v.IsSet(key) && setKey(tree, key, v.GetString(key)) {
			from[key] = EnvVar(key)
		}
	}
	return from, nil
}

// setKey sets the value at a dotted key path, creating the mappings on the
// way. It reports false, setting nothing, where the file has something
// other than a mapping on the way: the checks report that value.
func setKey(tree map[string]any, key string, value any) bool {
	parts := strings.Split(key, ".")
	m := tree
	for _, p := range parts[:len(parts)-1] {
		switch next := m[p].(type) {
		case nil:
			child := make(map[string]any)
			m[p], m = child, child
		case map[string]any:
			m = next
		default:
			return false
		}
	}
	m[parts[len(parts)-1]] = value
	return true
}

// envOf returns the variable that set path, or one of its parents.
func envOf(from map[string]string, path string) string {
	for p := path; p != ""; p = parentPath(p) {
		if env, ok := from[p]; ok {
			return env
		}
	}
	return ""
}

// checkEnv reports the variables with EnvPrefix that latch does not read,
// such as a misspelt override, which would otherwise be ignored silently.
// The variables the configuration names for secrets are read.
func checkEnv(ps *problems, cfg *Config) {
	var overrides []string
	for _, key := range envKeys() {
		overrides = append(overrides, EnvVar(key))
	}
	known := slices.Concat(overrides, otherEnv)
	read := slices.Concat(known, referencedEnv(cfg))
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || value == "" || slices.Contains(read, name) {
			continue
		}
		ps.list = append(ps.list, Problem{Env: name, Message: "latch reads no such variable" +
			hint(name, known, "only "+strings.Join(overrides, ", ")+" override settings; policies, connectors, the directory, the catalogue and lists are set in the file")})
	}
}

// referencedEnv returns the environment variables the connectors read.
func referencedEnv(cfg *Config) []string {
	var names []string
	for _, c := range cfg.Connectors {
		switch s := c.Settings.(type) {
		case *PostgresSettings:
			names = append(names, s.Password.Env)
		case *LDAPSettings:
			names = append(names, s.BindPassword.Env)
		case *WebhookSettings:
			names = append(names, s.Secret.Env)
		case *ExecSettings:
			for _, kv := range s.Env {
				name, _, _ := strings.Cut(kv, "=")
				names = append(names, name)
			}
		}
	}
	return names
}
