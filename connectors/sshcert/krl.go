package sshcert

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// The revoked keys file is an OpenSSH key revocation list (KRL), the
// binary format of OpenSSH's PROTOCOL.krl that sshd's RevokedKeys and
// ssh-keygen -k and -Q read. The connector revokes certificates by serial
// number, in the section of the file for its own certificate authority,
// and keeps every other section as it found it, so that a file an operator
// also updates with ssh-keygen -k -u stays whole.

const (
	krlMagic         = "SSHKRL\n\x00"
	krlFormatVersion = 1

	krlSectionCertificates      = 1
	krlSectionExplicitKey       = 2
	krlSectionFingerprintSHA1   = 3
	krlSectionSignature         = 4
	krlSectionFingerprintSHA256 = 5

	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23
)

// krl is a parsed revocation list, as far as the connector needs it.
type krl struct {
	version uint64 // krl_version, raised by every write
	comment []byte

	// sections are the file's sections other than those for the
	// connector's own certificate authority, in the file's order, as
	// they were.
	sections []krlSection
	// ourAt is where among sections the section for the connector's
	// certificate authority goes.
	ourAt int

	// serials and keyIDs are what the file revokes of the certificates
	// the connector's authority signed.
	serials serialSet
	keyIDs  []string

	// What the other sections revoke, for Grant to check.
	anyCAKeyIDs map[string]bool // key ids revoked whatever the authority
	keys        map[string]bool // plain public key blobs
	sha1s       map[string]bool // SHA-1 hashes of key blobs
	sha256s     map[string]bool // SHA-256 hashes of key blobs
}

// krlSection is one section of the file, kept as it was read.
type krlSection struct {
	typ  byte
	data []byte
}

// errNotKRL means a file holds a plain list of keys rather than a KRL.
var errNotKRL = errors.New("not a key revocation list")

// parseKRL parses the revoked keys file data; ca is the connector's
// certificate authority's public key blob. An empty file, or a text file
// with nothing but blank and comment lines, is an empty list.
func parseKRL(data, ca []byte) (*krl, error) {
	k := &krl{
		anyCAKeyIDs: map[string]bool{},
		keys:        map[string]bool{},
		sha1s:       map[string]bool{},
		sha256s:     map[string]bool{},
	}
	if !bytes.HasPrefix(data, []byte(krlMagic)) {
		if !blankList(data) {
			return nil, errNotKRL
		}
		return k, nil
	}
	r := &wire{b: data[len(krlMagic):]}
	if v := r.uint32(); r.err == nil && v != krlFormatVersion {
		return nil, fmt.Errorf("key revocation list format %d is not supported", v)
	}
	k.version = r.uint64()
	r.uint64() // generated_date
	r.uint64() // flags
	r.string() // reserved
	k.comment = r.string()
	ourAt := -1
	for r.err == nil && !r.empty() {
		typ, data := r.byte(), r.string()
		if r.err != nil {
			break
		}
		var err error
		switch typ {
		case krlSectionCertificates:
			var cs certSection
			if cs, err = parseCertSection(data); err != nil {
				break
			}
			if bytes.Equal(cs.ca, ca) {
				if ourAt < 0 {
					ourAt = len(k.sections)
				}
				k.serials = append(k.serials, cs.serials...)
				k.keyIDs = append(k.keyIDs, cs.keyIDs...)
				continue
			}
			if len(cs.ca) == 0 {
				for _, id := range cs.keyIDs {
					k.anyCAKeyIDs[id] = true
				}
			}
		case krlSectionExplicitKey:
			err = addBlobs(k.keys, data)
		case krlSectionFingerprintSHA1:
			err = addBlobs(k.sha1s, data)
		case krlSectionFingerprintSHA256:
			err = addBlobs(k.sha256s, data)
		case krlSectionSignature:
			return nil, errors.New("the key revocation list is signed, and a change would break its signature")
		default:
			return nil, fmt.Errorf("unknown key revocation list section %d", typ)
		}
		if err != nil {
			return nil, err
		}
		k.sections = append(k.sections, krlSection{typ: typ, data: data})
	}
	if r.err != nil {
		return nil, r.err
	}
	if ourAt < 0 {
		ourAt = len(k.sections)
	}
	k.ourAt = ourAt
	k.serials = k.serials.normalize()
	return k, nil
}

