// Package slackemu is a Slack emulator: a real HTTP and WebSocket server on
// loopback that speaks the parts of the Slack Web API and the Socket Mode
// protocol latch uses, so the unmodified slack-go client (and its socketmode
// package) can talk to it as if it were Slack. It is the only Slack the
// bot's tests and `latch demo` ever see.
//
// # Connecting an app
//
//	emu := slackemu.Start(t) // or slackemu.New() outside tests
//	api := slack.New(emu.BotToken(),
//		slack.OptionAppLevelToken(emu.AppToken()),
//		slack.OptionAPIURL(emu.APIURL()))
//	sm := socketmode.New(api)
//	go sm.RunContext(ctx)
//
// # What it emulates
//
// Web API (form, JSON or query arguments; the token as "Authorization:
// Bearer" or a token argument; answers are HTTP 200 with {"ok":…} unless
// a fault is injected):
// auth.test, apps.connections.open (app-level xapp token only),
// chat.postMessage, chat.update, chat.postEphemeral, chat.delete,
// chat.getPermalink, conversations.open, conversations.info,
// conversations.members, conversations.history, conversations.replies,
// conversations.list, conversations.join, users.conversations,
// views.open, views.push, views.update, views.publish,
// users.info, users.list, users.lookupByEmail, users.profile.get, usergroups.list,
// usergroups.users.list, team.info, bots.info, plus the response_url of
// slash commands and message interactions. Error codes are Slack's:
// not_authed, invalid_auth, not_allowed_token_type, unknown_method,
// channel_not_found, not_in_channel, user_not_found, users_not_found,
// user_not_in_channel, message_not_found, no_text, msg_too_long,
// invalid_blocks (with Slack's "[ERROR] … [json-pointer:/blocks/…]"
// messages in response_metadata.messages), invalid_arguments (the same
// for views), invalid_trigger_id, expired_trigger_id (after 3 s),
// exchanged_trigger_id (a trigger works once), not_found and
// hash_conflict for views.update, push_limit_reached (3 stacked modals).
//
// Block Kit is validated on every message, ephemeral message, ack
// payload and view against Slack's documented limits (blocks per surface,
// text lengths, element counts, required fields, plain_text where Slack
// demands it, unique block_id and action_id). A violation fails the call
// like Slack does and is also recorded in Problems.
//
// Socket Mode: a hello with num_connections and debug_info on connect,
// WebSocket pings (every 5 s by default), envelopes of type
// slash_commands, interactive (block_actions, block_suggestion,
// view_submission, view_closed) and events_api (app_home_opened) in
// Slack's exact shapes, a 3 s ack deadline after which the envelope is
// recorded as a problem and redelivered with retry_attempt+1 and
// retry_reason "timeout", and disconnect messages. Envelopes sent while
// the app has no connection wait for the next one.
//
// # Driving it from a test
//
// Tests act as users, and only on what the app rendered: Slash runs a
// command; Click (or ClickByText, ClickByValue) presses a button of a
// message, ephemeral message, modal or App Home, in its current version: a
// button the app has since removed cannot be clicked, and a user cannot
// click what they cannot see. Select, Type, Suggest, Submit and CloseView
// work the inputs of a view; OpenHome opens the App Home. Each waits for
// the app's ack and returns it. Acting on something that is not there is
// recorded as a problem, so a test started with Start fails. ClickAs is
// the one deliberate exception: it replays a button of a snapshot as any
// user, for tests of forged and double clicks. The app's later Web API calls are asynchronous, so
// tests wait for their effect with Wait, WaitDM, WaitMessage,
// WaitEphemeral, WaitThread, WaitView or WaitHome, which re-check on every
// state change instead of polling.
//
// Users, channels and groups are referred to by name ("alice",
// "#incidents", "oncall") or ID. The seeded workspace (team TLATCH0001,
// app ALATCH0001, bot user ULATCHBOT) has eight users with emails
// name@example.com and a manager chain: alice and bob report to carol,
// carol and dave to heidi, erin and frank to grace, grace to heidi; grace
// and heidi are admins. The user group @oncall has dave and erin.
// #incidents has everyone; the private #security has erin, grace, heidi
// and the bot. IDs are derived from names (alice is UALICE00, her DM with
// the bot DALICE00) and so are stable from run to run.
//
// Render gives a plain-text picture of a message or view, one block per
// line: "# Header", section text and fields, "a | b" for context, "---"
// for dividers, "[Approve] [Deny]" for buttons, "Label: <plain_text_input>"
// for inputs, and "! error" under an input the app flagged.
//
// Mentions lists whom a message would notify (users, groups, @here,
// @channel), so tests can check that text from users cannot ping anyone.
//
// Faults: FailNext answers the next calls with 429 and Retry-After or with
// 5xx; RedeliverNext and DisconnectBeforeAck make the app see an envelope
// twice; Disconnect sends a disconnect message. Calls, Acks and OnCall
// expose what happened for assertions and benchmarks. WithClock makes
// trigger expiry testable without sleeping.
package slackemu
