package consensus

// The log's command format.
//
// A command is one type byte followed by a payload whose layout that type
// defines. Types with IgnoreUnknownTypeFlag set may be skipped by a binary
// that does not know them (a rolling upgrade introduces a new command that is
// safe to ignore); any other unknown type stops the FSM.
//
// ApplyOpsType payload, version 1 (integers are unsigned varints unless
// noted, strings are a length then bytes):
//
//	version        1 byte (= 1)
//	count          number of ops
//	per op:
//	  type         1 byte (store.OpType)
//	  kind         string; empty when the op carries no object
//	  object       string; the object's JSON, present only when kind is not empty
//	  key          three strings: kind, namespace, name
//	  rv           signed varint (the delete precondition)
//
// The object's kind travels next to its JSON so the decoder can allocate the
// right Go type (api.LookupKind(kind).New()) without sniffing the JSON.
//
// The object's JSON is written and read by one library, goccy/go-json
// (decoding is the hot spot: every voter decodes every object, and
// goccy/go-json does it about four times faster than encoding/json). A
// property test (TestCodecEveryKindProperty) round-trips random objects of
// every registered kind and checks that the result is what encoding/json,
// which the API speaks, makes of the same object. An object that cannot be
// written so that it reads back (a time outside RFC 3339's years) fails
// EncodeApplyOps, on the proposer; an entry that still cannot be decoded is
// skipped by the FSM, never a panic (see fsm.Apply).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// MessageType is the first byte of every command in the log.
type MessageType uint8

const (
	// ApplyOpsType applies a batch of store.Op in order.
	ApplyOpsType MessageType = 1

	// IgnoreUnknownTypeFlag marks a command type that a replica which does
	// not know it may skip. Set it only on commands whose absence leaves
	// the store's state unchanged (hints, no-ops, metrics); a state change
	// must never carry it.
	IgnoreUnknownTypeFlag MessageType = 0x80
)

// applyOpsVersion is the current layout of the ApplyOpsType payload.
const applyOpsVersion = 1

// EncodeApplyOps encodes a batch of ops as one ApplyOpsType command. It
// fails on an op whose object is of a kind the api registry does not know,
// which a replica could not decode.
func EncodeApplyOps(ops []store.Op) ([]byte, error) {
	body, err := encodeOpsBody(ops)
	if err != nil {
		return nil, err
	}
	return assembleApplyOps(len(ops), body), nil
}

// encodeOpsBody encodes the per-op part of an ApplyOpsType payload. Bodies
// of several callers concatenate into one command (assembleApplyOps), which
// is how the proposal batcher turns many Propose calls into one log entry
// while each caller pays for encoding its own objects.
func encodeOpsBody(ops []store.Op) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(512 * len(ops))
	for i, op := range ops {
		buf.WriteByte(byte(op.Type))
		if op.Object == nil {
			putString(&buf, "")
		} else {
			kind := api.KindOf(op.Object)
			if _, ok := api.LookupKind(kind); !ok {
				return nil, fmt.Errorf("consensus: encode op %d: object of type %T is not a registered kind", i, op.Object)
			}
			// The same library as DecodeApplyOps (see the top of
			// this file).
			data, err := gojson.Marshal(op.Object)
			if err != nil {
				return nil, fmt.Errorf("consensus: encode op %d (%s): %w", i, kind, err)
			}
			putString(&buf, kind)
			putBytes(&buf, data)
		}
		putString(&buf, op.Key.Kind)
		putString(&buf, op.Key.Namespace)
		putString(&buf, op.Key.Name)
		var tmp [binary.MaxVarintLen64]byte
		buf.Write(tmp[:binary.PutVarint(tmp[:], op.ResourceVersion)])
	}
	return buf.Bytes(), nil
}

// assembleApplyOps frames count ops, already encoded back to back in the
// bodies, as one ApplyOpsType command.
func assembleApplyOps(count int, bodies ...[]byte) []byte {
	size := 2 + binary.MaxVarintLen64
	for _, b := range bodies {
		size += len(b)
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteByte(byte(ApplyOpsType))
	buf.WriteByte(applyOpsVersion)
	putUvarint(&buf, uint64(count))
	for _, b := range bodies {
		buf.Write(b)
	}
	return buf.Bytes()
}

// DecodeApplyOps decodes the payload of an ApplyOpsType command (the bytes
// after the type byte).
func DecodeApplyOps(payload []byte) ([]store.Op, error) {
	d := decoder{buf: payload}
	version := d.byte()
	if d.err == nil && version != applyOpsVersion {
		return nil, fmt.Errorf("%w: apply-ops payload version %d, this binary knows %d", ErrCorruptCommand, version, applyOpsVersion)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.buf)) { // every op takes at least one byte
		d.fail("op count %d exceeds the payload", n)
	}
	var ops []store.Op
	if d.err == nil {
		ops = make([]store.Op, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var op store.Op
		op.Type = store.OpType(d.byte())
		if kind := d.string(); kind != "" {
			data := d.bytes()
			if d.err != nil {
				break
			}
			info, ok := api.LookupKind(kind)
			if !ok {
				d.fail("op %d: unknown kind %q", i, kind)
				break
			}
			obj := info.New()
			// The library EncodeApplyOps wrote it with.
			if err := gojson.Unmarshal(data, obj); err != nil {
				d.fail("op %d: %s: %v", i, kind, err)
				break
			}
			// Its strings point into the decoder's copy of data: copy
			// them out so the store does not keep the whole encoding.
			store.Intern(obj)
			op.Object = obj
		}
		op.Key.Kind = d.string()
		op.Key.Namespace = d.string()
		op.Key.Name = d.string()
		op.ResourceVersion = d.varint()
		ops = append(ops, op)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return nil, d.err
	}
	return ops, nil
}

func putUvarint(b *bytes.Buffer, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	b.Write(tmp[:binary.PutUvarint(tmp[:], v)])
}

func putString(b *bytes.Buffer, s string) {
	putUvarint(b, uint64(len(s)))
	b.WriteString(s)
}

func putBytes(b *bytes.Buffer, p []byte) {
	putUvarint(b, uint64(len(p)))
	b.Write(p)
}

// decoder reads the payload front to back and keeps the first error; after
// an error every read returns a zero value.
type decoder struct {
	buf []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: apply-ops: %s", ErrCorruptCommand, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail("%v", errTruncated)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad unsigned varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("bad signed varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("%v: need %d bytes, have %d", errTruncated, n, len(d.buf))
		return nil
	}
	p := d.buf[:n:n]
	d.buf = d.buf[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }
