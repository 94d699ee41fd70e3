package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchhq/latch/workflow"
)

const (
	// DefaultTimeout is how long one call may take when Config.Timeout is
	// zero.
	DefaultTimeout = 30 * time.Second

	// MaxResponse bounds what is read of a response's body.
	MaxResponse = 64 << 10

	// MaxBodyTail bounds the tail of a failed response's body kept in
	// Error.Body.
	MaxBodyTail = 2 << 10
)

// Config is a webhook connector's configuration.
type Config struct {
	Name    string        // the connector's name in latch's configuration
	URL     string        // the receiver: https, or http on a loopback address
	Secret  []byte        // the shared signing secret, from the environment
	Timeout time.Duration // how long one call may take; zero means DefaultTimeout

	// Client sends the requests; nil means a client of the connector's
	// own. Its CheckRedirect is replaced so that no redirect is followed,
	// and its Timeout is left to Config.Timeout.
	Client *http.Client
}

// Connector grants and revokes access by calling a receiver; see the
// package doc for the receiver's side of the contract. It is safe for
// concurrent use.
type Connector struct {
	name    string
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
	now     func() time.Time
}

var _ workflow.Provisioner = (*Connector)(nil)

// New returns a connector for the receiver c describes. Every error it
// returns wraps ErrInvalidConfig.
func New(c Config) (*Connector, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Name == "" {
		bad("the connector has no name")
	}
	if err := checkURL(c.URL); err != nil {
		bad("url: %v", err)
	}
	if len(c.Secret) == 0 {
		bad("no secret: set the signing secret the receiver shares")
	}
	timeout := c.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		bad("timeout %s is not positive", c.Timeout)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	client := &http.Client{}
	if c.Client != nil {
		copied := *c.Client
		client = &copied
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Connector{
		name:    c.Name,
		url:     c.URL,
		secret:  bytes.Clone(c.Secret),
		timeout: timeout,
		client:  client,
		now:     time.Now,
	}, nil
}

// checkURL accepts an absolute https URL, or an http one whose host is a
// loopback address. Its errors never quote the URL, which may hold a token.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("malformed")
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials in the url are not accepted")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("plain http is accepted only on a loopback address: use https")
	default:
		return fmt.Errorf("scheme %q: use https", u.Scheme)
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name returns the connector's name.
func (c *Connector) Name() string { return c.name }

// Grant calls the receiver with action grant. The message and facts of a
// JSON response become the Granted. An error is an *Error, marked
// permanent when retrying cannot fix it.
func (c *Connector) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	body, err := c.call(ctx, "grant", a)
	if err != nil {
		return workflow.Granted{}, err
	}
	return body.granted(), nil
}

// Revoke calls the receiver with action revoke; its response's body is
// ignored. Errors are as for Grant.
func (c *Connector) Revoke(ctx context.Context, a workflow.Access) error {
	_, err := c.call(ctx, "revoke", a)
	return err
}

// request is the body of a call.
type request struct {
	Action      string            `json:"action"`
	GrantID     string            `json:"grant_id"`
	RequestID   string            `json:"request_id"`
	User        user              `json:"user"`
	Entitlement string            `json:"entitlement"`
	ExpiresAt   *string           `json:"expires_at"`
	Params      map[string]string `json:"params"`
}

type user struct {
	SlackID string `json:"slack_id"`
	Email   string `json:"email"`
}

// response is the optional JSON body of a successful grant.
type response struct {
	Message string            `json:"message"`
	Facts   map[string]string `json:"facts"`
}

func (r *response) granted() workflow.Granted {
	if r == nil {
		return workflow.Granted{}
	}
	return workflow.Granted{Message: strings.TrimSpace(r.Message), Facts: r.Facts}
}

// call sends one request for action on a, and returns the parsed body of
// a successful grant's JSON response, or nil.
func (c *Connector) call(ctx context.Context, action string, a workflow.Access) (*response, error) {
	payload, err := json.Marshal(body(action, a))
	if err != nil {
		return nil, workflow.Permanent(c.failure(action, 0, err))
	}
	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(runCtx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return nil, workflow.Permanent(c.failure(action, 0, errors.New("cannot build the request")))
	}
	timestamp := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "latch")
	req.Header.Set(HeaderTimestamp, timestamp)
	req.Header.Set(HeaderSignature, Sign(c.secret, timestamp, payload))
	req.Header.Set(HeaderIdempotencyKey, a.GrantID+":"+action)

	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.abandoned(ctx, runCtx, action, 0, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, c.abandoned(ctx, runCtx, action, resp.StatusCode, err)
	}

	status := resp.StatusCode
	if status < 200 || status > 299 {
		e := c.failure(action, status, nil)
		e.Body = tail(data)
		if permanentStatus(status) {
			return nil, workflow.Permanent(e)
		}
		return nil, e
	}
	if action != "grant" || !isJSON(resp.Header.Get("Content-Type")) || len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if len(data) > MaxResponse {
		return nil, workflow.Permanent(c.failure(action, status, fmt.Errorf("response body is longer than %d bytes", MaxResponse)))
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil {
		// The error may quote the body, which may hold the message.
		return nil, workflow.Permanent(c.failure(action, status, errors.New("response body is not the JSON object expected")))
	}
	return &r, nil
}

func body(action string, a workflow.Access) request {
	var expires *string
	if !a.ExpiresAt.IsZero() {
		s := a.ExpiresAt.UTC().Format(time.RFC3339)
		expires = &s
	}
	params := a.Params
	if params == nil {
		params = map[string]string{}
	}
	return request{
		Action:      action,
		GrantID:     a.GrantID,
		RequestID:   a.RequestID,
		User:        user{SlackID: a.User.SlackID, Email: a.User.Email},
		Entitlement: a.Entitlement,
		ExpiresAt:   expires,
		Params:      params,
	}
}

// abandoned returns the transient error for a call that failed before a
// whole response was read.
func (c *Connector) abandoned(ctx, runCtx context.Context, action string, status int, err error) *Error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case runCtx.Err() != nil:
		e := c.failure(action, status, context.DeadlineExceeded)
		e.TimedOut = true
		return e
	default:
		// A *url.Error quotes the URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
	}
	return c.failure(action, status, err)
}

func (c *Connector) failure(action string, status int, err error) *Error {
	return &Error{Connector: c.name, Action: action, Status: status, Err: err, timeout: c.timeout}
}

// permanentStatus reports whether a failed call's status means that
// retrying cannot help.
func permanentStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return status < 500
}

func isJSON(contentType string) bool {
	t, _, err := mime.ParseMediaType(contentType)
	return err == nil && (t == "application/json" || strings.HasSuffix(t, "+json"))
}

// tail returns the last MaxBodyTail bytes of b at most, as valid UTF-8,
// trimmed.
func tail(b []byte) string {
	if len(b) > MaxBodyTail {
		b = b[len(b)-MaxBodyTail:]
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}
