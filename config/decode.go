package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchhq/latch/workflow"
)

// fieldKeys returns the YAML keys of a struct type and the field under
// each. Fields tagged "-" are filled in by the checks, not from the file.
func fieldKeys(t reflect.Type) map[string]reflect.StructField {
	keys := make(map[string]reflect.StructField, t.NumField())
	for f := range t.Fields() {
		if name := f.Tag.Get("yaml"); name != "" && name != "-" {
			keys[name] = f
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var durationType = reflect.TypeFor[time.Duration]()

// decode sets out, a pointer, from raw, the value read from the file at
// path. It reports every key the schema does not have and every value of
// the wrong type, and silences the problems that would follow from them.
// A nil raw (a key written without a value) leaves the target as it is.
func decode(ps *problems, path string, raw, out any) {
	decodeValue(ps, path, raw, reflect.ValueOf(out).Elem())
}

func decodeValue(ps *problems, path string, raw any, v reflect.Value) {
	if raw == nil {
		return
	}
	t := v.Type()
	if t == durationType {
		d, msg := durationOf(raw)
		if msg != "" {
			ps.addOnly(path, "%s", msg)
			return
		}
		v.SetInt(int64(d))
		return
	}
	wrongType := func() {
		ps.addOnly(path, "wrong type: want %s, got %s", describeType(t), describeValue(raw))
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		decodeValue(ps, path, raw, p.Elem())
		v.Set(p)
	case reflect.Interface:
		v.Set(reflect.ValueOf(raw))
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case int, int64, uint64, float64: // a label value or an entitlement may be a number
			v.SetString(fmt.Sprint(x))
		default:
			wrongType()
		}
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			wrongType()
			return
		}
		v.SetBool(b)
	case reflect.Int:
		n, msg := integerOf(raw)
		if msg != "" {
			ps.addOnly(path, "%s", msg)
			return
		}
		v.SetInt(n)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			ps.addOnly(path, "wrong type: want a list; write one entry per line starting with \"- \", or [a, b]")
			return
		}
		s := reflect.MakeSlice(t, len(list), len(list))
		for i, x := range list {
			decodeValue(ps, index(path, i), x, s.Index(i))
		}
		v.Set(s)
	case reflect.Map, reflect.Struct:
		m, ok := raw.(map[string]any)
		switch {
		case !ok:
			wrongType()
		case t.Kind() == reflect.Struct:
			decodeStruct(ps, path, m, v)
		default:
			out := reflect.MakeMapWithSize(t, len(m))
			for _, k := range sortedKeys(m) {
				e := reflect.New(t.Elem()).Elem()
				decodeValue(ps, joinPath(path, k), m[k], e)
				out.SetMapIndex(reflect.ValueOf(k), e)
			}
			v.Set(out)
		}
	default:
		panic(fmt.Sprintf("config: no decoding into %s", t)) // the schema uses none
	}
}

// decodeStruct decodes a mapping into a struct, key by key.
func decodeStruct(ps *problems, path string, m map[string]any, v reflect.Value) {
	fields := fieldKeys(v.Type())
	for _, k := range sortedKeys(m) {
		p := joinPath(path, k)
		f, known := fields[k]
		switch {
		case known:
			decodeValue(ps, p, m[k], v.FieldByIndex(f.Index))
		case path == "" && strings.HasPrefix(k, "x-"):
			// A place for YAML anchors, ignored.
		default:
			msg, likely := unknownKey(p, k, fields)
			ps.add(p, "%s", msg)
			if _, given := m[likely]; likely != "" && !given {
				// "required" and the like would only repeat the news.
				ps.silence(joinPath(path, likely))
			}
		}
	}
}

// integerOf reads a whole number, returning what is wrong with it if it is
// not one. A fraction is refused rather than dropped.
func integerOf(raw any) (int64, string) {
	switch x := raw.(type) {
	case int:
		return int64(x), ""
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x), ""
		}
		return 0, fmt.Sprintf("%v is not a whole number; write one without a fraction", x)
	}
	return 0, fmt.Sprintf("wrong type: want %s, got %s", describeType(reflect.TypeFor[int]()), describeValue(raw))
}

// durationOf reads a duration, returning what is wrong with it if it is
// not one.
func durationOf(raw any) (time.Duration, string) {
	switch v := raw.(type) {
	case string:
		d, err := workflow.ParseDuration(v)
		if err != nil {
			return 0, err.Error()
		}
		return d, ""
	case int, int64, uint64, float64:
		if reflect.ValueOf(v).IsZero() {
			return 0, ""
		}
		return 0, fmt.Sprintf("%v has no unit; write a duration such as 90s, 15m, 6h or 7d", v)
	}
	return 0, fmt.Sprintf("wrong type: want %s, got %s", describeType(durationType), describeValue(raw))
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 15m, 6h or 7d"
	case t.Kind() == reflect.String:
		return "text"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	}
	return "a mapping of keys to values"
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(redactToken(redactURL(v)))
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%T", v)
}

// secretEnv names the environment variable for secrets that have one.
var secretEnv = map[string]string{
	"slack.app_token": envAppToken,
	"slack.bot_token": envBotToken,
	"admin.token":     envAdminToken,
}

// unknownKey says what to do about a key the schema does not have, and
// returns the key likely meant, if any.
func unknownKey(path, key string, fields map[string]reflect.StructField) (msg, likely string) {
	if env, ok := secretEnv[path]; ok {
		return fmt.Sprintf("secrets are never read from the configuration file; set the %s environment variable or %s_file", env, path), ""
	}
	if looksSecret(key) {
		_, hasEnv := fields[key+"_env"]
		_, hasFile := fields[key+"_file"]
		if hasEnv || hasFile {
			return fmt.Sprintf("literal secrets are not allowed in the configuration file; name an environment variable with %s_env or a file with %s_file", key, key), key + "_env"
		}
		return "looks like a literal secret, which the configuration file must not hold; pass it through an environment variable or a file", ""
	}
	valid := sortedKeys(fields)
	likely = closest(key, valid)
	if likely != "" {
		return fmt.Sprintf("unknown key; did you mean %q?", likely), likely
	}
	return "unknown key; valid keys here: " + strings.Join(valid, ", "), ""
}
