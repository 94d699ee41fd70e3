// Package reconcile compares the access the connectors find in their
// targets with the grants latch knows, and puts right what drifted.
//
// A Reconciler asks every connector that implements workflow.Lister who
// holds the entitlements the catalogue's items use on it, and sorts each
// holding:
//
//   - A holding whose grant gives access now (provisioning, active,
//     revoking or revoke_failed) is in order. So is one the connector
//     cannot tie to a grant (a group member, a role member) that matches
//     such a grant of the same target by account or email.
//   - A holding of a grant that has ended (revoked or failed), or one
//     without a grant id that matches an ended grant of the same target
//     and no live one, is a Leftover: it is revoked through the connector,
//     with the access built from the grant, as the engine would have.
//   - A holding marked with a grant id latch does not know is an
//     UnknownGrant, and one without a grant id that matches no grant is
//     Unmanaged (a member of a managed group whom latch never granted):
//     both are reported, and removed only where Config.RemoveUnmanaged
//     says so.
//
// Listing races the engine, which may be granting or revoking while a
// connector lists. The reconciler therefore reads the grants both before
// and after listing: a grant must have ended before the listing for its
// holding to be a leftover, and a grant id must be unknown after it for
// its holding to be an unknown grant; a grant live at either time covers
// the holdings that match it; and while a grant of a target is being
// provisioned and nothing yet says which account it went to, the holdings
// of that target without a grant id are left for the next pass.
//
// # Events
//
// Every finding is recorded in the audit log, with a Finding as payload
// and no request id (the request, when known, is in the payload; the
// grant id of a leftover is also the event's), through Config.Record:
//
//	drift.leftover       a leftover was found (Action "remove")
//	drift.unmanaged      an unmanaged holding or unknown grant was found
//	                     (Action "remove" or "report")
//	drift.removed        the reconciler took a holding away
//	drift.remove_failed  taking it away failed (Error says why)
//
// The finding is recorded before the reconciler acts on it, and the
// outcome after. A finding that is still there at the next pass is not
// recorded or reported again unless its outcome changes (a removal that
// failed and now succeeds); one that goes away and comes back is.
package reconcile
