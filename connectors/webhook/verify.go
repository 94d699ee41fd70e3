package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a request.
const (
	HeaderTimestamp      = "Latch-Timestamp"
	HeaderSignature      = "Latch-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// DefaultMaxAge is how far from the receiver's clock a request's timestamp
// may be.
const DefaultMaxAge = 5 * time.Minute

// signatureVersion prefixes the hex signature in HeaderSignature.
const signatureVersion = "v1="

var (
	// ErrBadSignature is returned by Verify for a signature that is
	// missing, malformed or does not match.
	ErrBadSignature = errors.New("webhook signature does not match")

	// ErrStale is returned by Verify for a timestamp that is malformed or
	// too far from now.
	ErrStale = errors.New("webhook timestamp is not recent")
)

// Sign returns the value of HeaderSignature for body sent at timestamp
// (Unix seconds, as in HeaderTimestamp).
func Sign(secret []byte, timestamp string, body []byte) string {
	return signatureVersion + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a request a receiver got: that signature (the value of
// HeaderSignature, which may list several comma-separated signatures) holds
// a v1 signature of timestamp and body under secret, and that timestamp
// (the value of HeaderTimestamp) is no further than maxAge from now, in
// either direction. The comparison takes constant time. An error wraps
// ErrStale or ErrBadSignature. Verify does not dedupe: the receiver does
// that by HeaderIdempotencyKey.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxAge time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed timestamp", ErrStale)
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > maxAge || age < -maxAge {
		return fmt.Errorf("%w: timestamp is %s away from now, more than %s", ErrStale, age.Abs().Truncate(time.Second), maxAge)
	}
	want := mac(secret, timestamp, body)
	ok := false
	for s := range strings.SplitSeq(signature, ",") {
		s = strings.TrimSpace(s)
		got, err := hex.DecodeString(strings.TrimPrefix(s, signatureVersion))
		if !strings.HasPrefix(s, signatureVersion) || err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
