package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// ShutdownCheckpointTimeout bounds the checkpoint RunCheckpoints publishes
// at shutdown.
const ShutdownCheckpointTimeout = 5 * time.Second

// ErrNoCheckpoint is returned by ReadCheckpoint for a file that holds none.
var ErrNoCheckpoint = errors.New("no checkpoint in file")

// RunCheckpoints signs a checkpoint of s's head with priv every period of
// clock and hands it to publish, until ctx ends; then it signs and
// publishes one more, within ShutdownCheckpointTimeout, and returns ctx's
// error, or the error of that last publish. A publish that fails does not
// stop the loop: publish should report its own failures, and the next
// period brings a new checkpoint.
func RunCheckpoints(ctx context.Context, s *store.Store, priv ed25519.PrivateKey, every time.Duration, clock workflow.Clock, publish func(context.Context, Checkpoint) error) error {
	if every <= 0 {
		return fmt.Errorf("checkpoints: period %s is not positive", every)
	}
	sign := func() Checkpoint {
		events, head := s.Head()
		return Sign(priv, events, head, clock.Now())
	}
	t := clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownCheckpointTimeout)
			defer cancel()
			if err := publish(fctx, sign()); err != nil {
				return fmt.Errorf("checkpoint at shutdown: %w", err)
			}
			return ctx.Err()
		case <-t.C():
			_ = publish(ctx, sign())
		}
	}
}

// AppendCheckpoint appends cp as one JSON line to the file at path,
// creating it with mode 0600, and syncs it.
func AppendCheckpoint(path string, cp Checkpoint) error {
	line, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("append checkpoint: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("append checkpoint: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append checkpoint to %s: %w", path, err)
	}
	return nil
}

// maxCheckpointTail is how much of the end of a file ReadCheckpoint reads.
const maxCheckpointTail = 64 << 10

// ReadCheckpoint reads the checkpoint in a file: the last line of a file of
// JSON lines, as AppendCheckpoint writes, or a file holding one JSON
// object. It checks the form of the checkpoint, not its signature.
func ReadCheckpoint(path string) (Checkpoint, error) {
	var cp Checkpoint
	f, err := os.Open(path)
	if err != nil {
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	off := max(info.Size()-maxCheckpointTail, 0)
	data, err := readAll(io.NewSectionReader(f, off, info.Size()-off), maxCheckpointTail)
	if err != nil {
		return cp, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	data = bytes.TrimSpace(data)
	if off == 0 && json.Unmarshal(data, &cp) == nil {
		return checked(path, cp)
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = bytes.TrimSpace(data[i+1:])
	} else if off > 0 {
		return cp, fmt.Errorf("read checkpoint %s: its last line is longer than %d bytes", path, maxCheckpointTail)
	}
	if len(data) == 0 {
		return cp, fmt.Errorf("read checkpoint %s: %w", path, ErrNoCheckpoint)
	}
	cp = Checkpoint{}
	if err := json.Unmarshal(data, &cp); err != nil {
		return cp, fmt.Errorf("read checkpoint %s: last line: %w", path, err)
	}
	return checked(path, cp)
}

// checked returns cp if it has every field.
func checked(path string, cp Checkpoint) (Checkpoint, error) {
	if cp.Key == "" || cp.Signature == "" || cp.Head == "" || cp.Time.IsZero() {
		return cp, fmt.Errorf("read checkpoint %s: %w (want a JSON object with events, head, time, key and signature)", path, ErrNoCheckpoint)
	}
	return cp, nil
}

// readAll reads r to its end, failing past limit bytes.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is larger than %d bytes", limit)
	}
	return data, nil
}

// ErrRollback means a file of checkpoints goes back in time: a later line
// holds fewer events, or an earlier time, than one before it — the mark of
// an older checkpoint copied to the end to match a log cut back to it.
var ErrRollback = errors.New("checkpoints go back")

// ReadCheckpoints reads every checkpoint of a file that AppendCheckpoint
// wrote (one JSON object a line; blank lines are skipped), or a file of a
// single object, in file order.
func ReadCheckpoints(path string) ([]Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	var one Checkpoint
	if trimmed := bytes.TrimSpace(data); json.Unmarshal(trimmed, &one) == nil {
		cp, err := checked(path, one)
		if err != nil {
			return nil, err
		}
		return []Checkpoint{cp}, nil
	}
	var out []Checkpoint
	for i, line := range bytes.Split(data, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		var cp Checkpoint
		if err := json.Unmarshal(line, &cp); err != nil {
			return nil, fmt.Errorf("read checkpoints %s: line %d: %w", path, i+1, err)
		}
		if cp, err = checked(path, cp); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, cp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read checkpoints %s: %w", path, ErrNoCheckpoint)
	}
	return out, nil
}

// CheckAll checks a log against a file's worth of checkpoints: each is
// signed by pub, none goes back in events or time from the one before,
// and the log holds the newest (Check). A rollback of the file to an older
// checkpoint, matched by a log cut back to it, is caught.
func CheckAll(ctx context.Context, s *store.Store, cps []Checkpoint, pub ed25519.PublicKey) (Checkpoint, error) {
	if len(cps) == 0 {
		return Checkpoint{}, ErrNoCheckpoint
	}
	for i, cp := range cps {
		if err := cp.Verify(pub); err != nil {
			return cp, fmt.Errorf("checkpoint %d of %d: %w", i+1, len(cps), err)
		}
		if i > 0 && (cp.Events < cps[i-1].Events || cp.Time.Before(cps[i-1].Time)) {
			return cp, fmt.Errorf("%w: checkpoint %d of %d (%d events at %s) follows one of %d events at %s",
				ErrRollback, i+1, len(cps), cp.Events, cp.Time.UTC().Format(time.RFC3339), cps[i-1].Events, cps[i-1].Time.UTC().Format(time.RFC3339))
		}
	}
	last := cps[len(cps)-1]
	return last, Check(ctx, s, last, pub)
}
