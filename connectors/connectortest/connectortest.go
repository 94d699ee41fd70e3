// Package connectortest is the conformance suite every connector passes:
// its tests call Run with a Harness that starts a fresh target, and the
// suite checks, through a probe that looks at the target itself rather than
// asking the connector, that grants and revokes do what the
// workflow.Provisioner contract says.
//
// The suite checks that
//
//   - a grant makes the access real, and a revoke removes it;
//   - both are idempotent: granting twice, revoking twice, and revoking
//     access that was never granted all succeed;
//   - grants for two people, made at the same time, do not interfere, and
//     revoking one leaves the other;
//   - a grant of an entitlement that does not exist, or for a person the
//     target does not know, fails with an error marked workflow.Permanent
//     and grants nothing;
//   - with the target down, a grant and a revoke fail with a transient
//     error, one not marked permanent;
//   - where the target can come back (Target.Up), a grant that failed
//     while it was down and is then retried ends with the access granted
//     once, and a revoke removes it;
//   - where the connector sets native expiry (Harness.NativeExpiry), the
//     target itself ends the access at Access.ExpiresAt, with no revoke.
package connectortest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

// Harness describes a connector and its target to the suite.
type Harness struct {
	// Start starts a fresh target, with no access granted, and returns a
	// connector for it. The suite calls it once for every subtest and
	// stops nothing: Start registers its own cleanup with t.Cleanup.
	Start func(t *testing.T) Target

	// Entitlement exists in the target.
	Entitlement string

	// People are known to the target; the suite needs at least two.
	People []workflow.User

	// BadEntitlement does not exist in the target: granting it must fail
	// with a permanent error.
	BadEntitlement string

	// Unknown is a person the target does not know: granting them
	// Entitlement must fail with a permanent error.
	Unknown workflow.User

	// IsConnectorError, if set, reports whether err is of the connector's
	// own error type (usually with errors.As); the suite then requires it
	// of every failure it provokes that the target reports.
	IsConnectorError func(err error) bool

	// NativeExpiry says that the connector makes the target end the
	// access at Access.ExpiresAt by itself (a role's VALID UNTIL, a
	// certificate's validity), so the access ends even if latch is not
	// there to revoke it. The suite then grants with a near expiry and
	// waits, on the real clock, for the probe to see the access gone.
	NativeExpiry bool
}

// Target is one fresh target and a connector for it.
type Target struct {
	// Connector grants and revokes access in the target.
	Connector workflow.Provisioner

	// Has reports whether the target gives a.User the access
	// a.Entitlement. It must look at the target itself (its state, its
	// files, its catalogue) and never ask Connector.
	Has func(ctx context.Context, a workflow.Access) (bool, error)

	// Down makes the target unreachable, or failing as a target does when
	// it is down, for the rest of the subtest. Has must keep working.
	Down func(t *testing.T)

	// Up, if set, brings the target back after Down.
	Up func(t *testing.T)
}

// Run runs the conformance suite against the connector h describes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Start == nil {
		t.Fatal("connectortest: Harness.Start is not set")
	}
	if len(h.People) < 2 {
		t.Fatalf("connectortest: Harness.People has %d people, want at least 2", len(h.People))
	}
	if h.Entitlement == "" || h.BadEntitlement == "" {
		t.Fatal("connectortest: Harness.Entitlement and Harness.BadEntitlement must both be set")
	}

	tests := []struct {
		name string
		run  func(s *suite, t *testing.T)
	}{
		{"GrantMakesAccessReal", (*suite).grantMakesAccessReal},
		{"RevokeRemovesAccess", (*suite).revokeRemovesAccess},
		{"GrantTwice", (*suite).grantTwice},
		{"RevokeTwice", (*suite).revokeTwice},
		{"RevokeNeverGranted", (*suite).revokeNeverGranted},
		{"TwoPeopleAtOnce", (*suite).twoPeopleAtOnce},
		{"BadEntitlementIsPermanent", (*suite).badEntitlementIsPermanent},
		{"UnknownPersonIsPermanent", (*suite).unknownPersonIsPermanent},
		{"TargetDownIsTransient", (*suite).targetDownIsTransient},
		{"RetryAfterFailure", (*suite).retryAfterFailure},
		{"NativeExpiry", (*suite).nativeExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := h.Start(t)
			if target.Connector == nil || target.Has == nil || target.Down == nil {
				t.Fatal("connectortest: Harness.Start returned a Target without Connector, Has or Down")
			}
			tt.run(&suite{h: h, target: target}, t)
		})
	}
}

