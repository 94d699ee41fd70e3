package audit_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/workflow"
)

func ExampleSign() {
	// A fixed seed keeps the example's output stable; use a key from
	// `openssl genpkey -algorithm ed25519` and audit.ReadPrivateKey.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)

	cp := audit.Sign(priv, 3, workflow.Hash{0xab}, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fmt.Printf("%s", cp.SignedBytes())
	fmt.Println("key", cp.Key)
	fmt.Println("verifies:", cp.Verify(pub) == nil)

	cp.Events = 2 // a shorter log claimed with the same signature
	fmt.Println("after editing:", cp.Verify(pub))
	// Output:
	// latch-checkpoint v1
	// 3
	// ab00000000000000000000000000000000000000000000000000000000000000
	// 2026-03-01T12:00:00Z
	// key 139e3940e64b5491
	// verifies: true
	// after editing: checkpoint signature does not verify
}
