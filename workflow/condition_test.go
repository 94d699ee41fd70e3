package workflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func mustCompile(t *testing.T, text string) *Condition {
	t.Helper()
	c, err := CompileCondition(text)
	if err != nil {
		t.Fatalf("CompileCondition(%q): %v", text, err)
	}
	return c
}

func TestCompileConditionErrors(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		line, col  int
		reasonHint string // a word the reason must contain
	}{
		{"misspelt field", `"oncall" in requester.grops`, 1, 22, "requester has id, email, manager, groups"},
		{"unknown variable", `requestor.email == "a@b.c"`, 1, 1, "requestor"},
		{"syntax", `request.duration <=`, 1, 20, ""},
		{"second line", "request.breakglass &&\n  item.nme == \"db\"", 2, 7, "item has id, name, kind"},
		{"returns duration", `request.duration`, 1, 1, "bool"},
		{"returns string", `item.labels["env"]`, 1, 1, "bool"},
		{"wrong operand types", `request.duration <= 6`, 1, 18, ""},
		{"constant regex does not compile", `request.ticket.matches("(SEC")`, 1, 1, "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCondition(tt.text)
			var ce *ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("CompileCondition(%q) error = %v, want a *ConditionError", tt.text, err)
			}
			if ce.Line != tt.line || ce.Column != tt.col {
				t.Errorf("position = %d:%d, want %d:%d (%v)", ce.Line, ce.Column, tt.line, tt.col, ce)
			}
			if !strings.Contains(ce.Reason, tt.reasonHint) {
				t.Errorf("reason = %q, want it to mention %q", ce.Reason, tt.reasonHint)
			}
		})
	}
}

func TestCompileConditionTooLong(t *testing.T) {
	text := "true" + strings.Repeat(" && true", ConditionMaxLength/8)
	if _, err := CompileCondition(text); err == nil {
		t.Fatalf("CompileCondition of %d characters succeeded, want an error", len(text))
	}
}

func TestConditionEval(t *testing.T) {
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	oncall := PersonFacts{ID: "U01", Email: "ana@example.com", Manager: "U09", Groups: []string{"eng", "oncall"}}
	other := PersonFacts{ID: "U02", Email: "bo@example.com", Groups: []string{"eng"}}
	item := ItemFactsOf(Item{
		ID: "prod-db-ro", Name: "Production DB (read-only)", Kind: KindEntitlement,
		Labels:  map[string]string{"env": "prod"},
		Owners:  []string{"U05"},
		Targets: []Target{{Connector: "pg", Entitlement: "readonly"}},
	})
	const oncallRule = `"oncall" in requester.groups && request.duration <= duration("6h")`

	tests := []struct {
		name string
		text string
		f    Facts
		want bool
	}{
		{"oncall within 6h", oncallRule, Facts{Request: RequestFacts{Duration: 6 * time.Hour}, Requester: oncall}, true},
		{"oncall over 6h", oncallRule, Facts{Request: RequestFacts{Duration: 7 * time.Hour}, Requester: oncall}, false},
		{"not oncall", oncallRule, Facts{Request: RequestFacts{Duration: time.Hour}, Requester: other}, false},
		{"label", `item.labels["env"] == "prod"`, Facts{Item: item}, true},
		{"connectors", `"pg" in item.connectors && item.kind == "entitlement"`, Facts{Item: item}, true},
		{"on behalf by manager", `request.on_behalf && requester.id == beneficiary.manager`,
			Facts{Request: RequestFacts{OnBehalf: true}, Requester: PersonFacts{ID: "U09"}, Beneficiary: oncall}, true},
		{"business hours", `now.getHours("UTC") >= 9 && now.getHours("UTC") < 18`, Facts{Now: now}, true},
		{"ticket pattern", `request.ticket.matches("^SEC-[0-9]+$")`, Facts{Request: RequestFacts{Ticket: "SEC-12"}}, true},
		{"justification length", `size(request.justification) < 10`, Facts{Request: RequestFacts{Justification: "because I need it"}}, false},
		{"string extension", `requester.email.lowerAscii().endsWith("@example.com")`, Facts{Requester: PersonFacts{Email: "Ana@Example.com"}}, true},
		{"breakglass", `request.breakglass`, Facts{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.text)
			got, err := c.Eval(context.Background(), tt.f)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestConditionEvalMissingKey(t *testing.T) {
	c := mustCompile(t, `item.labels["tier"] == "1"`)
	got, err := c.Eval(context.Background(), Facts{Item: ItemFacts{Labels: map[string]string{}}})
	if err == nil {
		t.Fatalf("Eval = %v, nil; want an error for the missing key", got)
	}
	if got {
		t.Errorf("Eval = true alongside an error, want false")
	}
}

func TestConditionEvalCostLimit(t *testing.T) {
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = strings.Repeat("g", i%7+1)
	}
	c := mustCompile(t, `requester.groups.all(a, requester.groups.all(b, requester.groups.all(c, a + b + c != "")))`)
	_, err := c.Eval(context.Background(), Facts{Requester: PersonFacts{Groups: groups}})
	if !errors.Is(err, ErrConditionCost) {
		t.Fatalf("Eval error = %v, want ErrConditionCost", err)
	}
}

func TestConditionEvalCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := mustCompile(t, `requester.groups.exists(g, g == "x")`)
	_, err := c.Eval(ctx, Facts{Requester: PersonFacts{Groups: make([]string, 1000)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Eval error = %v, want context.Canceled", err)
	}
}

func TestConditionString(t *testing.T) {
	const text = `request.duration < duration("1h")`
	if got := mustCompile(t, text).String(); got != text {
		t.Errorf("String() = %q, want %q", got, text)
	}
}
