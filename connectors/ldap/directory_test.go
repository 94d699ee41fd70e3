package ldap_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/workflow"
)

// staticDirectory is latch's own directory in the directory tests: it
// knows lee's manager kim but not lee, and stranger, whom the LDAP
// directory does not know.
func staticDirectory(t testing.TB) *workflow.StaticDirectory {
	t.Helper()
	d, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "U0JANE", Email: "jane@example.com", Groups: []string{"auditors"}},
		{SlackID: "U0OMAR", Email: "omar@example.com"},
		{SlackID: "U0ANN", Email: "Ann@Example.com"},
		{SlackID: "U0KIM", Email: "kim@example.com", Manager: "U0ANN"},
		{SlackID: "U0DANG", Email: "dangler@example.com"},
		{SlackID: "U0NOUID", Email: "nouid@example.com", Manager: "U0ANN"},
		{SlackID: "U0DUP", Email: "dup@example.com"},
		{SlackID: "U0STRANGER", Email: "stranger@example.com"},
	}, []workflow.Group{
		{Name: "auditors", Source: workflow.GroupStatic},
		{Name: "db-admins", Source: workflow.GroupLDAP, Ref: "cn=dba," + groupsDN, Connector: "corp"},
		{Name: "elsewhere", Source: workflow.GroupLDAP, Ref: "cn=elsewhere," + groupsDN, Connector: "other"},
		{Name: "oncall", Source: workflow.GroupSlack, Ref: "oncall"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// newDirectory returns a Directory over url with groups under groupsDN.
func newDirectory(t testing.TB, url string, dc ldap.DirectoryConfig) *ldap.Directory {
	t.Helper()
	c, err := ldap.New(ldap.Config{
		Name: "corp", URL: url, BindDN: readerDN, BindPassword: readerPassword,
		UserBaseDN: peopleDN, GroupBaseDN: groupsDN,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if dc.Base == nil {
		dc.Base = staticDirectory(t)
	}
	d, err := ldap.NewDirectory(c, dc)
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	return d
}

func TestDirectoryManager(t *testing.T) {
	s := slapd(t)
	d := newDirectory(t, "ldap://"+s.addr, ldap.DirectoryConfig{})
	tests := []struct {
		name    string
		id      string
		want    string
		wantErr error
	}{
		{"from the manager attribute", "U0JANE", "U0ANN", nil},
		{"email differs in case", "U0OMAR", "U0ANN", nil},
		{"no manager", "U0ANN", "", nil},
		{"manager latch does not know", "U0KIM", "", nil},
		{"manager entry missing", "U0DANG", "", nil},
		{"no manager attribute, the base's manager", "U0NOUID", "U0ANN", nil},
		{"not in the ldap directory", "U0STRANGER", "", ldap.ErrUnknownPerson},
		{"several entries", "U0DUP", "", ldap.ErrAmbiguousPerson},
		{"not in the base directory", "U0NOBODY", "", workflow.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Manager(t.Context(), tt.id)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Manager(%s) = %q, %v; want an error matching %v", tt.id, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Manager(%s) = %q, %v; want %q", tt.id, got, err, tt.want)
			}
		})
	}
	t.Run("unknown person is an unknown user", func(t *testing.T) {
		_, err := d.Manager(t.Context(), "U0STRANGER")
		if _, ok := errAs[*ldap.Error](err); !ok || !errors.Is(err, workflow.ErrUnknownUser) {
			t.Errorf("Manager: %v (%T), want an *ldap.Error matching workflow.ErrUnknownUser", err, err)
		}
	})
	t.Run("email", func(t *testing.T) {
		got, err := d.Email(t.Context(), "U0ANN")
		if err != nil || got != "Ann@Example.com" {
			t.Errorf("Email(U0ANN) = %q, %v; want Ann@Example.com", got, err)
		}
	})
}

func TestDirectoryGroups(t *testing.T) {
	s := slapd(t)
	d := newDirectory(t, "ldap://"+s.addr, ldap.DirectoryConfig{})
	tests := []struct {
		id      string
		want    []string
		wantErr error
	}{
		// The base's groups, then the ldap groups by name: db-admins is
		// cn=dba as the base names it, ops a posixGroup.
		{"U0JANE", []string{"auditors", "engineering", "ops"}, nil},
		{"U0OMAR", []string{"db-admins", "engineering"}, nil},
		{"U0ANN", nil, nil},
		{"U0NOUID", nil, nil},
		{"U0STRANGER", nil, ldap.ErrUnknownPerson},
		{"U0NOBODY", nil, workflow.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := d.Groups(t.Context(), tt.id)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Groups(%s) = %q, %v; want an error matching %v", tt.id, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Groups(%s) = %q, %v; want %q", tt.id, got, err, tt.want)
			}
		})
	}
}

