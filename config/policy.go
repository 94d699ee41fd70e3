package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchhq/latch/workflow"
)

var approvalModes = []string{string(workflow.Sequential), string(workflow.Parallel)}

// maxJustification is the most a Slack plain-text input can hold.
const maxJustification = 3000

// policyRefs is what policies may refer to.
type policyRefs struct {
	ps       *problems
	people   people
	dir      *workflow.StaticDirectory
	channels Channels
}

// stageReach is what is known, before any request, about who can approve in
// a stage: enough to tell whether its required count can ever be met.
type stageReach struct {
	countable bool     // false if some members are only known at run time, or unresolved
	ids       []string // the people named directly or through static groups
	manager   bool
	owners    bool
	required  int
}

// count returns the most approvals the stage can gather for an item with
// these owners.
func (r stageReach) count(owners []string) int {
	n := len(r.ids)
	if r.owners {
		for _, o := range owners {
			if !slices.Contains(r.ids, o) {
				n++
			}
		}
	}
	if r.manager {
		n++
	}
	return n
}

// buildPolicies checks every policy and converts it. It also returns what
// each stage can reach, for the checks that depend on an item's owners.
func buildPolicies(refs policyRefs, docs map[string]policyDoc) (map[string]*workflow.Policy, map[string][]stageReach) {
	policies := make(map[string]*workflow.Policy, len(docs))
	reach := make(map[string][]stageReach, len(docs))
	for _, name := range sortedKeys(docs) {
		path := "policies." + name
		if !slugPattern.MatchString(name) {
			refs.ps.add(path, "%q is not a valid policy name; %s", name, slugAdvice)
		}
		policies[name], reach[name] = refs.policy(path, name, docs[name])
	}
	return policies, reach
}

func (r policyRefs) policy(path, name string, d policyDoc) (*workflow.Policy, []stageReach) {
	p := &workflow.Policy{
		Name:                   name,
		Description:            d.Description,
		VisibleTo:              r.groups(path+".visible_to", d.VisibleTo),
		Visible:                r.condition(path+".visible", d.Visible),
		AutoApprove:            r.condition(path+".auto_approve", d.AutoApprove),
		AutoReject:             r.condition(path+".auto_reject", d.AutoReject),
		AllowSelfApproval:      d.AllowSelfApproval,
		JustificationMinLength: d.Justification.MinLength,
	}
	p.Duration = r.duration(path+".duration", d.Duration)
	p.Extension = r.extension(path+".extension", d.Extension, p.Duration)
	var reach []stageReach
	p.Approval, reach = r.approval(path+".approval", d.Approval)
	p.OnBehalf = r.onBehalf(path+".on_behalf", d.OnBehalf)
	switch jl := d.Justification.MinLength; {
	case jl < 0:
		r.ps.add(path+".justification.min_length", "%d is negative; use 0 for an optional justification", jl)
	case jl > maxJustification:
		r.ps.add(path+".justification.min_length", "%d is more than the %d characters a Slack text field holds", jl, maxJustification)
	}
	p.Reminders = r.reminders(path+".reminders", d.Reminders)
	p.WarnBefore = r.warnBefore(path+".warn_before", d.WarnBefore, p.Duration)
	p.BreakGlass = r.breakGlass(path+".breakglass", d.BreakGlass, p.Duration)
	return p, reach
}

// condition compiles a CEL condition; an empty text means none.
func (r policyRefs) condition(path, text string) *workflow.Condition {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	c, err := workflow.CompileCondition(text)
	if err == nil {
		return c
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var ce *workflow.ConditionError
		if errors.As(e, &ce) {
			r.ps.add(path, "%v; fix the expression (it can use request, requester, beneficiary, item and now)", ce)
		} else {
			r.ps.add(path, "cannot compile: %v", e)
		}
	}
	return nil
}

// groups checks a list of group names.
func (r policyRefs) groups(path string, names []string) []string {
	for i, name := range names {
		r.group(index(path, i), name)
	}
	return slices.Clone(names)
}

func (r policyRefs) group(path, name string) (workflow.Group, bool) {
	g, ok := r.dir.Group(name)
	if !ok {
		r.ps.add(path, "unknown group %q%s", name, hint(name, r.dir.GroupNames(), "declare it under directory.groups"))
	}
	return g, ok
}

// nonNegative reports a negative duration.
func (r policyRefs) nonNegative(path string, d time.Duration) {
	if d < 0 {
		r.ps.add(path, "%v is negative; give a positive duration", d)
	}
}

