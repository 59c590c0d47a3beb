package chaos

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// OpKind is what a client asked of one key.
type OpKind uint8

const (
	// Read is a GET of the key's ConfigMap (linearizable by default).
	Read OpKind = iota
	// Write is a PUT without a resourceVersion: it replaces whatever is there.
	Write
	// CAS is a PUT with the resourceVersion the client last read: it
	// applies only if nobody wrote the key since.
	CAS
)

func (k OpKind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	case CAS:
		return "cas"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Input is one request as the client sent it.
type Input struct {
	Kind  OpKind
	Key   string
	Value string // Write, CAS: the value written, unique in the whole run
	RV    int64  // CAS: the resourceVersion the write is conditional on
}

// Result is how a request ended, as far as the client could tell.
type Result uint8

const (
	// OK: the server answered with success (read: the object or 404).
	OK Result = iota
	// Conflict: a CAS refused with 409 (its precondition did not hold).
	Conflict
	// Unknown: the request may or may not have been applied (504, a
	// timeout, a connection broken after the request was sent).
	Unknown
)

// Output is what the client learnt.
type Output struct {
	Result Result
	Found  bool   // Read: the object exists
	Value  string // Read: the value seen
	RV     int64  // Read, Write, CAS (OK): the object's resourceVersion
}

// state is one key's value in the sequential specification. rv is exact
// when known; after a write whose answer was lost it is only known to be
// above minRV (the store's revision grows with every write).
type state struct {
	found bool
	value string
	rv    int64 // > 0: exact; 0: unknown, but > minRV
	minRV int64
}

// step is the sequential specification of one key: a register with a
// version, written by plain writes and compare-and-set.
//
// An operation whose outcome is unknown is always applied here when it
// could have been: the checker may also order it after every other
// operation (its return time is the end of the history), which is the same
// as it never having been applied, so both possibilities are covered.
func step(s state, in Input, out Output) (bool, state) {
	switch in.Kind {
	case Read:
		if out.Result != OK {
			return true, s // never recorded; harmless
		}
		if out.Found != s.found || (s.found && out.Value != s.value) {
			return false, s
		}
		if !s.found {
			return true, s
		}
		if !s.rvMatches(out.RV) {
			return false, s
		}
		s.rv, s.minRV = out.RV, 0
		return true, s
	case Write:
		return s.write(in.Value, out)
	case CAS:
		if !s.found {
			// A CAS on a missing object is a 404 the client never records.
			return out.Result == Unknown, s
		}
		could := s.rv == 0 && in.RV > s.minRV || s.rv == in.RV
		switch out.Result {
		case Conflict:
			return s.rv != in.RV, s
		case OK:
			if !could {
				return false, s
			}
			return s.write(in.Value, out)
		default:
			if !could {
				return true, s
			}
			return s.write(in.Value, out)
		}
	}
	return false, s
}

func (s state) rvMatches(rv int64) bool {
	if s.rv != 0 {
		return rv == s.rv
	}
	return rv > s.minRV
}

// write applies a successful (or possibly applied) write of value.
func (s state) write(value string, out Output) (bool, state) {
	floor := s.rv
	if floor == 0 {
		floor = s.minRV
	}
	next := state{found: true, value: value}
	if out.Result == OK {
		if out.RV <= floor {
			return false, s // a later write must carry a later revision
		}
		next.rv = out.RV
	} else {
		next.minRV = floor
	}
	return true, next
}

// Model is the porcupine model of Shoal's object store seen through the
// HTTP API: independent keys, each a versioned register.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range h {
				k := op.Input.(Input).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() interface{} { return state{} },
		Step: func(s, in, out interface{}) (bool, interface{}) {
			return step(s.(state), in.(Input), out.(Output))
		},
		Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
		DescribeOperation: func(in, out interface{}) string {
			i, o := in.(Input), out.(Output)
			res := "ok"
			switch o.Result {
			case Conflict:
				res = "conflict"
			case Unknown:
				res = "unknown"
			}
			switch i.Kind {
			case Read:
				if !o.Found {
					return fmt.Sprintf("read(%s) -> absent", i.Key)
				}
				return fmt.Sprintf("read(%s) -> %s@%d", i.Key, o.Value, o.RV)
			case Write:
				return fmt.Sprintf("write(%s, %s) -> %s@%d", i.Key, i.Value, res, o.RV)
			default:
				return fmt.Sprintf("cas(%s, @%d, %s) -> %s@%d", i.Key, i.RV, i.Value, res, o.RV)
			}
		},
		DescribeState: func(s interface{}) string {
			st := s.(state)
			if !st.found {
				return "absent"
			}
			if st.rv == 0 {
				return fmt.Sprintf("%s@>%d", st.value, st.minRV)
			}
			return fmt.Sprintf("%s@%d", st.value, st.rv)
		},
	}
}

// Op is one recorded request.
type Op struct {
	Client int
	Home   int // the agent the client prefers
	Input  Input
	Output Output
	Call   int64 // ns since the run's start
	Return int64 // ns since the run's start; ignored when Output is Unknown
}

// Operations turns recorded requests into porcupine's form. An operation
// with an unknown outcome returns after everything else: it may take effect
// at any time after it was sent.
func Operations(ops []Op) []porcupine.Operation {
	end := int64(0)
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if op.Output.Result == Unknown {
			ret = end + 1
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output, Call: op.Call, Return: ret})
	}
	return out
}

// LostWrites counts acknowledged writes that the final state contradicts:
// for each key, the final value was written by some operation W; every
// write acknowledged to a client that was sent after W had returned should
// have replaced it, so each such write was lost. final maps a key to the
// value read at the end ("" when absent). A final value written by a
// request of unknown outcome loses nothing by this count (that request may
// have been applied last).
func LostWrites(ops []Op, final map[string]string) int {
	lost := 0
	for key, value := range final {
		var writer *Op
		for i := range ops {
			op := &ops[i]
			if op.Input.Key == key && op.Input.Kind != Read && op.Input.Value == value {
				writer = op
				break
			}
		}
		after := int64(math.MinInt64)
		if writer != nil {
			if writer.Output.Result == Unknown {
				continue
			}
			after = writer.Return
		}
		for _, op := range ops {
			if op.Input.Key != key || op.Input.Kind == Read || op.Output.Result != OK {
				continue
			}
			if op.Call > after && (writer == nil || op.Input.Value != writer.Input.Value) {
				lost++
			}
		}
	}
	return lost
}
