package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Quantity is a resource amount as Kubernetes writes it: "500m", "2",
// "128Mi", "1.5Gi", "1e3". A manifest may also give a bare number.
type Quantity string

// MustQuantity is for literals in code and tests.
func MustQuantity(s string) Quantity {
	q := Quantity(s)
	if _, err := q.MilliValue(); err != nil {
		panic(err)
	}
	return q
}

func (q *Quantity) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a quantity such as \"500m\" or \"128Mi\"")
	}
	*q = Quantity(n.String())
	return nil
}

var quantitySuffixes = []struct {
	suffix string
	mult   *big.Rat
}{
	{"Ki", new(big.Rat).SetInt64(1 << 10)},
	{"Mi", new(big.Rat).SetInt64(1 << 20)},
	{"Gi", new(big.Rat).SetInt64(1 << 30)},
	{"Ti", new(big.Rat).SetInt64(1 << 40)},
	{"Pi", new(big.Rat).SetInt64(1 << 50)},
	{"Ei", new(big.Rat).SetInt64(1 << 60)},
	{"m", big.NewRat(1, 1000)},
	{"k", new(big.Rat).SetInt64(1e3)},
	{"M", new(big.Rat).SetInt64(1e6)},
	{"G", new(big.Rat).SetInt64(1e9)},
	{"T", new(big.Rat).SetInt64(1e12)},
	{"P", new(big.Rat).SetInt64(1e15)},
	{"E", new(big.Rat).SetInt64(1e18)},
}

func (q Quantity) rat() (*big.Rat, error) {
	s := strings.TrimSpace(string(q))
	if s == "" {
		return nil, fmt.Errorf("empty quantity")
	}
	mult := big.NewRat(1, 1)
	num := s
	for _, sf := range quantitySuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			num = strings.TrimSuffix(s, sf.suffix)
			mult = sf.mult
			break
		}
	}
	if num == "" || strings.ContainsAny(num, "/ _") || strings.HasPrefix(num, "-") || strings.HasPrefix(num, "+") {
		return nil, fmt.Errorf("quantity %q: must be a non-negative number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ...)", s)
	}
	if strings.ContainsAny(num, "eE") && mult.Cmp(big.NewRat(1, 1)) != 0 {
		return nil, fmt.Errorf("quantity %q: an exponent and a suffix cannot be combined", s)
	}
	// Bound the exponent so that parsing cannot be made to allocate huge numbers.
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		var e int
		if _, err := fmt.Sscanf(num[i+1:], "%d", &e); err != nil || e > 18 || e < -9 {
			return nil, fmt.Errorf("quantity %q: exponent out of range", s)
		}
	}
	if len(num) > 40 {
		return nil, fmt.Errorf("quantity %q: too long", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, fmt.Errorf("quantity %q: must be a non-negative number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ...)", s)
	}
	return r.Mul(r, mult), nil
}

// MilliValue returns the quantity in thousandths, rounded up (CPU).
func (q Quantity) MilliValue() (int64, error) {
	r, err := q.rat()
	if err != nil {
		return 0, err
	}
	r.Mul(r, big.NewRat(1000, 1))
	return ratCeil(r, string(q))
}

// Value returns the quantity rounded up to a whole number (bytes, counts).
func (q Quantity) Value() (int64, error) {
	r, err := q.rat()
	if err != nil {
		return 0, err
	}
	return ratCeil(r, string(q))
}

func ratCeil(r *big.Rat, s string) (int64, error) {
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if new(big.Rat).SetInt(n).Cmp(r) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() || n.Int64() > math.MaxInt64/2 {
		return 0, fmt.Errorf("quantity %q: too large", s)
	}
	return n.Int64(), nil
}

// ResourceList maps a resource name (cpu, memory, pods, ...) to an amount.
type ResourceList map[string]Quantity

const (
	ResourceCPU     = "cpu"
	ResourceMemory  = "memory"
	ResourcePods    = "pods"
	ResourceStorage = "storage"
)
