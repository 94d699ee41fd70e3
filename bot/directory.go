package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// GroupCatalog is a directory that can say where its groups come from, as
// the static directory does.
type GroupCatalog interface {
	workflow.Directory
	Group(name string) (workflow.Group, bool)
	GroupNames() []string
}

// Directory adds Slack user groups to a directory: groups whose source is
// "slack" get their members from the user group with the handle in their
// Ref, and "usergroup:<handle>" approvers resolve. Members are cached for
// TTL, so that the engine does not call Slack on every decision.
type Directory struct {
	GroupCatalog
	api   *slack.Client
	clock workflow.Clock
	ttl   time.Duration

	mu      sync.Mutex
	ids     map[string]string // handle → user group id
	members map[string]cached // by handle

	// log, if set, is told about a group that could not be read.
	log func(group string, err error)
}

// OnGroupError sets a function told about each Slack-sourced group that
// could not be read while finding a person's groups.
func (d *Directory) OnGroupError(fn func(group string, err error)) { d.log = fn }

type cached struct {
	members []string
	at      time.Time
}

// NewDirectory returns base with Slack user groups read through api.
func NewDirectory(base GroupCatalog, api *slack.Client, clock workflow.Clock, ttl time.Duration) *Directory {
	if clock == nil {
		clock = workflow.RealClock{}
	}
	if ttl <= 0 {
		ttl = time.Minute
	}
	return &Directory{GroupCatalog: base, api: api, clock: clock, ttl: ttl, members: map[string]cached{}}
}

// UserGroupMembers returns the Slack ids of a user group's members. When
// Slack cannot be asked (a rate limit, an outage), the last members read
// are used for up to staleFor, so that a blip does not stop requests.
func (d *Directory) UserGroupMembers(ctx context.Context, handle string) ([]string, error) {
	now := d.clock.Now()
	d.mu.Lock()
	c, ok := d.members[handle]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < d.ttl {
		return slices.Clone(c.members), nil
	}
	members, err := d.readMembers(ctx, handle)
	if err != nil {
		if ok && now.Sub(c.at) < staleFor {
			return slices.Clone(c.members), nil
		}
		return nil, err
	}
	d.mu.Lock()
	d.members[handle] = cached{members: members, at: now}
	d.mu.Unlock()
	return slices.Clone(members), nil
}

// staleFor bounds how long members read before are used while Slack
// cannot be asked.
const staleFor = 15 * time.Minute

func (d *Directory) readMembers(ctx context.Context, handle string) ([]string, error) {
	id, err := d.groupID(ctx, handle)
	if err != nil {
		return nil, err
	}
	members, err := d.api.GetUserGroupMembersContext(ctx, id)
	if err != nil {
		d.mu.Lock()
		delete(d.ids, handle) // the group may have been recreated
		d.mu.Unlock()
		return nil, fmt.Errorf("slack user group @%s: %w", handle, err)
	}
	return members, nil
}

// ErrNoUserGroup means Slack has no user group with a handle.
var ErrNoUserGroup = errors.New("no such slack user group")

func (d *Directory) groupID(ctx context.Context, handle string) (string, error) {
	d.mu.Lock()
	id, ok := d.ids[handle]
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	groups, err := d.api.GetUserGroupsContext(ctx)
	if err != nil {
		return "", fmt.Errorf("slack user groups: %w", err)
	}
	ids := make(map[string]string, len(groups))
	for _, g := range groups {
		ids[g.Handle] = g.ID
	}
	d.mu.Lock()
	d.ids = ids
	d.mu.Unlock()
	if id, ok := ids[handle]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w @%s", ErrNoUserGroup, handle)
}

// Members implements workflow.Directory, reading Slack-sourced groups from
// Slack.
func (d *Directory) Members(ctx context.Context, group string) ([]string, error) {
	if g, ok := d.Group(group); ok && g.Source == workflow.GroupSlack {
		return d.UserGroupMembers(ctx, g.Ref)
	}
	return d.GroupCatalog.Members(ctx, group)
}

// Groups implements workflow.Directory: the base directory's groups plus
// the Slack-sourced groups the person is in.
func (d *Directory) Groups(ctx context.Context, slackID string) ([]string, error) {
	groups, err := d.GroupCatalog.Groups(ctx, slackID)
	if err != nil {
		return nil, err
	}
	for _, name := range d.GroupNames() {
		g, _ := d.Group(name)
		if g.Source != workflow.GroupSlack || slices.Contains(groups, name) {
			continue
		}
		members, err := d.UserGroupMembers(ctx, g.Ref)
		if err != nil {
			// One group Slack cannot tell about must not make the person
			// unknown: they count as outside it, which can only deny.
			if d.log != nil {
				d.log(name, err)
			}
			continue
		}
		if slices.Contains(members, slackID) {
			groups = append(groups, name)
		}
	}
	return groups, nil
}
