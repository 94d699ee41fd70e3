// Package connectors is the home of latch's connectors: each target system
// (PostgreSQL, SSH certificates, LDAP, webhooks, commands) has a package of
// its own below this one, and none imports another.
package connectors
