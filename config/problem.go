package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the key path of the offending value, e.g.
	// "policies.prod.approval.stages[0].required". It is empty for a
	// problem with the file as a whole or with an environment variable that
	// is no setting.
	Path string
	// Env is the environment variable the value came from, if it did.
	Env string
	// Message says what is wrong and what to do about it.
	Message string
	// Line is the line of the YAML file the path is on (or, for a missing
	// key, the line of its nearest parent); zero if unknown or if the value
	// came from the environment.
	Line int
}

// String returns the problem as one line: "path: message", with
// " (from VARIABLE)" after the path for a value from the environment.
func (p Problem) String() string {
	at := p.Path
	switch {
	case p.Env != "" && at == "":
		at = p.Env
	case p.Env != "":
		at += " (from " + p.Env + ")"
	}
	if at == "" {
		return p.Message
	}
	return at + ": " + p.Message
}

// InvalidError is returned by Load when the configuration is well-formed YAML
// but not a valid configuration. It lists every problem found.
type InvalidError struct {
	File     string
	Problems []Problem
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration %s: %s", e.File, plural(len(e.Problems), "problem"))
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrSyntax means the file is not valid YAML.
var ErrSyntax = errors.New("not valid YAML")

// FileError is returned by Load when the file cannot be read or is not a
// YAML mapping. Line, when not zero, is where the file goes wrong; Error
// then reads "file:line: what is wrong".
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("configuration %s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error {
	return e.Err
}

// problems collects Problems while a configuration is checked.
type problems struct {
	list []Problem
	// quiet holds paths already explained by one problem (a value of the
	// wrong type, an empty policy, a key likely misspelt elsewhere); further
	// problems at or below them would only repeat the news.
	quiet map[string]bool
}

func (ps *problems) add(path, format string, args ...any) {
	ps.addAt(path, 0, format, args...)
}

// addAt adds a problem whose line is known.
func (ps *problems) addAt(path string, line int, format string, args ...any) {
	if !ps.silenced(path) {
		ps.list = append(ps.list, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
	}
}

// silenced reports whether path, or a path above it, has been explained
// already, so that its value is not to be relied on.
func (ps *problems) silenced(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if ps.quiet[p] {
			return true
		}
	}
	return false
}

// addOnly adds a problem and silences any other at or below path.
func (ps *problems) addOnly(path, format string, args ...any) {
	ps.add(path, format, args...)
	ps.silence(path)
}

// silence drops every later problem at or below path.
func (ps *problems) silence(path string) {
	if ps.quiet == nil {
		ps.quiet = make(map[string]bool)
	}
	ps.quiet[path] = true
}

// parentPath returns the path one level up: "a.b[2].c" → "a.b[2]" → "a.b".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// index appends a list index to a path.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// closest returns the candidate closest to word, or "" when none is close
// enough to be a likely typo.
func closest(word string, candidates []string) string {
	limit := max(1, (len(word)+2)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == word {
		return ""
	}
	return best
}

// hint returns `; did you mean "x"?` for the candidate closest to word, or
// "; " and otherwise when none is close.
func hint(word string, candidates []string, otherwise string) string {
	if c := closest(word, candidates); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return "; " + otherwise
}

// oneOf is hint with the list of valid choices as the fallback.
func oneOf(word string, choices []string) string {
	return hint(word, choices, "use one of "+strings.Join(sorted(choices), ", "))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// editDistance is the Levenshtein distance between a and b, over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// plural returns "1 approval" or "2 approvals".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// onlyPeople returns "nobody", "only 1 person" or "only 2 people".
func onlyPeople(n int) string {
	switch n {
	case 0:
		return "nobody"
	case 1:
		return "only 1 person"
	}
	return fmt.Sprintf("only %d people", n)
}

// identity checks the value that identifies each entry of a list (an id, a
// name, an email): present, well-formed and used by one entry only.
type identity struct {
	list    string              // the list's path, e.g. "directory.users"
	key     string              // the key within an entry, e.g. "slack_id"
	missing string              // what to say when the value is absent
	form    func(string) string // returns what is wrong with the value's form, or ""
	fold    bool                // values differing only in case are the same
	seen    map[string]int
}

// check checks the value of entry i and reports whether it is good. An
// entry whose value is not good is best left out of what is built, so that
// it causes no further, misleading problems.
func (id *identity) check(ps *problems, i int, value string) bool {
	path := index(id.list, i) + "." + id.key
	if value == "" {
		ps.add(path, "required; %s", id.missing)
		return false
	}
	if id.form != nil {
		if msg := id.form(value); msg != "" {
			ps.add(path, "%s", msg)
			return false
		}
	}
	k := value
	if id.fold {
		k = strings.ToLower(value)
	}
	if j, dup := id.seen[k]; dup {
		ps.add(path, "%q is already used by %s[%d]; each %s must be unique", value, id.list, j, id.key)
		return false
	}
	if id.seen == nil {
		id.seen = make(map[string]int)
	}
	id.seen[k] = i
	return true
}

// slugForm says what is wrong with a name that is not a slug.
func slugForm(v string) string {
	if slugPattern.MatchString(v) {
		return ""
	}
	return fmt.Sprintf("%q is not a valid name; %s", v, slugAdvice)
}

// slugPattern is the form of names that are keys or appear in commands:
// policy, group and connector names, item ids.
var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

const slugAdvice = "use lowercase letters, digits, - and _, starting with a letter"
