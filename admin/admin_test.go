package admin_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/workflow"
)

func TestAuth(t *testing.T) {
	w := newWorld(t, admin.Actor)
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"another scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no token", "Bearer", http.StatusUnauthorized},
		{"empty token", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testToken)), http.StatusUnauthorized},
		{"a prefix of the token", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"the token and more", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"two spaces", "Bearer  " + testToken, http.StatusUnauthorized},
		{"the token bare", testToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"scheme in lower case", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, w.srv.URL, http.MethodGet, "/api/v1/grants", tt.auth, nil)
			if got.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", got.status, got.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if string(got.body) != "{\"error\":\"unauthorized\"}\n" {
					t.Errorf("body %q, want exactly {\"error\":\"unauthorized\"}", got.body)
				}
				if got.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
		})
	}

	// Without the token nothing is done, and nothing is told: not even
	// whether an endpoint exists.
	r := w.submit("db", "UALICE")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/grants/" + r.Grants[0].ID + "/revoke"},
		{http.MethodGet, "/api/v1/nothing"},
		{http.MethodGet, "/api/v1/audit"},
	} {
		got := call(t, w.srv.URL, c.method, c.path, "Bearer wrong", map[string]string{"reason": "r"})
		if got.status != http.StatusUnauthorized || string(got.body) != "{\"error\":\"unauthorized\"}\n" {
			t.Errorf("%s %s with a wrong token = %d %q", c.method, c.path, got.status, got.body)
		}
	}
	if got := w.request(r.ID).State; got != workflow.RequestActive {
		t.Errorf("request is %s after an unauthorized revoke, want active", got)
	}
	if strings.Contains(w.log.String(), testToken) || strings.Contains(w.log.String(), "hunter2") {
		t.Errorf("the log holds a secret:\n%s", w.log)
	}
	if !strings.Contains(w.log.String(), `"status":401`) {
		t.Errorf("refused calls are not logged:\n%s", w.log)
	}
}

func TestEmptyTokenRefusesEverything(t *testing.T) {
	w := newWorld(t, admin.Actor)
	for _, token := range [][]byte{nil, {}} {
		srv := httptestServer(t, w.handler(w.eng, token))
		for _, auth := range []string{"", "Bearer ", "Bearer " + testToken, "Bearer x"} {
			if got := call(t, srv, http.MethodGet, "/api/v1/grants", auth, nil); got.status != http.StatusUnauthorized {
				t.Errorf("token %q, Authorization %q: status %d, want 401", token, auth, got.status)
			}
		}
	}
}

// TestTokenComparedInConstantTime reads the source of the check: the
// token must be compared by crypto/subtle, never with == or bytes.Equal,
// which return at the first byte that differs.
func TestTokenComparedInConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "admin.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var check *ast.FuncDecl
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "authorized" {
			check = fn
		}
	}
	if check == nil {
		t.Fatal("no authorized function in admin.go")
	}
	var subtleCalls int
	ast.Inspect(check, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if pkg, ok := n.X.(*ast.Ident); ok {
				switch pkg.Name + "." + n.Sel.Name {
				case "subtle.ConstantTimeCompare":
					subtleCalls++
				case "bytes.Equal", "strings.Compare", "slices.Equal":
					t.Errorf("authorized uses %s.%s", pkg.Name, n.Sel.Name)
				}
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				for _, side := range []ast.Expr{n.X, n.Y} {
					if id, ok := side.(*ast.Ident); ok && (id.Name == "token" || id.Name == "sum") {
						// Only a comparison with the empty string is allowed.
						if lit, ok := other(n, side).(*ast.BasicLit); !ok || lit.Value != `""` {
							t.Errorf("authorized compares %s with %s", id.Name, n.Op)
						}
					}
				}
			}
		}
		return true
	})
	if subtleCalls == 0 {
		t.Error("authorized does not use subtle.ConstantTimeCompare")
	}
}

func other(b *ast.BinaryExpr, side ast.Expr) ast.Expr {
	if b.X == side {
		return b.Y
	}
	return b.X
}

