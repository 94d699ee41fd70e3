package ldap_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/workflow"
)

func ExampleConnector_Grant() {
	c, err := ldap.New(ldap.Config{
		Name:         "corp",
		URL:          "ldaps://ldap.example.com",
		BindDN:       "cn=latch,ou=services,dc=example,dc=com",
		BindPassword: os.Getenv("LATCH_LDAP_PASSWORD"),
		UserBaseDN:   "ou=people,dc=example,dc=com",
		GroupBaseDN:  "ou=groups,dc=example,dc=com",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	granted, err := c.Grant(context.Background(), workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		User:        workflow.User{SlackID: "U0123ABCD", Email: "jane@example.com"},
		Entitlement: "cn=dba,ou=groups,dc=example,dc=com",
		ExpiresAt:   time.Now().Add(4 * time.Hour),
	})
	switch {
	case workflow.IsPermanent(err):
		log.Printf("cannot grant: %v", err)
	case err != nil:
		log.Printf("will retry: %v", err)
	default:
		fmt.Println(granted.Facts["member"])
	}
}

func ExampleNewDirectory() {
	c, err := ldap.New(ldap.Config{
		Name:         "corp",
		URL:          "ldaps://ldap.example.com",
		BindDN:       "cn=latch,ou=services,dc=example,dc=com",
		BindPassword: os.Getenv("LATCH_LDAP_PASSWORD"),
		UserBaseDN:   "ou=people,dc=example,dc=com",
		GroupBaseDN:  "ou=groups,dc=example,dc=com",
	})
	if err != nil {
		log.Fatal(err)
	}
	// latch's own directory maps Slack ids to email addresses and back.
	static, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "U0123ABCD", Email: "jane@example.com"},
		{SlackID: "U0456EFGH", Email: "ann@example.com"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := ldap.NewDirectory(c, ldap.DirectoryConfig{Base: static})
	if err != nil {
		log.Fatal(err)
	}
	manager, err := dir.Manager(context.Background(), "U0123ABCD")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("manager:", manager)
}
