package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readYAML parses a configuration file into plain values: map[string]any
// for mappings, []any for lists, and string, int, float64, bool or nil for
// scalars, with aliases and merge keys (<<) resolved. A key written without
// a value stays, as nil; a key written twice is reported, and the first is
// kept. It also returns the line of every key path. A file that is not
// YAML, or not a mapping, gives a *FileError.
func readYAML(ps *problems, file string, data []byte) (map[string]any, map[string]int, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, syntaxError(file, err)
	}
	r := reader{ps: ps, lines: make(map[string]int)}
	if len(root.Content) == 0 {
		return nil, r.lines, nil
	}
	doc := root.Content[0]
	tree, ok := r.value("", doc).(map[string]any)
	if !ok && doc.Tag != "!!null" {
		return nil, nil, &FileError{File: file, Line: doc.Line, Err: fmt.Errorf("the top level must be a mapping of keys such as slack, store and policies")}
	}
	return tree, r.lines, nil
}

// yamlLine matches the position yaml gives in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns a yaml parse error into a *FileError with its line.
func syntaxError(file string, err error) *FileError {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return &FileError{File: file, Line: line, Err: fmt.Errorf("%w: %s; check the indentation and quoting here and on the lines before", ErrSyntax, msg)}
}

// reader converts yaml nodes into plain values.
type reader struct {
	ps    *problems
	lines map[string]int
	nodes int // values read so far, aliases expanded
}

// maxNodes bounds the values a configuration may expand to: aliases of
// aliases can make a few lines stand for billions of values.
const maxNodes = 1_000_000

func (r *reader) value(path string, n *yaml.Node) any {
	if r.nodes++; r.nodes == maxNodes {
		r.ps.addAt(path, n.Line, "the file expands to more than %d values (aliases of aliases?); write the values out", maxNodes)
	}
	if r.nodes >= maxNodes {
		return ""
	}
	switch n.Kind {
	case yaml.DocumentNode:
		return r.value(path, n.Content[0])
	case yaml.AliasNode:
		return r.value(path, n.Alias)
	case yaml.MappingNode:
		return r.mapping(path, n)
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, c := range n.Content {
			p := index(path, i)
			r.lines[p] = c.Line
			list[i] = r.value(p, c)
		}
		return list
	}
	var v any
	if err := n.Decode(&v); err != nil {
		r.ps.addAt(path, n.Line, "the value does not fit its tag %s; fix the value or remove the tag", n.Tag)
	}
	return v
}

// mapping converts a mapping. Keys merged in with << come first, so that
// the mapping's own keys override them, as YAML has it.
func (r *reader) mapping(path string, n *yaml.Node) map[string]any {
	m := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Tag == "!!merge" {
			r.merge(joinPath(path, k.Value), m, r.value(path, v))
		}
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			r.ps.addAt(p, k.Line, "%s is given twice, at lines %d and %d; remove or rename one", k.Value, first, k.Line)
			continue
		}
		seen[k.Value] = k.Line
		r.lines[p] = k.Line
		m[k.Value] = r.value(p, v)
	}
	return m
}

// merge adds to m the keys of a merged value (a mapping, or a list of
// them, the first winning) that m does not have yet.
func (r *reader) merge(path string, m map[string]any, merged any) {
	switch v := merged.(type) {
	case map[string]any:
		for k, x := range v {
			if _, ok := m[k]; !ok {
				m[k] = x
			}
		}
	case []any:
		for _, x := range v {
			r.merge(path, m, x)
		}
	default:
		r.ps.add(path, "<< merges a mapping into this one; write <<: *anchor, naming a mapping")
	}
}

// lineOf returns the line of path in the file, or of its nearest parent
// that is in the file.
func lineOf(lines map[string]int, path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := lines[p]; ok {
			return l
		}
	}
	return 0
}