func (r policyRefs) duration(path string, d durationDoc) workflow.DurationRules {
	for key, v := range map[string]time.Duration{"default": d.Default, "min": d.Min, "max": d.Max} {
		r.nonNegative(path+"."+key, v)
	}
	rules := workflow.DurationRules{Max: d.Max, Default: d.Default, Min: d.Min}
	if rules.Max <= 0 {
		if rules.Max == 0 {
			r.ps.add(path+".max", "required; the longest a grant may last, such as 8h")
		}
		return rules
	}
	if rules.Default <= 0 {
		rules.Default = min(defaultDuration, rules.Max)
	}
	if rules.Min <= 0 {
		rules.Min = min(defaultDurationMin, rules.Default)
	}
	if rules.Default > rules.Max {
		r.ps.add(path+".default", "%v is longer than max %v; lower default or raise max", rules.Default, rules.Max)
	}
	if rules.Min > rules.Default {
		r.ps.add(path+".min", "%v is longer than default %v; lower min or raise default", rules.Min, rules.Default)
	}
	if len(d.Choices) == 0 {
		rules.Choices = workflow.DeriveChoices(rules.Min, rules.Default, rules.Max)
		return rules
	}
	for i, c := range d.Choices {
		switch {
		case !rules.Allows(c):
			r.ps.add(index(path+".choices", i), "%v is outside min %v and max %v; remove it or widen the range", c, rules.Min, rules.Max)
		case slices.Index(d.Choices, c) < i:
			r.ps.add(index(path+".choices", i), "%v is listed twice; remove one", c)
		}
	}
	if !slices.Contains(d.Choices, rules.Default) {
		r.ps.add(path+".choices", "does not include the default %v, which the request form preselects; add it", rules.Default)
	}
	rules.Choices = slices.Clone(d.Choices)
	slices.Sort(rules.Choices)
	rules.Choices = slices.Compact(rules.Choices)
	return rules
}

func (r policyRefs) extension(path string, d extensionDoc, dur workflow.DurationRules) workflow.ExtensionRules {
	r.nonNegative(path+".max_total", d.MaxTotal)
	e := workflow.ExtensionRules{MaxTotal: d.MaxTotal, RequiresApproval: true}
	if d.RequiresApproval != nil {
		e.RequiresApproval = *d.RequiresApproval
	}
	if e.MaxTotal <= 0 {
		e.MaxTotal = dur.Max
	}
	if e.MaxTotal < dur.Max {
		r.ps.add(path+".max_total", "%v is shorter than duration.max %v, so a grant could outlast it; raise max_total to at least %v", e.MaxTotal, dur.Max, dur.Max)
	}
	return e
}

func (r policyRefs) approval(path string, d approvalDoc) (workflow.Approval, []stageReach) {
	a := workflow.Approval{Mode: workflow.ApprovalMode(d.Mode)}
	if a.Mode == "" {
		a.Mode = workflow.Sequential
	}
	if !slices.Contains(approvalModes, string(a.Mode)) {
		r.ps.add(path+".mode", "unknown approval mode %q%s", d.Mode, oneOf(d.Mode, approvalModes))
	}
	if len(d.Stages) == 0 {
		r.ps.add(path+".stages", "required; add at least one stage with its approvers (auto_approve alone would leave other requests with nobody to decide)")
	}
	var reach []stageReach
	seen := map[string]int{}
	for i, sd := range d.Stages {
		sp := index(path+".stages", i)
		st := workflow.Stage{Name: sd.Name, Required: 1}
		if st.Name == "" {
			st.Name = fmt.Sprintf("stage %d", i+1)
		}
		if j, dup := seen[st.Name]; dup {
			r.ps.add(sp+".name", "stage %d has the same name; give each stage its own", j+1)
		}
		seen[st.Name] = i
		if len(sd.Approvers) == 0 {
			r.ps.add(sp+".approvers", "required; list who approves, e.g. manager, owners, group:dba or user:alice@example.com")
		}
		var sr stageReach
		st.Approvers, sr = r.approvers(sp+".approvers", sd.Approvers)
		if sd.Required != nil {
			st.Required = *sd.Required
		}
		sr.required = st.Required
		switch n := sr.count(nil); {
		case st.Required < 1:
			r.ps.add(sp+".required", "%d approvals would approve every request unseen; use at least 1", st.Required)
		case sr.countable && !sr.owners && st.Required > n:
			r.ps.add(sp+".required", "needs %d approvals but only %d people can approve in this stage; lower required or add approvers", st.Required, n)
		}
		a.Stages = append(a.Stages, st)
		reach = append(reach, sr)
	}
	return a, reach
}

