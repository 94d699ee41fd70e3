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

// reach is what is known, before any request, about who a list of
// approvers can reach.
type reach struct {
	known   bool     // false if some are only known at run time, or unresolved
	ids     []string // the people named directly or through static groups
	manager bool
	owners  bool
}

// add adds people not reached yet.
func (r *reach) add(ids ...string) {
	for _, id := range ids {
		if id != "" && !slices.Contains(r.ids, id) {
			r.ids = append(r.ids, id)
		}
	}
}

// of returns the people reached on a request for b of an item with these
// owners. The manager is one of them only if b has one.
func (r reach) of(b workflow.User, owners []string) []string {
	c := reach{ids: slices.Clone(r.ids)}
	if r.owners {
		c.add(owners...)
	}
	if r.manager {
		c.add(b.Manager)
	}
	return c.ids
}

// most returns the most people reached for an item with these owners,
// whoever the request is for: the manager is counted as one more person.
func (r reach) most(owners []string) int {
	n := len(r.of(workflow.User{}, owners))
	if r.manager {
		n++
	}
	return n
}

// requesters is who may request under a policy, as far as the file tells.
type requesters struct {
	known    bool // false when it depends on groups kept outside the file
	users    []workflow.User
	visible  map[string]workflow.User // users by Slack id
	self     bool                     // allow_self_approval
	onBehalf workflow.OnBehalfRules
}

// requesters works out who may request under the policy at path. It knows
// nothing when that depends on values reported as wrong.
func (r policyRefs) requesters(path string, p *workflow.Policy) requesters {
	q := requesters{visible: make(map[string]workflow.User), self: p.AllowSelfApproval, onBehalf: p.OnBehalf}
	q.known = !slices.ContainsFunc([]string{".visible_to", ".on_behalf", ".allow_self_approval"}, func(key string) bool {
		return r.ps.silenced(path + key)
	})
	for _, name := range slices.Concat(p.VisibleTo, p.OnBehalf.Groups) {
		if g, ok := r.dir.Group(name); !ok || g.Source != workflow.GroupStatic {
			q.known = false
		}
	}
	for _, u := range r.people.users() {
		if len(p.VisibleTo) == 0 || inAny(u, p.VisibleTo) {
			q.visible[u.SlackID] = u
			if !r.people.vague[u.SlackID] {
				q.users = append(q.users, u)
			}
		}
	}
	return q
}

func inAny(u workflow.User, groups []string) bool {
	return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(u.Groups, g) })
}

// mayRequestFor reports whether the person with Slack id id may request
// for b, someone else.
func (q requesters) mayRequestFor(id string, b workflow.User) bool {
	r, ok := q.visible[id]
	ob := q.onBehalf
	return ok && id != b.SlackID && ob.Allowed && (ob.Anyone || ob.Manager && b.Manager == id || inAny(r, ob.Groups))
}

// short returns a message about the first person whose requests could not
// gather required approvals from these approvers, or "" if there is none.
// Neither the person a request is for nor its requester approves it,
// unless the policy allows self-approval.
func (q requesters) short(r reach, owners []string, required int, stage string) string {
	if !q.known || !r.known {
		return ""
	}
	for _, b := range q.users {
		ids := r.of(b, owners)
		n := len(ids)
		var why []string
		switch {
		case r.manager && b.Manager == "":
			why = append(why, "they have no manager in directory.users")
		case r.manager && n == len(r.of(workflow.User{}, owners)):
			why = append(why, "their manager is among the others")
		}
		if !q.self && slices.Contains(ids, b.SlackID) {
			n--
			why = append(why, "they never approve their own request")
		}
		if !q.self && slices.ContainsFunc(ids, func(id string) bool { return q.mayRequestFor(id, b) }) {
			n--
			why = append(why, "nor does whoever requests it for them")
		}
		if n >= required {
			continue
		}
		fix := "add another approver"
		if required > 1 {
			fix += " or lower required"
		}
		if r.manager && b.Manager == "" {
			fix = "give them a manager, " + fix
		}
		return fmt.Sprintf("a request for %s could gather only %s in stage %q: %s; %s",
			who(b), plural(n, "approval"), stage, strings.Join(why, ", "), fix)
	}
	return ""
}

// policyReach is what the checks of items need to know about a policy.
type policyReach struct {
	stages     []reach
	requesters requesters
	fallback   *reach // asked too when a stage is slow to decide; nil if none
}

