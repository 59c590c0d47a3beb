package api

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
)

// Generated names.
const (
	// GenerateNameSuffixLength is how many random characters GenerateName
	// appends.
	GenerateNameSuffixLength = 5
	// GeneratedNameMaxLength is the longest name GenerateName returns: one
	// DNS-1123 label, so that the name suits every kind.
	GeneratedNameMaxLength = DNS1123LabelMaxLength
)

// nameAlphabet is what the suffix of a generated name is made of: characters
// valid anywhere in a DNS-1123 label.
const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewUID returns a random RFC 4122 version 4 UUID, in its 36-character
// text form.
func NewUID() string {
	var b [16]byte
	// rand.Read never fails (crypto/rand crashes the program instead).
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10 (RFC 4122)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// GenerateName appends GenerateNameSuffixLength random lower-case letters
// and digits to base, shortening base first so that the result is at most
// GeneratedNameMaxLength long. It is what metadata.generateName becomes.
func GenerateName(base string) string {
	if max := GeneratedNameMaxLength - GenerateNameSuffixLength; len(base) > max {
		base = base[:max]
	}
	var sb strings.Builder
	sb.WriteString(base)
	var buf [1]byte
	for n := 0; n < GenerateNameSuffixLength; {
		rand.Read(buf[:])
		if buf[0] >= 252 { // 252 = 7*36: reject to keep the choice uniform
			continue
		}
		sb.WriteByte(nameAlphabet[int(buf[0])%len(nameAlphabet)])
		n++
	}
	return sb.String()
}

// PrepareCreate fills the fields the server owns on a new object, in
// place: apiVersion and kind, uid, creationTimestamp (now, to the second),
// and it clears what only an existing object may have: resourceVersion,
// generation and the deletion fields. The caller passes uid (NewUID) and
// now, so that every replica of a replicated write fills in the same
// values.
func PrepareCreate(obj Object, now time.Time, uid string) {
	SetTypeMeta(obj)
	m := obj.GetObjectMeta()
	m.UID = uid
	m.CreationTimestamp = NewTime(now)
	m.DeletionTimestamp = nil
	m.DeletionGracePeriodSeconds = nil
	m.ResourceVersion = ""
	m.Generation = 0
}