func TestDirectoryMembers(t *testing.T) {
	s := slapd(t)
	d := newDirectory(t, "ldap://"+s.addr, ldap.DirectoryConfig{
		Groups: map[string]string{"platform": "cn=engineering," + groupsDN},
	})
	tests := []struct {
		group   string
		want    []string
		wantErr error
	}{
		// The admin is a placeholder, no person: left out.
		{"engineering", []string{"U0JANE", "U0OMAR"}, nil},
		{"platform", []string{"U0JANE", "U0OMAR"}, nil},
		// lee is not known to latch: left out.
		{"ops", []string{"U0JANE"}, nil},
		{"db-admins", []string{"U0OMAR"}, nil},
		{"dba", []string{"U0OMAR"}, nil},
		{"auditors", []string{"U0JANE"}, nil},
		{"oncall", nil, workflow.ErrExternalGroup},
		{"elsewhere", nil, workflow.ErrExternalGroup},
		{"nope", nil, workflow.ErrUnknownGroup},
		{"*", nil, workflow.ErrUnknownGroup},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			got, err := d.Members(t.Context(), tt.group)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Members(%s) = %q, %v; want an error matching %v", tt.group, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Members(%s) = %q, %v; want %q", tt.group, got, err, tt.want)
			}
		})
	}

	t.Run("group of the configuration missing", func(t *testing.T) {
		d := newDirectory(t, "ldap://"+s.addr, ldap.DirectoryConfig{
			Groups: map[string]string{"gone": "cn=gone," + groupsDN},
		})
		if _, err := d.Members(t.Context(), "gone"); !errors.Is(err, ldap.ErrNoGroup) {
			t.Errorf("Members(gone): %v, want ErrNoGroup", err)
		}
	})

	t.Run("lookup failure", func(t *testing.T) {
		down := errors.New("slack is down")
		d := newDirectory(t, "ldap://"+s.addr, ldap.DirectoryConfig{
			SlackID: func(context.Context, string) (string, error) { return "", down },
		})
		if _, err := d.Members(t.Context(), "engineering"); !errors.Is(err, down) {
			t.Errorf("Members: %v, want it to match %v", err, down)
		}
		if _, err := d.Manager(t.Context(), "U0JANE"); !errors.Is(err, down) {
			t.Errorf("Manager: %v, want it to match %v", err, down)
		}
	})
}