// short is requesters.short for a stage, counting the fallback approvers,
// who can rescue a stage that could not decide otherwise.
func (pr policyReach) short(stage workflow.Stage, r reach, owners []string) string {
	if f := pr.fallback; f != nil {
		r = reach{known: r.known && f.known, ids: slices.Clone(r.ids), manager: r.manager || f.manager, owners: r.owners || f.owners}
		r.add(f.ids...)
	}
	return pr.requesters.short(r, owners, stage.Required, stage.Name)
}

// buildPolicies checks every policy and converts it. It also returns what
// each can reach, for the checks that depend on an item's owners.
func buildPolicies(refs policyRefs, docs map[string]policyDoc) (map[string]*workflow.Policy, map[string]policyReach) {
	policies := make(map[string]*workflow.Policy, len(docs))
	reaches := make(map[string]policyReach, len(docs))
	for _, name := range sortedKeys(docs) {
		path := "policies." + name
		if strings.Contains(name, ".") {
			refs.ps.add(path, "%q: a policy name cannot hold dots, which separate the keys of a path; write %s here and in the items that use it", name, strings.ReplaceAll(name, ".", "-"))
		} else if msg := slugForm(name); msg != "" {
			refs.ps.add(path, "%s", msg)
		}
		policies[name], reaches[name] = refs.policy(path, name, docs[name])
	}
	return policies, reaches
}

func (r policyRefs) policy(path, name string, d policyDoc) (*workflow.Policy, policyReach) {
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
	p.OnBehalf = r.onBehalf(path+".on_behalf", d.OnBehalf)
	var fallback *reach
	p.Reminders, fallback = r.reminders(path+".reminders", d.Reminders)
	pr := policyReach{requesters: r.requesters(path, p), fallback: fallback}
	p.Approval, pr.stages = r.approval(path+".approval", d.Approval, pr)
	switch jl := d.Justification.MinLength; {
	case jl < 0:
		r.ps.add(path+".justification.min_length", "%d is negative; use 0 for an optional justification", jl)
	case jl > maxJustification:
		r.ps.add(path+".justification.min_length", "%d is more than the %d characters a Slack text field holds", jl, maxJustification)
	}
	p.WarnBefore = r.warnBefore(path+".warn_before", d.WarnBefore, p.Duration)
	p.BreakGlass = r.breakGlass(path+".breakglass", d.BreakGlass, p.Duration)
	return p, pr
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

func (r policyRefs) duration(path string, d durationDoc) workflow.DurationRules {
	rules := workflow.DurationRules{Max: positive(r.ps, path+".max", d.Max, 0)}
	rules.Default = positive(r.ps, path+".default", d.Default, min(defaultDuration, rules.Max))
	rules.Min = positive(r.ps, path+".min", d.Min, min(defaultDurationMin, rules.Default))
	if rules.Max == 0 {
		if d.Max == 0 {
			r.ps.add(path+".max", "required; the longest a grant may last, such as 8h")
		}
		return rules
	}
	if rules.Default > rules.Max {
		r.ps.add(path+".default", "%s is longer than max %s; lower default or raise max", workflow.FormatDuration(rules.Default), workflow.FormatDuration(rules.Max))
	}
	if rules.Min > rules.Default {
		r.ps.add(path+".min", "%s is longer than default %s; lower min or raise default", workflow.FormatDuration(rules.Min), workflow.FormatDuration(rules.Default))
	}
	if len(d.Choices) == 0 {
		rules.Choices = workflow.DeriveChoices(rules.Min, rules.Default, rules.Max)
		return rules
	}
	for i, c := range d.Choices {
		switch {
		case !rules.Allows(c):
			r.ps.add(index(path+".choices", i), "%s is outside min %s and max %s; remove it or widen the range", workflow.FormatDuration(c), workflow.FormatDuration(rules.Min), workflow.FormatDuration(rules.Max))
		case slices.Index(d.Choices, c) < i:
			r.ps.add(index(path+".choices", i), "%s is listed twice; remove one", workflow.FormatDuration(c))
		}
	}
	if !slices.Contains(d.Choices, rules.Default) {
		r.ps.add(path+".choices", "does not include the default %s, which the request form preselects; add it", workflow.FormatDuration(rules.Default))
	}
	rules.Choices = slices.Clone(d.Choices)
	slices.Sort(rules.Choices)
	rules.Choices = slices.Compact(rules.Choices)
	return rules
}

func (r policyRefs) extension(path string, d extensionDoc, dur workflow.DurationRules) workflow.ExtensionRules {
	e := workflow.ExtensionRules{MaxTotal: positive(r.ps, path+".max_total", d.MaxTotal, dur.Max), RequiresApproval: true}
	if d.RequiresApproval != nil {
		e.RequiresApproval = *d.RequiresApproval
	}
	if e.MaxTotal < dur.Max {
		r.ps.add(path+".max_total", "%s is shorter than duration.max %s, so a grant could outlast it; raise max_total to at least %s", workflow.FormatDuration(e.MaxTotal), workflow.FormatDuration(dur.Max), workflow.FormatDuration(dur.Max))
	}
	return e
}

func (r policyRefs) approval(path string, d approvalDoc, pr policyReach) (workflow.Approval, []reach) {
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
	var reaches []reach
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
		var rc reach
		st.Approvers, rc = r.approvers(sp+".approvers", sd.Approvers)
		if sd.Required != nil {
			st.Required = *sd.Required
		}
		switch n := rc.most(nil); {
		case st.Required < 1:
			r.ps.add(sp+".required", "%d approvals would approve every request unseen; use at least 1", st.Required)
		case rc.owners:
			// Checked for each item, with its owners.
		case rc.known && st.Required > n:
			r.ps.add(sp+".required", "needs %s but %s can approve in this stage; lower required or add approvers", plural(st.Required, "approval"), onlyPeople(n))
		default:
			if msg := pr.short(st, rc, nil); msg != "" {
				r.ps.add(sp+".approvers", "%s", msg)
			}
		}
		a.Stages = append(a.Stages, st)
		reaches = append(reaches, rc)
	}
	return a, reaches
}

// approvers parses and checks a list of approvers, and works out who they
// can reach.
func (r policyRefs) approvers(path string, list []string) ([]workflow.Approver, reach) {
	rc := reach{known: len(list) > 0}
	var out []workflow.Approver
	for i, text := range list {
		p := index(path, i)
		a, err := workflow.ParseApprover(text)
		var ae *workflow.ApproverError
		if errors.As(err, &ae) {
			if k := closest(string(ae.Kind), kindNames); ae.Fault == workflow.ApproverUnknownKind && k != "" {
				r.ps.add(p, "unknown approver %q; did you mean %q?", text, k)
			} else {
				r.ps.add(p, "%v", ae)
			}
			rc.known = false
			continue
		}
		switch a.Kind {
		case workflow.ApproverUser:
			id, ok := r.people.resolve(r.ps, p, a.Ref)
			if !ok {
				rc.known = false
				continue
			}
			a.Ref = id
			rc.add(id)
		case workflow.ApproverGroup:
			g, ok := r.group(p, a.Ref)
			if !ok {
				rc.known = false
				continue
			}
			if g.Source != workflow.GroupStatic {
				rc.known = false
				break
			}
			rc.add(g.Members...)
		case workflow.ApproverUserGroup:
			if !slackUserGroup.MatchString(a.Ref) {
				r.ps.add(p, "%q is not a Slack user group handle or id; write the handle without @, e.g. usergroup:oncall", a.Ref)
			}
			rc.known = false
		case workflow.ApproverManager:
			rc.manager = true
		case workflow.ApproverOwners:
			rc.owners = true
		}
		if slices.Contains(out, a) {
			r.ps.add(p, "%s is listed twice; remove one", a)
			continue
		}
		out = append(out, a)
	}
	return out, rc
}

// kindNames lists the approver kinds, for suggestions.
var kindNames = func() []string {
	var names []string
	for _, k := range workflow.ApproverKinds {
		names = append(names, string(k))
	}
	return names
}()

// reachesSomeone reports a list of approvers that, as far as the file
// tells, names nobody.
func (r policyRefs) reachesSomeone(path string, rc reach) {
	if rc.known && rc.most(nil) == 0 && !rc.owners {
		r.ps.add(path, "names nobody: the groups listed have no members; add members, or list someone else")
	}
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

// reminders checks and converts the reminders, and returns who the
// fallback approvers reach, or nil when there is no escalation.
func (r policyRefs) reminders(path string, d remindersDoc) (workflow.Reminders, *reach) {
	rm := workflow.Reminders{
		RemindAfter:    positive(r.ps, path+".remind_after", d.RemindAfter, 0),
		EscalateAfter:  positive(r.ps, path+".escalate_after", d.EscalateAfter, 0),
		PendingTimeout: positive(r.ps, path+".pending_timeout", d.PendingTimeout, defaultPendingTimeout),
	}
	if rm.RemindAfter >= rm.PendingTimeout {
		r.ps.add(path+".remind_after", "%s is not before pending_timeout %s, so no reminder would be sent; shorten it", workflow.FormatDuration(rm.RemindAfter), workflow.FormatDuration(rm.PendingTimeout))
	}
	if rm.EscalateAfter >= rm.PendingTimeout {
		r.ps.add(path+".escalate_after", "%s is not before pending_timeout %s, so escalation would never happen; shorten it", workflow.FormatDuration(rm.EscalateAfter), workflow.FormatDuration(rm.PendingTimeout))
	}
	var rc reach
	rm.FallbackApprovers, rc = r.approvers(path+".fallback_approvers", d.FallbackApprovers)
	r.reachesSomeone(path+".fallback_approvers", rc)
	switch {
	case rm.EscalateAfter > 0 && len(d.FallbackApprovers) == 0:
		r.ps.add(path+".fallback_approvers", "escalate_after is set but there is nobody to escalate to; list fallback approvers")
	case rm.EscalateAfter == 0 && len(d.FallbackApprovers) > 0:
		r.ps.add(path+".escalate_after", "fallback_approvers are listed but never asked; set escalate_after")
	}
	if rm.EscalateAfter == 0 {
		return rm, nil
	}
	return rm, &rc
}

// warnBefore returns how long before expiry a grant is announced. The
// shortest grant must start before its warning.
func (r policyRefs) warnBefore(path string, d *time.Duration, dur workflow.DurationRules) time.Duration {
	if d == nil {
		if defaultWarnBefore < dur.Min {
			return defaultWarnBefore
		}
		return 0
	}
	w := positive(r.ps, path, *d, 0)
	if w > 0 && dur.Min > 0 && w >= dur.Min {
		r.ps.add(path, "%s is not shorter than duration.min %s, so a grant that short would be warned about as it starts; shorten it, or write 0s for no warning", workflow.FormatDuration(w), workflow.FormatDuration(dur.Min))
	}
	return w
}

func (r policyRefs) breakGlass(path string, d breakGlassDoc, dur workflow.DurationRules) workflow.BreakGlass {
	bg := workflow.BreakGlass{
		Enabled:        d.Enabled,
		Groups:         r.groups(path+".groups", d.Groups),
		Channels:       slices.Clone(d.Channels),
		MaxDuration:    positive(r.ps, path+".max_duration", d.MaxDuration, min(defaultBGMaxDuration, dur.Max)),
		RateLimit:      workflow.RateLimit{Count: d.RateLimit.Count, Per: positive(r.ps, path+".rate_limit.per", d.RateLimit.Per, defaultBGRatePer)},
		ReviewWithin:   positive(r.ps, path+".review_within", d.ReviewWithin, defaultReviewWithin),
		ReviewReminder: d.ReviewReminder,
	}
	bg.ReviewReminder = positive(r.ps, path+".review_reminder", d.ReviewReminder, min(defaultReviewReminder, bg.ReviewWithin))
	var rc reach
	bg.Reviewers, rc = r.approvers(path+".reviewers", d.Reviewers)
	r.reachesSomeone(path+".reviewers", rc)
	for i, ch := range d.Channels {
		p := index(path+".channels", i)
		if msg := channelForm(ch); msg != "" {
			r.ps.add(p, "%s", msg)
		} else if !slices.Contains(r.channels.BreakGlass, ch) {
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
	if dur.Max > 0 && bg.MaxDuration > dur.Max {
		r.ps.add(path+".max_duration", "%s is longer than duration.max %s; emergency access should be shorter than approved access", workflow.FormatDuration(bg.MaxDuration), workflow.FormatDuration(dur.Max))
	}
	switch {
	case bg.RateLimit.Count < 0:
		r.ps.add(path+".rate_limit.count", "%d is negative; use at least 1", bg.RateLimit.Count)
	case bg.RateLimit.Count == 0:
		bg.RateLimit.Count = defaultBGRateCount
	}
	if bg.ReviewReminder > bg.ReviewWithin {
		r.ps.add(path+".review_reminder", "%s is longer than review_within %s, so no reminder comes before the deadline; shorten it", workflow.FormatDuration(bg.ReviewReminder), workflow.FormatDuration(bg.ReviewWithin))
	}
	return bg
}
