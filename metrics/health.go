package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/store"
)

// ErrNotReady is what Up's checks return while their condition is false.
var ErrNotReady = errors.New("not ready")

// A Check says whether one part of latch can do its work: nil if it can.
// It must be cheap and return soon after ctx ends.
type Check func(ctx context.Context) error

// Up turns a condition, such as the bot's Connected, into a Check.
func Up(up func() bool) Check {
	return func(context.Context) error {
		if !up() {
			return ErrNotReady
		}
		return nil
	}
}

// StoreOpen is a Check that the store still answers reads and takes
// writes: it reads the head event, which costs one read transaction, and
// asks the store whether a write failed. A store that stopped taking
// writes stays so until it is reopened, so this check belongs with the
// liveness checks (AddLive): a restart continues from what is on disk.
func StoreOpen(s *store.Store) Check {
	return func(context.Context) error {
		if err := s.Err(); err != nil {
			return err
		}
		seq, _ := s.Head()
		if _, _, err := s.Get(seq); err != nil {
			return fmt.Errorf("read the store: %w", err)
		}
		return nil
	}
}

// checkTimeout bounds one readiness probe.
const checkTimeout = 2 * time.Second

// Health answers liveness and readiness probes: /healthz while the process
// can go on without a restart, /readyz when every check passes. Its
// methods are safe for concurrent use.
type Health struct {
	mu     sync.RWMutex
	names  []string
	checks map[string]Check
	live   []string // the names whose checks /healthz runs too
}

// NewHealth returns a Health with no checks (always ready).
func NewHealth() *Health {
	return &Health{checks: make(map[string]Check)}
}

// AddLive registers a check that /healthz runs as well as /readyz: one
// whose failure only a restart mends, so that a liveness probe restarts
// latch.
func (h *Health) AddLive(name string, check Check) {
	h.Add(name, check)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Contains(h.live, name) {
		h.live = append(h.live, name)
	}
}

// Add registers a readiness check under a name, which a failing probe
// reports; a check added again under the same name replaces the first.
// Names should be short words such as store, slack or engine.
func (h *Health) Add(name string, check Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.checks[name]; !ok {
		h.names = append(h.names, name)
	}
	h.checks[name] = check
}

// Failing runs every check and returns the names of those that fail, in
// the order they were added.
func (h *Health) Failing(ctx context.Context) []string {
	h.mu.RLock()
	names := append([]string(nil), h.names...)
	h.mu.RUnlock()
	return h.failing(ctx, names)
}

// failing runs the checks of names and returns those that fail.
func (h *Health) failing(ctx context.Context, names []string) []string {
	h.mu.RLock()
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = h.checks[n]
	}
	h.mu.RUnlock()
	var failing []string
	for i, c := range checks {
		if c(ctx) != nil {
			failing = append(failing, names[i])
		}
	}
	return failing
}

// Handler serves GET /healthz, 200 "ok" while every liveness check (see
// AddLive) passes, and GET /readyz, 200 "ready" when every check passes;
// otherwise 503 naming each check that fails, one a line. The body names
// checks only: a check's error, which may say more than a probe should,
// is not shown.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	probe := func(live bool, ok, notOK string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			h.mu.RLock()
			names := slices.Clone(h.names)
			if live {
				names = slices.Clone(h.live)
			}
			h.mu.RUnlock()
			failing := h.failing(ctx, names)
			if len(failing) == 0 {
				plain(w, http.StatusOK, ok+"\n")
				return
			}
			var b strings.Builder
			b.WriteString(notOK + "\n")
			for _, name := range failing {
				b.WriteString("failing: " + name + "\n")
			}
			plain(w, http.StatusServiceUnavailable, b.String())
		}
	}
	mux.HandleFunc("GET /healthz", probe(true, "ok", "not live"))
	mux.HandleFunc("GET /readyz", probe(false, "ready", "not ready"))
	return mux
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
