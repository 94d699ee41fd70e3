package audit

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

var (
	// ErrKeyPermissions means a private key file may be read by anyone
	// on the machine; latch refuses to use it until its mode is fixed.
	ErrKeyPermissions = errors.New("private key file is readable by others")

	// ErrKeyFormat means a key file does not hold an ed25519 key in the
	// expected PEM form.
	ErrKeyFormat = errors.New("not an ed25519 key in PEM form")
)

// ReadPrivateKey reads an ed25519 private key from a PEM file holding a
// PKCS #8 "PRIVATE KEY" block, as `openssl genpkey -algorithm ed25519`
// writes. It refuses a file that others than its owner and group may
// access (ErrKeyPermissions). Errors never quote the key.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("read private key %s: %w (mode %04o): chmod 600 %s", path, ErrKeyPermissions, perm, path)
	}
	data, err := readAll(f, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	return key, nil
}

// ReadPublicKey reads an ed25519 public key from a PEM file holding a PKIX
// "PUBLIC KEY" block, as `openssl pkey -pubout` writes.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	key, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("read public key %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey parses a PEM "PRIVATE KEY" block (PKCS #8) holding an
// ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: want a PEM block of type PRIVATE KEY", ErrKeyFormat)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: the PKCS #8 key does not parse", ErrKeyFormat)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the key is a %T; generate one with: openssl genpkey -algorithm ed25519", ErrKeyFormat, k)
	}
	return priv, nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block (PKIX) holding an ed25519
// key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: want a PEM block of type PUBLIC KEY", ErrKeyFormat)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: the PKIX key does not parse: %v", ErrKeyFormat, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the key is a %T", ErrKeyFormat, k)
	}
	return pub, nil
}

// PublicKeyPEM returns pub as a PEM "PUBLIC KEY" block, as ReadPublicKey
// reads it, for operators to keep next to their checkpoints.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
