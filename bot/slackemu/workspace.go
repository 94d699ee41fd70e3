package slackemu

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Fixed identities of the emulated workspace and app.
const (
	teamID     = "TLATCH0001"
	teamDomain = "latch-demo"
	teamName   = "Latch Demo"
	appID      = "ALATCH0001"
	botID      = "BLATCH0001"
	botUserID  = "ULATCHBOT"
	botName    = "latch"
	botToken   = "xoxb-100-200-slackemu-bot-token"
	appToken   = "xapp-1-ALATCH0001-300-slackemu-app-token"

	// verificationToken is the legacy token Slack puts into every payload.
	verificationToken = "slackemuVerificationToken"
)

// User is a member of the emulated workspace.
type User struct {
	ID        string
	Name      string // the handle, e.g. "alice"
	RealName  string
	Email     string
	IsAdmin   bool
	IsBot     bool
	ManagerID string // user ID of the manager, "" for none
	Title     string
	TZ        string
	Deleted   bool
}

// Channel is a public or private channel of the emulated workspace.
type Channel struct {
	ID        string
	Name      string // without "#"
	IsPrivate bool
	Members   []string // user IDs, the bot user included when it is a member
}

// Group is a Slack user group (a "subteam", mentioned as @handle).
type Group struct {
	ID      string
	Handle  string
	Name    string
	Members []string // user IDs
}

type workspace struct {
	users    []*User
	channels []*Channel
	groups   []*Group
}

// seedUsers is the default cast: name, real name, manager name, admin.
var seedUsers = []struct {
	name, real, manager, title string
	admin                      bool
}{
	{"alice", "Alice Anderson", "carol", "Software Engineer", false},
	{"bob", "Bob Brown", "carol", "Software Engineer", false},
	{"carol", "Carol Chen", "heidi", "Engineering Manager", false},
	{"dave", "Dave Davis", "heidi", "Site Reliability Engineer", false},
	{"erin", "Erin Evans", "grace", "Security Engineer", false},
	{"frank", "Frank Fischer", "grace", "Data Analyst", false},
	{"grace", "Grace Garcia", "heidi", "Head of Security", true},
	{"heidi", "Heidi Hill", "", "CTO", true},
}

func newWorkspace(seed bool) *workspace {
	w := &workspace{}
	w.users = append(w.users, &User{
		ID: botUserID, Name: botName, RealName: "Latch", IsBot: true, TZ: "Etc/UTC",
	})
	if !seed {
		return w
	}
	for _, su := range seedUsers {
		w.users = append(w.users, &User{
			ID:       w.newUserID(su.name),
			Name:     su.name,
			RealName: su.real,
			Email:    su.name + "@example.com",
			IsAdmin:  su.admin,
			Title:    su.title,
			TZ:       "Europe/Berlin",
		})
	}
	for _, su := range seedUsers {
		if su.manager != "" {
			w.userByName(su.name).ManagerID = w.userByName(su.manager).ID
		}
	}
	all := []string{botUserID}
	for _, u := range w.users[1:] {
		all = append(all, u.ID)
	}
	w.channels = append(w.channels,
		&Channel{ID: w.newID("C", "incidents"), Name: "incidents", Members: all},
		&Channel{ID: w.newID("C", "security"), Name: "security", IsPrivate: true,
			Members: []string{botUserID, w.userByName("erin").ID, w.userByName("grace").ID, w.userByName("heidi").ID}},
	)
	w.groups = append(w.groups, &Group{
		ID: w.newID("S", "oncall"), Handle: "oncall", Name: "On-call engineers",
		Members: []string{w.userByName("dave").ID, w.userByName("erin").ID},
	})
	return w
}

// newID derives a readable, deterministic ID from a name: prefix + the
// name's letters and digits in upper case, made unique with a counter.
func (w *workspace) newID(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	base := b.String()
	for len(base) < 8 {
		base += "0"
	}
	id := base
	for n := 2; w.idTaken(id); n++ {
		id = fmt.Sprintf("%s%d", base, n)
	}
	return id
}

func (w *workspace) newUserID(name string) string { return w.newID("U", name) }

func (w *workspace) idTaken(id string) bool {
	for _, u := range w.users {
		if u.ID == id {
			return true
		}
	}
	for _, c := range w.channels {
		if c.ID == id {
			return true
		}
	}
	for _, g := range w.groups {
		if g.ID == id {
			return true
		}
	}
	return false
}

func (w *workspace) userByName(name string) *User {
	for _, u := range w.users {
		if u.Name == name {
			return u
		}
	}
	return nil
}

