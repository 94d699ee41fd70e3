package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Results of a Slack Web API call, as the result label names them.
const (
	ResultOK             = "ok"
	ResultError          = "error"
	ResultRateLimited    = "rate_limited"
	ResultHTTPError      = "http_error"
	ResultTransportError = "transport_error"
)

// peekSize is how much of a Slack answer is read ahead to find its "ok"
// and "error" fields, which Slack puts first.
const peekSize = 1024

// RoundTripper returns next (http.DefaultTransport if nil) counting Slack
// Web API calls in latch_slack_api_calls_total by method (the last segment
// of the URL path, such as chat.postMessage) and result. Slack reports most
// errors with HTTP 200 and {"ok":false,"error":"…"}: for those, the start of
// the body is read ahead to find the two fields, and the caller still reads
// the whole body as sent. Rate limits (HTTP 429 or error ratelimited) are
// also counted in latch_slack_api_rate_limited_total. Nothing of the request
// (its token included) is recorded.
func (m *Metrics) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &slackTransport{m: m, next: next}
}

type slackTransport struct {
	m    *Metrics
	next http.RoundTripper
}

func (t *slackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := slackMethod(req.URL.Path)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.m.slackCall(method, ResultTransportError, "transport")
		return resp, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		t.m.slackRateLimited.WithLabelValues(method).Inc()
		t.m.slackCall(method, ResultRateLimited, "http_429")
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		t.m.slackCall(method, ResultHTTPError, "http_"+strconv.Itoa(resp.StatusCode))
	case req.Method == http.MethodHead || resp.Body == nil || resp.Body == http.NoBody:
		t.m.slackCall(method, ResultOK, "")
	default:
		ok, code := peek(resp)
		if ok {
			t.m.slackCall(method, ResultOK, "")
			break
		}
		if code == "ratelimited" {
			t.m.slackRateLimited.WithLabelValues(method).Inc()
		}
		t.m.slackCall(method, ResultError, code)
	}
	return resp, nil
}

// slackMethod returns the Web API method a URL path names, such as
// chat.postMessage, or "other" for a path whose last segment does not look
// like one (an upload URL), so that the method label stays a short list.
func slackMethod(p string) string {
	m := path.Base(p)
	if len(m) > maxLabel || !strings.Contains(m, ".") || strings.HasPrefix(m, ".") || strings.HasSuffix(m, ".") ||
		strings.IndexFunc(m, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.')
		}) >= 0 {
		return "other"
	}
	return m
}

// slackCall counts one call, and its error if it has one.
func (m *Metrics) slackCall(method, result, errCode string) {
	m.slackCalls.WithLabelValues(method, result).Inc()
	if result != ResultOK {
		m.slackErrors.WithLabelValues(method, labelValue(errCode)).Inc()
	}
}

// peek reads the start of resp's body and finds Slack's "ok" and "error"
// fields in it, then puts back what it read so that the caller reads the
// body whole. A body whose start holds no "ok" field counts as ok: it is
// not an answer in Slack's usual form, and the caller will say why it
// cannot use it.
func peek(resp *http.Response) (ok bool, code string) {
	head := make([]byte, peekSize)
	n, err := io.ReadFull(resp.Body, head)
	head = head[:n]
	var rest io.Reader = resp.Body
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		rest = eofReader{}
	case err != nil:
		rest = errReader{err}
	}
	resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(head), rest), Closer: resp.Body}
	okField, code, found := okAndError(head)
	if !found {
		return true, ""
	}
	return okField, code
}

// okAndError reads the top-level "ok" and "error" fields of the JSON object
// that starts in b, which may be cut short; found says whether "ok" was.
func okAndError(b []byte) (ok bool, code string, found bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false, "", false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := tok.(string)
		var err2 error
		switch key {
		case "ok":
			err2 = dec.Decode(&ok)
			found = err2 == nil
		case "error":
			err2 = dec.Decode(&code)
		default:
			var skip json.RawMessage
			err2 = dec.Decode(&skip)
		}
		if err2 != nil || (found && (ok || code != "")) {
			break
		}
	}
	return ok, code, found
}

// peekedBody is a response body whose start was read ahead.
type peekedBody struct {
	io.Reader
	io.Closer
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// errReader returns, after the part read ahead, the error that stopped
// the read ahead.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
