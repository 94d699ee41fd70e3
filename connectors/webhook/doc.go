// Package webhook is the connector that provisions access by calling an
// HTTP endpoint, the receiver, that the team running latch writes for a
// target system latch has no connector of its own for.
//
// # The request
//
// For every grant and every revoke latch sends one POST to the configured
// URL, which must use https (plain http is accepted only on a loopback
// address). Redirects are not followed. The body is JSON:
//
//	{
//	  "action":      "grant",             // or "revoke"
//	  "grant_id":    "0190a1b2-…",        // the same on every retry
//	  "request_id":  "0190a1b2-…",
//	  "user":        {"slack_id": "U0123ABCD", "email": "jane@example.com"},
//	  "entitlement": "readers",           // in the target's own terms
//	  "expires_at":  "2030-01-02T15:04:05Z", // RFC 3339 in UTC, or null if the access has no end
//	  "params":      {"public_key": "…"}  // the request's inputs for this connector, or {}
//	}
//
// with these headers:
//
//	Content-Type      application/json
//	Idempotency-Key   <grant_id>:<action>, the same on every retry of a call
//	Latch-Timestamp   when the request was signed, in Unix seconds
//	Latch-Signature   v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// The secret is shared by latch and the receiver; latch's configuration
// reads it from the environment, never from the file.
//
// # Verifying a request
//
// A receiver must, before acting on a request:
//
//  1. recompute HMAC-SHA256 with the shared secret over the
//     Latch-Timestamp header, a ".", and the raw body exactly as received,
//     and compare it with the hex after "v1=" in Latch-Signature in
//     constant time (hmac.Equal in Go);
//  2. reject a timestamp more than 5 minutes away from its own clock, so
//     that a captured request cannot be replayed later;
//  3. dedupe by Idempotency-Key: a key seen before gets the answer it got
//     the first time and changes nothing.
//
// Verify does steps 1 and 2 for receivers written in Go. A receiver that
// rejects a request answers 401 or 403, which latch takes as permanent.
//
// # The response
//
//	2xx                a success
//	4xx                a permanent failure that retrying cannot fix: the
//	                   entitlement does not exist, the person has no
//	                   account, the signature is refused; except
//	408, 425 and 429   which are transient
//	5xx, a timeout,    transient failures; latch retries, and keeps
//	no connection      retrying a revoke with backoff until it succeeds
//	3xx                a permanent failure: the URL is wrong
//
// Grants and revokes must be idempotent: granting access that exists, and
// revoking access that is gone or never existed, succeed.
//
// The body of a successful grant may be JSON (with Content-Type
// application/json) of this form; both fields are optional:
//
//	{
//	  "message": "…", // for the beneficiary alone: credentials, how to connect; never logged
//	  "facts":   {"account": "latch_jane_7f3a"} // for the audit log, which everyone reads: no secret
//	}
//
// The body of a failure should explain it to an operator in a few lines:
// its last 2 KiB go into the error that latch records and announces, so it
// must hold no secret. Latch reads at most 64 KiB of any response; a
// successful grant's JSON body longer than that is a failure.
//
// A call that takes longer than its timeout (30 seconds unless configured)
// is abandoned and is a transient failure.
package webhook
