package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/latchhq/latch/workflow"
)

// fullDiskEnv makes the test binary, run again by TestFullDisk, fill a
// store up to a file size limit.
const fullDiskEnv = "LATCH_STORE_FULL_DISK"

// TestFullDisk fills a store until the kernel refuses to let its file
// grow (a file size limit set on a child process stands in for a full
// disk: the writes fail with EFBIG as they would with ENOSPC), and checks
// that the failure says what to do, that the store refuses every write
// after it, and that the file, reopened without the limit, holds every
// event whose append returned and verifies.
func TestFullDisk(t *testing.T) {
	if path := os.Getenv(fullDiskEnv); path != "" {
		fillUntilFull(path)
		return
	}
	path := t.TempDir() + "/latch.db"
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDisk$", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the filling process: %v\n%s", err, out)
	}
	var acked []uint64
	var failure string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "acked "):
			seq, err := strconv.ParseUint(strings.TrimPrefix(line, "acked "), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, seq)
		case strings.HasPrefix(line, "failed "):
			failure = strings.TrimPrefix(line, "failed ")
		case strings.HasPrefix(line, "problem "):
			t.Error(strings.TrimPrefix(line, "problem "))
		}
	}
	if failure == "" || len(acked) < 100 {
		t.Fatalf("the store did not fill up after %d appends:\n%s", len(acked), out)
	}
	for _, want := range []string{"store failed", "the audit log cannot be written", "file too large", "size limit", "restart latch"} {
		if !strings.Contains(failure, want) {
			t.Errorf("the failure %q does not say %q", failure, want)
		}
	}

	// With room again, the file opens, verifies and holds every event
	// whose append returned.
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen the filled store: %v", err)
	}
	defer s.Close()
	r, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify the filled store: %v", err)
	}
	last := acked[len(acked)-1]
	if r.Count < last {
		t.Fatalf("the log holds %d events, but event %d was acknowledged", r.Count, last)
	}
	for _, seq := range acked {
		e, ok, err := s.Get(seq)
		if err != nil || !ok || e.Kind != "fill.event" {
			t.Fatalf("acknowledged event %d: %v %v %v", seq, e.Kind, ok, err)
		}
	}
	if got, err := s.Append(context.Background(), ev("fill.after", "", "", "")); err != nil || got[0].Seq != r.Count+1 {
		t.Errorf("append after reopening = %v, %v; want event %d", got, err, r.Count+1)
	}
	t.Logf("%d events acknowledged before the file could not grow; %d in the log", len(acked), r.Count)
}

// fillUntilFull is the child of TestFullDisk: it appends until the file
// cannot grow and prints what happened.
func fillUntilFull(path string) {
	problem := func(format string, args ...any) { fmt.Printf("problem "+format+"\n", args...) }
	var fails []error
	s, err := Open(path, Options{OnFail: func(err error) { fails = append(fails, err) }})
	if err != nil {
		problem("open: %v", err)
		return
	}
	defer s.Close()
	ctx := context.Background()
	payload := fmt.Sprintf(`{"fill":%q}`, strings.Repeat("x", 4000))
	for range 100 {
		got, err := s.Append(ctx, ev("fill.event", "", "", payload))
		if err != nil {
			problem("append before the limit: %v", err)
			return
		}
		fmt.Printf("acked %d\n", got[0].Seq)
	}
	st, err := os.Stat(path)
	if err != nil {
		problem("stat: %v", err)
		return
	}
	// The file may not grow past its size now: the next time bbolt needs
	// more room, its writes fail as on a full disk.
	limit := uint64(st.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		problem("setrlimit: %v", err)
		return
	}
	for i := 0; ; i++ {
		got, err := s.Append(ctx, ev("fill.event", "", "", payload))
		if err == nil {
			fmt.Printf("acked %d\n", got[0].Seq)
			if i > 100000 {
				problem("the store never filled up")
				return
			}
			continue
		}
		fmt.Printf("failed %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
		if !errors.Is(err, ErrFailed) || !errors.Is(err, workflow.ErrUnrecorded) || !errors.Is(err, syscall.EFBIG) && !strings.Contains(err.Error(), "file too large") {
			problem("the error %v is not ErrFailed, ErrUnrecorded and EFBIG", err)
		}
		break
	}
	if _, err := s.Append(ctx, ev("fill.event", "", "", "")); !errors.Is(err, ErrFailed) {
		problem("append after the failure = %v, want ErrFailed", err)
	}
	if err := s.SetCursor("sink", 1); !errors.Is(err, ErrFailed) {
		problem("SetCursor after the failure = %v, want ErrFailed", err)
	}
	if err := s.Err(); !errors.Is(err, ErrFailed) {
		problem("Err after the failure = %v, want ErrFailed", err)
	}
	if len(fails) != 1 {
		problem("OnFail was called %d times, want once", len(fails))
	}
	// Reads still work, for the people who must look at what happened.
	if _, ok, err := s.Get(1); err != nil || !ok {
		problem("Get after the failure: %v %v", ok, err)
	}
}

func TestReadOnlyFileSystemSaysWhatToDo(t *testing.T) {
	var told []error
	s, _ := openTemp(t, Options{OnFail: func(err error) { told = append(told, err) }})
	ctx := context.Background()
	if err := s.Err(); err != nil {
		t.Fatalf("Err on a new store = %v", err)
	}
	s.failCommit = func() error { return &os.PathError{Op: "write", Path: "latch.db", Err: syscall.EROFS} }
	_, err := s.Append(ctx, ev("a.b", "", "", ""))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, workflow.ErrUnrecorded) {
		t.Fatalf("Append on a read-only file system = %v, want ErrFailed matching ErrUnrecorded", err)
	}
	if !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), "make it writable, then restart latch") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	if len(told) != 1 || told[0].Error() != err.Error() {
		t.Errorf("OnFail told %v, want the failure once", told)
	}
	if got := s.Err(); got == nil || got.Error() != err.Error() {
		t.Errorf("Err = %v, want %v", got, err)
	}
}

func TestOpenSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir+"/missing/latch.db", Options{})
	if err == nil || !strings.Contains(err.Error(), "the directory does not exist: create it") {
		t.Errorf("Open in a missing directory = %v, want it to say to create the directory", err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := dir + "/ro"
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ro+"/latch.db", Options{})
		if err == nil || !strings.Contains(err.Error(), "writable by the user latch runs as") {
			t.Errorf("Open in a read-only directory = %v, want it to say to make it writable", err)
		}
	}
}
