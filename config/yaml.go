package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// scanYAML walks the parsed file before viper folds the case of its keys.
// It returns the line of every key path (in lowercase, as viper reads
// them) and reports keys that are not lowercase, which viper would
// otherwise change silently.
func scanYAML(ps *problems, root *yaml.Node) map[string]int {
	lines := make(map[string]int)
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(path, c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				lines[strings.ToLower(p)] = k.Line
				if lower := strings.ToLower(k.Value); lower != k.Value {
					ps.add(p, "%s", caseProblem(path, lower))
				}
				walk(p, v)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := index(path, i)
				lines[strings.ToLower(p)] = c.Line
				walk(p, c)
			}
		}
	}
	walk("", root)
	return lines
}

// caseProblem explains why a key must be lowercase, in the terms of where
// it is.
func caseProblem(parent, lower string) string {
	switch {
	case parent == "policies":
		return "policy names are read without case, so they must be lowercase; write " + lower + " here and in the items that refer to it"
	case strings.HasSuffix(parent, ".labels"):
		return "label keys are read without case, so they must be lowercase; write " + lower + " (and so in conditions)"
	}
	return "keys are lowercase; write " + lower
}

// lineOf returns the line of path in the file, or of its nearest parent
// that is in the file.
func lineOf(lines map[string]int, path string) int {
	for p := strings.ToLower(path); p != ""; p = parentPath(p) {
		if l, ok := lines[p]; ok {
			return l
		}
	}
	return 0
}