// TestDirectoryCache checks that results are kept for the cache TTL and no
// longer, and that failures are not kept.
func TestDirectoryCache(t *testing.T) {
	s := slapd(t)
	var clock atomic.Int64
	clock.Store(time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	p := newProxy(t, s.addr)
	d := newDirectory(t, "ldap://"+p.addr, ldap.DirectoryConfig{CacheTTL: time.Minute, Now: now})

	group := s.newGroup(t, groupsDN, groupOfNames)
	cn := group[len("cn=") : len(group)-len(","+groupsDN)]
	check := func(t *testing.T, wantGroups, wantMembers []string) {
		t.Helper()
		if got, err := d.Groups(t.Context(), "U0KIM"); err != nil || !slices.Equal(got, wantGroups) {
			t.Errorf("Groups(U0KIM) = %q, %v; want %q", got, err, wantGroups)
		}
		if got, err := d.Members(t.Context(), cn); err != nil || !slices.Equal(got, wantMembers) {
			t.Errorf("Members(%s) = %q, %v; want %q", cn, got, err, wantMembers)
		}
	}
	check(t, nil, nil)

	req := goldap.NewModifyRequest(group, nil)
	req.Add("member", []string{"uid=kim," + peopleDN})
	if err := s.admin(t).Modify(req); err != nil {
		t.Fatal(err)
	}
	check(t, nil, nil)
	advance(time.Minute - time.Nanosecond)
	check(t, nil, nil)
	advance(time.Nanosecond)
	check(t, []string{cn}, []string{"U0KIM"})

	// With the server down, cached results still come, and failures are
	// returned, not kept.
	p.Down()
	check(t, []string{cn}, []string{"U0KIM"})
	advance(time.Minute)
	got, err := d.Groups(t.Context(), "U0KIM")
	e, ok := errAs[*ldap.Error](err)
	if !ok || e.Permanent() {
		t.Fatalf("Groups(U0KIM) with the server down = %q, %v; want a transient *ldap.Error", got, err)
	}
	p.Up(t)
	check(t, []string{cn}, []string{"U0KIM"})
}

func TestNewDirectory(t *testing.T) {
	c, err := ldap.New(ldap.Config{Name: "corp", URL: "ldap://127.0.0.1:1", UserBaseDN: peopleDN})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	base := staticDirectory(t)
	tests := []struct {
		name string
		c    *ldap.Connector
		dc   ldap.DirectoryConfig
	}{
		{"no connector", nil, ldap.DirectoryConfig{Base: base}},
		{"no base", c, ldap.DirectoryConfig{}},
		{"base without UserByEmail", c, ldap.DirectoryConfig{Base: onlyDirectory{base}}},
		{"group not a dn", c, ldap.DirectoryConfig{Base: base, Groups: map[string]string{"x": "x"}}},
		{"two names for a group", c, ldap.DirectoryConfig{Base: base, Groups: map[string]string{"x": "cn=dba," + groupsDN, "y": "CN=dba, " + groupsDN}}},
		{"a name the base gives another dn", c, ldap.DirectoryConfig{Base: base, Groups: map[string]string{"z": "cn=dba," + groupsDN}}},
		{"negative ttl", c, ldap.DirectoryConfig{Base: base, CacheTTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ldap.NewDirectory(tt.c, tt.dc); !errors.Is(err, ldap.ErrInvalidConfig) {
				t.Errorf("NewDirectory: %v, want an error matching ErrInvalidConfig", err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		d, err := ldap.NewDirectory(c, ldap.DirectoryConfig{Base: onlyDirectory{base}, SlackID: func(context.Context, string) (string, error) { return "", nil }})
		if err != nil {
			t.Fatalf("NewDirectory: %v", err)
		}
		if got, want := ldap.CacheTTLOf(d), ldap.DefaultCacheTTL; got != want {
			t.Errorf("cache TTL = %s, want %s", got, want)
		}
	})
}

func TestDirectoryUserGroups(t *testing.T) {
	c, err := ldap.New(ldap.Config{Name: "corp", URL: "ldap://127.0.0.1:1", UserBaseDN: peopleDN})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	base := staticDirectory(t)
	d, err := ldap.NewDirectory(c, ldap.DirectoryConfig{Base: withUserGroups{base}})
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	if got, err := d.UserGroupMembers(t.Context(), "oncall"); err != nil || !slices.Equal(got, []string{"U0ANN"}) {
		t.Errorf("UserGroupMembers(oncall) = %q, %v; want [U0ANN]", got, err)
	}
	d, err = ldap.NewDirectory(c, ldap.DirectoryConfig{Base: base})
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	if _, err := d.UserGroupMembers(t.Context(), "oncall"); !errors.Is(err, ldap.ErrNoUserGroups) {
		t.Errorf("UserGroupMembers(oncall): %v, want ErrNoUserGroups", err)
	}
}

// withUserGroups is a directory that reads Slack user groups: every one
// has ann alone.
type withUserGroups struct{ *workflow.StaticDirectory }

func (withUserGroups) UserGroupMembers(context.Context, string) ([]string, error) {
	return []string{"U0ANN"}, nil
}

// onlyDirectory hides every method of a directory but workflow.Directory's.
type onlyDirectory struct{ workflow.Directory }
