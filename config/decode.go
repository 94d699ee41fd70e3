package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// fieldKeys returns the YAML keys of a struct type and the type under each.
func fieldKeys(t reflect.Type) map[string]reflect.Type {
	keys := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ","); name != "" && name != "-" {
			keys[name] = f.Type
		}
	}
	return keys
}

// joinPath appends a key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkKeys reports every key of raw that the schema type t does not have,
// with a likely intended key when there is one. Values of the wrong shape
// are left for decode to report.
func checkKeys(ps *problems, path string, raw any, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		fields := fieldKeys(t)
		for _, k := range sortedKeys(m) {
			p := joinPath(path, k)
			ft, known := fields[k]
			if !known {
				ps.add(p, "%s", unknownKey(p, k, fields))
				continue
			}
			checkKeys(ps, p, m[k], ft)
		}
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			return
		}
		for i, v := range list {
			checkKeys(ps, index(path, i), v, t.Elem())
		}
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		for _, k := range sortedKeys(m) {
			checkKeys(ps, joinPath(path, k), m[k], t.Elem())
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// secretEnv names the environment variable for secrets that have one.
var secretEnv = map[string]string{
	"slack.app_token": envAppToken,
	"slack.bot_token": envBotToken,
	"admin.token":     envAdminToken,
}

// looksSecret reports whether a key name suggests it holds a secret.
func looksSecret(key string) bool {
	for _, word := range []string{"password", "secret", "token"} {
		if strings.Contains(key, word) {
			return true
		}
	}
	return false
}

// unknownKey says what to do about a key the schema does not have.
func unknownKey(path, key string, fields map[string]reflect.Type) string {
	if env, ok := secretEnv[path]; ok {
		return fmt.Sprintf("secrets are never read from the configuration file; set the %s environment variable or %s_file", env, path)
	}
	if looksSecret(key) {
		_, hasEnv := fields[key+"_env"]
		_, hasFile := fields[key+"_file"]
		if hasEnv || hasFile {
			return fmt.Sprintf("literal secrets are not allowed in the configuration file; name an environment variable with %s_env or a file with %s_file", key, key)
		}
		return "looks like a literal secret, which the configuration file must not hold; pass it through an environment variable or a file"
	}
	valid := sortedKeys(fields)
	return "unknown key" + hint(key, valid, "valid keys here: "+strings.Join(valid, ", "))
}

// valueError is a value that has the right type but cannot be used.
type valueError string

func (e valueError) Error() string { return string(e) }

var durationType = reflect.TypeFor[time.Duration]()

// durationHook decodes durations written in Go syntax, plus a leading day
// count ("7d", "1d12h").
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseDuration(v)
	case int, int64, uint64, float64:
		if reflect.ValueOf(v).IsZero() {
			return time.Duration(0), nil
		}
		return nil, valueError(fmt.Sprintf("%v has no unit; write a duration such as 90s, 15m, 6h or 7d", v))
	}
	return data, nil
}

// ParseDuration parses a duration as the configuration writes them: Go
// syntax with an optional leading number of days, such as "45m", "6h",
// "7d" or "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	bad := valueError(fmt.Sprintf("invalid duration %q; write a number and a unit (s, m, h, d), such as 90s, 15m, 6h, 7d or 1d12h", s))
	days, rest, hasDays := strings.Cut(strings.TrimSpace(s), "d")
	if !hasDays {
		d, err := time.ParseDuration(days)
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 36500 {
		return 0, bad
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, bad
		}
		d += r
	}
	return d, nil
}

// textHook lets a number stand where text is expected (a label value, an
// entitlement such as a numeric group id).
func textHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.String {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return fmt.Sprint(data), nil
	}
	return data, nil
}

// decode decodes raw into out, reporting every value of the wrong type
// under path.
func decode(ps *problems, path string, raw, out any) {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:     out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(durationHook, textHook),
	})
	if err != nil {
		panic(fmt.Sprintf("config: decoder for %T: %v", out, err)) // out is always a pointer
	}
	if err := dec.Decode(raw); err != nil {
		reportDecodeErrors(ps, path, err)
	}
}

// reportDecodeErrors turns the tree of errors mapstructure returns into one
// problem per offending value.
func reportDecodeErrors(ps *problems, path string, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			reportDecodeErrors(ps, path, e)
		}
		return
	}
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		ps.addTyped(path, "cannot be read: "+err.Error())
		return
	}
	inner := de.Unwrap()
	if _, nested := inner.(interface{ Unwrap() []error }); nested {
		reportDecodeErrors(ps, path, inner)
		return
	}
	ps.addTyped(joinPath(path, keyPath(de.Name())), typeMessage(inner))
}

// mapIndex matches the "[key]" mapstructure writes for a map entry.
var mapIndex = regexp.MustCompile(`\[([^\]]*)\]`)

// keyPath rewrites a mapstructure field name into a key path: map entries
// become ".key", list indexes stay "[i]".
func keyPath(name string) string {
	return mapIndex.ReplaceAllStringFunc(name, func(m string) string {
		inner := m[1 : len(m)-1]
		if _, err := strconv.Atoi(inner); err == nil {
			return m
		}
		return "." + inner
	})
}

// typeMessage says what was expected where a value could not be decoded.
func typeMessage(err error) string {
	var ve valueError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	var ute *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("wrong type: want %s, got %s", describeType(ute.Expected.Type()), describeValue(ute.Value))
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("wrong type: want %s, got %s", describeType(pe.Expected.Type()), describeValue(pe.Value))
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "array or slice"):
		return "wrong type: want a list; write one entry per line starting with \"- \", or [a, b]"
	case strings.Contains(msg, "map or struct"):
		return "wrong type: want a mapping of keys to values"
	}
	return "wrong type: " + msg
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 15m, 6h or 7d"
	case t.Kind() == reflect.String:
		return "text"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
		return "a mapping of keys to values"
	}
	return t.String()
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%T", v)
}
