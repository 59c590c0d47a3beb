package chaos

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func rd(client int, call, ret int64, value string, rv int64) Op {
	return Op{Client: client, Input: Input{Kind: Read, Key: "k"}, Output: Output{Found: true, Value: value, RV: rv}, Call: call, Return: ret}
}

func wr(client int, call, ret int64, value string, rv int64, res Result) Op {
	return Op{Client: client, Input: Input{Kind: Write, Key: "k", Value: value}, Output: Output{Result: res, RV: rv}, Call: call, Return: ret}
}

func cas(client int, call, ret int64, from int64, value string, rv int64, res Result) Op {
	return Op{Client: client, Input: Input{Kind: CAS, Key: "k", Value: value, RV: from}, Output: Output{Result: res, RV: rv}, Call: call, Return: ret}
}

func TestModel(t *testing.T) {
	cases := []struct {
		name  string
		ops   []Op
		legal bool
	}{
		{"sequential", []Op{wr(0, 0, 1, "a", 5, OK), rd(1, 2, 3, "a", 5), cas(0, 4, 5, 5, "b", 7, OK), rd(1, 6, 7, "b", 7)}, true},
		{"stale read after an acknowledged write", []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 3, "b", 6, OK), rd(1, 4, 5, "a", 5)}, false},
		{"concurrent reads may see either", []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 10, "b", 6, OK), rd(1, 4, 5, "a", 5), rd(2, 4, 5, "b", 6)}, true},
		{"new value then old value", []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 10, "b", 6, OK), rd(2, 4, 5, "b", 6), rd(1, 6, 7, "a", 5)}, false},
		{"concurrent read sees the new value", []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 10, "b", 6, OK), rd(1, 4, 5, "b", 6)}, true},
		{"two CAS from one version both succeed", []Op{wr(0, 0, 1, "a", 5, OK), cas(1, 2, 3, 5, "b", 6, OK), cas(2, 4, 5, 5, "c", 7, OK)}, false},
		{"CAS conflict when nothing changed", []Op{wr(0, 0, 1, "a", 5, OK), cas(1, 2, 3, 5, "b", 0, Conflict)}, false},
		{"CAS conflict after a write", []Op{wr(0, 0, 1, "a", 5, OK), wr(2, 2, 3, "x", 6, OK), cas(1, 4, 5, 5, "b", 0, Conflict)}, true},
		{"unknown write seen later", []Op{wr(0, 0, 1, "a", 5, OK), wr(1, 2, 3, "b", 0, Unknown), rd(2, 4, 5, "b", 9)}, true},
		{"unknown write never seen", []Op{wr(0, 0, 1, "a", 5, OK), wr(1, 2, 3, "b", 0, Unknown), rd(2, 4, 5, "a", 5)}, true},
		{"unknown write seen then lost", []Op{wr(0, 0, 1, "a", 5, OK), wr(1, 2, 3, "b", 0, Unknown), rd(2, 4, 5, "b", 9), rd(2, 6, 7, "a", 5)}, false},
		{"revision going back", []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 3, "b", 4, OK)}, false},
		{"read of a value never written", []Op{wr(0, 0, 1, "a", 5, OK), rd(1, 2, 3, "z", 5)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := porcupine.CheckOperations(Model(), Operations(c.ops))
			if res != c.legal {
				t.Fatalf("linearizable = %v, want %v", res, c.legal)
			}
		})
	}
}

func TestLostWrites(t *testing.T) {
	ops := []Op{wr(0, 0, 1, "a", 5, OK), wr(0, 2, 3, "b", 6, OK), wr(1, 4, 5, "c", 0, Unknown), wr(0, 6, 7, "d", 8, OK)}
	for _, c := range []struct {
		final string
		lost  int
	}{{"d", 0}, {"b", 1}, {"a", 2}, {"c", 0}, {"", 3}} {
		if got := LostWrites(ops, map[string]string{"k": c.final}); got != c.lost {
			t.Errorf("final %q: %d lost, want %d", c.final, got, c.lost)
		}
	}
}