func TestGrants(t *testing.T) {
	w := newWorld(t, admin.Actor)
	alice := w.submit("db", "UALICE")
	bob := w.submit("db", "UBOB")
	released := w.submit("db", "UBOB")
	if _, err := w.eng.Release(context.Background(), released.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	w.eng.Wait()
	pending := w.submit("ask", "UALICE")
	if pending.State != workflow.RequestPending {
		t.Fatalf("ask request is %s, want pending", pending.State)
	}
	w.clock.Advance(20 * time.Minute)

	tests := []struct {
		name  string
		query string
		want  []workflow.Request
	}{
		{"all", "", []workflow.Request{alice, bob, released}},
		{"all, by name", "?state=all", []workflow.Request{alice, bob, released}},
		{"active", "?state=active", []workflow.Request{alice, bob}},
		{"a person", "?user=UBOB", []workflow.Request{bob, released}},
		{"a person's active", "?user=UBOB&state=active", []workflow.Request{bob}},
		{"nobody", "?user=UNOBODY", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := w.call(http.MethodGet, "/api/v1/grants"+tt.query, nil)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			got := decode[admin.GrantList](t, a).Grants
			if got == nil {
				t.Fatalf("grants is null in %s, want a list", a.body)
			}
			var gotIDs, wantIDs []string
			for _, row := range got {
				gotIDs = append(gotIDs, row.Grant)
			}
			for _, r := range tt.want {
				wantIDs = append(wantIDs, r.Grants[0].ID)
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("grants %v, want %v", gotIDs, wantIDs)
			}
		})
	}

	rows := decode[admin.GrantList](t, w.call(http.MethodGet, "/api/v1/grants", nil)).Grants
	first := rows[0]
	if first.Request != alice.ID || first.Beneficiary != "UALICE" || first.Item != "db" || first.Connector != "pg" ||
		first.Entitlement != "readonly" || first.State != workflow.GrantActive || !first.Access ||
		first.LeftSeconds == nil || *first.LeftSeconds != 40*60 {
		t.Errorf("Alice's grant = %+v, want active on pg/readonly with 40 minutes left", first)
	}
	if last := rows[2]; last.State != workflow.GrantRevoked || last.Access || last.Outcome != workflow.OutcomeReleased || last.LeftSeconds != nil {
		t.Errorf("released grant = %+v", last)
	}
}

func TestGrantsBadParameters(t *testing.T) {
	w := newWorld(t, admin.Actor)
	tests := []struct{ query, param string }{
		{"?state=revoked", "state"},
		{"?state=active&state=all", "state"},
		{"?user=" + strings.Repeat("U", 300), "user"},
		{"?active=true", "active"},
	}
	for _, tt := range tests {
		wantError(t, w.call(http.MethodGet, "/api/v1/grants"+tt.query, nil), http.StatusBadRequest, tt.param)
	}
	wantError(t, w.call(http.MethodPost, "/api/v1/grants", nil), http.StatusMethodNotAllowed, "GET")
	wantError(t, w.call(http.MethodGet, "/api/v2/grants", nil), http.StatusNotFound, "/api/v2/grants")
}

func TestRequest(t *testing.T) {
	w := newWorld(t, admin.Actor)
	r := w.submit("db", "UALICE")
	other := w.submit("db", "UBOB")
	if _, err := w.eng.Release(context.Background(), r.ID, "UALICE"); err != nil {
		t.Fatal(err)
	}
	w.eng.Wait()
	wantKinds := []string{workflow.KindSubmitted, workflow.KindApproved, workflow.KindGrantProvisioning, workflow.KindGrantActive,
		workflow.KindActivated, workflow.KindEnding, workflow.KindGrantRevoking, workflow.KindGrantRevoked, workflow.KindEnded}

	for _, id := range []string{r.ID, r.Grants[0].ID} {
		a := w.call(http.MethodGet, "/api/v1/requests/"+id, nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET request %s: %d %s", id, a.status, a.body)
		}
		got := decode[admin.RequestDetail](t, a)
		if got.Request.ID != r.ID || got.Request.State != workflow.RequestEnded || got.Request.Outcome != workflow.OutcomeReleased {
			t.Errorf("request %s: %+v, want %s ended (released)", id, got.Request, r.ID)
		}
		var kinds []string
		for i, e := range got.Events {
			kinds = append(kinds, e.Kind)
			if e.RequestID != r.ID {
				t.Errorf("event %d belongs to %s", e.Seq, e.RequestID)
			}
			if i > 0 && e.Seq <= got.Events[i-1].Seq {
				t.Errorf("event %d comes after %d", e.Seq, got.Events[i-1].Seq)
			}
			if len(e.Hash) != 64 || len(e.PrevHash) != 64 {
				t.Errorf("event %d without its hashes: %+v", e.Seq, e)
			}
		}
		if !slices.Equal(kinds, wantKinds) {
			t.Errorf("events %v, want %v", kinds, wantKinds)
		}
	}
	if a := w.call(http.MethodGet, "/api/v1/requests/"+other.ID, nil); len(decode[admin.RequestDetail](t, a).Events) != 5 {
		t.Errorf("Bob's request has events %s, want its 5", a.body)
	}
	wantError(t, w.call(http.MethodGet, "/api/v1/requests/0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f", nil), http.StatusNotFound, "0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f")
	wantError(t, w.call(http.MethodGet, "/api/v1/requests/"+r.ID+"?full=1", nil), http.StatusBadRequest, "full")
}

