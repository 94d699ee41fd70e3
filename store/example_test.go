package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

func Example() {
	dir, err := os.MkdirTemp("", "latch-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	events, err := s.Append(ctx,
		workflow.Event{Kind: "request.submitted", Actor: "U01ALICE", RequestID: "r1", Payload: []byte(`{"item":"prod-db-readonly"}`)},
		workflow.Event{Kind: "request.approved", Actor: "U01BOB", RequestID: "r1"},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended", events[0].Seq, "and", events[1].Seq)
	fmt.Println("linked:", events[1].PrevHash == events[0].Hash)

	if err := s.Scan(ctx, store.Filter{Kinds: []string{"request.approved"}}, func(e *workflow.Event) error {
		fmt.Println(e.Seq, e.Kind, "by", e.Actor)
		return nil
	}); err != nil {
		log.Fatal(err)
	}

	r, err := s.Verify(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified", r.Count, "events")
	// Output:
	// appended 1 and 2
	// linked: true
	// 2 request.approved by U01BOB
	// verified 2 events
}
