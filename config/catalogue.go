package config

import (
	"maps"
	"slices"

	"github.com/latchhq/latch/workflow"
)

var itemKinds = []string{string(workflow.KindEntitlement), string(workflow.KindBundle)}

// buildCatalogue checks the items and builds the catalogue. Items with
// problems are left out of it.
func buildCatalogue(ps *problems, doc catalogueDoc, connectors []Connector, policies map[string]*workflow.Policy, reaches map[string]policyReach, pp people) *workflow.Catalogue {
	byName := make(map[string]Connector, len(connectors))
	var connectorNames []string
	for _, c := range connectors {
		byName[c.Name] = c
		connectorNames = append(connectorNames, c.Name)
	}
	policyNames := sortedKeys(policies)

	var items []workflow.Item
	ids := identity{list: "catalogue.items", key: "id", form: slugForm,
		missing: "a short stable id such as prod-db-readonly, used in commands and the audit log"}
	names := identity{list: "catalogue.items", key: "name",
		missing: "the name people search for and see in requests"}
	if len(doc.Items) == 0 {
		ps.add("catalogue.items", "required; list at least one item people can request, with its targets and policy")
	}
	for i, d := range doc.Items {
		path := index("catalogue.items", i)
		uniqueID := ids.check(ps, i, d.ID)
		names.check(ps, i, d.Name)
		it := workflow.Item{
			ID:          d.ID,
			Name:        d.Name,
			Description: d.Description,
			Labels:      maps.Clone(d.Labels),
			Owners:      pp.resolveAll(ps, path+".owners", d.Owners),
			Kind:        workflow.ItemKind(d.Kind),
			Policy:      d.Policy,
		}
		if it.Kind == "" {
			it.Kind = workflow.KindEntitlement
		}
		switch it.Kind {
		case workflow.KindEntitlement:
			if len(d.Targets) != 1 {
				ps.add(path+".targets", "an entitlement has exactly one target, this one has %d; list one, or set kind: bundle", len(d.Targets))
			}
		case workflow.KindBundle:
			if len(d.Targets) == 0 {
				ps.add(path+".targets", "a bundle needs at least one target; list the connector and entitlement of each")
			}
		default:
			ps.add(path+".kind", "unknown kind %q%s", d.Kind, oneOf(d.Kind, itemKinds))
		}
		for j, t := range d.Targets {
			tp := index(path+".targets", j)
			c, ok := byName[t.Connector]
			switch {
			case t.Connector == "":
				ps.add(tp+".connector", "required; the name of a connector under connectors")
			case !ok:
				ps.add(tp+".connector", "unknown connector %q%s", t.Connector, oneOf(t.Connector, connectorNames))
			}
			target := workflow.Target{Connector: t.Connector, Entitlement: t.Entitlement}
			switch {
			case t.Entitlement == "":
				ps.add(tp+".entitlement", "required; what the connector grants, such as a role or group")
			case slices.Contains(it.Targets, target):
				ps.add(tp, "the same target is listed twice; remove one")
			case ok:
				if msg := entitlementProblem(c, t.Entitlement); msg != "" {
					ps.add(tp+".entitlement", "%s", msg)
				}
			}
			it.Targets = append(it.Targets, target)
		}
		if _, ok := policies[d.Policy]; !ok {
			if d.Policy == "" {
				ps.add(path+".policy", "required; the name of a policy under policies")
			} else {
				ps.add(path+".policy", "unknown policy %q%s", d.Policy, oneOf(d.Policy, policyNames))
			}
		}
		if p, ok := policies[d.Policy]; ok {
			checkOwnersReach(ps, path+".owners", it, p, reaches[d.Policy])
		}
		if uniqueID {
			items = append(items, it)
		}
	}
	cat, err := workflow.NewCatalogue(items)
	if err != nil {
		// Only possible for ids already reported; Load fails anyway.
		cat, _ = workflow.NewCatalogue(nil)
	}
	return cat
}

// checkOwnersReach reports the stages of an item's policy that ask the
// item's owners and cannot gather the approvals they need.
func checkOwnersReach(ps *problems, path string, it workflow.Item, p *workflow.Policy, pr policyReach) {
	for s, rc := range pr.stages {
		if !rc.owners || !rc.known {
			continue
		}
		stage := p.Approval.Stages[s]
		switch n := rc.most(it.Owners); {
		case n >= stage.Required:
			if msg := pr.short(stage, rc, it.Owners); msg != "" {
				ps.add(path, "under policy %q, %s", p.Name, msg)
			}
		case len(it.Owners) == 0:
			ps.add(path, "policy %q asks the item's owners in stage %q, but the item has none; list its owners", p.Name, stage.Name)
		default:
			ps.add(path, "policy %q stage %q needs %s, but with this item's %s %s can approve; add owners or lower required",
				p.Name, stage.Name, plural(stage.Required, "approval"), plural(len(it.Owners), "owner"), onlyPeople(n))
		}
	}
}