// TestRevoke revokes through the API and checks the target was asked, and
// the audit log says who did it and why.
func TestRevoke(t *testing.T) {
	tests := []struct {
		name string
		id   func(r workflow.Request) string
		wait string
	}{
		{"a grant, waiting", func(r workflow.Request) string { return r.Grants[0].ID }, "?wait=30s"},
		{"a request, waiting", func(r workflow.Request) string { return r.ID }, "?wait=30s"},
		{"a grant, not waiting", func(r workflow.Request) string { return r.Grants[0].ID }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, admin.Actor)
			r := w.submit("db", "UALICE")
			keep := w.submit("db", "UBOB")
			a := w.call(http.MethodPost, "/api/v1/grants/"+tt.id(r)+"/revoke"+tt.wait, admin.RevokeBody{Reason: "laptop stolen"})
			if a.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", a.status, a.body)
			}
			got := decode[admin.RevokeResult](t, a)
			if got.Request.ID != r.ID || got.Request.Outcome != workflow.OutcomeRevoked || got.Request.Reason != "laptop stolen" {
				t.Errorf("answer %+v", got.Request)
			}
			if tt.wait != "" && (!got.Settled || got.Request.State != workflow.RequestEnded || got.Request.Grants[0].State != workflow.GrantRevoked) {
				t.Errorf("after the wait: settled %v, %s, grant %s; want settled, ended, revoked", got.Settled, got.Request.State, got.Request.Grants[0].State)
			}
			w.eng.Wait()
			if got := w.target.revoked(); !slices.Equal(got, []string{r.Grants[0].ID}) {
				t.Errorf("target revokes %v, want only Alice's grant", got)
			}
			if w.target.has(r.Grants[0].ID) || !w.target.has(keep.Grants[0].ID) {
				t.Errorf("after the revoke the target has Alice's grant %v, Bob's %v", w.target.has(r.Grants[0].ID), w.target.has(keep.Grants[0].ID))
			}
			detail := decode[admin.RequestDetail](t, w.call(http.MethodGet, "/api/v1/requests/"+r.ID, nil))
			i := slices.IndexFunc(detail.Events, func(e storeEvent) bool { return e.Kind == workflow.KindEnding })
			if i < 0 || detail.Events[i].Actor != admin.Actor || !strings.Contains(string(detail.Events[i].Payload), "laptop stolen") {
				t.Errorf("no request.ending by %s with the reason in %+v", admin.Actor, detail.Events)
			}
		})
	}
}

// TestRevokeNamesTheOperator: a revoke that says who asked for it is
// recorded as api:<operator>, and the engine lets that operator revoke.
func TestRevokeNamesTheOperator(t *testing.T) {
	w := newWorld(t, admin.Actor, admin.Actor+":")
	r := w.submit("db", "UALICE")
	a := w.call(http.MethodPost, "/api/v1/grants/"+r.Grants[0].ID+"/revoke?wait=1m", admin.RevokeBody{Reason: "laptop stolen", Operator: "jane@example.com"})
	if a.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	detail := decode[admin.RequestDetail](t, w.call(http.MethodGet, "/api/v1/requests/"+r.ID, nil))
	i := slices.IndexFunc(detail.Events, func(e storeEvent) bool { return e.Kind == workflow.KindEnding })
	if i < 0 || detail.Events[i].Actor != "api:jane@example.com" {
		t.Errorf("request.ending not recorded as api:jane@example.com: %+v", detail.Events)
	}
}

func TestRevokeFailingTarget(t *testing.T) {
	w := newWorld(t, admin.Actor)
	r := w.submit("bundle", "UALICE")
	w.target.mu.Lock()
	w.target.failFirst["stuck"] = 1000
	w.target.mu.Unlock()
	a := w.call(http.MethodPost, "/api/v1/grants/"+r.ID+"/revoke?wait=1m", admin.RevokeBody{Reason: "left the team"})
	if a.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	got := decode[admin.RevokeResult](t, a)
	if !got.Settled || got.Request.State != workflow.RequestRevoking {
		t.Fatalf("settled %v, state %s; want settled while still revoking", got.Settled, got.Request.State)
	}
	states := map[string]workflow.Grant{}
	for _, g := range got.Request.Grants {
		states[g.Target.Entitlement] = g
	}
	if g := states["writer"]; g.State != workflow.GrantRevoked {
		t.Errorf("writer grant is %s, want revoked", g.State)
	}
	if g := states["stuck"]; g.State != workflow.GrantRevoking || g.RevokeAttempts != 1 || g.LastError != "target unreachable" {
		t.Errorf("stuck grant = %+v, want revoking after one failure", g)
	}
}

