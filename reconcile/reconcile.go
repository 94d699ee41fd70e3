package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// DefaultEvery is the time between passes when Config.Every is zero.
const DefaultEvery = 15 * time.Minute

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("invalid reconciler configuration")

// ErrCannotRemove means a holding was to be removed, but its connector
// cannot take access away by account (it has no Remove method) and the
// holder's email, by which Revoke finds a person, is not known.
var ErrCannotRemove = errors.New("the connector cannot remove this holding: it removes by person, and the holder's email is unknown")

// Store is what the reconciler reads of latch's store; *store.Store has
// it.
type Store interface {
	// Head returns the sequence number of the last event.
	Head() (uint64, workflow.Hash)
	// OpenRequests calls fn with every request that is not over.
	OpenRequests(fn func(workflow.Request) error) error
	// Request returns the current state of a request.
	Request(id string) (workflow.Request, bool, error)
	// Scan calls fn with the events f selects, in log order.
	Scan(ctx context.Context, f store.Filter, fn func(*workflow.Event) error) error
}

// Remover is implemented by connectors that can take away a holding their
// List returned by what List said of it (its account), without a person:
// the reconciler uses it to remove unmanaged holdings and unknown grants.
// Like Revoke, it succeeds if the holding is gone already.
type Remover interface {
	Remove(ctx context.Context, h workflow.Holding) error
}

// Config is what a Reconciler is made of.
type Config struct {
	Store     Store               // required
	Catalogue *workflow.Catalogue // required: its targets are what is listed

	// Connectors are the configured connectors by name; those that
	// implement workflow.Lister are reconciled.
	Connectors map[string]workflow.Provisioner

	// Directory, if set, gives the email of a leftover grant's
	// beneficiary when the grant recorded none (it failed before it was
	// active).
	Directory workflow.Directory

	// Record appends the events of the findings to the audit log; a
	// finding is recorded before it is acted on, and nothing is removed
	// if that fails. nil records nothing.
	Record func(ctx context.Context, events []workflow.Event) error

	// Report tells people about a finding (the security channel), once
	// its outcome is known: when it is first found, and when its outcome
	// changes. nil reports nothing.
	Report func(ctx context.Context, f Finding)

	// Clock drives Run; nil means workflow.RealClock.
	Clock workflow.Clock

	// Every is the time between passes of Run; zero means DefaultEvery.
	Every time.Duration

	// RemoveUnmanaged says where unmanaged holdings and unknown grants are
	// removed rather than only reported. A key is "connector/entitlement"
	// or a connector's name (all the entitlements latch manages on it);
	// the more specific key present decides. Leftovers are always removed.
	RemoveUnmanaged map[string]bool

	// Log receives what each pass found and any failure. The zero Logger
	// logs nothing.
	Log zerolog.Logger
}

// target is one connector to list, and the entitlements to list on it.
type target struct {
	name         string
	conn         workflow.Provisioner
	lister       workflow.Lister
	entitlements []string
}

// Reconciler compares the access connectors list with latch's grants; see
// the package doc. Create it with New; Once and Run may be called from any
// goroutine, and passes never overlap.
type Reconciler struct {
	cfg     Config
	targets []target

	mu   sync.Mutex                   // held by a pass
	idx  *index                       // guarded by mu
	last map[string]map[string]string // connector → finding key → outcome of the last pass; guarded by mu
}

// New returns a reconciler of the connectors of cfg that implement
// workflow.Lister, over the entitlements the catalogue's items use on
// them.
func New(cfg Config) (*Reconciler, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, fmt.Errorf("%w: no store", ErrInvalidConfig))
	}
	if cfg.Catalogue == nil {
		errs = append(errs, fmt.Errorf("%w: no catalogue", ErrInvalidConfig))
	}
	if cfg.Every < 0 {
		errs = append(errs, fmt.Errorf("%w: every %s is negative", ErrInvalidConfig, cfg.Every))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = workflow.RealClock{}
	}
	cfg.RemoveUnmanaged = maps.Clone(cfg.RemoveUnmanaged)
	cfg.Connectors = maps.Clone(cfg.Connectors)

	used := map[string][]string{}
	for _, it := range cfg.Catalogue.Items() {
		for _, t := range it.Targets {
			if !slices.Contains(used[t.Connector], t.Entitlement) {
				used[t.Connector] = append(used[t.Connector], t.Entitlement)
			}
		}
	}
	r := &Reconciler{cfg: cfg, idx: newIndex(), last: map[string]map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(used)) {
		conn := cfg.Connectors[name]
		lister, ok := conn.(workflow.Lister)
		if !ok {
			continue
		}
		ents := used[name]
		slices.Sort(ents)
		r.targets = append(r.targets, target{name: name, conn: conn, lister: lister, entitlements: ents})
	}
	return r, nil
}

