// Package audit carries latch's audit log out of the store: it streams the
// events to sinks (a JSON lines file, an HTTPS endpoint) and signs
// checkpoints of the log's head, so that a log cut short or rewritten can be
// told from the real one by someone who kept a checkpoint elsewhere.
//
// # Streaming
//
// Run (or a Stream) delivers every event of the log to one Sink, in log
// order, at least once. Its position is a store cursor named
// "sink:<name>", saved after every batch the sink accepted; a restart
// resumes from it, so the batch that was being delivered when latch stopped
// may be delivered again. Every event carries its sequence number and its
// id: receivers de-duplicate on either. A batch that fails is retried, with
// capped and jittered back-off, until it is accepted: the stream never
// skips an event, and its lag (Stream.Lag) grows while a sink is down.
//
// FileSink appends one JSON line per event and fsyncs each batch. It
// notices when the file was moved away (as logrotate does) and reopens the
// path; copytruncate works as well, as the file is opened for appending.
//
// HTTPSink POSTs each batch as JSON lines (application/x-ndjson) with the
// headers
//
//	Latch-Timestamp: <Unix seconds>
//	Latch-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	Latch-Batch:     <first seq>-<last seq>
//
// signed exactly as the webhook connector signs its calls, so
// webhook.Verify checks them. A 2xx answer accepts the batch; anything
// else, a redirect or a timeout has it retried.
//
// # Formats
//
// FormatLatch writes each event as `latch audit export` does
// (store.ExportedEvent). FormatOCSF writes an OCSF 1.5 event per latch
// event, with the original latch event in "unmapped":
//
//	latch kind                  class (class_uid)                activity (activity_id)  status   severity
//	request.approved            Authorize Session (3003)         Assign Privileges (1)   Success  Informational*
//	request.denied              Authorize Session (3003)         Assign Privileges (1)   Failure  Informational
//	request.refused             Authorize Session (3003)         Other (99)              Failure  Low
//	request.submitted           Authorize Session (3003)         Other (99)              Success  Informational*
//	other request.* kinds       Authorize Session (3003)         Other (99)              Success  Informational
//	grant.active                User Access Management (3005)    Assign Privileges (1)   Success  Informational*
//	grant.refreshed             User Access Management (3005)    Assign Privileges (1)   Success  Informational
//	grant.failed                User Access Management (3005)    Assign Privileges (1)   Failure  Low
//	grant.refresh_failed        User Access Management (3005)    Assign Privileges (1)   Failure  Low
//	grant.revoked               User Access Management (3005)    Revoke Privileges (2)   Success  Informational
//	grant.revoke_failed         User Access Management (3005)    Revoke Privileges (2)   Failure  High
//	other grant.* kinds         User Access Management (3005)    Other (99)              Success  Informational
//	any other kind              Base Event (0)                   Other (99)              Success  Informational
//
//	* Medium for a break-glass request.
//
// Every OCSF event has time (Unix milliseconds), class_uid, category_uid (3,
// Identity & Access Management; 0 for Base Event), activity_id, type_uid
// (class_uid*100 + activity_id), severity_id, status_id (status_detail
// holds the reason or the connector's error of a failure), message,
// metadata.uid (the event id), metadata.correlation_uid (the request id),
// metadata.product {name: latch, vendor_name: latch} and metadata.version
// (the OCSF version). The IAM classes also have actor.user.uid (the latch
// actor), user.uid (the beneficiary) and privileges, each
// "<connector>/<entitlement>", which User Access Management repeats as
// resources; Base Event, which has none of these attributes, leaves them to
// unmapped. Most events name their beneficiary and targets only through
// the request they belong to: give the sink a Requests (the store is one)
// to have them filled in; a lookup that fails fails the batch, which is
// then retried.
//
// # Checkpoints
//
// A Checkpoint vouches, under an ed25519 key, that the log held Events
// events whose last one hashed to Head, at Time. The signature covers these
// bytes, in UTF-8, each line ended by a line feed:
//
//	latch-checkpoint v1
//	<events, decimal>
//	<head, 64 lowercase hex digits>
//	<time, RFC 3339 with nanoseconds, UTC>
//
// Its Key is the key id: the hex of the first 8 bytes of the SHA-256 of the
// raw 32-byte public key. Check compares a store with a checkpoint: a log
// shorter than the checkpoint fails with ErrTruncated, a log whose event
// number Events hashes differently (however consistently it was re-hashed)
// with ErrRewritten, and a broken chain with the store's *ChainError.
// RunCheckpoints signs one every period and once more at shutdown;
// AppendCheckpoint and ReadCheckpoint keep them as JSON lines in a file.
//
// Keys are PEM files as openssl writes them:
//
//	openssl genpkey -algorithm ed25519 -out checkpoint.pem
//	openssl pkey -in checkpoint.pem -pubout -out checkpoint.pub
package audit
