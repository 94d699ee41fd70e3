package workflow

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// HashSize is the length in bytes of an event hash (SHA-256).
const HashSize = 32

// Hash is the SHA-256 link of the audit chain: each event's hash covers the
// previous event's hash and the event's own canonical bytes.
type Hash [HashSize]byte

// Event is one entry of the append-only audit log. Everything latch does is
// an event: requests, decisions, connector calls and their results.
//
// A caller fills in Actor, Kind, RequestID, GrantID and Payload; the log
// assigns Seq, ID, Time, PrevHash and Hash when the event is committed.
type Event struct {
	Seq       uint64          // position in the log, from 1, without gaps
	ID        uuid.UUID       // UUIDv7, unique across logs
	Time      time.Time       // commit time; never earlier than the previous event's
	Actor     string          // who caused it: a Slack user id, "latch", "admin:<name>", "api"
	Kind      string          // what happened, e.g. "request.submitted"
	RequestID string          // the request it belongs to, if any
	GrantID   string          // the grant it belongs to, if any
	Payload   json.RawMessage // kind-specific details as a JSON object
	PrevHash  Hash            // the previous event's Hash (zero for the first)
	Hash      Hash            // SHA-256 over PrevHash and the canonical bytes
}
