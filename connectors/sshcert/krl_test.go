package sshcert

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func ranges(rs ...uint64) serialSet {
	var s serialSet
	for i := 0; i+1 < len(rs); i += 2 {
		s = append(s, serialRange{rs[i], rs[i+1]})
	}
	return s
}

func TestSerialSet(t *testing.T) {
	tests := []struct {
		name string
		got  serialSet
		want serialSet
	}{
		{"normalize merges overlaps", ranges(5, 9, 1, 3, 8, 12).normalize(), ranges(1, 3, 5, 12)},
		{"normalize merges neighbours", ranges(4, 4, 1, 3, 5, 5).normalize(), ranges(1, 5)},
		{"normalize at the top", ranges(math.MaxUint64, math.MaxUint64, 1, 1, math.MaxUint64-1, math.MaxUint64).normalize(), ranges(1, 1, math.MaxUint64-1, math.MaxUint64)},
		{"add to nothing", serialSet(nil).add(7), ranges(7, 7)},
		{"add joins", ranges(1, 3, 5, 6).add(4), ranges(1, 6)},
		{"add held", ranges(1, 3).add(2), ranges(1, 3)},
		{"remove splits", ranges(1, 5).remove(3), ranges(1, 2, 4, 5)},
		{"remove the low end", ranges(1, 5).remove(1), ranges(2, 5)},
		{"remove the high end", ranges(1, 5).remove(5), ranges(1, 4)},
		{"remove a single", ranges(1, 1, 3, 3).remove(3), ranges(1, 1)},
		{"remove absent", ranges(1, 2).remove(7), ranges(1, 2)},
		{"bitmap", bitmapRanges(100, []byte{0x01, 0x00, 0b1100_0111}), ranges(100, 102, 106, 107, 116, 116)},
		{"empty bitmap", bitmapRanges(100, nil), nil},
		{"full bitmap", bitmapRanges(8, []byte{0xff, 0xff}), ranges(8, 23)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	s := ranges(1, 3, 10, 20)
	for serial, want := range map[uint64]bool{0: false, 1: true, 3: true, 4: false, 9: false, 10: true, 15: true, 20: true, 21: false} {
		if got := s.contains(serial); got != want {
			t.Errorf("%v contains %d = %t, want %t", s, serial, got, want)
		}
	}
}

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// krlBytes builds a KRL from sections.
func krlBytes(sections ...krlSection) []byte {
	k := &krl{sections: sections, ourAt: len(sections)}
	return k.marshal(nil, time.Unix(1, 0))
}

func certSectionBytes(ca []byte, subs ...krlSection) []byte {
	var w wireWriter
	w.string(ca)
	w.string(nil)
	for _, s := range subs {
		w.byte(s.typ)
		w.string(s.data)
	}
	return w.b
}

func strs(items ...[]byte) []byte {
	var w wireWriter
	for _, it := range items {
		w.string(it)
	}
	return w.b
}

func u64s(vs ...uint64) []byte {
	var w wireWriter
	for _, v := range vs {
		w.uint64(v)
	}
	return w.b
}

func TestKRLRoundTrip(t *testing.T) {
	ca, other, user := testKey(t), testKey(t), testKey(t)
	otherSection := krlSection{krlSectionCertificates, certSectionBytes(other.Marshal(), krlSection{krlCertSerialList, u64s(1, 2, 3)})}
	keySection := krlSection{krlSectionExplicitKey, strs(user.Marshal())}
	ours := krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(),
		krlSection{krlCertSerialList, u64s(40, 7)},
		krlSection{krlCertSerialRange, u64s(10, 12)},
		krlSection{krlCertSerialBitmap, append(u64s(100), strs([]byte{0x00, 0x81})...)},
		krlSection{krlCertKeyID, strs([]byte("grant-a"), []byte("grant-b"))},
	)}
	data := krlBytes(otherSection, ours, keySection)

	k, err := parseKRL(data, ca.Marshal())
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if want := ranges(7, 7, 10, 12, 40, 40, 100, 100, 107, 107); !slices.Equal(k.serials, want) {
		t.Errorf("serials = %v, want %v", k.serials, want)
	}
	if want := []string{"grant-a", "grant-b"}; !slices.Equal(k.keyIDs, want) {
		t.Errorf("key ids = %q, want %q", k.keyIDs, want)
	}
	if len(k.sections) != 2 || k.ourAt != 1 {
		t.Fatalf("kept %d sections with ours at %d, want 2 and 1", len(k.sections), k.ourAt)
	}

	k.serials = k.serials.add(11).add(13).remove(40)
	k.version++
	again, err := parseKRL(k.marshal(ca.Marshal(), time.Now()), ca.Marshal())
	if err != nil {
		t.Fatalf("parse what was written: %v", err)
	}
	if want := ranges(7, 7, 10, 13, 100, 100, 107, 107); !slices.Equal(again.serials, want) {
		t.Errorf("serials = %v, want %v", again.serials, want)
	}
	if again.version != 1 || !slices.Equal(again.keyIDs, k.keyIDs) {
		t.Errorf("version, key ids = %d, %q, want 1, %q", again.version, again.keyIDs, k.keyIDs)
	}
	for i, s := range []krlSection{otherSection, keySection} {
		if got := again.sections[i]; got.typ != s.typ || !bytes.Equal(got.data, s.data) {
			t.Errorf("section %d changed", i)
		}
	}
	if again.ourAt != 1 {
		t.Errorf("our section moved to %d, want 1", again.ourAt)
	}

	// Revoking nothing any more, our section goes.
	again.serials, again.keyIDs = nil, nil
	last, err := parseKRL(again.marshal(ca.Marshal(), time.Now()), other.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if want := ranges(1, 3); !slices.Equal(last.serials, want) || len(last.sections) != 1 {
		t.Errorf("the other authority's serials = %v with %d more sections, want %v and 1", last.serials, len(last.sections), want)
	}
}

func TestKRLRefusal(t *testing.T) {
	ca, user, other := testKey(t), testKey(t), testKey(t)
	sum1, sum256 := sha1.Sum(user.Marshal()), sha256.Sum256(user.Marshal())
	tests := []struct {
		name    string
		section krlSection
		refused bool
	}{
		{"explicit key", krlSection{krlSectionExplicitKey, strs(user.Marshal())}, true},
		{"SHA-1", krlSection{krlSectionFingerprintSHA1, strs(sum1[:])}, true},
		{"SHA-256", krlSection{krlSectionFingerprintSHA256, strs(sum256[:])}, true},
		{"the authority's key", krlSection{krlSectionExplicitKey, strs(ca.Marshal())}, true},
		{"key id for any authority", krlSection{krlSectionCertificates, certSectionBytes(nil, krlSection{krlCertKeyID, strs([]byte("grant-1"))})}, true},
		{"key id for this authority", krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(), krlSection{krlCertKeyID, strs([]byte("grant-1"))})}, true},
		{"key id for another authority", krlSection{krlSectionCertificates, certSectionBytes(other.Marshal(), krlSection{krlCertKeyID, strs([]byte("grant-1"))})}, false},
		{"another key", krlSection{krlSectionExplicitKey, strs(other.Marshal())}, false},
		{"the serial alone", krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(), krlSection{krlCertSerialList, u64s(serialOf("grant-1"))})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parseKRL(krlBytes(tt.section), ca.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if got := k.refusal(user, ca, "grant-1") != ""; got != tt.refused {
				t.Errorf("refused = %t, want %t", got, tt.refused)
			}
		})
	}
}