func TestRevokeRefused(t *testing.T) {
	w := newWorld(t, admin.Actor)
	active := w.submit("db", "UALICE")
	pending := w.submit("ask", "UBOB")
	ended := w.submit("db", "UBOB")
	if _, err := w.eng.Release(context.Background(), ended.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	w.eng.Wait()
	revoke := func(id string) string { return "/api/v1/grants/" + id + "/revoke" }
	reason := admin.RevokeBody{Reason: "audit finding"}
	tests := []struct {
		name       string
		path       string
		body       any
		wantStatus int
		want       string
	}{
		{"no reason", revoke(active.ID), admin.RevokeBody{}, http.StatusBadRequest, "reason"},
		{"blank reason", revoke(active.ID), admin.RevokeBody{Reason: "  "}, http.StatusBadRequest, "reason"},
		{"no body", revoke(active.ID), nil, http.StatusBadRequest, "body"},
		{"not JSON", revoke(active.ID), []byte("reason=x"), http.StatusBadRequest, "body"},
		{"unknown field", revoke(active.ID), []byte(`{"reason":"x","by":"USAM"}`), http.StatusBadRequest, "by"},
		{"long reason", revoke(active.ID), admin.RevokeBody{Reason: strings.Repeat("x", 5000)}, http.StatusBadRequest, "reason"},
		{"odd operator", revoke(active.ID), admin.RevokeBody{Reason: "x", Operator: "jane doe"}, http.StatusBadRequest, "operator"},
		{"long operator", revoke(active.ID), admin.RevokeBody{Reason: "x", Operator: strings.Repeat("j", 65)}, http.StatusBadRequest, "operator"},
		{"bad wait", revoke(active.ID) + "?wait=forever", reason, http.StatusBadRequest, "wait"},
		{"wait too long", revoke(active.ID) + "?wait=1h", reason, http.StatusBadRequest, "wait"},
		{"unknown id", revoke("0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f"), reason, http.StatusNotFound, admin.ErrUnknownGrant.Error()},
		{"pending", revoke(pending.ID), reason, http.StatusConflict, admin.ErrNotRevocable.Error()},
		{"ended", revoke(ended.Grants[0].ID), reason, http.StatusConflict, admin.ErrNotRevocable.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := w.store.Head()
			wantError(t, w.call(http.MethodPost, tt.path, tt.body), tt.wantStatus, tt.want)
			if after, _ := w.store.Head(); after != before {
				t.Errorf("the log grew from %d to %d events", before, after)
			}
		})
	}
	wantError(t, w.call(http.MethodGet, revoke(active.ID), nil), http.StatusMethodNotAllowed, "POST")
	if got := w.request(active.ID).State; got != workflow.RequestActive {
		t.Errorf("active request is %s after refused revokes", got)
	}
}

// TestRevokeRefusedByEngine runs an engine that does not count the API
// among its admins: its refusal comes back as 409 with its message.
func TestRevokeRefusedByEngine(t *testing.T) {
	w := newWorld(t, "USAM")
	r := w.submit("db", "UALICE")
	a := w.call(http.MethodPost, "/api/v1/grants/"+r.Grants[0].ID+"/revoke", admin.RevokeBody{Reason: "audit finding"})
	_, err := w.eng.Revoke(context.Background(), r.ID, admin.Actor, "audit finding")
	if workflow.RefusalOf(err) == "" {
		t.Fatalf("the engine did not refuse: %v", err)
	}
	wantError(t, a, http.StatusConflict, err.Error())
	if got := w.request(r.ID).State; got != workflow.RequestActive {
		t.Errorf("request is %s after a refused revoke", got)
	}
}

// failingEngine fails every revoke with an internal error.
type failingEngine struct{}

func (failingEngine) Revoke(context.Context, string, string, string) (workflow.Request, error) {
	return workflow.Request{}, errInternal
}

func TestRevokeEngineError(t *testing.T) {
	w := newWorld(t, admin.Actor)
	r := w.submit("db", "UALICE")
	srv := httptestServer(t, w.handler(failingEngine{}, []byte(testToken)))
	a := call(t, srv, http.MethodPost, "/api/v1/grants/"+r.ID+"/revoke", "Bearer "+testToken, admin.RevokeBody{Reason: "r"})
	wantError(t, a, http.StatusInternalServerError, "internal error")
	if strings.Contains(string(a.body), errInternal.Error()) {
		t.Errorf("the answer repeats the internal error: %s", a.body)
	}
	if !strings.Contains(w.log.String(), errInternal.Error()) {
		t.Errorf("the internal error is not logged:\n%s", w.log)
	}
}
