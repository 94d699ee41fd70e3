package slackemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Call is one Web API call as the emulator received it.
type Call struct {
	Method string            // e.g. "chat.postMessage"; "response_url" for response_url posts
	Time   time.Time         // wall-clock time the call arrived
	Args   map[string]string // arguments (form fields or JSON members; objects as JSON text), token removed
	Status int               // HTTP status returned
	Error  string            // Slack error code, "" when ok
}

// apiError is a Slack error response.
type apiError struct {
	code     string
	messages []string // response_metadata.messages
}

func (e *apiError) Error() string { return e.code }

func errCode(code string) *apiError { return &apiError{code: code} }

type tokenKind int

const (
	botTokenKind tokenKind = iota
	appTokenKind
)

type apiMethod struct {
	token   tokenKind
	handler func(s *Server, args map[string]string) (map[string]any, *apiError)
}

var apiMethods = map[string]apiMethod{
	"api.test":              {botTokenKind, (*Server).apiTest},
	"auth.test":             {botTokenKind, (*Server).authTest},
	"apps.connections.open": {appTokenKind, (*Server).appsConnectionsOpen},
	"chat.postMessage":      {botTokenKind, (*Server).chatPostMessage},
	"chat.update":           {botTokenKind, (*Server).chatUpdate},
	"chat.postEphemeral":    {botTokenKind, (*Server).chatPostEphemeral},
	"chat.delete":           {botTokenKind, (*Server).chatDelete},
	"conversations.open":    {botTokenKind, (*Server).conversationsOpen},
	"conversations.info":    {botTokenKind, (*Server).conversationsInfo},
	"conversations.members": {botTokenKind, (*Server).conversationsMembers},
	"views.open":            {botTokenKind, (*Server).viewsOpen},
	"views.push":            {botTokenKind, (*Server).viewsPush},
	"views.update":          {botTokenKind, (*Server).viewsUpdate},
	"views.publish":         {botTokenKind, (*Server).viewsPublish},
	"users.info":            {botTokenKind, (*Server).usersInfo},
	"users.list":            {botTokenKind, (*Server).usersList},
	"users.lookupByEmail":   {botTokenKind, (*Server).usersLookupByEmail},
	"usergroups.list":       {botTokenKind, (*Server).usergroupsList},
	"usergroups.users.list": {botTokenKind, (*Server).usergroupsUsersList},
	"conversations.replies": {botTokenKind, (*Server).conversationsReplies},
	"conversations.history": {botTokenKind, (*Server).conversationsHistory},
	"users.conversations":   {botTokenKind, (*Server).usersConversations},
	"conversations.list":    {botTokenKind, (*Server).conversationsList},
	"chat.getPermalink":     {botTokenKind, (*Server).chatGetPermalink},
	"team.info":             {botTokenKind, (*Server).teamInfo},
	"bots.info":             {botTokenKind, (*Server).botsInfo},
	"users.profile.get":     {botTokenKind, (*Server).usersProfileGet},
	"conversations.join":    {botTokenKind, (*Server).conversationsJoin},
}

// fault is an injected failure for the next n calls of a method.
type fault struct {
	method     string
	n          int
	status     int
	retryAfter time.Duration
}

// FailNext makes the next n calls of method ("" for any method) fail with
// the HTTP status. A 429 carries a Retry-After header (whole seconds,
// rounded up) and the body {"ok":false,"error":"ratelimited"}, like Slack's
// rate limiter; any other status gets an HTML error body, like Slack's
// load balancers. Faults queue up in the order they were added.
func (s *Server) FailNext(method string, n int, status int, retryAfter time.Duration) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, n: n, status: status, retryAfter: retryAfter})
}

