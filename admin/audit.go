package admin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// ParseWhen reads a point in time given as RFC 3339, a date (midnight
// UTC), or a duration before now (90m, 24h, 7d); "" is the zero time. It
// is what `latch audit export --since/--until` and the API's since and
// until accept.
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if _, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return time.Time{}, fmt.Errorf("%q has no time zone: add Z for UTC (%sZ) or an offset such as +01:00", s, s)
	}
	d, err := workflow.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-01T09:00:00Z), a date (2026-11-01) or a duration ago (24h, 7d)", s)
	}
	return now.Add(-d), nil
}

// ExportFilter reads the filter of an export from since, until and kinds
// (each kind may hold several, separated by commas), as of now. Its errors
// name the parameter ("since", "until") that is wrong.
func ExportFilter(since, until string, kinds []string, now time.Time) (store.Filter, error) {
	var f store.Filter
	var err error
	if f.Since, err = ParseWhen(since, now); err != nil {
		return f, &ParamError{Name: "since", Err: err}
	}
	if f.Until, err = ParseWhen(until, now); err != nil {
		return f, &ParamError{Name: "until", Err: err}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, &ParamError{Name: "since", Err: fmt.Errorf("%s is not before until %s", since, until)}
	}
	for _, k := range kinds {
		for _, one := range strings.Split(k, ",") {
			if one = strings.TrimSpace(one); one != "" {
				f.Kinds = append(f.Kinds, one)
			}
		}
	}
	return f, nil
}

// ParamError is a parameter of a call, or a flag, that is wrong.
type ParamError struct {
	Name string // the parameter, as the API names it
	Err  error
}

func (e *ParamError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *ParamError) Unwrap() error { return e.Err }

func (h *Handler) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkParams(w, q, "since", "until", "kind", "format") {
		return
	}
	var since, until, format string
	for name, v := range map[string]*string{"since": &since, "until": &until, "format": &format} {
		var ok bool
		if *v, ok = single(w, q, name); !ok {
			return
		}
	}
	f, err := ExportFilter(since, until, q["kind"], h.clock.Now())
	var perr *ParamError
	if errors.As(err, &perr) {
		badParam(w, perr.Name, "%v", perr.Err)
		return
	}
	contentType := "application/x-ndjson"
	switch format {
	case "", store.FormatJSONL:
		format = store.FormatJSONL
	case store.FormatCSV:
		contentType = "text/csv; charset=utf-8"
	default:
		badParam(w, "format", "%q: use jsonl or csv", format)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if err := h.store.Export(r.Context(), fw, f, format); err != nil {
		// The status is sent already: cut the answer short, so that the
		// caller sees a broken transfer rather than a short export, also
		// when the server is shutting down.
		if r.Context().Err() == nil {
			h.log.Error().Err(err).Str("path", r.URL.Path).Msg("audit export failed midway")
		}
		panic(http.ErrAbortHandler)
	}
}

// flushWriter sends what is written to the caller at once: the export
// writes in blocks, and each block is flushed so that a long export
// streams instead of sitting in buffers.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}

// VerifyResult is the answer of GET /api/v1/audit/verify: 200 with OK,
// the number of events and the head hash (hex); or 409 with the error and
// the sequence number of the first event that does not match.
type VerifyResult struct {
	OK     bool   `json:"ok"`
	Events uint64 `json:"events"`
	Head   string `json:"head"`
	Error  string `json:"error"`
	Seq    uint64 `json:"seq"`
}

// verifyOK and verifyFailed are the two shapes of VerifyResult on the
// wire.
type (
	verifyOK struct {
		OK     bool   `json:"ok"`
		Events uint64 `json:"events"`
		Head   string `json:"head"`
	}
	verifyFailed struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Seq   uint64 `json:"seq"`
	}
)

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	rep, err := h.store.Verify(r.Context())
	var chain *store.ChainError
	switch {
	case errors.As(err, &chain):
		h.log.Warn().Uint64("seq", chain.Seq).Str("reason", chain.Reason).Msg("audit chain broken")
		writeJSON(w, http.StatusConflict, verifyFailed{Error: chain.Error(), Seq: chain.Seq})
	case err != nil:
		h.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, verifyOK{OK: true, Events: rep.Count, Head: hex.EncodeToString(rep.Head[:])})
	}
}