// Connectors returns the names of the connectors the reconciler lists.
func (r *Reconciler) Connectors() []string {
	names := make([]string, len(r.targets))
	for i, t := range r.targets {
		names[i] = t.name
	}
	return names
}

// Run makes a pass at once and then one every Config.Every on the
// configured clock, until ctx ends; then it returns nil. A pass that fails
// is logged and the next one runs as usual.
func (r *Reconciler) Run(ctx context.Context) error {
	tk := r.cfg.Clock.NewTicker(r.cfg.Every)
	defer tk.Stop()
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Error().Err(err).Msg("reconcile pass failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C():
		}
	}
}

// grantRef is one grant of a request.
type grantRef struct {
	req   *workflow.Request
	grant *workflow.Grant
}

// snapshot is the grants of the open requests at one time.
type snapshot struct {
	seq    uint64                         // the grants approved up to this event are in the index
	grants map[string]grantRef            // by grant id
	live   map[workflow.Target][]grantRef // the grants that give access now, by target
}

// snap reads the grants of the open requests.
func (r *Reconciler) snap() (snapshot, error) {
	s := snapshot{grants: map[string]grantRef{}, live: map[workflow.Target][]grantRef{}}
	err := r.cfg.Store.OpenRequests(func(req workflow.Request) error {
		for i := range req.Grants {
			ref := grantRef{&req, &req.Grants[i]}
			s.grants[ref.grant.ID] = ref
			if !ref.grant.State.Ended() {
				s.live[ref.grant.Target] = append(s.live[ref.grant.Target], ref)
			}
		}
		return nil
	})
	return s, err
}

// finding is a Finding with what acting on it needs.
type finding struct {
	Finding
	target  *target
	holding workflow.Holding
	remove  bool
	access  *workflow.Access // for a leftover: the access to revoke
}