func (s *Server) takeFaultLocked(method string) *fault {
	for i, f := range s.faults {
		if f.method == "" || f.method == method {
			f.n--
			if f.n <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// parseArgs reads arguments the way Slack accepts them: a query string,
// a form body, or a JSON body. Values that are JSON objects or arrays are
// kept as JSON text, so "view" and "blocks" look the same either way.
func parseArgs(r *http.Request) (map[string]string, error) {
	args := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			args[k] = v[0]
		}
	}
	if r.Method != http.MethodPost {
		return args, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if len(bytes.TrimSpace(body)) == 0 {
			return args, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				args[k] = str
				continue
			}
			if string(raw) == "null" {
				continue
			}
			args[k] = string(raw)
		}
	case "multipart/form-data":
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			if len(v) > 0 {
				args[k] = v[0]
			}
		}
	default:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			if len(v) > 0 {
				args[k] = v[0]
			}
		}
	}
	return args, nil
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	call := Call{Method: method, Time: time.Now()}
	args, perr := parseArgs(r)
	token := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	if args != nil {
		if token == "" {
			token = args["token"]
		}
		delete(args, "token")
	}
	call.Args = args

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	var (
		resp   map[string]any
		aerr   *apiError
		status = http.StatusOK
		retry  string
	)
	spec, known := apiMethods[method]
	if f := s.takeFaultLocked(method); f != nil {
		status = f.status
		if status == http.StatusTooManyRequests {
			retry = strconv.FormatInt(int64((f.retryAfter+time.Second-1)/time.Second), 10)
			aerr = errCode("ratelimited")
		} else {
			aerr = errCode(fmt.Sprintf("http_%d", status))
		}
	} else {
		switch {
		case perr != nil:
			aerr = errCode("invalid_form_data")
		case !known || spec.handler == nil:
			aerr = errCode("unknown_method")
		default:
			aerr = s.checkTokenLocked(method, token, spec.token)
			if aerr == nil {
				resp, aerr = spec.handler(s, args)
			}
		}
	}
	if aerr != nil {
		call.Error = aerr.code
	}
	call.Status = status
	s.calls = append(s.calls, call)
	hooks := slices.Clone(s.onCall)
	s.bumpLocked()
	s.mu.Unlock()

	if aerr != nil {
		s.logf("api %s → error %s", method, aerr.code)
	} else {
		s.logf("api %s → ok", method)
	}
	for _, h := range hooks {
		h(call)
	}
	switch {
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retry)
		writeJSON(w, status, map[string]any{"ok": false, "error": "ratelimited"})
	case status != http.StatusOK:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
	default:
		writeJSON(w, status, apiBody(resp, aerr))
	}
}

