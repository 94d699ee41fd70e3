package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// RequestState is where a request stands. A request is decided once
// (approved, rejected, cancelled or timed out); an approved request then
// lives through its grants: provisioning, active, revoking, ended.
type RequestState string

// The states of a request.
const (
	RequestPending      RequestState = "pending"      // waiting for approvals in Stage
	RequestRejected     RequestState = "rejected"     // denied, or refused by auto_reject
	RequestCancelled    RequestState = "cancelled"    // withdrawn before a decision
	RequestTimedOut     RequestState = "timed_out"    // nobody decided in time
	RequestProvisioning RequestState = "provisioning" // approved; its grants are being provisioned
	RequestActive       RequestState = "active"       // every grant is active
	RequestRevoking     RequestState = "revoking"     // its grants are being taken back
	RequestEnded        RequestState = "ended"        // every grant is revoked (Outcome says why)
	RequestFailed       RequestState = "failed"       // provisioning failed; what was granted is rolled back
)

// Closed reports whether the request can take no more decisions.
func (s RequestState) Closed() bool { return s != RequestPending }

// GrantState is where one grant (one target of a request) stands.
type GrantState string

// The states of a grant.
const (
	GrantProvisioning GrantState = "provisioning" // the connector was asked to grant
	GrantActive       GrantState = "active"
	GrantFailed       GrantState = "failed" // the grant never took effect
	GrantRevoking     GrantState = "revoking"
	GrantRevokeFailed GrantState = "revoke_failed" // still retried, and announced
	GrantRevoked      GrantState = "revoked"
)

// Ended reports whether the grant gives no access any more.
func (s GrantState) Ended() bool { return s == GrantRevoked || s == GrantFailed }

// MaxRevokeAttempts is how many failed revokes turn a grant revoke_failed.
const MaxRevokeAttempts = 6

// Event kinds. Every change to a request is one of these, carrying the
// payload type named beside it.
const (
	KindSubmitted     = "request.submitted"      // Submitted
	KindApproval      = "request.approval"       // Vote: one approver's vote
	KindStageApproved = "request.stage_approved" // StageDecision
	KindApproved      = "request.approved"       // Approved
	KindDenied        = "request.denied"         // Denied
	KindCancelled     = "request.cancelled"      // Note
	KindTimedOut      = "request.timed_out"      // Note
	KindRefused       = "request.refused"        // Refused: a command that was not allowed
	KindReminded      = "request.reminded"       // StageDecision
	KindEscalated     = "request.escalated"      // Escalated
	KindActivated     = "request.active"         // Activated
	KindExtended      = "request.extended"       // Extended
	KindFailed        = "request.failed"         // Note
	KindEnding        = "request.ending"         // Ending: release, revocation or expiry begins
	KindEnded         = "request.ended"          // Note
	KindWarned        = "request.expiry_warned"  // Note
	KindReviewed      = "request.reviewed"       // Note: a break-glass grant reviewed
	KindPosted        = "request.posted"         // Posted: a message about the request was posted

	KindGrantProvisioning = "grant.provisioning"  // Note (intent)
	KindGrantActive       = "grant.active"        // Provisioned
	KindGrantFailed       = "grant.failed"        // GrantError
	KindGrantRevoking     = "grant.revoking"      // Note (intent)
	KindGrantRevoked      = "grant.revoked"       // Deprovisioned
	KindGrantRevokeFailed = "grant.revoke_failed" // GrantError

	// An extension is passed on to the connectors, so that the expiry they
	// set natively moves too.
	KindGrantRefreshing    = "grant.refreshing"     // Note (intent)
	KindGrantRefreshed     = "grant.refreshed"      // Provisioned
	KindGrantRefreshFailed = "grant.refresh_failed" // GrantError
)

// Outcomes of an ended request.
const (
	OutcomeExpired  = "expired"
	OutcomeReleased = "released"
	OutcomeRevoked  = "revoked"
	OutcomeRollback = "rolled_back"
)