// Once makes one pass: it lists, compares, acts and records, and returns
// every finding of the pass with the action taken on it. Connectors that
// fail to list are skipped, and their failures returned, joined, with the
// findings of the others. If the findings cannot be recorded, nothing is
// removed and Once returns the error alone.
func (r *Reconciler) Once(ctx context.Context) ([]Finding, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if err := r.idx.update(ctx, r.cfg.Store); err != nil {
		return nil, fmt.Errorf("read the grants in the log: %w", err)
	}
	before, err := r.snap()
	if err != nil {
		return nil, fmt.Errorf("read the open requests: %w", err)
	}
	before.seq = r.idx.seq
	var (
		errs    []error
		listed  = map[string][]workflow.Holding{}
		skipped = map[string]bool{}
	)
	for i := range r.targets {
		t := &r.targets[i]
		holdings, err := t.lister.List(ctx, t.entitlements)
		if err != nil {
			r.cfg.Log.Warn().Err(err).Str("connector", t.name).Msg("cannot list the access the connector manages")
			errs = append(errs, fmt.Errorf("list %s: %w", t.name, err))
			skipped[t.name] = true
			continue
		}
		listed[t.name] = holdings
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.idx.update(ctx, r.cfg.Store); err != nil {
		return nil, fmt.Errorf("read the grants in the log: %w", err)
	}
	after, err := r.snap()
	if err != nil {
		return nil, fmt.Errorf("read the open requests: %w", err)
	}

	var found []*finding
	deferred := map[string]map[string]bool{} // connector → keys of holdings left for the next pass
	for i := range r.targets {
		t := &r.targets[i]
		for _, h := range listed[t.name] {
			f, wait, err := r.classify(ctx, t, h, &before, &after)
			switch {
			case err != nil:
				errs = append(errs, err)
			case wait:
				if deferred[t.name] == nil {
					deferred[t.name] = map[string]bool{}
				}
				deferred[t.name][(&Finding{Kind: Unmanaged, Connector: t.name, Entitlement: h.Entitlement, Account: h.Account}).key()] = true
			case f != nil:
				found = append(found, f)
			}
		}
	}

	findings, err := r.act(ctx, found, skipped, deferred)
	if err != nil {
		return nil, err
	}
	return findings, errors.Join(errs...)
}

// classify sorts one holding of t; it returns nil for a holding in order,
// and true for one to look at again at the next pass.
func (r *Reconciler) classify(ctx context.Context, t *target, h workflow.Holding, before, after *snapshot) (*finding, bool, error) {
	f := &finding{
		Finding: Finding{Connector: t.name, Entitlement: h.Entitlement, Account: h.Account, Email: h.Email, GrantID: h.GrantID},
		target:  t, holding: h,
	}
	if h.GrantID != "" {
		ref, ok, err := r.grantBefore(h.GrantID, before)
		switch {
		case err != nil:
			return nil, false, err
		case ok && !ref.grant.State.Ended():
			return nil, false, nil
		case ok:
			return r.leftover(ctx, f, ref), false, nil
		}
		if _, ok := after.grants[h.GrantID]; ok {
			return nil, false, nil // granted while the connector listed
		}
		if _, ok := r.idx.grants[h.GrantID]; ok {
			return nil, false, nil // granted and over while the connector listed
		}
		f.Kind = UnknownGrant
		f.remove = r.removeUnmanaged(t.name, h.Entitlement)
		return f, false, nil
	}
	if !slices.Contains(t.entitlements, h.Entitlement) {
		return nil, false, nil // not something latch manages
	}
	tg := workflow.Target{Connector: t.name, Entitlement: h.Entitlement}
	unknown := false
	for _, s := range []*snapshot{before, after} {
		for _, ref := range s.live[tg] {
			accounts := accountsOf(ref.grant.Facts)
			if matches(&h, accounts, ref.grant.Email) {
				return nil, false, nil
			}
			if len(accounts) == 0 && ref.grant.Email == "" {
				unknown = true // being provisioned: whom it went to is not known yet
			}
		}
	}
	if unknown {
		return nil, true, nil
	}
	ids := r.idx.byTarget[tg]
	for i := len(ids) - 1; i >= 0; i-- {
		x := r.idx.grants[ids[i]]
		if !matches(&h, x.accounts, x.email) {
			continue
		}
		ref, ok, err := r.grantBefore(ids[i], before)
		if err != nil {
			return nil, false, err
		}
		if ok && ref.grant.State.Ended() {
			f.GrantID = ids[i]
			return r.leftover(ctx, f, ref), false, nil
		}
	}
	f.Kind = Unmanaged
	f.remove = r.removeUnmanaged(t.name, h.Entitlement)
	return f, false, nil
}

// grantBefore returns the grant id as it was when before was read: from
// before if its request was open then, or else, if latch had made it by
// then, from its request, which was over then and so has not changed
// since.
func (r *Reconciler) grantBefore(id string, before *snapshot) (grantRef, bool, error) {
	if ref, ok := before.grants[id]; ok {
		return ref, true, nil
	}
	x, ok := r.idx.grants[id]
	if !ok || x.seq > before.seq {
		return grantRef{}, false, nil
	}
	req, ok, err := r.cfg.Store.Request(x.request)
	if err != nil {
		return grantRef{}, false, fmt.Errorf("read request %s: %w", x.request, err)
	}
	if !ok {
		return grantRef{}, false, nil
	}
	g, ok := req.Grant(id)
	if !ok || !g.State.Ended() {
		return grantRef{}, false, nil
	}
	return grantRef{&req, g}, true, nil
}

// leftover makes f the leftover of the ended grant ref.
func (r *Reconciler) leftover(ctx context.Context, f *finding, ref grantRef) *finding {
	f.Kind, f.remove = Leftover, true
	f.RequestID = ref.req.ID
	u := workflow.User{SlackID: ref.req.Beneficiary, Email: cmp.Or(ref.grant.Email, f.holding.Email)}
	if u.Email == "" && r.cfg.Directory != nil {
		if email, err := r.cfg.Directory.Email(ctx, u.SlackID); err == nil {
			u.Email = email
		}
	}
	if f.Email == "" {
		f.Email = u.Email
	}
	f.access = &workflow.Access{
		GrantID:     ref.grant.ID,
		RequestID:   ref.req.ID,
		User:        u,
		Entitlement: ref.grant.Target.Entitlement,
		ExpiresAt:   ref.req.ExpiresAt,
		Params:      ref.req.Params,
	}
	return f
}

// removeUnmanaged reports whether unmanaged holdings of entitlement on
// connector are to be removed.
func (r *Reconciler) removeUnmanaged(connector, entitlement string) bool {
	for _, k := range []string{connector + "/" + entitlement, connector} {
		if v, ok := r.cfg.RemoveUnmanaged[k]; ok {
			return v
		}
	}
	return false
}

// remove takes f's holding away.
func (r *Reconciler) remove(ctx context.Context, f *finding) error {
	// Access latch made itself (it carries the grant id) is revoked as
	// granted; anything else is removed as it was listed, so that the
	// account found is the account removed.
	if f.access != nil && f.holding.GrantID != "" {
		return f.target.conn.Revoke(ctx, *f.access)
	}
	if rm, ok := f.target.conn.(Remover); ok {
		return rm.Remove(ctx, f.holding)
	}
	if f.access != nil {
		return f.target.conn.Revoke(ctx, *f.access)
	}
	if f.holding.Email == "" {
		return ErrCannotRemove
	}
	return f.target.conn.Revoke(ctx, workflow.Access{
		GrantID:     f.holding.GrantID,
		User:        workflow.User{Email: f.holding.Email},
		Entitlement: f.holding.Entitlement,
	})
}

// act records the new findings, takes away what is to be removed, records
// the outcomes and reports them.
func (r *Reconciler) act(ctx context.Context, found []*finding, skipped map[string]bool, deferred map[string]map[string]bool) ([]Finding, error) {
	last := func(f *finding) (string, bool) {
		outcome, ok := r.last[f.Connector][f.key()]
		return outcome, ok
	}
	var first []workflow.Event
	for _, f := range found {
		f.Action = ActionReport
		if f.remove {
			f.Action = ActionRemove
		}
		if _, seen := last(f); seen {
			continue
		}
		e, err := f.event(f.foundKind())
		if err != nil {
			return nil, err
		}
		first = append(first, e)
	}
	if err := r.record(ctx, first); err != nil {
		return nil, fmt.Errorf("record what drifted: %w", err)
	}

	var outcomes []workflow.Event
	var tell []Finding
	for _, f := range found {
		prev, seen := last(f)
		if f.remove {
			err := r.remove(ctx, f)
			switch {
			case err != nil:
				f.Action, f.Error = ActionRemoveFailed, err.Error()
			case seen && prev == ActionRemoved:
				// Removed before, and there again: the removal did not take.
				f.Action, f.Error = ActionRemoveFailed, "the access was still there after latch removed it"
			default:
				f.Action = ActionRemoved
			}
			if !seen || prev != f.Action {
				kind := KindRemoved
				if f.Action == ActionRemoveFailed {
					kind = KindRemoveFailed
				}
				e, err := f.event(kind)
				if err != nil {
					return nil, err
				}
				outcomes = append(outcomes, e)
			}
		}
		if !seen || prev != f.Action {
			tell = append(tell, f.Finding)
			r.log(f)
		}
	}
	// What was removed is on record even if latch is stopping meanwhile.
	recordErr := r.record(context.WithoutCancel(ctx), outcomes)

	next := map[string]map[string]string{}
	keep := func(connector, key, outcome string) {
		if next[connector] == nil {
			next[connector] = map[string]string{}
		}
		next[connector][key] = outcome
	}
	for connector, keys := range r.last {
		for key, outcome := range keys {
			if skipped[connector] || deferred[connector][key] {
				keep(connector, key, outcome)
			}
		}
	}
	for _, f := range found {
		keep(f.Connector, f.key(), f.Action)
	}
	if recordErr == nil {
		// Otherwise the outcomes are found, recorded and told again at the
		// next pass.
		r.last = next
	}

	if r.cfg.Report != nil {
		for _, f := range tell {
			r.cfg.Report(ctx, f)
		}
	}
	findings := make([]Finding, len(found))
	for i, f := range found {
		findings[i] = f.Finding
	}
	if recordErr != nil {
		return findings, fmt.Errorf("record the outcome of removals: %w", recordErr)
	}
	return findings, nil
}

// record hands events to Config.Record.
func (r *Reconciler) record(ctx context.Context, events []workflow.Event) error {
	if len(events) == 0 || r.cfg.Record == nil {
		return nil
	}
	return r.cfg.Record(ctx, events)
}

// log logs a finding.
func (r *Reconciler) log(f *finding) {
	ev := r.cfg.Log.Warn()
	if f.Action == ActionRemoveFailed {
		ev = r.cfg.Log.Error().Str("error", f.Error)
	}
	ev.Str("kind", f.Kind).Str("connector", f.Connector).Str("entitlement", f.Entitlement).
		Str("account", f.Account).Str("email", f.Email).Str("grant", f.GrantID).Str("request", f.RequestID).
		Str("action", f.Action).Msg("access drifted from latch's grants")
}
