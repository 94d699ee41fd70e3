package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// schemaPaths returns the key path of every single value the schema has,
// walking the structs Load decodes into. Lists read "[]", map entries
// "<name>", and connector settings "connectors[type=T].settings".
func schemaPaths() []string {
	var out []string
	var walk func(path string, t reflect.Type)
	walk = func(path string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Struct:
			for key, f := range fieldKeys(t) {
				walk(joinPath(path, key), f.Type)
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			walk(path+"[]", t.Elem())
		case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct:
			walk(path+".<name>", t.Elem())
		default:
			out = append(out, path)
		}
	}
	walk("", reflect.TypeFor[document]())
	for typ, st := range connectorTypes {
		walk("connectors[type="+typ+"].settings", st)
	}
	slices.Sort(out)
	return out
}

// readmeSection returns the configuration reference from README.md.
func readmeSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- config-reference:start -->")
	section, _, ok2 := strings.Cut(rest, "<!-- config-reference:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks the config-reference markers")
	}
	return section
}

// tableKey matches a reference table row and captures its key path.
var tableKey = regexp.MustCompile("(?m)^\\|\\s*`([^`]+)`")

func TestReadmeReferenceMatchesSchema(t *testing.T) {
	section := readmeSection(t)
	var documented []string
	for _, m := range tableKey.FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	schema := schemaPaths()
	for _, p := range schema {
		if !slices.Contains(documented, p) {
			t.Errorf("README configuration reference lacks a row for %s", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(schema, p) {
			t.Errorf("README configuration reference documents %s, which is not a key", p)
		}
	}
	for _, key := range envKeys() {
		if !strings.Contains(section, EnvVar(key)) {
			t.Errorf("README configuration reference does not name %s, which overrides %s", EnvVar(key), key)
		}
	}
}
