package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// scramIterations is PostgreSQL's default iteration count for
// SCRAM-SHA-256 verifiers.
const scramIterations = 4096

// newPassword returns a random password of 26 characters from A-Z and 2-7
// (130 bits from crypto/rand): nothing in it needs quoting in SQL, a URL
// or a shell.
func newPassword() string { return rand.Text() }

// scramVerifier returns the SCRAM-SHA-256 verifier of password, in the form
// PostgreSQL stores in pg_authid.rolpassword and accepts in place of a
// password in CREATE ROLE and ALTER ROLE. Sending the verifier rather than
// the password keeps the password itself out of the server: out of its
// statement logs, pg_stat_statements and the network. password must need
// no SASLprep normalisation, as newPassword's never does.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	return scramVerifierWith(password, salt, scramIterations)
}

func scramVerifierWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// quoteLiteral returns s as an SQL string constant, for the places where
// PostgreSQL takes no bind parameter (a role's password, VALID UNTIL, a
// comment). It uses the escape string syntax E'…', whose meaning does not
// depend on standard_conforming_strings, doubling every backslash and
// single quote. s must hold no NUL byte, which no SQL string can.
func quoteLiteral(s string) string {
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}