// suite is one subtest's harness and target.
type suite struct {
	h      Harness
	target Target
}

// access returns an access to h.Entitlement for the person of index i,
// under a grant id unique to the subtest.
func (s *suite) access(i int, grant string) workflow.Access {
	return s.accessFor(s.h.People[i], s.h.Entitlement, grant)
}

func (s *suite) accessFor(u workflow.User, entitlement, grant string) workflow.Access {
	return workflow.Access{
		GrantID:     fmt.Sprintf("grant-%s-%s", grant, u.SlackID),
		RequestID:   "request-" + grant,
		User:        u,
		Entitlement: entitlement,
		ExpiresAt:   time.Now().Add(time.Hour).UTC().Truncate(time.Second),
	}
}

func (s *suite) grant(t *testing.T, a workflow.Access) {
	t.Helper()
	if _, err := s.target.Connector.Grant(t.Context(), a); err != nil {
		t.Fatalf("Grant(%s, %s): %v", a.User.SlackID, a.Entitlement, err)
	}
}

func (s *suite) revoke(t *testing.T, a workflow.Access) {
	t.Helper()
	if err := s.target.Connector.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke(%s, %s): %v", a.User.SlackID, a.Entitlement, err)
	}
}

// want fails the test unless the probe finds that a's access exists
// exactly when has is true.
func (s *suite) want(t *testing.T, a workflow.Access, has bool) {
	t.Helper()
	got, err := s.target.Has(t.Context(), a)
	if err != nil {
		t.Fatalf("probe for %s, %s: %v", a.User.SlackID, a.Entitlement, err)
	}
	if got != has {
		t.Errorf("probe: %s has %s = %t, want %t", a.User.SlackID, a.Entitlement, got, has)
	}
}

func (s *suite) grantMakesAccessReal(t *testing.T) {
	a := s.access(0, "real")
	s.want(t, a, false)
	s.grant(t, a)
	s.want(t, a, true)
}

func (s *suite) revokeRemovesAccess(t *testing.T) {
	a := s.access(0, "revoke")
	s.grant(t, a)
	s.want(t, a, true)
	s.revoke(t, a)
	s.want(t, a, false)
}

func (s *suite) grantTwice(t *testing.T) {
	a := s.access(0, "twice")
	s.grant(t, a)
	s.grant(t, a)
	s.want(t, a, true)
	s.revoke(t, a)
	s.want(t, a, false)
}

func (s *suite) revokeTwice(t *testing.T) {
	a := s.access(0, "revoke-twice")
	s.grant(t, a)
	s.revoke(t, a)
	s.revoke(t, a)
	s.want(t, a, false)
}

func (s *suite) revokeNeverGranted(t *testing.T) {
	a := s.access(0, "never")
	s.revoke(t, a)
	s.want(t, a, false)
	// The other person's access is untouched by it.
	b := s.access(1, "never")
	s.grant(t, b)
	s.revoke(t, a)
	s.want(t, b, true)
}

func (s *suite) twoPeopleAtOnce(t *testing.T) {
	a, b := s.access(0, "two"), s.access(1, "two")
	s.concurrently(t, func(ctx context.Context, x workflow.Access) error {
		_, err := s.target.Connector.Grant(ctx, x)
		return err
	}, a, b)
	s.want(t, a, true)
	s.want(t, b, true)

	s.revoke(t, a)
	s.want(t, a, false)
	s.want(t, b, true)

	s.grant(t, a)
	s.concurrently(t, s.target.Connector.Revoke, a, b)
	s.want(t, a, false)
	s.want(t, b, false)
}