// Submitted opens a request. Approvers are resolved when it is submitted,
// so the log says who could decide.
type Submitted struct {
	Item          string            `json:"item"`
	Policy        string            `json:"policy"`
	Requester     string            `json:"requester"`
	Beneficiary   string            `json:"beneficiary"`
	Duration      time.Duration     `json:"duration"`
	Justification string            `json:"justification"`
	Ticket        string            `json:"ticket,omitempty"`
	Params        map[string]string `json:"params,omitempty"`
	BreakGlass    bool              `json:"breakglass,omitempty"`
	Channel       string            `json:"channel,omitempty"`
	Mode          ApprovalMode      `json:"mode"`
	Stages        []StageState      `json:"stages"`
	Targets       []Target          `json:"targets"`
}

// Vote is one approver's vote in a stage.
type Vote struct {
	Stage int    `json:"stage"`
	By    string `json:"by"`
}

// StageDecision names a stage.
type StageDecision struct {
	Stage int `json:"stage"`
}

// Approved decides a request; each target becomes a grant.
type Approved struct {
	Grants    []GrantTarget `json:"grants"`
	Condition string        `json:"condition,omitempty"` // the auto_approve condition, if it decided
}

// GrantTarget names the grant made for one target.
type GrantTarget struct {
	ID     string `json:"id"`
	Target Target `json:"target"`
}

// Denied rejects a request: a deny by an approver, or auto_reject.
type Denied struct {
	Stage     int    `json:"stage"` // -1 for auto_reject
	By        string `json:"by,omitempty"`
	Reason    string `json:"reason"`
	Condition string `json:"condition,omitempty"`
}

// Refused records a command that was not allowed and why; the request does
// not change.
type Refused struct {
	Command string `json:"command"`
	By      string `json:"by"`
	Reason  string `json:"reason"`
}

// Escalated adds fallback approvers to a stage.
type Escalated struct {
	Stage int      `json:"stage"`
	To    []string `json:"to"`
}

// Activated marks every grant of a request active, until ExpiresAt.
type Activated struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// Extended moves the expiry of an active request.
type Extended struct {
	ExpiresAt time.Time `json:"expires_at"`
	By        string    `json:"by"`
}

// Ending starts taking a request's grants back.
type Ending struct {
	Outcome string `json:"outcome"`
	By      string `json:"by,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Posted records a message posted about a request, so that it can be found
// and updated later, even after a restart: an approver's card, the
// requester's status message. Channel and Ref locate the message in the
// messaging system (for Slack, a channel id and a message timestamp).
type Posted struct {
	Audience string `json:"audience"` // "approver", "requester", "beneficiary" or "channel"
	User     string `json:"user,omitempty"`
	Channel  string `json:"channel"`
	Ref      string `json:"ref"`
}

// Audiences of posted messages.
const (
	AudienceApprover    = "approver"
	AudienceRequester   = "requester"
	AudienceBeneficiary = "beneficiary"
	AudienceChannel     = "channel"
)

// Note carries an optional free-text reason.
type Note struct {
	Reason string `json:"reason,omitempty"`
}

// Provisioned records a connector's successful grant, and the expiry the
// connector was given.
type Provisioned struct {
	Facts     map[string]string `json:"facts,omitempty"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	Email     string            `json:"email,omitempty"` // of the account granted
}

// GrantError records a connector's failure.
type GrantError struct {
	Error     string `json:"error"`
	Permanent bool   `json:"permanent,omitempty"`
}

// Deprovisioned records that access is gone; Kept is set when the target
// was left in place because another active grant of the same person
// covers it.
type Deprovisioned struct {
	Kept bool `json:"kept,omitempty"`
	// ResolvedBy is the admin who declared the access gone by hand after
	// latch could not revoke it, with their note.
	ResolvedBy string `json:"resolved_by,omitempty"`
	Note       string `json:"note,omitempty"`
}

// StageState is an approval stage of one request: who may approve it and
// who has.
type StageState struct {
	Name      string   `json:"name"`
	Required  int      `json:"required"`
	Approvers []string `json:"approvers"` // Slack ids whose vote counts
	Approvals []string `json:"approvals,omitempty"`
	Done      bool     `json:"done,omitempty"`
	Reminders int      `json:"reminders,omitempty"`
	Escalated bool     `json:"escalated,omitempty"`
	// OpenedAt is when the stage was first asked; reminders and escalation
	// count from it.
	OpenedAt time.Time `json:"opened_at,omitzero"`
}

