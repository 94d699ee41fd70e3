package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/latchhq/latch/connectors/webhook"
	"github.com/latchhq/latch/workflow"
)

// Headers of an HTTPSink request, besides webhook.HeaderTimestamp and
// webhook.HeaderSignature.
const (
	HeaderBatch   = "Latch-Batch" // "<first seq>-<last seq>"
	ContentTypeND = "application/x-ndjson"
)

// DefaultHTTPTimeout bounds one delivery of an HTTPSink.
const DefaultHTTPTimeout = 10 * time.Second

// ErrNoSecret is returned by NewHTTPSink without a signing secret.
var ErrNoSecret = errors.New("audit sink has no signing secret")

// HTTPConfig configures an HTTPSink.
type HTTPConfig struct {
	Name     string
	URL      string
	Secret   []byte        // the HMAC key batches are signed with
	Format   Format        // FormatLatch (the default) or FormatOCSF
	Requests Requests      // for FormatOCSF; may be nil
	Timeout  time.Duration // one delivery (default DefaultHTTPTimeout)
	// Client sends the requests (default: a client that follows no
	// redirects). Its Timeout, if any, applies besides Timeout.
	Client *http.Client
	// Now stamps the requests (default time.Now).
	Now func() time.Time
}

// HTTPSink POSTs batches of events as JSON lines, signed as the webhook
// connector signs its calls (see the package documentation). A 2xx answer
// accepts a batch.
type HTTPSink struct {
	name    string
	url     string
	host    string // for errors: the URL may carry a token
	secret  []byte
	enc     encoder
	timeout time.Duration
	client  *http.Client
	now     func() time.Time
}

// StatusError is the error of a delivery the receiver answered with a
// status other than 2xx.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("receiver answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// NewHTTPSink returns a sink that posts to cfg.URL.
func NewHTTPSink(cfg HTTPConfig) (*HTTPSink, error) {
	if cfg.Name == "" {
		return nil, ErrNoName
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("audit sink %s: url must be an absolute http(s) URL", cfg.Name)
	}
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("audit sink %s: %w", cfg.Name, ErrNoSecret)
	}
	enc, err := newEncoder(cfg.Format, cfg.Requests)
	if err != nil {
		return nil, fmt.Errorf("audit sink %s: %w", cfg.Name, err)
	}
	s := &HTTPSink{
		name:    cfg.Name,
		url:     cfg.URL,
		host:    u.Host,
		secret:  bytes.Clone(cfg.Secret),
		enc:     enc,
		timeout: cfg.Timeout,
		client:  cfg.Client,
		now:     cfg.Now,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultHTTPTimeout
	}
	if s.client == nil {
		s.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Name returns the sink's name.
func (s *HTTPSink) Name() string { return s.name }

// Deliver posts events as one request and waits for the answer, at most
// the configured timeout.
func (s *HTTPSink) Deliver(ctx context.Context, events []workflow.Event) error {
	if len(events) == 0 {
		return nil
	}
	first, last := events[0].Seq, events[len(events)-1].Seq
	body, err := s.enc.lines(events)
	if err != nil {
		return fmt.Errorf("audit sink %s: %w", s.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit sink %s: %w", s.name, err)
	}
	timestamp := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", ContentTypeND)
	req.Header.Set(webhook.HeaderTimestamp, timestamp)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(s.secret, timestamp, body))
	req.Header.Set(HeaderBatch, fmt.Sprintf("%d-%d", first, last))
	resp, err := s.client.Do(req)
	if err != nil {
		// The client's errors name the URL, whose path or query may hold a
		// receiver's token: name the host only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("audit sink %s: post events %d-%d to %s: %w", s.name, first, last, s.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("audit sink %s: post events %d-%d: %w", s.name, first, last, &StatusError{StatusCode: resp.StatusCode})
	}
	return nil
}