// approvers parses and checks a list of approvers, and works out who they
// can reach.
func (r policyRefs) approvers(path string, list []string) ([]workflow.Approver, stageReach) {
	reach := stageReach{countable: len(list) > 0}
	var out []workflow.Approver
	for i, text := range list {
		p := index(path, i)
		a, err := workflow.ParseApprover(text)
		if err != nil {
			r.ps.add(p, "%s", approverProblem(text))
			reach.countable = false
			continue
		}
		switch a.Kind {
		case workflow.ApproverUser:
			id, ok := r.people.resolve(r.ps, p, a.Ref)
			if !ok {
				reach.countable = false
				continue
			}
			a.Ref = id
			if !slices.Contains(reach.ids, id) {
				reach.ids = append(reach.ids, id)
			}
		case workflow.ApproverGroup:
			g, ok := r.group(p, a.Ref)
			if !ok {
				reach.countable = false
				continue
			}
			if g.Source != workflow.GroupStatic {
				reach.countable = false
				break
			}
			for _, id := range g.Members {
				if !slices.Contains(reach.ids, id) {
					reach.ids = append(reach.ids, id)
				}
			}
		case workflow.ApproverUserGroup:
			if !slackUserGroup.MatchString(a.Ref) {
				r.ps.add(p, "%q is not a Slack user group handle or id; write the handle without @, e.g. usergroup:oncall", a.Ref)
			}
			reach.countable = false
		case workflow.ApproverManager:
			reach.manager = true
		case workflow.ApproverOwners:
			reach.owners = true
		}
		if slices.Contains(out, a) {
			r.ps.add(p, "%s is listed twice; remove one", a)
			continue
		}
		out = append(out, a)
	}
	return out, reach
}

// approverProblem explains what is wrong with an approver's text.
func approverProblem(text string) string {
	const forms = "write manager, owners, user:<Slack id or email>, group:<name> or usergroup:<Slack handle>"
	kind, _, hasRef := strings.Cut(text, ":")
	kinds := make([]string, len(workflow.ApproverKinds))
	for i, k := range workflow.ApproverKinds {
		kinds[i] = string(k)
	}
	switch {
	case !slices.Contains(kinds, kind):
		return fmt.Sprintf("unknown approver %q%s", text, hint(kind, kinds, forms))
	case hasRef && (kind == string(workflow.ApproverManager) || kind == string(workflow.ApproverOwners)):
		return fmt.Sprintf("%s takes nothing after it; write just %s", kind, kind)
	}
	return fmt.Sprintf("%q names nobody; write %s:<name>", text, kind)
}

func (r policyRefs) onBehalf(path string, d onBehalfDoc) workflow.OnBehalfRules {
	ob := workflow.OnBehalfRules{
		Allowed: d.Allowed,
		Anyone:  d.Anyone,
		Manager: d.Manager,
		Groups:  r.groups(path+".groups", d.Groups),
	}
	who := d.Anyone || d.Manager || len(d.Groups) > 0
	switch {
	case !d.Allowed && who:
		r.ps.add(path+".allowed", "anyone, manager or groups is set but allowed is false, so they do nothing; set allowed: true or remove them")
	case d.Allowed && !who:
		r.ps.add(path+".allowed", "allowed is true but nobody may request for others; set anyone, manager or groups")
	case d.Anyone && len(d.Groups) > 0:
		r.ps.add(path+".groups", "anyone: true already lets everyone request for others; remove groups or anyone")
	}
	return ob
}

func (r policyRefs) reminders(path string, d remindersDoc) workflow.Reminders {
	rm := workflow.Reminders{
		RemindAfter:    d.RemindAfter,
		EscalateAfter:  d.EscalateAfter,
		PendingTimeout: d.PendingTimeout,
	}
	r.nonNegative(path+".remind_after", d.RemindAfter)
	r.nonNegative(path+".escalate_after", d.EscalateAfter)
	r.nonNegative(path+".pending_timeout", d.PendingTimeout)
	if rm.PendingTimeout <= 0 {
		rm.PendingTimeout = defaultPendingTimeout
	}
	if rm.RemindAfter >= rm.PendingTimeout {
		r.ps.add(path+".remind_after", "%v is not before pending_timeout %v, so no reminder would be sent; shorten it", rm.RemindAfter, rm.PendingTimeout)
	}
	if rm.EscalateAfter >= rm.PendingTimeout {
		r.ps.add(path+".escalate_after", "%v is not before pending_timeout %v, so escalation would never happen; shorten it", rm.EscalateAfter, rm.PendingTimeout)
	}
	rm.FallbackApprovers, _ = r.approvers(path+".fallback_approvers", d.FallbackApprovers)
	switch {
	case rm.EscalateAfter > 0 && len(d.FallbackApprovers) == 0:
		r.ps.add(path+".fallback_approvers", "escalate_after is set but there is nobody to escalate to; list fallback approvers")
	case rm.EscalateAfter == 0 && len(d.FallbackApprovers) > 0:
		r.ps.add(path+".escalate_after", "fallback_approvers are listed but never asked; set escalate_after")
	}
	return rm
}