// Grant is one target of an approved request.
type Grant struct {
	ID             string            `json:"id"`
	Target         Target            `json:"target"`
	State          GrantState        `json:"state"`
	Facts          map[string]string `json:"facts,omitempty"`
	GrantAttempts  int               `json:"grant_attempts,omitempty"` // failed, retryable grants
	RevokeAttempts int               `json:"revoke_attempts,omitempty"`
	LastError      string            `json:"last_error,omitempty"`
	// Email is the account the grant was made to, which revokes use.
	Email string `json:"email,omitempty"`
	// NativeUntil is the expiry the connector was last given, which it
	// enforces by itself where it can.
	NativeUntil time.Time `json:"native_until,omitzero"`
}

// Request is the state of one access request, folded from its events.
type Request struct {
	ID string `json:"id"`
	Submitted
	State       RequestState `json:"state"`
	Stage       int          `json:"stage"` // the current stage of a sequential request
	SubmittedAt time.Time    `json:"submitted_at"`
	DecidedAt   time.Time    `json:"decided_at,omitzero"`
	DecidedBy   string       `json:"decided_by,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	Grants      []Grant      `json:"grants,omitempty"`
	ActiveAt    time.Time    `json:"active_at,omitzero"`
	ExpiresAt   time.Time    `json:"expires_at,omitzero"`
	Outcome     string       `json:"outcome,omitempty"`
	EndedAt     time.Time    `json:"ended_at,omitzero"`
	Warned      bool         `json:"warned,omitempty"`
	Reviewed    bool         `json:"reviewed,omitempty"`
	// Posts are the messages posted about the request, oldest first.
	Posts []Posted `json:"posts,omitempty"`
}

// Post returns the first message posted about the request to audience for
// user, if there is one.
func (r *Request) Post(audience, user string) (Posted, bool) {
	for _, p := range r.Posts {
		if p.Audience == audience && p.User == user {
			return p, true
		}
	}
	return Posted{}, false
}

// ErrTransition means an event does not fit the state of its request.
var ErrTransition = errors.New("event does not fit the request's state")

// transitionError says which event did not fit which state.
func transitionError(kind string, r *Request, why string) error {
	return fmt.Errorf("%w: %s on a %s request: %s", ErrTransition, kind, r.State, why)
}

// Grant returns the grant with the given id.
func (r *Request) Grant(id string) (*Grant, bool) {
	i := slices.IndexFunc(r.Grants, func(g Grant) bool { return g.ID == id })
	if i < 0 {
		return nil, false
	}
	return &r.Grants[i], true
}

// ApplyEvent folds one event of the request into r. It fails, leaving r
// unchanged, when the event does not fit r's state; the engine applies
// events to a copy before it appends them, so the log only ever holds
// events that fit.
func ApplyEvent(r *Request, e *Event) error {
	if r.ID != "" && e.RequestID != r.ID {
		return fmt.Errorf("%w: event of request %q applied to request %q", ErrTransition, e.RequestID, r.ID)
	}
	next := r.Clone()
	if err := next.apply(e); err != nil {
		return err
	}
	*r = next
	return nil
}

// apply does the work of ApplyEvent on a copy it may leave half changed.
func (r *Request) apply(e *Event) error {
	switch e.Kind {
	case KindSubmitted:
		if r.ID != "" {
			return transitionError(e.Kind, r, "the request exists already")
		}
		var p Submitted
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		if len(p.Targets) == 0 {
			return transitionError(e.Kind, r, "no targets")
		}
		r.ID, r.Submitted, r.State, r.SubmittedAt = e.RequestID, p, RequestPending, e.Time
		r.openStages(e.Time)
		return nil
	case KindRefused, KindReviewed:
		if r.ID == "" {
			return transitionError(e.Kind, r, "no such request")
		}
		if e.Kind == KindReviewed {
			r.Reviewed = true
		}
		return nil
	case KindPosted:
		if r.ID == "" {
			return transitionError(e.Kind, r, "no such request")
		}
		var p Posted
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		if p.Channel == "" || p.Ref == "" {
			return transitionError(e.Kind, r, "a posted message needs a channel and a reference")
		}
		if !slices.Contains(r.Posts, p) {
			r.Posts = append(r.Posts, p)
		}
		return nil
	}
	if r.ID == "" {
		return transitionError(e.Kind, r, "no such request")
	}
	if err := r.applyDecision(e); err != errNotDecision {
		return err
	}
	if err := r.applyGrant(e); err != errNotGrant {
		return err
	}
	return fmt.Errorf("%w: unknown event kind %q", ErrTransition, e.Kind)
}

var (
	errNotDecision = errors.New("not a decision event")
	errNotGrant    = errors.New("not a grant event")
)

// applyDecision folds the events of a pending request's decision.
func (r *Request) applyDecision(e *Event) error {
	switch e.Kind {
	case KindApproval, KindStageApproved, KindReminded, KindEscalated, KindApproved, KindDenied, KindCancelled, KindTimedOut:
	default:
		return errNotDecision
	}
	if r.State != RequestPending {
		return transitionError(e.Kind, r, "the request was decided already")
	}
	switch e.Kind {
	case KindApproval, KindStageApproved, KindReminded, KindEscalated:
		// Vote, StageDecision and Escalated all name a stage.
		var p struct {
			Stage int      `json:"stage"`
			By    string   `json:"by"`
			To    []string `json:"to"`
		}
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		s, err := r.openStage(e.Kind, p.Stage)
		if err != nil {
			return err
		}
		return r.applyStage(e.Kind, s, p.By, p.To, e.Time)
	case KindApproved:
		var p Approved
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		if p.Condition == "" && !r.BreakGlass && slices.ContainsFunc(r.Stages, func(s StageState) bool { return !s.Done }) {
			return transitionError(e.Kind, r, "a stage has not approved")
		}
		if len(p.Grants) != len(r.Targets) {
			return transitionError(e.Kind, r, fmt.Sprintf("%d grants for %d targets", len(p.Grants), len(r.Targets)))
		}
		for _, g := range p.Grants {
			r.Grants = append(r.Grants, Grant{ID: g.ID, Target: g.Target, State: GrantProvisioning})
		}
		r.State, r.DecidedAt, r.DecidedBy = RequestProvisioning, e.Time, e.Actor
	case KindDenied:
		var p Denied
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		r.State, r.DecidedAt, r.DecidedBy, r.Reason = RequestRejected, e.Time, e.Actor, p.Reason
	case KindCancelled, KindTimedOut:
		var p Note
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		r.State, r.DecidedAt, r.DecidedBy, r.Reason = RequestCancelled, e.Time, e.Actor, p.Reason
		if e.Kind == KindTimedOut {
			r.State = RequestTimedOut
		}
	}
	return nil
}

// openStages marks the stages being asked now as opened at t: the current
// one if sequential, all of them if parallel.
func (r *Request) openStages(t time.Time) {
	for i := range r.Stages {
		if (r.Mode == Parallel || i == r.Stage) && r.Stages[i].OpenedAt.IsZero() {
			r.Stages[i].OpenedAt = t
		}
	}
}

// applyStage folds an event about an open stage at time at.
func (r *Request) applyStage(kind string, s *StageState, by string, to []string, at time.Time) error {
	switch kind {
	case KindApproval:
		if !slices.Contains(s.Approvers, by) {
			return transitionError(kind, r, by+" is not an approver of stage "+s.Name)
		}
		if slices.Contains(s.Approvals, by) {
			return transitionError(kind, r, by+" approved this stage already")
		}
		s.Approvals = append(s.Approvals, by)
	case KindStageApproved:
		if len(s.Approvals) < s.Required {
			return transitionError(kind, r, fmt.Sprintf("stage %s has %d of %d approvals", s.Name, len(s.Approvals), s.Required))
		}
		s.Done = true
		if r.Mode != Parallel {
			for r.Stage < len(r.Stages) && r.Stages[r.Stage].Done {
				r.Stage++
			}
			r.openStages(at)
		}
	case KindReminded:
		s.Reminders++
	case KindEscalated:
		for _, id := range to {
			if !slices.Contains(s.Approvers, id) {
				s.Approvers = append(s.Approvers, id)
			}
		}
		s.Escalated = true
	}
	return nil
}

// openStage returns stage i if a vote may be cast in it now.
func (r *Request) openStage(kind string, i int) (*StageState, error) {
	if i < 0 || i >= len(r.Stages) {
		return nil, transitionError(kind, r, fmt.Sprintf("no stage %d", i))
	}
	if r.Stages[i].Done {
		return nil, transitionError(kind, r, "stage "+r.Stages[i].Name+" has approved already")
	}
	if r.Mode != Parallel && i != r.Stage {
		return nil, transitionError(kind, r, "stage "+r.Stages[i].Name+" is not the current stage")
	}
	return &r.Stages[i], nil
}

// applyGrant folds the events of an approved request's grants.
func (r *Request) applyGrant(e *Event) error {
	switch e.Kind {
	case KindActivated, KindExtended, KindFailed, KindEnding, KindEnded, KindWarned:
		return r.applyLife(e)
	case KindGrantProvisioning, KindGrantActive, KindGrantFailed, KindGrantRevoking, KindGrantRevoked, KindGrantRevokeFailed,
		KindGrantRefreshing, KindGrantRefreshed, KindGrantRefreshFailed:
	default:
		return errNotGrant
	}
	g, ok := r.Grant(e.GrantID)
	if !ok {
		return transitionError(e.Kind, r, fmt.Sprintf("no grant %q", e.GrantID))
	}
	bad := func(why string) error {
		return transitionError(e.Kind, r, "grant "+g.ID+" is "+string(g.State)+": "+why)
	}
	switch e.Kind {
	case KindGrantProvisioning:
		if g.State != GrantProvisioning || r.State != RequestProvisioning {
			return bad("only a grant being provisioned is")
		}
	case KindGrantActive:
		if g.State != GrantProvisioning {
			return bad("only a grant being provisioned becomes active")
		}
		var p Provisioned
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		g.State, g.Facts, g.LastError, g.NativeUntil, g.Email = GrantActive, p.Facts, "", p.ExpiresAt, p.Email
	case KindGrantFailed:
		if g.State != GrantProvisioning {
			return bad("only a grant being provisioned fails")
		}
		var p GrantError
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		g.LastError = p.Error
		g.GrantAttempts++
		if p.Permanent || r.State == RequestFailed {
			g.State = GrantFailed
		}
	case KindGrantRevoking:
		if g.State != GrantActive && g.State != GrantRevoking && g.State != GrantRevokeFailed && g.State != GrantProvisioning {
			return bad("there is nothing to revoke")
		}
		if r.State != RequestRevoking && r.State != RequestFailed {
			return bad("the request is not ending")
		}
		if g.State != GrantRevokeFailed {
			g.State = GrantRevoking
		}
	case KindGrantRevoked:
		if g.State != GrantRevoking && g.State != GrantRevokeFailed {
			return bad("revoke was not started")
		}
		var p Deprovisioned
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		g.State, g.LastError = GrantRevoked, ""
	case KindGrantRefreshing, KindGrantRefreshed, KindGrantRefreshFailed:
		if g.State != GrantActive || r.State != RequestActive {
			return bad("only an active grant of an active request is refreshed")
		}
		if e.Kind == KindGrantRefreshed {
			var p Provisioned
			if err := decodePayload(e, &p); err != nil {
				return err
			}
			g.NativeUntil, g.LastError = p.ExpiresAt, ""
		}
	case KindGrantRevokeFailed:
		if g.State != GrantRevoking && g.State != GrantRevokeFailed {
			return bad("revoke was not started")
		}
		var p GrantError
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		g.RevokeAttempts++
		g.LastError = p.Error
		if g.RevokeAttempts >= MaxRevokeAttempts {
			g.State = GrantRevokeFailed
		}
	}
	return nil
}

// applyLife folds the request-level events of an approved request.
func (r *Request) applyLife(e *Event) error {
	switch e.Kind {
	case KindActivated:
		if r.State != RequestProvisioning || slices.ContainsFunc(r.Grants, func(g Grant) bool { return g.State != GrantActive }) {
			return transitionError(e.Kind, r, "not every grant is active")
		}
		var p Activated
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		r.State, r.ActiveAt, r.ExpiresAt = RequestActive, e.Time, p.ExpiresAt
	case KindExtended:
		if r.State != RequestActive {
			return transitionError(e.Kind, r, "only an active request is extended")
		}
		var p Extended
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		if !p.ExpiresAt.After(r.ExpiresAt) {
			return transitionError(e.Kind, r, "an extension must move the expiry later")
		}
		r.ExpiresAt, r.Warned = p.ExpiresAt, false
	case KindWarned:
		if r.State != RequestActive {
			return transitionError(e.Kind, r, "only an active request is warned")
		}
		r.Warned = true
	case KindFailed:
		if r.State != RequestProvisioning {
			return transitionError(e.Kind, r, "only a request being provisioned fails")
		}
		var p Note
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		r.State, r.Reason, r.Outcome = RequestFailed, p.Reason, OutcomeRollback
	case KindEnding:
		if r.State != RequestActive && r.State != RequestProvisioning {
			return transitionError(e.Kind, r, "only an active request ends")
		}
		var p Ending
		if err := decodePayload(e, &p); err != nil {
			return err
		}
		r.State, r.Outcome = RequestRevoking, p.Outcome
		if p.Reason != "" {
			r.Reason = p.Reason
		}
	case KindEnded:
		if r.State != RequestRevoking && r.State != RequestFailed {
			return transitionError(e.Kind, r, "the request is not ending")
		}
		if slices.ContainsFunc(r.Grants, func(g Grant) bool { return !g.State.Ended() }) {
			return transitionError(e.Kind, r, "a grant still gives access")
		}
		if r.State == RequestRevoking {
			r.State = RequestEnded
		}
		r.EndedAt = e.Time
	}
	return nil
}

// Clone returns a deep copy of r.
func (r *Request) Clone() Request {
	c := *r
	c.Params = maps.Clone(r.Params)
	c.Targets = slices.Clone(r.Targets)
	c.Stages = slices.Clone(r.Stages)
	for i := range c.Stages {
		c.Stages[i].Approvers = slices.Clone(c.Stages[i].Approvers)
		c.Stages[i].Approvals = slices.Clone(c.Stages[i].Approvals)
	}
	c.Posts = slices.Clone(r.Posts)
	c.Grants = slices.Clone(r.Grants)
	for i := range c.Grants {
		c.Grants[i].Facts = maps.Clone(c.Grants[i].Facts)
	}
	return c
}

// NewEvent returns an event of a request carrying payload as JSON.
func NewEvent(kind, actor, requestID, grantID string, payload any) (Event, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", kind, err)
	}
	return Event{Kind: kind, Actor: actor, RequestID: requestID, GrantID: grantID, Payload: b}, nil
}

// decodePayload decodes an event's payload into p.
func decodePayload(e *Event, p any) error {
	if len(e.Payload) == 0 {
		return nil
	}
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrTransition, e.Kind, err)
	}
	return nil
}

// Summary is what the engine needs at start to rebuild the deadlines of an
// open request without decoding all of it. Whole tells whether the summary
// is enough: for a request that is active with nothing to pass on to its
// connectors it is; for any other, the engine loads the request.
type Summary struct {
	ID          string       `json:"id"`
	Policy      string       `json:"policy"`
	State       RequestState `json:"state"`
	SubmittedAt time.Time    `json:"submitted_at"`
	ExpiresAt   time.Time    `json:"expires_at,omitzero"`
	Warned      bool         `json:"warned,omitempty"`
	BreakGlass  bool         `json:"breakglass,omitempty"`
	Reviewed    bool         `json:"reviewed,omitempty"`
	Whole       bool         `json:"whole,omitempty"`
}

// Summarize returns the summary of r.
func Summarize(r *Request) Summary {
	return Summary{
		ID: r.ID, Policy: r.Policy, State: r.State, SubmittedAt: r.SubmittedAt, ExpiresAt: r.ExpiresAt,
		Warned: r.Warned, BreakGlass: r.BreakGlass, Reviewed: r.Reviewed,
		Whole: r.State == RequestActive && !slices.ContainsFunc(r.Grants, func(g Grant) bool { return stale(r, &g) }),
	}
}

// Request returns the parts of a request a summary holds; it is the whole
// request's equal for scheduling when s.Whole.
func (s Summary) Request() Request {
	return Request{
		ID: s.ID, Submitted: Submitted{Policy: s.Policy, BreakGlass: s.BreakGlass}, State: s.State,
		SubmittedAt: s.SubmittedAt, ExpiresAt: s.ExpiresAt, Warned: s.Warned, Reviewed: s.Reviewed,
	}
}