// blankList reports whether data, as a plain list of keys, lists none.
func blankList(data []byte) bool {
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// addBlobs adds each string of a section to set.
func addBlobs(set map[string]bool, data []byte) error {
	r := &wire{b: data}
	for r.err == nil && !r.empty() {
		if b := r.string(); r.err == nil {
			set[string(b)] = true
		}
	}
	return r.err
}

// certSection is a parsed certificates section.
type certSection struct {
	ca      []byte // the authority's public key blob; empty for any authority
	serials serialSet
	keyIDs  []string
}

func parseCertSection(data []byte) (certSection, error) {
	var cs certSection
	r := &wire{b: data}
	cs.ca = r.string()
	r.string() // reserved
	for r.err == nil && !r.empty() {
		typ, sub := r.byte(), r.string()
		if r.err != nil {
			break
		}
		s := &wire{b: sub}
		switch typ {
		case krlCertSerialList:
			for s.err == nil && !s.empty() {
				if serial := s.uint64(); s.err == nil {
					cs.serials = append(cs.serials, serialRange{serial, serial})
				}
			}
		case krlCertSerialRange:
			lo, hi := s.uint64(), s.uint64()
			if s.err == nil && (lo > hi || !s.empty()) {
				return cs, errors.New("bad serial range in the key revocation list")
			}
			cs.serials = append(cs.serials, serialRange{lo, hi})
		case krlCertSerialBitmap:
			offset, bitmap := s.uint64(), s.string()
			if s.err == nil && !s.empty() {
				return cs, errors.New("bad serial bitmap in the key revocation list")
			}
			cs.serials = append(cs.serials, bitmapRanges(offset, bitmap)...)
		case krlCertKeyID:
			for s.err == nil && !s.empty() {
				if id := s.string(); s.err == nil {
					cs.keyIDs = append(cs.keyIDs, string(id))
				}
			}
		default:
			return cs, fmt.Errorf("unknown key revocation list certificate section %d", typ)
		}
		if s.err != nil {
			return cs, s.err
		}
	}
	return cs, r.err
}

// bitmapRanges returns the serials a bitmap section revokes: bit i of the
// big-endian bitmap, counted from its least significant bit, stands for
// serial offset+i.
func bitmapRanges(offset uint64, bitmap []byte) serialSet {
	var out serialSet
	n := uint64(len(bitmap)) * 8
	inRun, start := false, uint64(0)
	for i := uint64(0); i <= n; i++ {
		set := i < n && bitmap[len(bitmap)-1-int(i/8)]&(1<<(i%8)) != 0
		switch {
		case set && !inRun:
			inRun, start = true, i
		case !set && inRun:
			inRun = false
			out = append(out, serialRange{offset + start, offset + i - 1})
		}
	}
	return out
}

// refusal returns why the file refuses a certificate with keyID for key
// signed by ca, other than by its serial, or "".
func (k *krl) refusal(key, ca ssh.PublicKey, keyID string) string {
	revoked := func(blob []byte) bool {
		sum1, sum256 := sha1.Sum(blob), sha256.Sum256(blob)
		return k.keys[string(blob)] || k.sha1s[string(sum1[:])] || k.sha256s[string(sum256[:])]
	}
	switch {
	case revoked(key.Marshal()):
		return fmt.Sprintf("the key %s itself is revoked on the servers; make a new key pair with ssh-keygen -t ed25519 and supply its public key", ssh.FingerprintSHA256(key))
	case revoked(ca.Marshal()):
		return "the certificate authority's own key is revoked in the revoked keys file; an administrator must replace it"
	case k.anyCAKeyIDs[keyID] || slices.Contains(k.keyIDs, keyID):
		return fmt.Sprintf("certificates with key id %q are revoked in the revoked keys file", keyID)
	}
	return ""
}

// marshal returns the file's bytes with ca's section holding k.serials and
// k.keyIDs.
func (k *krl) marshal(ca []byte, now time.Time) []byte {
	var w wireWriter
	w.raw([]byte(krlMagic))
	w.uint32(krlFormatVersion)
	w.uint64(k.version)
	w.uint64(uint64(max(now.Unix(), 0)))
	w.uint64(0)   // flags
	w.string(nil) // reserved
	w.string(k.comment)
	for i, s := range k.sections {
		if i == k.ourAt {
			k.marshalOurs(&w, ca)
		}
		w.byte(s.typ)
		w.string(s.data)
	}
	if k.ourAt >= len(k.sections) {
		k.marshalOurs(&w, ca)
	}
	return w.b
}

// marshalOurs writes the section for the connector's authority, unless it
// would revoke nothing.
func (k *krl) marshalOurs(w *wireWriter, ca []byte) {
	if len(k.serials) == 0 && len(k.keyIDs) == 0 {
		return
	}
	var sec wireWriter
	sec.string(ca)
	sec.string(nil) // reserved
	var list wireWriter
	for _, r := range k.serials {
		if r.lo == r.hi {
			list.uint64(r.lo)
		}
	}
	if len(list.b) > 0 {
		sec.byte(krlCertSerialList)
		sec.string(list.b)
	}
	for _, r := range k.serials {
		if r.lo != r.hi {
			var rng wireWriter
			rng.uint64(r.lo)
			rng.uint64(r.hi)
			sec.byte(krlCertSerialRange)
			sec.string(rng.b)
		}
	}
	if len(k.keyIDs) > 0 {
		var ids wireWriter
		for _, id := range k.keyIDs {
			ids.string([]byte(id))
		}
		sec.byte(krlCertKeyID)
		sec.string(ids.b)
	}
	w.byte(krlSectionCertificates)
	w.string(sec.b)
}

// serialRange is the serials lo to hi, both included.
type serialRange struct{ lo, hi uint64 }

// serialSet is a set of serials: after normalize, sorted ranges that
// neither overlap nor touch.
type serialSet []serialRange

func (s serialSet) normalize() serialSet {
	if len(s) == 0 {
		return nil
	}
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if last.hi == math.MaxUint64 || r.lo <= last.hi+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// index returns the index of the range that holds serial, or -1.
func (s serialSet) index(serial uint64) int {
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= serial })
	if i < len(s) && s[i].lo <= serial {
		return i
	}
	return -1
}

