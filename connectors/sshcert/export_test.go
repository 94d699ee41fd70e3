package sshcert

import (
	"os"

	"golang.org/x/crypto/ssh"
)

// SerialOf returns the serial of the certificates of a grant.
var SerialOf = serialOf

// Revoked returns what the revoked keys file at path revokes of the
// certificates ca signs: the ranges of serials, each [lo, hi], and the key
// ids.
func Revoked(path string, ca ssh.PublicKey) ([][2]uint64, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	k, err := parseKRL(data, ca.Marshal())
	if err != nil {
		return nil, nil, err
	}
	var serials [][2]uint64
	for _, r := range k.serials {
		serials = append(serials, [2]uint64{r.lo, r.hi})
	}
	return serials, k.keyIDs, nil
}
