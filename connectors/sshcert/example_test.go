package sshcert_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch/connectors/sshcert"
	"github.com/latchhq/latch/workflow"
)

func ExampleConnector_Grant() {
	dir, err := os.MkdirTemp("", "latch-sshcert-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The certificate authority's key, made with ssh-keygen -t ed25519 -N ''
	// in real life, and kept readable by latch alone.
	caKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	block, err := ssh.MarshalPrivateKey(caKey, "latch ca")
	if err != nil {
		log.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(block), 0o600); err != nil {
		log.Fatal(err)
	}

	c, err := sshcert.New(sshcert.Config{
		Name:               "prod-ssh",
		CAKeyFile:          caFile,
		Entitlements:       []string{"deploy", "root"},
		PrincipalsTemplate: "{{.Entitlement}}",
		RevokedKeysFile:    filepath.Join(dir, "revoked_keys"),
		Now:                func() time.Time { return time.Date(2030, 1, 2, 13, 4, 5, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("TrustedUserCAKeys line:", c.PublicKey())

	janeKey, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize)).Public())
	if err != nil {
		log.Fatal(err)
	}
	access := workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		User:        workflow.User{SlackID: "U0123ABCD", Email: "jane@example.com"},
		Entitlement: "deploy",
		ExpiresAt:   time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
		Params:      map[string]string{sshcert.ParamPublicKey: string(ssh.MarshalAuthorizedKey(janeKey))},
	}
	granted, err := c.Grant(context.Background(), access)
	if err != nil {
		log.Fatal(err)
	}
	for _, key := range slices.Sorted(maps.Keys(granted.Facts)) {
		fmt.Printf("%s: %s\n", key, granted.Facts[key])
	}

	access.Entitlement = "admins"
	_, err = c.Grant(context.Background(), access)
	fmt.Println("permanent:", workflow.IsPermanent(err))
	// Output:
	// TrustedUserCAKeys line: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c
	// fingerprint: SHA256:4A9jyZBOhnKZvcGQ6TRFbf5Gymb41AfYvYaVmWHD+G4
	// key_id: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b
	// key_source: request
	// principals: deploy
	// serial: 6546272711674751709
	// valid_after: 2030-01-02T13:03:05Z
	// valid_before: 2030-01-02T15:04:05Z
	// permanent: true
}