func (w *workspace) userByID(id string) *User {
	for _, u := range w.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

// user resolves a user ID, a name or "@name".
func (w *workspace) user(ref string) *User {
	if u := w.userByID(ref); u != nil {
		return u
	}
	return w.userByName(strings.TrimPrefix(ref, "@"))
}

func (w *workspace) userByEmail(email string) *User {
	for _, u := range w.users {
		if u.Email != "" && strings.EqualFold(u.Email, email) {
			return u
		}
	}
	return nil
}

// channel resolves a channel ID, a name or "#name".
func (w *workspace) channel(ref string) *Channel {
	for _, c := range w.channels {
		if c.ID == ref || c.Name == strings.TrimPrefix(ref, "#") {
			return c
		}
	}
	return nil
}

// group resolves a group ID, a handle or "@handle".
func (w *workspace) group(ref string) *Group {
	for _, g := range w.groups {
		if g.ID == ref || g.Handle == strings.TrimPrefix(ref, "@") {
			return g
		}
	}
	return nil
}

// dmID is the ID of the direct message channel between the bot and a user.
func dmID(userID string) string { return "D" + strings.TrimPrefix(userID, "U") }

// dmUser returns the user of a DM channel ID, or nil.
func (w *workspace) dmUser(channelID string) *User {
	if !strings.HasPrefix(channelID, "D") {
		return nil
	}
	u := w.userByID("U" + channelID[1:])
	if u == nil || u.IsBot {
		return nil
	}
	return u
}

func (c *Channel) hasMember(userID string) bool { return slices.Contains(c.Members, userID) }

func copyUser(u *User) User { return *u }

func copyChannel(c *Channel) Channel {
	cc := *c
	cc.Members = slices.Clone(c.Members)
	return cc
}

func copyGroup(g *Group) Group {
	gg := *g
	gg.Members = slices.Clone(g.Members)
	return gg
}

// User returns the user with that name or ID. It panics if there is none,
// which in a test is a bug in the test.
func (s *Server) User(ref string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(ref)
	if u == nil {
		panic(fmt.Sprintf("slackemu: no user %q", ref))
	}
	return copyUser(u)
}

// LookupUser is User without the panic.
func (s *Server) LookupUser(ref string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(ref)
	if u == nil {
		return User{}, false
	}
	return copyUser(u), true
}

// Users returns every user of the workspace, the bot user first.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.ws.users))
	for _, u := range s.ws.users {
		out = append(out, copyUser(u))
	}
	return out
}

// Manager returns the manager of the user with that name or ID, and false
// if the user has none.
func (s *Server) Manager(ref string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(ref)
	if u == nil || u.ManagerID == "" {
		return User{}, false
	}
	m := s.ws.userByID(u.ManagerID)
	if m == nil {
		return User{}, false
	}
	return copyUser(m), true
}

// Channel returns the channel with that name ("incidents" or "#incidents")
// or ID. It panics if there is none.
func (s *Server) Channel(ref string) Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ws.channel(ref)
	if c == nil {
		panic(fmt.Sprintf("slackemu: no channel %q", ref))
	}
	return copyChannel(c)
}

// Group returns the user group with that handle ("oncall" or "@oncall") or
// ID. It panics if there is none.
func (s *Server) Group(ref string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.ws.group(ref)
	if g == nil {
		panic(fmt.Sprintf("slackemu: no user group %q", ref))
	}
	return copyGroup(g)
}

// DMChannel returns the ID of the bot's direct message channel with a user.
func (s *Server) DMChannel(user string) string {
	return dmID(s.User(user).ID)
}

// AddUser adds a user. Name is required and must be unused; ID is derived
// from the name when empty; Email defaults to name@example.com; ManagerID
// may be given as a user ID or a name. New users join every public channel.
// It returns the stored user.
func (s *Server) AddUser(u User) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Name == "" {
		return User{}, fmt.Errorf("slackemu: add user: name is required")
	}
	if s.ws.userByName(u.Name) != nil {
		return User{}, fmt.Errorf("slackemu: add user %q: name already taken", u.Name)
	}
	if u.ID == "" {
		u.ID = s.ws.newUserID(u.Name)
	} else if s.ws.idTaken(u.ID) {
		return User{}, fmt.Errorf("slackemu: add user %q: id %s already taken", u.Name, u.ID)
	}
	if u.Email == "" && !u.IsBot {
		u.Email = u.Name + "@example.com"
	}
	if u.RealName == "" {
		u.RealName = u.Name
	}
	if u.TZ == "" {
		u.TZ = "Europe/Berlin"
	}
	if u.ManagerID != "" {
		m := s.ws.user(u.ManagerID)
		if m == nil {
			return User{}, fmt.Errorf("slackemu: add user %q: manager %q: %w", u.Name, u.ManagerID, ErrUnknownUser)
		}
		u.ManagerID = m.ID
	}
	nu := u
	s.ws.users = append(s.ws.users, &nu)
	for _, c := range s.ws.channels {
		if !c.IsPrivate {
			c.Members = append(c.Members, nu.ID)
		}
	}
	s.bumpLocked()
	return nu, nil
}

