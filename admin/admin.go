package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Actor is the actor the API's commands are recorded with in the audit
// log; a revoke that names its operator is recorded as Actor + ":" + the
// operator ("api:jane"). The engine must count both among its admins
// (workflow.Config.Admins: "api" and "api:") for revokes through the API
// to be allowed.
const Actor = "api"

// OperatorActor returns the actor a command through the API is recorded
// with: Actor, or Actor:operator when the operator said who they are.
func OperatorActor(operator string) string {
	if operator == "" {
		return Actor
	}
	return Actor + ":" + operator
}

// ValidOperator reports what is wrong with an operator's name, if
// anything: 1 to 64 letters, digits and . _ @ - (a login or an email).
func ValidOperator(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("operator: give 1 to 64 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return fmt.Errorf("operator: %q: use letters, digits and . _ @ - only (a login or an email)", name)
		}
	}
	return nil
}

// Defaults of Config.
const (
	// DefaultMaxWait bounds how long a revoke may wait for its outcome.
	DefaultMaxWait = 5 * time.Minute
)

// Engine is what the API needs from the workflow engine.
type Engine interface {
	Revoke(ctx context.Context, requestID, by, reason string) (workflow.Request, error)
}

// Config is what a Handler is made of.
type Config struct {
	// Store is the server's store, opened with the Requests projection.
	Store *store.Store
	// Engine revokes grants.
	Engine Engine
	// Token is the admin token callers must present. Empty refuses every
	// call. It is never logged.
	Token []byte
	// Clock tells the time left of grants (default the real clock).
	Clock workflow.Clock
	// Log records each call: method, path, status, duration, never the
	// token.
	Log zerolog.Logger
	// MaxWait bounds the wait parameter of a revoke (default
	// DefaultMaxWait).
	MaxWait time.Duration
}

// Handler serves the admin API under /api/. It is safe for concurrent use.
type Handler struct {
	store   *store.Store
	engine  Engine
	clock   workflow.Clock
	log     zerolog.Logger
	maxWait time.Duration
	// token is the SHA-256 of the configured token, so that comparisons
	// take the same time whatever the length of what is presented.
	token    [sha256.Size]byte
	hasToken bool
	mux      *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New returns the admin API handler. It panics if cfg has no Store or no
// Engine, which is a mistake in the program, not in its input.
func New(cfg Config) *Handler {
	if cfg.Store == nil || cfg.Engine == nil {
		panic("admin: Config.Store and Config.Engine are required")
	}
	h := &Handler{store: cfg.Store, engine: cfg.Engine, clock: cfg.Clock, log: cfg.Log, maxWait: cfg.MaxWait,
		hasToken: len(cfg.Token) > 0, token: sha256.Sum256(cfg.Token), mux: http.NewServeMux()}
	if h.clock == nil {
		h.clock = workflow.RealClock{}
	}
	if h.maxWait <= 0 {
		h.maxWait = DefaultMaxWait
	}
	h.mux.Handle("/api/v1/grants", only(http.MethodGet, h.grants))
	h.mux.Handle("/api/v1/grants/{id}/revoke", only(http.MethodPost, h.revoke))
	h.mux.Handle("/api/v1/requests/{id}", only(http.MethodGet, h.request))
	h.mux.Handle("/api/v1/audit", only(http.MethodGet, h.export))
	h.mux.Handle("/api/v1/audit/verify", only(http.MethodGet, h.verify))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	})
	return h
}

// Routes mounts the API on mux under /api/, beside whatever else mux
// serves (health checks, metrics).
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("/api/", h)
}

// ServeHTTP checks the token, then serves the call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if h.authorized(r.Header.Get("Authorization")) {
		h.mux.ServeHTTP(rec, r)
	} else {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="latch"`)
		writeError(rec, http.StatusUnauthorized, "unauthorized")
	}
	lvl := zerolog.InfoLevel
	switch {
	case rec.status == http.StatusUnauthorized:
		lvl = zerolog.WarnLevel
	case rec.status >= 500:
		lvl = zerolog.ErrorLevel
	}
	h.log.WithLevel(lvl).Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).
		Int64("bytes", rec.bytes).Dur("took", time.Since(start)).Str("remote", r.RemoteAddr).Msg("admin api")
}

// authorized reports whether an Authorization header carries the admin
// token as a bearer token. The token is compared in constant time, through
// its hash; without a configured token nothing is authorized.
func (h *Handler) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1 && h.hasToken
}

// only serves h for one method, and answers 405 to the others.
func only(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here; use %s", r.Method, method))
			return
		}
		h(w, r)
	})
}

// recorder remembers the status and size of an answer for the log. It
// unwraps for http.ResponseController, so flushing reaches the connection.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v as the JSON answer with a status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes {"error": msg} with a status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// internal answers 500 for an error the caller can do nothing about, and
// logs it; the answer does not repeat it.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the caller went away
	}
	h.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("admin api call failed")
	writeError(w, http.StatusInternalServerError, "internal error; the server log says more")
}

// badParam answers 400 for a query parameter, naming it.
func badParam(w http.ResponseWriter, name, format string, args ...any) {
	writeError(w, http.StatusBadRequest, name+": "+fmt.Sprintf(format, args...))
}

// checkParams answers 400 naming the first query parameter that is not
// one of known, and reports whether all were fine.
func checkParams(w http.ResponseWriter, q url.Values, known ...string) bool {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		if len(known) == 0 {
			badParam(w, k, "unknown parameter; this endpoint takes none")
		} else {
			badParam(w, k, "unknown parameter; use %s", strings.Join(known, ", "))
		}
		return false
	}
	return true
}

// single returns the one value of a query parameter, answering 400 if it
// is given more than once.
func single(w http.ResponseWriter, q url.Values, name string) (string, bool) {
	v := q[name]
	switch len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	badParam(w, name, "given %d times; give it once", len(v))
	return "", false
}
