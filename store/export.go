package store

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/latchhq/latch/workflow"
)

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// csvHeader names the CSV columns, in the order of the JSONL fields.
var csvHeader = []string{"seq", "id", "time", "actor", "kind", "request_id", "grant_id", "payload", "prev_hash", "hash"}

// cell keeps text that a spreadsheet would run as a formula (it starts with
// =, +, -, @, a tab or a carriage return) from being run, by putting a ' in
// front. Kinds and payloads (JSON objects) never start that way.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ExportedEvent is the shape of one event in an export: one JSON object per
// line in JSONL, one row in CSV (the payload as JSON text; an actor or id
// that a spreadsheet would take for a formula is prefixed with ').
type ExportedEvent struct {
	Seq       uint64          `json:"seq"`
	ID        string          `json:"id"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Kind      string          `json:"kind"`
	RequestID string          `json:"request_id"`
	GrantID   string          `json:"grant_id"`
	Payload   json.RawMessage `json:"payload"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// NewExportedEvent converts an event to its export shape.
func NewExportedEvent(e *workflow.Event) ExportedEvent {
	return ExportedEvent{
		Seq:       e.Seq,
		ID:        e.ID.String(),
		Time:      e.Time,
		Actor:     e.Actor,
		Kind:      e.Kind,
		RequestID: e.RequestID,
		GrantID:   e.GrantID,
		Payload:   e.Payload,
		PrevHash:  hex.EncodeToString(e.PrevHash[:]),
		Hash:      hex.EncodeToString(e.Hash[:]),
	}
}

// Export writes the events that match f to w in the given format, streaming:
// memory use does not grow with the log.
func (s *Store) Export(ctx context.Context, w io.Writer, f Filter, format string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var write func(*workflow.Event) error
	var cw *csv.Writer
	switch format {
	case FormatJSONL, "":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(e *workflow.Event) error { return enc.Encode(NewExportedEvent(e)) }
	case FormatCSV:
		cw = csv.NewWriter(bw)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		row := make([]string, len(csvHeader))
		write = func(e *workflow.Event) error {
			x := NewExportedEvent(e)
			row[0] = strconv.FormatUint(x.Seq, 10)
			row[1] = x.ID
			row[2] = x.Time.Format(time.RFC3339Nano)
			row[3], row[4], row[5], row[6] = cell(x.Actor), x.Kind, cell(x.RequestID), cell(x.GrantID)
			row[7], row[8], row[9] = string(x.Payload), x.PrevHash, x.Hash
			return cw.Write(row)
		}
	default:
		return fmt.Errorf("export: unknown format %q (use %s or %s)", format, FormatJSONL, FormatCSV)
	}
	if err := s.Scan(ctx, f, write); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if cw != nil {
		if cw.Flush(); cw.Error() != nil {
			return fmt.Errorf("export: %w", cw.Error())
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
