// Package admin is latch's admin HTTP API, and the client the command line
// uses to reach it.
//
// Every endpoint lives under /api/v1 and asks for the admin token as
// "Authorization: Bearer <token>"; a request without it, with another
// scheme, or with a wrong token gets 401 and {"error":"unauthorized"},
// nothing more. Answers are JSON; errors are {"error": "..."} with a status
// that says what kind of problem it is (400 a bad parameter, named in the
// message; 404 an unknown id; 409 a command the engine refused or a broken
// audit chain).
//
//	GET  /api/v1/grants?state=active|all&user=<slack id>
//	GET  /api/v1/requests/{id}
//	POST /api/v1/grants/{id}/revoke   {"reason": "..."}   [?wait=30s]
//	GET  /api/v1/audit?since=…&until=…&kind=…&format=jsonl|csv
//	GET  /api/v1/audit/verify
//
// The grants are listed as `latch grants --format json` prints them
// (GrantRow); a request comes with its events as the JSONL export shapes
// them (store.ExportedEvent). A revoke is recorded with the actor
// "api:<operator>" when its body names the operator, "api" (Actor)
// otherwise; the engine must count both among its admins ("api", "api:").
// The audit export streams: memory use does not grow with the log.
//
// The handler only serves paths under /api/, so it shares a mux with the
// health and metrics endpoints: see Handler.Routes.
package admin
