package workflow

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func testDirectory(t *testing.T) *StaticDirectory {
	t.Helper()
	d, err := NewStaticDirectory(
		[]User{
			{SlackID: "U01", Email: "Ana@Example.com", Manager: "U03", Groups: []string{"eng"}},
			{SlackID: "U02", Email: "bo@example.com", Groups: []string{"eng", "oncall"}},
			{SlackID: "U03", Email: "cy@example.com"},
		},
		[]Group{
			{Name: "eng", Source: GroupStatic},
			{Name: "oncall", Members: []string{"U01"}},
			{Name: "dba", Members: []string{"U03"}},
			{Name: "sre", Source: GroupSlack, Ref: "sre-team"},
		},
	)
	if err != nil {
		t.Fatalf("NewStaticDirectory: %v", err)
	}
	return d
}

func TestStaticDirectoryGroups(t *testing.T) {
	d := testDirectory(t)
	ctx := context.Background()
	tests := []struct {
		id   string
		want []string
	}{
		{"U01", []string{"eng", "oncall"}},
		{"U02", []string{"eng", "oncall"}},
		{"U03", []string{"dba"}},
	}
	for _, tt := range tests {
		got, err := d.Groups(ctx, tt.id)
		if err != nil {
			t.Fatalf("Groups(%s): %v", tt.id, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Groups(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestStaticDirectoryGroupOrder(t *testing.T) {
	names := []string{"g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8"}
	var groups []Group
	for _, name := range names {
		groups = append(groups, Group{Name: name, Source: GroupStatic, Members: []string{"U01"}})
	}
	d, err := NewStaticDirectory([]User{{SlackID: "U01", Email: "a@example.com", Groups: []string{"g5"}}}, groups)
	if err != nil {
		t.Fatalf("NewStaticDirectory: %v", err)
	}
	want := []string{"g5", "g1", "g2", "g3", "g4", "g6", "g7", "g8"}
	for range 10 {
		if got, _ := d.Groups(context.Background(), "U01"); !slices.Equal(got, want) {
			t.Fatalf("Groups(U01) = %v, want the user's own, then the order of groups: %v", got, want)
		}
	}
}

func TestStaticDirectoryDuplicates(t *testing.T) {
	ana := User{SlackID: "U01", Email: "ana@example.com"}
	tests := []struct {
		name   string
		users  []User
		groups []Group
		want   error
	}{
		{"slack id", []User{ana, {SlackID: "U01", Email: "bo@example.com"}}, nil, ErrDuplicateUser},
		{"email in another case", []User{ana, {SlackID: "U02", Email: "ANA@example.com"}}, nil, ErrDuplicateUser},
		{"group", []User{ana}, []Group{{Name: "dba"}, {Name: "dba"}}, ErrDuplicateGroup},
	}
	for _, tt := range tests {
		if _, err := NewStaticDirectory(tt.users, tt.groups); !errors.Is(err, tt.want) {
			t.Errorf("%s: NewStaticDirectory error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestStaticDirectoryMembers(t *testing.T) {
	d := testDirectory(t)
	ctx := context.Background()
	got, err := d.Members(ctx, "oncall")
	if err != nil {
		t.Fatalf("Members(oncall): %v", err)
	}
	slices.Sort(got)
	if want := []string{"U01", "U02"}; !slices.Equal(got, want) {
		t.Errorf("Members(oncall) = %v, want %v", got, want)
	}
	if _, err := d.Members(ctx, "sre"); !errors.Is(err, ErrExternalGroup) {
		t.Errorf("Members(sre) error = %v, want ErrExternalGroup", err)
	}
	if _, err := d.Members(ctx, "nobody"); !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("Members(nobody) error = %v, want ErrUnknownGroup", err)
	}
}

func TestStaticDirectoryLookups(t *testing.T) {
	d := testDirectory(t)
	ctx := context.Background()
	if got, err := d.Email(ctx, "U02"); err != nil || got != "bo@example.com" {
		t.Errorf("Email(U02) = %q, %v; want bo@example.com", got, err)
	}
	if got, err := d.Manager(ctx, "U01"); err != nil || got != "U03" {
		t.Errorf("Manager(U01) = %q, %v; want U03", got, err)
	}
	if u, ok := d.UserByEmail("ana@example.COM"); !ok || u.SlackID != "U01" {
		t.Errorf("UserByEmail(ana@example.COM) = %+v, %v; want U01", u, ok)
	}
	for _, call := range []func() error{
		func() error { _, err := d.Email(ctx, "U99"); return err },
		func() error { _, err := d.Manager(ctx, "U99"); return err },
		func() error { _, err := d.Groups(ctx, "U99"); return err },
	} {
		if err := call(); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("lookup of U99: error = %v, want ErrUnknownUser", err)
		}
	}
}

func TestStaticDirectoryIsDirectory(t *testing.T) {
	var _ Directory = testDirectory(t)
}

func TestUserLocalPart(t *testing.T) {
	for email, want := range map[string]string{"jane.doe@example.com": "jane.doe", "root": "root", "": ""} {
		if got := (User{Email: email}).LocalPart(); got != want {
			t.Errorf("LocalPart of %q = %q, want %q", email, got, want)
		}
	}
}

func TestNameTemplate(t *testing.T) {
	u := User{SlackID: "U0ABC", Email: "Jane.Doe@example.com"}
	tests := []struct {
		text    string
		want    string
		wantErr bool
	}{
		{"{{.LocalPart}}", "Jane.Doe", false},
		{`latch_{{.LocalPart | lower | replace "." "_"}}`, "latch_jane_doe", false},
		{"{{.SlackID | lower}}", "u0abc", false},
		{"{{.Emial}}", "", true},            // no such field
		{"{{.LocalPart", "", true},          // does not parse
		{"{{nosuchfunc .Email}}", "", true}, // unknown function
		{"  ", "", true},                    // empty name
	}
	for _, tt := range tests {
		nt, err := ParseNameTemplate(tt.text)
		if tt.wantErr {
			if !errors.Is(err, ErrNameTemplate) {
				t.Errorf("ParseNameTemplate(%q) error = %v, want ErrNameTemplate", tt.text, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseNameTemplate(%q): %v", tt.text, err)
		}
		got, err := nt.Execute(u)
		if err != nil || got != tt.want {
			t.Errorf("Execute(%q) = %q, %v; want %q", tt.text, got, err, tt.want)
		}
	}
}

func TestNameTemplateEmptyForSomeone(t *testing.T) {
	nt, err := ParseNameTemplate("{{.Manager}}")
	if err != nil {
		t.Fatalf("ParseNameTemplate: %v", err)
	}
	if _, err := nt.Execute(User{SlackID: "U01"}); !errors.Is(err, ErrNameTemplate) {
		t.Errorf("Execute for a person without a manager: error = %v, want ErrNameTemplate", err)
	}
}
