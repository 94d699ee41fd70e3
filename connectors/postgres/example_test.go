package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/workflow"
)

func ExampleConnector_Grant() {
	c, err := postgres.New(postgres.Config{
		Name:             "app-db",
		Host:             "db.internal.example.com",
		Database:         "app",
		User:             "latch",
		Password:         os.Getenv("LATCH_APP_DB_PASSWORD"),
		Mode:             postgres.ModeEphemeral,
		UsernameTemplate: "{{.LocalPart}}",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	access := workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		User:        workflow.User{SlackID: "U0123ABCD", Email: "jane@example.com"},
		Entitlement: "readonly",
		ExpiresAt:   time.Now().Add(2 * time.Hour),
	}
	granted, err := c.Grant(context.Background(), access)
	if err != nil {
		log.Fatal(err)
	}
	// The message, with the password, is for jane alone; the facts go to
	// the audit log.
	fmt.Println(granted.Facts["account"], granted.Facts["role"])
}