func (r policyRefs) warnBefore(path string, d *time.Duration, dur workflow.DurationRules) time.Duration {
	if d == nil {
		if defaultWarnBefore < dur.Max {
			return defaultWarnBefore
		}
		return 0
	}
	r.nonNegative(path, *d)
	if *d > 0 && dur.Max > 0 && *d >= dur.Max {
		r.ps.add(path, "%v is not shorter than duration.max %v, so the warning would come as the grant starts; shorten it, or 0s for no warning", *d, dur.Max)
	}
	return max(*d, 0)
}

func (r policyRefs) breakGlass(path string, d breakGlassDoc, dur workflow.DurationRules) workflow.BreakGlass {
	bg := workflow.BreakGlass{
		Enabled:        d.Enabled,
		Groups:         r.groups(path+".groups", d.Groups),
		Channels:       slices.Clone(d.Channels),
		MaxDuration:    d.MaxDuration,
		RateLimit:      workflow.RateLimit{Count: d.RateLimit.Count, Per: d.RateLimit.Per},
		ReviewWithin:   d.ReviewWithin,
		ReviewReminder: d.ReviewReminder,
	}
	bg.Reviewers, _ = r.approvers(path+".reviewers", d.Reviewers)
	for key, v := range map[string]time.Duration{"max_duration": d.MaxDuration, "rate_limit.per": d.RateLimit.Per, "review_within": d.ReviewWithin, "review_reminder": d.ReviewReminder} {
		r.nonNegative(path+"."+key, v)
	}
	for i, ch := range d.Channels {
		p := index(path+".channels", i)
		switch {
		case !slackChannelID.MatchString(ch):
			r.ps.add(p, "%q is not a Slack channel id; use the id (C…), found in the channel's details", ch)
		case !slices.Contains(r.channels.BreakGlass, ch):
			r.ps.add(p, "channel %s is not listed under channels.breakglass; add it there", ch)
		}
	}
	if !d.Enabled {
		if len(d.Groups) > 0 || len(d.Channels) > 0 || len(d.Reviewers) > 0 || d.MaxDuration != 0 {
			r.ps.add(path+".enabled", "break-glass settings are given but enabled is false, so they do nothing; set enabled: true or remove them")
		}
		return bg
	}
	if len(bg.Channels) == 0 {
		bg.Channels = slices.Clone(r.channels.BreakGlass)
	}
	if len(bg.Channels) == 0 {
		r.ps.add(path+".channels", "break-glass is enabled but no channel allows it; list incident channel ids here or under channels.breakglass")
	}
	if len(d.Groups) == 0 {
		r.ps.add(path+".groups", "break-glass is enabled for nobody; list the groups that may break the glass, such as the on-call rotation")
	}
	if len(d.Reviewers) == 0 {
		r.ps.add(path+".reviewers", "break-glass grants must be reviewed afterwards; list who reviews them, e.g. group:security")
	}
	if bg.MaxDuration <= 0 {
		bg.MaxDuration = min(defaultBGMaxDuration, dur.Max)
	}
	if dur.Max > 0 && bg.MaxDuration > dur.Max {
		r.ps.add(path+".max_duration", "%v is longer than duration.max %v; emergency access should be shorter than approved access", bg.MaxDuration, dur.Max)
	}
	switch {
	case bg.RateLimit.Count < 0:
		r.ps.add(path+".rate_limit.count", "%d is negative; use at least 1", bg.RateLimit.Count)
	case bg.RateLimit.Count == 0:
		bg.RateLimit.Count = defaultBGRateCount
	}
	if bg.RateLimit.Per <= 0 {
		bg.RateLimit.Per = defaultBGRatePer
	}
	if bg.ReviewWithin <= 0 {
		bg.ReviewWithin = defaultReviewWithin
	}
	if bg.ReviewReminder <= 0 {
		bg.ReviewReminder = min(defaultReviewReminder, bg.ReviewWithin)
	}
	if bg.ReviewReminder > bg.ReviewWithin {
		r.ps.add(path+".review_reminder", "%v is longer than review_within %v, so no reminder comes before the deadline; shorten it", bg.ReviewReminder, bg.ReviewWithin)
	}
	return bg
}
