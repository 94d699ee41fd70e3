package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// accountFacts are the grant facts that name the account a grant went to,
// under which connectors that list holdings without a grant id (group
// members, role members) report it when they grant.
var accountFacts = []string{"account", "member", "uniqueMember", "memberUid", "uid", "user"}

// accountsOf returns the accounts a grant's facts name.
func accountsOf(facts map[string]string) []string {
	var accounts []string
	for _, k := range accountFacts {
		if v := facts[k]; v != "" {
			accounts = append(accounts, v)
		}
	}
	return accounts
}

// matches reports whether holding h is the access of a grant that went to
// one of accounts, or to email.
func matches(h *workflow.Holding, accounts []string, email string) bool {
	if h.Email != "" && email != "" && strings.EqualFold(h.Email, email) {
		return true
	}
	for _, a := range accounts {
		if strings.EqualFold(a, h.Account) {
			return true
		}
	}
	return false
}

// indexed is what the log says of one grant: its request, its target, and
// whom it went to.
type indexed struct {
	seq      uint64 // of the event that approved it
	request  string
	target   workflow.Target
	accounts []string
	email    string
}

// index maps every grant latch ever made to its request, which the
// request projection cannot do for requests that are over. It is built
// from the log and brought up to date at each pass.
type index struct {
	seq      uint64              // the last event read
	grants   map[string]*indexed // by grant id
	byTarget map[workflow.Target][]string
}

func newIndex() *index {
	return &index{grants: map[string]*indexed{}, byTarget: map[workflow.Target][]string{}}
}

// update reads the events appended since the last update.
func (x *index) update(ctx context.Context, s Store) error {
	head, _ := s.Head()
	if head <= x.seq {
		return nil
	}
	err := s.Scan(ctx, store.Filter{From: x.seq + 1, To: head, Kinds: []string{workflow.KindApproved, workflow.KindGrantActive}},
		func(e *workflow.Event) error {
			switch e.Kind {
			case workflow.KindApproved:
				var p workflow.Approved
				if err := json.Unmarshal(e.Payload, &p); err != nil {
					return fmt.Errorf("event %d (%s): %w", e.Seq, e.Kind, err)
				}
				for _, g := range p.Grants {
					if _, ok := x.grants[g.ID]; ok {
						continue
					}
					x.grants[g.ID] = &indexed{seq: e.Seq, request: e.RequestID, target: g.Target}
					x.byTarget[g.Target] = append(x.byTarget[g.Target], g.ID)
				}
			case workflow.KindGrantActive:
				g, ok := x.grants[e.GrantID]
				if !ok {
					return nil
				}
				var p workflow.Provisioned
				if err := json.Unmarshal(e.Payload, &p); err != nil {
					return fmt.Errorf("event %d (%s): %w", e.Seq, e.Kind, err)
				}
				g.accounts, g.email = accountsOf(p.Facts), p.Email
			}
			return nil
		})
	if err != nil {
		return err
	}
	x.seq = head
	return nil
}
