package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/latchhq/latch/workflow"
)

// FileConfig configures a FileSink.
type FileConfig struct {
	Name     string   // the sink's name
	Path     string   // the file events are appended to; its directory must exist
	Format   Format   // FormatLatch (the default) or FormatOCSF
	Requests Requests // for FormatOCSF; may be nil
}

// FileSink appends events as JSON lines to a file, created with mode 0600,
// and fsyncs every batch. Before each batch it checks that the path still
// names the file it has open and reopens the path if not, so that external
// log rotation (move the file away, then expect the writer to start a new
// one) loses nothing.
type FileSink struct {
	name string
	path string
	enc  encoder

	mu   sync.Mutex
	f    *os.File    // nil when closed or not yet reopened
	info os.FileInfo // of f
}

// NewFileSink opens the file of cfg for appending, creating it if need be.
// A missing directory is an error that names it.
func NewFileSink(cfg FileConfig) (*FileSink, error) {
	if cfg.Name == "" {
		return nil, ErrNoName
	}
	enc, err := newEncoder(cfg.Format, cfg.Requests)
	if err != nil {
		return nil, fmt.Errorf("audit sink %s: %w", cfg.Name, err)
	}
	s := &FileSink{name: cfg.Name, path: cfg.Path, enc: enc}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name returns the sink's name.
func (s *FileSink) Name() string { return s.name }

// Path returns the file's path.
func (s *FileSink) Path() string { return s.path }

// Deliver appends events to the file and fsyncs it. If writing fails part
// way, what was written of the batch is cut off again where possible.
func (s *FileSink) Deliver(_ context.Context, events []workflow.Event) error {
	if len(events) == 0 {
		return nil
	}
	body, err := s.enc.lines(events)
	if err != nil {
		return fmt.Errorf("audit sink %s: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reopenIfMoved(); err != nil {
		return err
	}
	info, err := s.f.Stat()
	if err != nil {
		return s.broken(fmt.Errorf("audit sink %s: %w", s.name, err))
	}
	if _, err := s.f.Write(body); err != nil {
		_ = s.f.Truncate(info.Size())
		return s.broken(fmt.Errorf("audit sink %s: write %s: %w", s.name, s.path, err))
	}
	if err := s.f.Sync(); err != nil {
		_ = s.f.Truncate(info.Size())
		return s.broken(fmt.Errorf("audit sink %s: sync %s: %w", s.name, s.path, err))
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f, s.info = nil, nil
	return err
}

// broken closes the file after a failed write, so that the next batch
// opens the path afresh, and returns err.
func (s *FileSink) broken(err error) error {
	if s.f != nil {
		s.f.Close()
		s.f, s.info = nil, nil
	}
	return err
}

// reopenIfMoved makes sure that the open file is the one the path names.
func (s *FileSink) reopenIfMoved() error {
	if s.f != nil {
		cur, err := os.Stat(s.path)
		if err == nil && os.SameFile(cur, s.info) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit sink %s: %w", s.name, err)
		}
		s.f.Close()
		s.f, s.info = nil, nil
	}
	return s.open()
}

// open opens the path for appending, creating the file with mode 0600.
func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		dir := filepath.Dir(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit sink %s: directory %s does not exist; create it, writable by latch only: %w", s.name, dir, err)
		}
		return fmt.Errorf("audit sink %s: %w", s.name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit sink %s: %w", s.name, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("audit sink %s: %s is not a regular file", s.name, s.path)
	}
	s.f, s.info = f, info
	return nil
}