func (s serialSet) contains(serial uint64) bool { return s.index(serial) >= 0 }

func (s serialSet) add(serial uint64) serialSet {
	return append(s, serialRange{serial, serial}).normalize()
}

func (s serialSet) remove(serial uint64) serialSet {
	i := s.index(serial)
	if i < 0 {
		return s
	}
	r := s[i]
	var parts []serialRange
	if r.lo < serial {
		parts = append(parts, serialRange{r.lo, serial - 1})
	}
	if serial < r.hi {
		parts = append(parts, serialRange{serial + 1, r.hi})
	}
	return slices.Replace(s, i, i+1, parts...)
}

// wire reads the SSH wire encoding; the first error sticks.
type wire struct {
	b   []byte
	err error
}

var errShort = errors.New("the key revocation list is cut short or damaged")

func (r *wire) empty() bool { return len(r.b) == 0 }

func (r *wire) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *wire) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *wire) uint32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *wire) uint64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *wire) string() []byte {
	n := r.uint32()
	if r.err != nil {
		return nil
	}
	return r.take(uint64(n))
}

// wireWriter writes the SSH wire encoding.
type wireWriter struct{ b []byte }

func (w *wireWriter) raw(p []byte)    { w.b = append(w.b, p...) }
func (w *wireWriter) byte(c byte)     { w.b = append(w.b, c) }
func (w *wireWriter) uint32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *wireWriter) uint64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *wireWriter) string(p []byte) {
	w.uint32(uint32(len(p)))
	w.b = append(w.b, p...)
}