// SetManager sets (or with manager "" clears) a user's manager.
func (s *Server) SetManager(user, manager string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ws.user(user)
	if u == nil {
		return fmt.Errorf("slackemu: set manager of %q: %w", user, ErrUnknownUser)
	}
	if manager == "" {
		u.ManagerID = ""
		return nil
	}
	m := s.ws.user(manager)
	if m == nil {
		return fmt.Errorf("slackemu: set manager %q: %w", manager, ErrUnknownUser)
	}
	u.ManagerID = m.ID
	return nil
}

// AddChannel adds a channel with the given members (names or IDs). The bot
// user is a member only if listed (as "latch" or its ID); chat.postMessage
// to a channel the bot is not in fails with not_in_channel.
func (s *Server) AddChannel(name string, private bool, members ...string) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.TrimPrefix(name, "#")
	if name == "" || s.ws.channel(name) != nil {
		return Channel{}, fmt.Errorf("slackemu: add channel %q: empty or taken", name)
	}
	c := &Channel{ID: s.ws.newID("C", name), Name: name, IsPrivate: private}
	for _, m := range members {
		u := s.ws.user(m)
		if u == nil {
			return Channel{}, fmt.Errorf("slackemu: add channel %q: member %q: %w", name, m, ErrUnknownUser)
		}
		if !c.hasMember(u.ID) {
			c.Members = append(c.Members, u.ID)
		}
	}
	s.ws.channels = append(s.ws.channels, c)
	s.bumpLocked()
	return copyChannel(c), nil
}

// JoinChannel adds users (names or IDs) to a channel.
func (s *Server) JoinChannel(channel string, users ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ws.channel(channel)
	if c == nil {
		return fmt.Errorf("slackemu: join %q: %w", channel, ErrUnknownChannel)
	}
	for _, m := range users {
		u := s.ws.user(m)
		if u == nil {
			return fmt.Errorf("slackemu: join %q: %w: %q", channel, ErrUnknownUser, m)
		}
		if !c.hasMember(u.ID) {
			c.Members = append(c.Members, u.ID)
		}
	}
	s.bumpLocked()
	return nil
}

// AddUserGroup adds a user group with the given handle and members (names or IDs).
func (s *Server) AddUserGroup(handle, name string, members ...string) (Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	handle = strings.TrimPrefix(handle, "@")
	if handle == "" || s.ws.group(handle) != nil {
		return Group{}, fmt.Errorf("slackemu: add user group %q: empty or taken", handle)
	}
	g := &Group{ID: s.ws.newID("S", handle), Handle: handle, Name: name}
	if g.Name == "" {
		g.Name = handle
	}
	if err := s.setGroupMembersLocked(g, members); err != nil {
		return Group{}, err
	}
	s.ws.groups = append(s.ws.groups, g)
	s.bumpLocked()
	return copyGroup(g), nil
}

// SetUserGroupMembers replaces a user group's members (names or IDs).
func (s *Server) SetUserGroupMembers(handle string, members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.ws.group(handle)
	if g == nil {
		return fmt.Errorf("slackemu: user group %q not found", handle)
	}
	if err := s.setGroupMembersLocked(g, members); err != nil {
		return err
	}
	s.bumpLocked()
	return nil
}

func (s *Server) setGroupMembersLocked(g *Group, members []string) error {
	var ids []string
	for _, m := range members {
		u := s.ws.user(m)
		if u == nil {
			return fmt.Errorf("slackemu: user group %q: member %q: %w", g.Handle, m, ErrUnknownUser)
		}
		if !slices.Contains(ids, u.ID) {
			ids = append(ids, u.ID)
		}
	}
	g.Members = ids
	return nil
}

// resolveUserLocked resolves a test-supplied user reference.
func (s *Server) resolveUserLocked(ref string) (*User, error) {
	u := s.ws.user(ref)
	if u == nil || u.IsBot {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, ref)
	}
	return u, nil
}
