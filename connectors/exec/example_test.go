package exec_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	latchexec "github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/workflow"
)

func ExampleConnector_Grant() {
	command, err := filepath.Abs("testdata/example.sh")
	if err != nil {
		log.Fatal(err)
	}
	stateDir, err := os.MkdirTemp("", "latch-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(stateDir)

	c, err := latchexec.New("files", latchexec.Config{
		Command: command,
		Timeout: 10 * time.Second,
		Env:     []string{"STATE_DIR=" + stateDir},
	})
	if err != nil {
		log.Fatal(err)
	}
	access := workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		User:        workflow.User{SlackID: "U0123ABCD", Email: "jane@example.com"},
		Entitlement: "readers",
		ExpiresAt:   time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
	}
	granted, err := c.Grant(context.Background(), access)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(granted.Message)
	for _, key := range slices.Sorted(maps.Keys(granted.Facts)) {
		fmt.Printf("%s: %s\n", key, granted.Facts[key])
	}

	access.Entitlement = "admins"
	_, err = c.Grant(context.Background(), access)
	fmt.Println("permanent:", workflow.IsPermanent(err))
	// Output:
	// You are in readers until 2030-01-02T15:04:05Z.
	// group: readers
	// member: jane@example.com
	// permanent: true
}
