package workflow

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Limits on conditions. A condition is a short predicate; these keep a
// hostile or careless one from costing more than a moment.
const (
	// ConditionMaxLength is the longest condition accepted, in code points.
	ConditionMaxLength = 4096
	// ConditionCostLimit is the evaluation cost after which a condition is
	// stopped. Comparing a few fields costs well under 100.
	ConditionCostLimit = 100_000
)

// ErrConditionCost means a condition was stopped because it exceeded
// ConditionCostLimit.
var ErrConditionCost = errors.New("condition exceeded its cost limit")

// Facts are what a condition can see. In CEL they are the variables request,
// requester, beneficiary, item and now.
type Facts struct {
	Request     RequestFacts
	Requester   PersonFacts
	Beneficiary PersonFacts // the requester, unless requesting for someone else
	Item        ItemFacts
	Now         time.Time
}

// RequestFacts describe the request being decided.
type RequestFacts struct {
	Duration      time.Duration `cel:"duration"`
	Justification string        `cel:"justification"`
	Ticket        string        `cel:"ticket"`
	OnBehalf      bool          `cel:"on_behalf"`
	BreakGlass    bool          `cel:"breakglass"`
}

// PersonFacts describe the requester or the beneficiary.
type PersonFacts struct {
	ID      string   `cel:"id"` // Slack id
	Email   string   `cel:"email"`
	Manager string   `cel:"manager"` // Slack id, or ""
	Groups  []string `cel:"groups"`
}

// PersonFactsOf returns the facts about a directory user.
func PersonFactsOf(u User) PersonFacts {
	return PersonFacts{ID: u.SlackID, Email: u.Email, Manager: u.Manager, Groups: slices.Clone(u.Groups)}
}

// ItemFacts describe the requested item.
type ItemFacts struct {
	ID         string            `cel:"id"`
	Name       string            `cel:"name"`
	Kind       string            `cel:"kind"`
	Labels     map[string]string `cel:"labels"`
	Owners     []string          `cel:"owners"`
	Connectors []string          `cel:"connectors"`
}

// ItemFactsOf returns the facts about a catalogue item.
func ItemFactsOf(it Item) ItemFacts {
	return ItemFacts{
		ID:         it.ID,
		Name:       it.Name,
		Kind:       string(it.Kind),
		Labels:     it.Labels,
		Owners:     slices.Clone(it.Owners),
		Connectors: it.Connectors(),
	}
}

// ConditionError is a problem found while compiling a condition, at a
// position in its text. Line and Column count from 1.
type ConditionError struct {
	Line   int
	Column int
	Reason string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Reason)
}

// Condition is a compiled CEL predicate over Facts, such as
//
//	"oncall" in requester.groups && request.duration <= duration("6h")
//
// It is safe for concurrent use.
type Condition struct {
	text    string
	program cel.Program
}

// conditionEnv is the CEL environment shared by every condition. Its
// variables are typed, so a misspelt field fails at compile time.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(
			ext.ParseStructTags(true),
			reflect.TypeFor[RequestFacts](),
			reflect.TypeFor[PersonFacts](),
			reflect.TypeFor[ItemFacts](),
		),
		ext.Strings(ext.StringsVersion(5)),
		cel.Variable("request", cel.ObjectType("workflow.RequestFacts")),
		cel.Variable("requester", cel.ObjectType("workflow.PersonFacts")),
		cel.Variable("beneficiary", cel.ObjectType("workflow.PersonFacts")),
		cel.Variable("item", cel.ObjectType("workflow.ItemFacts")),
		cel.Variable("now", cel.TimestampType),
		cel.ParserExpressionSizeLimit(ConditionMaxLength),
	)
})

// CompileCondition compiles text into a Condition. It fails, with a
// *ConditionError for each problem (joined if several), when the text does
// not parse, refers to something that does not exist, does not return a
// bool, or holds a constant regular expression that does not compile.
func CompileCondition(text string) (*Condition, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	if strings.TrimSpace(text) == "" {
		return nil, &ConditionError{Line: 1, Column: 1, Reason: "the condition is empty"}
	}
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			ce := &ConditionError{
				Line:   max(e.Location.Line(), 1),
				Column: max(e.Location.Column()+1, 1),
				Reason: e.Message,
			}
			ce.Reason += fieldsHint(text, ce)
			errs = append(errs, ce)
		}
		return nil, errors.Join(errs...)
	}
	if out := ast.OutputType(); !out.IsExactType(cel.BoolType) {
		return nil, &ConditionError{
			Line:   1,
			Column: 1,
			Reason: fmt.Sprintf("the expression returns %s; a condition must return bool", cel.FormatCELType(out)),
		}
	}
	prg, err := env.Program(ast,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(ConditionCostLimit),
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		// Planning compiles constant regular expressions, once, here.
		return nil, &ConditionError{Line: 1, Column: 1, Reason: err.Error()}
	}
	return &Condition{text: text, program: prg}, nil
}

// factTypes maps each variable that has fields to its Go type.
var factTypes = map[string]reflect.Type{
	"request":     reflect.TypeFor[RequestFacts](),
	"requester":   reflect.TypeFor[PersonFacts](),
	"beneficiary": reflect.TypeFor[PersonFacts](),
	"item":        reflect.TypeFor[ItemFacts](),
}

// fieldsHint returns, for an undefined field selected directly from a
// variable (requester.grops), "; requester has" and the fields it does
// have. It returns "" for any other error.
func fieldsHint(text string, e *ConditionError) string {
	lines := strings.Split(text, "\n")
	if !strings.HasPrefix(e.Reason, "undefined field") || e.Line > len(lines) {
		return ""
	}
	// The error points at the "." before the field.
	line := []rune(lines[e.Line-1])
	before := string(line[:min(e.Column-1, len(line))])
	i := strings.LastIndexFunc(before, func(r rune) bool { return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	name := before[i+1:]
	t, ok := factTypes[name]
	if !ok {
		return ""
	}
	var fields []string
	for f := range t.Fields() {
		fields = append(fields, f.Tag.Get("cel"))
	}
	return "; " + name + " has " + strings.Join(fields, ", ")
}

// String returns the condition's text.
func (c *Condition) String() string {
	return c.text
}

// Eval evaluates the condition. An error (a missing map key, the cost limit,
// a cancelled context) means the condition could not be decided; callers
// must not treat it as true.
func (c *Condition) Eval(ctx context.Context, f Facts) (bool, error) {
	out, _, err := c.program.ContextEval(ctx, map[string]any{
		"request":     f.Request,
		"requester":   f.Requester,
		"beneficiary": f.Beneficiary,
		"item":        f.Item,
		"now":         f.Now,
	})
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		switch {
		case errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded:
			return false, fmt.Errorf("evaluate %q: %w", c.text, ErrConditionCost)
		case ctx.Err() != nil:
			return false, fmt.Errorf("evaluate %q: %w", c.text, ctx.Err())
		}
		return false, fmt.Errorf("evaluate %q: %w", c.text, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: got %s, want bool", c.text, out.Type())
	}
	return b, nil
}