// concurrently calls call for each access at the same time, and fails the
// test if any call fails.
func (s *suite) concurrently(t *testing.T, call func(context.Context, workflow.Access) error, accesses ...workflow.Access) {
	t.Helper()
	errs := make([]error, len(accesses))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range accesses {
		wg.Go(func() {
			<-start
			errs[i] = call(t.Context(), a)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call for %s: %v", accesses[i].User.SlackID, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func (s *suite) badEntitlementIsPermanent(t *testing.T) {
	a := s.accessFor(s.h.People[0], s.h.BadEntitlement, "bad-entitlement")
	_, err := s.target.Connector.Grant(t.Context(), a)
	s.wantPermanent(t, err)
	s.want(t, a, false)
	s.want(t, s.access(0, "bad-entitlement"), false)
}

func (s *suite) unknownPersonIsPermanent(t *testing.T) {
	a := s.accessFor(s.h.Unknown, s.h.Entitlement, "unknown")
	_, err := s.target.Connector.Grant(t.Context(), a)
	s.wantPermanent(t, err)
	s.want(t, a, false)
}

func (s *suite) targetDownIsTransient(t *testing.T) {
	a := s.access(0, "down")
	s.grant(t, a)
	s.target.Down(t)

	b := s.access(1, "down")
	_, err := s.target.Connector.Grant(t.Context(), b)
	s.wantTransient(t, "Grant", err)
	err = s.target.Connector.Revoke(t.Context(), a)
	s.wantTransient(t, "Revoke", err)
	s.want(t, a, true)
	s.want(t, b, false)
}

func (s *suite) retryAfterFailure(t *testing.T) {
	if s.target.Up == nil {
		t.Skip("the target cannot be brought back up (Target.Up is not set)")
	}
	a := s.access(0, "retry")
	s.target.Down(t)
	_, err := s.target.Connector.Grant(t.Context(), a)
	s.wantTransient(t, "Grant", err)
	s.target.Up(t)
	s.grant(t, a)
	s.want(t, a, true)
	s.grant(t, a)
	s.want(t, a, true)
	s.revoke(t, a)
	s.want(t, a, false)
}

// expiryWait bounds how long past an expiry the suite waits for the target
// to end access by itself: servers check validity at whole seconds.
const expiryWait = 5 * time.Second

func (s *suite) nativeExpiry(t *testing.T) {
	if !s.h.NativeExpiry {
		t.Skip("the connector sets no native expiry; access ends only by revoke")
	}
	a := s.access(0, "expiry")
	// Whole seconds, since some targets (certificates) count in them.
	a.ExpiresAt = time.Now().Add(3 * time.Second).Truncate(time.Second)
	s.grant(t, a)
	s.want(t, a, true)
	deadline := a.ExpiresAt.Add(expiryWait)
	for {
		has, err := s.target.Has(t.Context(), a)
		if err != nil {
			t.Fatalf("probe for %s: %v", a.User.SlackID, err)
		}
		if !has {
			if now := time.Now(); now.Before(a.ExpiresAt) {
				t.Fatalf("access ended at %s, before its expiry %s", now.Format(time.RFC3339Nano), a.ExpiresAt.Format(time.RFC3339Nano))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access still works %s after its expiry %s", expiryWait, a.ExpiresAt.Format(time.RFC3339))
		}
		// The target's own clock decides; poll it.
		time.Sleep(100 * time.Millisecond)
	}
	// A revoke after the target has ended the access still succeeds.
	s.revoke(t, a)
	s.want(t, a, false)
}

func (s *suite) wantPermanent(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("Grant succeeded, want a permanent error")
	case !workflow.IsPermanent(err):
		t.Errorf("Grant: %v: transient, want permanent", err)
	}
	s.wantConnectorError(t, err)
}

func (s *suite) wantTransient(t *testing.T, call string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s with the target down succeeded, want a transient error", call)
		return
	case workflow.IsPermanent(err):
		t.Errorf("%s with the target down: %v: permanent, want transient", call, err)
	}
	s.wantConnectorError(t, err)
}

func (s *suite) wantConnectorError(t *testing.T, err error) {
	t.Helper()
	if s.h.IsConnectorError != nil && !s.h.IsConnectorError(err) {
		t.Errorf("error %v (%T) is not of the connector's error type", err, err)
	}
}
