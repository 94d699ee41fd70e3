// Package bot is latch's Slack transport: it receives slash commands and
// interactions over Socket Mode and renders requests, approvals and grants
// as Block Kit messages and views.
package bot