func apiBody(resp map[string]any, aerr *apiError) map[string]any {
	if aerr != nil {
		body := map[string]any{"ok": false, "error": aerr.code}
		if len(aerr.messages) > 0 {
			errs := make([]string, len(aerr.messages))
			for i, m := range aerr.messages {
				errs[i] = strings.TrimPrefix(m, "[ERROR] ")
			}
			body["errors"] = errs
			body["response_metadata"] = map[string]any{"messages": aerr.messages}
		}
		return body
	}
	body := map[string]any{"ok": true}
	maps.Copy(body, resp)
	return body
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// checkTokenLocked applies Slack's token rules: no token is not_authed, an
// unknown token invalid_auth, a known token of the wrong kind
// not_allowed_token_type (recorded as a problem, since it is always an
// app bug).
func (s *Server) checkTokenLocked(method, token string, want tokenKind) *apiError {
	var got tokenKind
	switch token {
	case "":
		return errCode("not_authed")
	case botToken:
		got = botTokenKind
	case appToken:
		got = appTokenKind
	default:
		return errCode("invalid_auth")
	}
	if got != want {
		kind := map[tokenKind]string{botTokenKind: "bot token (xoxb)", appTokenKind: "app-level token (xapp)"}
		s.problemLocked("%s called with the %s; it needs the %s", method, kind[got], kind[want])
		return errCode("not_allowed_token_type")
	}
	return nil
}

func (s *Server) apiTest(args map[string]string) (map[string]any, *apiError) {
	return map[string]any{"args": args}, nil
}

func (s *Server) authTest(map[string]string) (map[string]any, *apiError) {
	return map[string]any{
		"url": "https://" + teamDomain + ".slack.com/", "team": teamName, "user": botName,
		"team_id": teamID, "user_id": botUserID, "bot_id": botID, "is_enterprise_install": false,
	}, nil
}

func (s *Server) teamInfo(map[string]string) (map[string]any, *apiError) {
	return map[string]any{"team": map[string]any{"id": teamID, "name": teamName, "domain": teamDomain}}, nil
}

func (s *Server) botsInfo(args map[string]string) (map[string]any, *apiError) {
	if b := args["bot"]; b != "" && b != botID {
		return nil, errCode("bot_not_found")
	}
	return map[string]any{"bot": map[string]any{
		"id": botID, "deleted": false, "name": botName, "app_id": appID, "user_id": botUserID,
	}}, nil
}

func (s *Server) userObject(u *User) map[string]any {
	profile := map[string]any{
		"real_name": u.RealName, "real_name_normalized": u.RealName,
		"display_name": u.Name, "display_name_normalized": u.Name,
		"email": u.Email, "title": u.Title, "team": teamID,
		"first_name": firstWord(u.RealName), "last_name": restWords(u.RealName),
		"image_48": "https://" + teamDomain + ".slack.com/avatars/" + u.ID + "_48.png",
	}
	if u.IsBot {
		profile["bot_id"] = botID
		profile["api_app_id"] = appID
		delete(profile, "email")
	}
	if u.ManagerID != "" {
		profile["fields"] = map[string]any{
			"XfMANAGER": map[string]any{"value": u.ManagerID, "alt": ""},
		}
	}
	return map[string]any{
		"id": u.ID, "team_id": teamID, "name": u.Name, "deleted": u.Deleted,
		"real_name": u.RealName, "tz": u.TZ, "tz_label": u.TZ, "tz_offset": 0,
		"profile": profile, "is_bot": u.IsBot, "is_app_user": false,
		"is_admin": u.IsAdmin, "is_owner": false, "is_primary_owner": false,
		"is_restricted": false, "is_ultra_restricted": false, "is_email_confirmed": !u.IsBot,
		"updated": 1700000000,
	}
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func restWords(s string) string {
	f := strings.Fields(s)
	if len(f) < 2 {
		return ""
	}
	return strings.Join(f[1:], " ")
}

func (s *Server) usersInfo(args map[string]string) (map[string]any, *apiError) {
	if many := args["users"]; many != "" && args["user"] == "" {
		var out []any
		for _, id := range strings.Split(many, ",") {
			u := s.ws.userByID(strings.TrimSpace(id))
			if u == nil {
				return nil, errCode("users_not_found")
			}
			out = append(out, s.userObject(u))
		}
		return map[string]any{"users": out}, nil
	}
	u := s.ws.userByID(args["user"])
	if u == nil {
		return nil, errCode("user_not_found")
	}
	return map[string]any{"user": s.userObject(u)}, nil
}

func (s *Server) usersProfileGet(args map[string]string) (map[string]any, *apiError) {
	u := s.ws.userByID(args["user"])
	if u == nil {
		return nil, errCode("user_not_found")
	}
	return map[string]any{"profile": s.userObject(u)["profile"]}, nil
}

func (s *Server) usersList(map[string]string) (map[string]any, *apiError) {
	var out []any
	for _, u := range s.ws.users {
		out = append(out, s.userObject(u))
	}
	return map[string]any{"members": out, "cache_ts": time.Now().Unix(),
		"response_metadata": map[string]any{"next_cursor": ""}}, nil
}

func (s *Server) usersLookupByEmail(args map[string]string) (map[string]any, *apiError) {
	u := s.ws.userByEmail(args["email"])
	if u == nil {
		return nil, errCode("users_not_found")
	}
	return map[string]any{"user": s.userObject(u)}, nil
}

func (s *Server) groupObject(g *Group, withUsers bool) map[string]any {
	obj := map[string]any{
		"id": g.ID, "team_id": teamID, "is_usergroup": true, "is_subteam": true,
		"name": g.Name, "description": "", "handle": g.Handle, "is_external": false,
		"date_create": 1700000000, "date_update": 1700000000, "date_delete": 0,
		"auto_type": nil, "created_by": botUserID, "updated_by": botUserID, "deleted_by": nil,
		"prefs":      map[string]any{"channels": []string{}, "groups": []string{}},
		"user_count": len(g.Members),
	}
	if withUsers {
		obj["users"] = append([]string{}, g.Members...)
	}
	return obj
}

func (s *Server) usergroupsList(args map[string]string) (map[string]any, *apiError) {
	withUsers := args["include_users"] == "true" || args["include_users"] == "1"
	out := []any{}
	for _, g := range s.ws.groups {
		out = append(out, s.groupObject(g, withUsers))
	}
	return map[string]any{"usergroups": out}, nil
}

func (s *Server) usergroupsUsersList(args map[string]string) (map[string]any, *apiError) {
	g := s.ws.group(args["usergroup"])
	if g == nil || args["usergroup"] != g.ID {
		return nil, errCode("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, g.Members...)}, nil
}

func (s *Server) channelObject(c *Channel) map[string]any {
	return map[string]any{
		"id": c.ID, "name": c.Name, "name_normalized": c.Name, "is_channel": !c.IsPrivate,
		"is_group": c.IsPrivate, "is_im": false, "is_mpim": false, "is_private": c.IsPrivate,
		"is_archived": false, "is_general": false, "is_member": c.hasMember(botUserID),
		"created": 1700000000, "creator": botUserID, "context_team_id": teamID,
		"num_members": len(c.Members),
	}
}

func imObject(u *User) map[string]any {
	return map[string]any{
		"id": dmID(u.ID), "created": 1700000000, "is_im": true, "is_org_shared": false,
		"user": u.ID, "is_user_deleted": u.Deleted, "priority": 0,
	}
}

func (s *Server) conversationsOpen(args map[string]string) (map[string]any, *apiError) {
	if ch := args["channel"]; ch != "" {
		u := s.ws.dmUser(ch)
		if u == nil {
			return nil, errCode("channel_not_found")
		}
		return map[string]any{"channel": imObject(u), "no_op": true, "already_open": true}, nil
	}
	users := strings.Split(args["users"], ",")
	if args["users"] == "" {
		return nil, errCode("users_list_not_supplied")
	}
	if len(users) > 1 {
		// Group DMs (mpim) are not emulated.
		return nil, errCode("not_supported")
	}
	u := s.ws.userByID(strings.TrimSpace(users[0]))
	if u == nil {
		return nil, errCode("user_not_found")
	}
	if u.IsBot {
		return nil, errCode("cannot_dm_bot")
	}
	already := false
	for _, m := range s.messages {
		if m.channel == dmID(u.ID) {
			already = true
			break
		}
	}
	ch := imObject(u)
	if args["return_im"] != "true" && args["return_im"] != "1" {
		ch = map[string]any{"id": dmID(u.ID)}
	}
	return map[string]any{"channel": ch, "no_op": already, "already_open": already}, nil
}

func (s *Server) conversationsInfo(args map[string]string) (map[string]any, *apiError) {
	id := args["channel"]
	if u := s.ws.dmUser(id); u != nil {
		return map[string]any{"channel": imObject(u)}, nil
	}
	c := s.ws.channel(id)
	if c == nil || c.ID != id {
		return nil, errCode("channel_not_found")
	}
	if c.IsPrivate && !c.hasMember(botUserID) {
		return nil, errCode("channel_not_found")
	}
	return map[string]any{"channel": s.channelObject(c)}, nil
}

func (s *Server) conversationsMembers(args map[string]string) (map[string]any, *apiError) {
	id := args["channel"]
	if u := s.ws.dmUser(id); u != nil {
		return map[string]any{"members": []string{botUserID, u.ID},
			"response_metadata": map[string]any{"next_cursor": ""}}, nil
	}
	c := s.ws.channel(id)
	if c == nil || c.ID != id || (c.IsPrivate && !c.hasMember(botUserID)) {
		return nil, errCode("channel_not_found")
	}
	return map[string]any{"members": append([]string{}, c.Members...),
		"response_metadata": map[string]any{"next_cursor": ""}}, nil
}

func (s *Server) conversationsJoin(args map[string]string) (map[string]any, *apiError) {
	c := s.ws.channel(args["channel"])
	if c == nil || c.ID != args["channel"] {
		return nil, errCode("channel_not_found")
	}
	if c.IsPrivate && !c.hasMember(botUserID) {
		return nil, errCode("method_not_supported_for_channel_type")
	}
	if !c.hasMember(botUserID) {
		c.Members = append(c.Members, botUserID)
	}
	return map[string]any{"channel": s.channelObject(c)}, nil
}

func (s *Server) conversationsList(map[string]string) (map[string]any, *apiError) {
	out := []any{}
	for _, c := range s.ws.channels {
		if !c.IsPrivate || c.hasMember(botUserID) {
			out = append(out, s.channelObject(c))
		}
	}
	return map[string]any{"channels": out, "response_metadata": map[string]any{"next_cursor": ""}}, nil
}

func (s *Server) usersConversations(map[string]string) (map[string]any, *apiError) {
	out := []any{}
	for _, c := range s.ws.channels {
		if c.hasMember(botUserID) {
			out = append(out, s.channelObject(c))
		}
	}
	return map[string]any{"channels": out, "response_metadata": map[string]any{"next_cursor": ""}}, nil
}

// conversationsHistory returns the app's top-level messages, newest first.
func (s *Server) conversationsHistory(args map[string]string) (map[string]any, *apiError) {
	id, aerr := s.existingChannelLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	out := []any{}
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if m.channel == id && !m.ephemeral && (m.threadTS == "" || m.threadTS == m.ts) {
			out = append(out, s.messageObject(m))
		}
	}
	return map[string]any{"messages": out, "has_more": false,
		"response_metadata": map[string]any{"next_cursor": ""}}, nil
}

func (s *Server) conversationsReplies(args map[string]string) (map[string]any, *apiError) {
	id, aerr := s.existingChannelLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	parent := s.msgIndex[msgKey(id, args["ts"])]
	if parent == nil {
		return nil, errCode("thread_not_found")
	}
	root := parent.ts
	if parent.threadTS != "" {
		root = parent.threadTS
	}
	out := []any{s.messageObject(s.msgIndex[msgKey(id, root)])}
	for _, m := range s.messages {
		if m.channel == id && !m.ephemeral && m.threadTS == root {
			out = append(out, s.messageObject(m))
		}
	}
	return map[string]any{"messages": out, "has_more": false,
		"response_metadata": map[string]any{"next_cursor": ""}}, nil
}

func (s *Server) chatGetPermalink(args map[string]string) (map[string]any, *apiError) {
	id, aerr := s.existingChannelLocked(args["channel"])
	if aerr != nil {
		return nil, aerr
	}
	if s.msgIndex[msgKey(id, args["message_ts"])] == nil {
		return nil, errCode("message_not_found")
	}
	return map[string]any{"channel": id, "permalink": fmt.Sprintf("https://%s.slack.com/archives/%s/p%s",
		teamDomain, id, strings.ReplaceAll(args["message_ts"], ".", ""))}, nil
}

// existingChannelLocked resolves a channel ID (C… the bot can see, or D…).
func (s *Server) existingChannelLocked(id string) (string, *apiError) {
	if u := s.ws.dmUser(id); u != nil {
		return id, nil
	}
	c := s.ws.channel(id)
	if c == nil || c.ID != id || (c.IsPrivate && !c.hasMember(botUserID)) {
		return "", errCode("channel_not_found")
	}
	return c.ID, nil
}
