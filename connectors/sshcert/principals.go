package sshcert

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/latchhq/latch/workflow"
)

const (
	// DefaultPrincipalsTemplate is the principals template when
	// Config.PrincipalsTemplate is empty: the local part of the person's
	// email address, which is their login name on many fleets.
	DefaultPrincipalsTemplate = "{{.LocalPart}}"

	// MaxPrincipals bounds how many principals one certificate names.
	MaxPrincipals = 32

	// maxPrincipalLen bounds one principal, as OpenSSH bounds user names.
	maxPrincipalLen = 255
)

// principalName is the form of a principal: a plain name such as a login
// or a role, perhaps an email address. It starts with a letter, a digit or
// an underscore, so it cannot pass for an option or a pattern.
var principalName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@+-]*$`)

// validPrincipal reports whether name is a principal the connector puts in
// a certificate.
func validPrincipal(name string) bool {
	return len(name) <= maxPrincipalLen && principalName.MatchString(name)
}

var templateFuncs = template.FuncMap{
	"lower":   strings.ToLower,
	"upper":   strings.ToUpper,
	"replace": func(old, repl, s string) string { return strings.ReplaceAll(s, old, repl) },
}

// sampleUser is the person a principals template is tried on in New, so
// that a misspelt field fails then rather than at the first request.
var sampleUser = workflow.User{SlackID: "U0SAMPLE1", Email: "jane.doe@example.com"}

// parsePrincipals parses a principals template and tries it on a sample
// person with each of the entitlements.
func parsePrincipals(text string, entitlements []string) (*template.Template, error) {
	t, err := template.New("principals").Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	for _, e := range entitlements {
		if _, err := principals(t, sampleUser, e); err != nil {
			return nil, fmt.Errorf("for a sample person (%s, %s) and entitlement %q: %w", sampleUser.SlackID, sampleUser.Email, e, err)
		}
	}
	return t, nil
}

// principals runs the template for u and entitlement and returns the
// principals it names: its output split at commas and white space, with
// duplicates dropped. Every error matches ErrInvalidPrincipal.
//
// A value the template takes from the person may hold no comma, white
// space or control character, so that a person's data can never add a
// principal of its own: only the template's own text separates them.
func principals(t *template.Template, u workflow.User, entitlement string) ([]string, error) {
	var b strings.Builder
	if err := t.Execute(&b, templateData{user: u, entitlement: entitlement}); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, fmt.Errorf("%w: the principals template fails for %s: %w", ErrInvalidPrincipal, u.SlackID, err)
	}
	var names []string
	for _, name := range strings.FieldsFunc(b.String(), func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if !validPrincipal(name) {
			return nil, fmt.Errorf("%w: the principals template yields %q for %s, which is not a plain name (letters, digits and . _ @ + -, at most %d); an administrator must fix the template or the person's directory entry",
				ErrInvalidPrincipal, name, u.SlackID, maxPrincipalLen)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	switch {
	case len(names) == 0:
		return nil, fmt.Errorf("%w: the principals template yields no principal for %s; an administrator must fix the template or the person's directory entry",
			ErrInvalidPrincipal, u.SlackID)
	case len(names) > MaxPrincipals:
		return nil, fmt.Errorf("%w: the principals template yields %d principals for %s, more than %d", ErrInvalidPrincipal, len(names), u.SlackID, MaxPrincipals)
	}
	return names, nil
}

// templateData is the dot of a principals template. Its methods check the
// values they return; see principals.
type templateData struct {
	user        workflow.User
	entitlement string
}

// Email is the person's email address.
func (d templateData) Email() (string, error) { return field("Email", d.user.Email) }

// LocalPart is the part of the email address before the "@".
func (d templateData) LocalPart() (string, error) { return field("LocalPart", d.user.LocalPart()) }

// Name is the person's name as the directory gives it to connectors: the
// local part of their email address.
func (d templateData) Name() (string, error) { return field("Name", d.user.LocalPart()) }

// SlackID is the person's Slack user id, such as U0123ABCD.
func (d templateData) SlackID() (string, error) { return field("SlackID", d.user.SlackID) }

// Entitlement is the entitlement granted, one of Config.Entitlements.
func (d templateData) Entitlement() (string, error) { return field("Entitlement", d.entitlement) }

// field returns value, or an error if it holds a separator or a control
// character.
func field(name, value string) (string, error) {
	if strings.ContainsFunc(value, func(r rune) bool { return r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return "", &fieldError{field: name, value: value}
	}
	return value, nil
}

// fieldError refuses a value from the person that could smuggle a
// principal into the certificate.
type fieldError struct {
	field string
	value string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%v: the person's %s %q holds a comma, white space or a control character; an administrator must fix the directory entry",
		ErrInvalidPrincipal, e.field, e.value)
}

func (e *fieldError) Is(target error) bool { return target == ErrInvalidPrincipal }
