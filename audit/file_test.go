package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// fileSeqs reads the seq of every JSON line of a file.
func fileSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e.Seq)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, got)
	}
}

func TestFileSinkFollowsRotation(t *testing.T) {
	tests := []struct {
		name   string
		rotate func(t *testing.T, path string) (old string)
	}{
		{"moved away", func(t *testing.T, path string) string {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			return path + ".1"
		}},
		{"moved away and a new file created", func(t *testing.T, path string) string {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return path + ".1"
		}},
		{"copied and truncated", func(t *testing.T, path string) string {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".1", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			return path + ".1"
		}},
		{"removed", func(t *testing.T, path string) string {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			events := appendN(t, s, 6)
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			sink, err := NewFileSink(FileConfig{Name: "local", Path: path})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			if err := sink.Deliver(context.Background(), events[:3]); err != nil {
				t.Fatal(err)
			}
			old := tt.rotate(t, path)
			if err := sink.Deliver(context.Background(), events[3:]); err != nil {
				t.Fatal(err)
			}
			if got, want := fileSeqs(t, path), []uint64{4, 5, 6}; !slices.Equal(got, want) {
				t.Errorf("the file at the path holds %v, want %v", got, want)
			}
			checkMode(t, path)
			if old != "" {
				if got, want := fileSeqs(t, old), []uint64{1, 2, 3}; !slices.Equal(got, want) {
					t.Errorf("the rotated file holds %v, want %v", got, want)
				}
			}
		})
	}
}

// notify wraps a sink and reports the last seq of every batch it accepted.
type notify struct {
	Sink
	done chan uint64
}

func (n notify) Deliver(ctx context.Context, events []workflow.Event) error {
	if err := n.Sink.Deliver(ctx, events); err != nil {
		return err
	}
	n.done <- events[len(events)-1].Seq
	return nil
}

// waitSeq reads batches from ch until one ends at seq.
func waitSeq(t *testing.T, ch <-chan uint64, seq uint64) {
	t.Helper()
	for last := uint64(0); last < seq; {
		last = within(t, ch, "a batch")
	}
}

func TestFileSinkRotationMidStream(t *testing.T) {
	s, _ := openStore(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	file, err := NewFileSink(FileConfig{Name: "local", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sink := notify{Sink: file, done: make(chan uint64, 16)}
	stop := runStream(t, NewStream(s, sink, fastRetry))

	appendN(t, s, 7)
	waitSeq(t, sink.done, 7)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 5)
	waitSeq(t, sink.done, 12)
	stop()

	got := append(fileSeqs(t, path+".1"), fileSeqs(t, path)...)
	if want := span(1, 12); !slices.Equal(got, want) {
		t.Errorf("the two files hold %v, want %v", got, want)
	}
	if got := fileSeqs(t, path); got[0] != 8 {
		t.Errorf("the new file starts at event %d, want 8", got[0])
	}
}

func TestFileSinkWritesTheExportShape(t *testing.T) {
	s, _ := openStore(t)
	events := appendN(t, s, 5)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := NewFileSink(FileConfig{Name: "local", Path: path, Format: FormatLatch})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.Deliver(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := s.Export(context.Background(), &want, store.Filter{}, store.FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file sink wrote\n%s\nlatch audit export writes\n%s", got, want.Bytes())
	}
}

func TestFileSinkErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, err := NewFileSink(FileConfig{Name: "local", Path: filepath.Join(dir, "audit.jsonl")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewFileSink in a missing directory = %v, want fs.ErrNotExist", err)
	}
	if err != nil && !strings.Contains(err.Error(), dir) {
		t.Errorf("NewFileSink in a missing directory = %v, want it to name %s", err, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewFileSink created the directory %s", dir)
	}

	_, err = NewFileSink(FileConfig{Name: "local", Path: filepath.Join(t.TempDir(), "a"), Format: "cef"})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("NewFileSink with format cef = %v, want ErrFormat", err)
	}
	_, err = NewFileSink(FileConfig{Path: filepath.Join(t.TempDir(), "a")})
	if !errors.Is(err, ErrNoName) {
		t.Errorf("NewFileSink without a name = %v, want ErrNoName", err)
	}

	// The directory goes away after the sink started: the batch fails and
	// is delivered once the directory is back.
	s, _ := openStore(t)
	events := appendN(t, s, 2)
	dir = filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	sink, err := NewFileSink(FileConfig{Name: "local", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(context.Background(), events); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Deliver with the directory gone = %v, want fs.ErrNotExist", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(context.Background(), events); err != nil {
		t.Fatalf("Deliver with the directory back = %v", err)
	}
	if got, want := fileSeqs(t, path), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("file holds %v, want %v", got, want)
	}
}