func TestKRLParseErrors(t *testing.T) {
	ca := testKey(t)
	valid := krlBytes()
	badVersion := bytes.Clone(valid)
	badVersion[len(krlMagic)+3] = 2
	tests := []struct {
		name    string
		data    []byte
		wantErr error // nil: any error
		empty   bool  // no error, an empty list
	}{
		{name: "empty", data: nil, empty: true},
		{name: "blank text", data: []byte("# revoked keys\n\n"), empty: true},
		{name: "plain list", data: []byte("# revoked\nssh-ed25519 AAAA\n"), wantErr: errNotKRL},
		{name: "no sections", data: valid, empty: true},
		{name: "cut short", data: valid[:len(valid)-3]},
		{name: "format 2", data: badVersion},
		{name: "signed", data: krlBytes(krlSection{krlSectionSignature, strs(ca.Marshal(), []byte("sig"))})},
		{name: "unknown section", data: krlBytes(krlSection{9, nil})},
		{name: "unknown certificate section", data: krlBytes(krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(), krlSection{0x30, nil})})},
		{name: "inverted range", data: krlBytes(krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(), krlSection{krlCertSerialRange, u64s(9, 5)})})},
		{name: "half a serial", data: krlBytes(krlSection{krlSectionCertificates, certSectionBytes(ca.Marshal(), krlSection{krlCertSerialList, []byte{1, 2, 3}})})},
		{name: "string past the end", data: krlBytes(krlSection{krlSectionExplicitKey, []byte{0, 0, 0, 9, 1}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parseKRL(tt.data, ca.Marshal())
			if tt.empty {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if len(k.serials) != 0 || len(k.sections) != 0 {
					t.Errorf("parsed %v and %d sections, want nothing", k.serials, len(k.sections))
				}
				return
			}
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSerialOf(t *testing.T) {
	a, b := serialOf("grant-1"), serialOf("grant-2")
	if a == 0 || b == 0 || a == b || serialOf("grant-1") != a {
		t.Errorf("serialOf gives %d and %d, want distinct, stable, non-zero serials", a, b)
	}
}
