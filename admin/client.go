package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchhq/latch/store"
)

// Errors of the client, matched by the *APIError of an answer.
var (
	// ErrUnauthorized means the server refused the token.
	ErrUnauthorized = errors.New("the server refused the admin token")
	// ErrNotFound means the server knows no such grant, request or
	// endpoint.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the server refused the command (the engine said
	// no, or there is nothing to revoke) or found the audit chain broken.
	ErrConflict = errors.New("refused")
	// ErrBadRequest means the server found a parameter wrong.
	ErrBadRequest = errors.New("bad request")
)

// APIError is an error answer of the API.
type APIError struct {
	Status  int    // the HTTP status
	Message string // the answer's error, as the server put it
}

func (e *APIError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "the server refused the admin token (401 unauthorized): check LATCH_ADMIN_TOKEN or --token-file"
	}
	return e.Message
}

// Is matches the error with the sentinel of its status.
func (e *APIError) Is(target error) bool {
	switch e.Status {
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusBadRequest:
		return target == ErrBadRequest
	}
	return false
}

// Client calls the admin API of a running latch.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the API at base (http://host:port), which
// presents token. hc may be nil for a client without a time limit (an
// export streams for as long as the log takes; calls are bounded by their
// context).
func NewClient(base string, token []byte, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not the URL of a latch server: give one such as http://127.0.0.1:8089", base)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the server URL %s://%s must have no user, query or fragment", u.Scheme, u.Host)
	}
	if len(token) == 0 {
		return nil, errors.New("no admin token: set LATCH_ADMIN_TOKEN or pass --token-file")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: string(token), http: hc}, nil
}

// do sends a call and returns the answer if it is 2xx; otherwise it reads
// the error and returns it as an *APIError. The caller closes the body.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	res, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	return nil, readError(res)
}

// send sends a call and returns the answer, whatever its status.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		// The error names the URL, which holds no secret.
		return nil, fmt.Errorf("ask the latch server: %w", err)
	}
	return res, nil
}

// readError turns an error answer into an *APIError.
func readError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e ErrorBody
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the server answered %s", res.Status)
		if text := strings.TrimSpace(string(b)); text != "" && len(text) < 200 {
			e.Error += ": " + text
		}
	}
	return &APIError{Status: res.StatusCode, Message: e.Error}
}

// getJSON calls and decodes a JSON answer into v.
func (c *Client) getJSON(ctx context.Context, method, path string, q url.Values, body, v any) error {
	res, err := c.do(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	return nil
}

// Grants lists grants as GET /api/v1/grants does: those of a person's
// requests if user is set, only those that still give access if active is.
func (c *Client) Grants(ctx context.Context, user string, active bool) ([]GrantRow, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	if active {
		q.Set("state", "active")
	}
	var list GrantList
	if err := c.getJSON(ctx, http.MethodGet, "/api/v1/grants", q, nil, &list); err != nil {
		return nil, err
	}
	return list.Grants, nil
}

// Request returns a request, by its id or the id of one of its grants,
// with its events.
func (c *Client) Request(ctx context.Context, id string) (RequestDetail, error) {
	var d RequestDetail
	err := c.getJSON(ctx, http.MethodGet, "/api/v1/requests/"+url.PathEscape(id), nil, nil, &d)
	return d, err
}

// Revoke revokes the request holding the grant id (or the request id),
// with a reason, and waits up to wait for the connectors' answer (no wait
// if zero).
func (c *Client) Revoke(ctx context.Context, id, reason, operator string, wait time.Duration) (RevokeResult, error) {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var res RevokeResult
	err := c.getJSON(ctx, http.MethodPost, "/api/v1/grants/"+url.PathEscape(id)+"/revoke", q, RevokeBody{Reason: reason, Operator: operator}, &res)
	return res, err
}

// Export streams the events that match f in a format (store.FormatJSONL
// or store.FormatCSV) to w, as the server's store.Export writes them. A
// transfer cut short is an error.
func (c *Client) Export(ctx context.Context, w io.Writer, f store.Filter, format string) error {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	for _, k := range f.Kinds {
		q.Add("kind", k)
	}
	if format != "" {
		q.Set("format", format)
	}
	res, err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(w, res.Body); err != nil {
		return fmt.Errorf("export cut short: %w", err)
	}
	return nil
}

// Verify asks the server to verify the audit chain. A broken chain is not
// an error: it is a VerifyResult with OK false, naming the first event
// that does not match.
func (c *Client) Verify(ctx context.Context) (VerifyResult, error) {
	var v VerifyResult
	res, err := c.send(ctx, http.MethodGet, "/api/v1/audit/verify", nil, nil)
	if err != nil {
		return v, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusConflict {
		return v, readError(res)
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		return v, fmt.Errorf("read the server's answer: %w", err)
	}
	if v.OK != (res.StatusCode == http.StatusOK) {
		return v, fmt.Errorf("the server answered %s with ok %v", res.Status, v.OK)
	}
	return v, nil
}
