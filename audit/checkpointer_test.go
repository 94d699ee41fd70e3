package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

// copyKey copies a testdata key into a temporary file with the given mode
// (git does not keep modes).
func copyKey(t *testing.T, name string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func TestKeysFromOpenSSL(t *testing.T) {
	priv, err := ReadPrivateKey(copyKey(t, "checkpoint.pem", 0o600))
	if err != nil {
		t.Fatalf("ReadPrivateKey: %v", err)
	}
	pub, err := ReadPublicKey(filepath.Join("testdata", "checkpoint.pub"))
	if err != nil {
		t.Fatalf("ReadPublicKey: %v", err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatalf("the public key does not belong to the private key")
	}
	// openssl pkey -in checkpoint.pem -pubout -outform DER | tail -c 32 | sha256sum
	if got, want := KeyID(pub), "cb2a55e9e33e47f7"; got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
	cp := Sign(priv, 1, workflow.Hash{9}, time.Unix(0, 0))
	if err := cp.Verify(pub); err != nil {
		t.Errorf("Verify with the openssl public key = %v", err)
	}
	pemBytes, err := PublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "checkpoint.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if string(pemBytes) != string(want) {
		t.Errorf("PublicKeyPEM = %s, want what openssl writes: %s", pemBytes, want)
	}
}

func TestReadPrivateKeyRefuses(t *testing.T) {
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		wantErr error
	}{
		{"world-readable", func(t *testing.T) string { return copyKey(t, "checkpoint.pem", 0o644) }, ErrKeyPermissions},
		{"world-writable", func(t *testing.T) string { return copyKey(t, "checkpoint.pem", 0o602) }, ErrKeyPermissions},
		{"a public key", func(t *testing.T) string { return copyKey(t, "checkpoint.pub", 0o600) }, ErrKeyFormat},
		{"not PEM", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, ErrKeyFormat},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.pem") }, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPrivateKey(tt.path(t))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadPrivateKey = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
	if _, err := ReadPublicKey(copyKey(t, "checkpoint.pem", 0o600)); !errors.Is(err, ErrKeyFormat) {
		t.Errorf("ReadPublicKey of a private key = %v, want ErrKeyFormat", err)
	}
}

func TestRunCheckpoints(t *testing.T) {
	pub, priv := newKey(t)
	s, _ := openStore(t)
	appendN(t, s, 3)
	clock := workflow.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))

	published := make(chan Checkpoint, 1)
	calls := 0
	publish := func(ctx context.Context, cp Checkpoint) error {
		published <- cp
		if calls++; calls == 1 {
			return errors.New("slack is down") // the next period still comes
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- RunCheckpoints(ctx, s, priv, 5*time.Minute, clock, publish) }()
	if err := clock.WaitTickers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	check := func(cp Checkpoint, events uint64, at time.Time) {
		t.Helper()
		if err := cp.Verify(pub); err != nil {
			t.Errorf("checkpoint does not verify: %v", err)
		}
		n, head := s.Head()
		if cp.Events != events || n != events {
			t.Errorf("checkpoint of %d events, want %d (the log has %d)", cp.Events, events, n)
		}
		if want := Sign(priv, n, head, at); cp.Head != want.Head || !cp.Time.Equal(at) {
			t.Errorf("checkpoint %+v, want head %s at %s", cp, want.Head, at)
		}
		if err := Check(context.Background(), s, cp, pub); err != nil {
			t.Errorf("Check = %v", err)
		}
	}

	select {
	case cp := <-published:
		t.Fatalf("published %+v before the first period", cp)
	default:
	}
	clock.Advance(5 * time.Minute)
	check(within(t, published, "the first checkpoint"), 3, clock.Now())

	appendN(t, s, 4)
	clock.Advance(5 * time.Minute)
	check(within(t, published, "the second checkpoint"), 7, clock.Now())

	appendN(t, s, 1)
	cancel()
	check(within(t, published, "the checkpoint at shutdown"), 8, clock.Now())
	if err := within(t, done, "RunCheckpoints to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("RunCheckpoints = %v, want context.Canceled", err)
	}
	if n := clock.Tickers(); n != 0 {
		t.Errorf("%d tickers left running", n)
	}
}

func TestRunCheckpointsReportsAFailedLastPublish(t *testing.T) {
	_, priv := newKey(t)
	s, _ := openStore(t)
	clock := workflow.NewFakeClock(time.Unix(0, 0))
	errDown := errors.New("slack is down")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var hadDeadline bool
	err := RunCheckpoints(ctx, s, priv, time.Minute, clock, func(ctx context.Context, cp Checkpoint) error {
		_, hadDeadline = ctx.Deadline()
		if ctx.Err() != nil {
			t.Errorf("the shutdown checkpoint got a context that is already done")
		}
		return errDown
	})
	if !errors.Is(err, errDown) {
		t.Errorf("RunCheckpoints = %v, want the publish error", err)
	}
	if !hadDeadline {
		t.Errorf("the shutdown checkpoint's context has no deadline")
	}
	if err := RunCheckpoints(ctx, s, priv, 0, clock, nil); err == nil {
		t.Errorf("RunCheckpoints with a zero period succeeded")
	}
}

func TestCheckpointFile(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	var last Checkpoint
	for i := range 3 {
		last = Sign(priv, uint64(i+1), workflow.Hash{byte(i)}, time.Unix(int64(i), 0))
		if err := AppendCheckpoint(path, last); err != nil {
			t.Fatal(err)
		}
	}
	checkMode(t, path)
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 3 || got.Head != last.Head || got.Signature != last.Signature {
		t.Errorf("ReadCheckpoint = %+v, want the last one %+v", got, last)
	}
	if err := got.Verify(pub); err != nil {
		t.Errorf("the checkpoint read back does not verify: %v", err)
	}

	// A single, indented JSON object.
	single := filepath.Join(t.TempDir(), "checkpoint.json")
	body := "{\n  \"events\": 1,\n  \"head\": \"" + last.Head + "\",\n  \"time\": \"1970-01-01T00:00:02Z\",\n  \"key\": \"" + last.Key + "\",\n  \"signature\": \"" + last.Signature + "\"\n}\n"
	if err := os.WriteFile(single, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = ReadCheckpoint(single)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 1 || got.Signature != last.Signature {
		t.Errorf("ReadCheckpoint of one object = %+v", got)
	}

	for name, content := range map[string]string{"empty": "", "blank lines": "\n\n", "not a checkpoint": `{"a":1}` + "\n"} {
		p := filepath.Join(t.TempDir(), "cp")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCheckpoint(p); !errors.Is(err, ErrNoCheckpoint) {
			t.Errorf("ReadCheckpoint of %s = %v, want ErrNoCheckpoint", name, err)
		}
	}
}
