package api

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Label selectors follow kubectl's syntax:
//
//	a=b  a==b  a!=b  a in (x,y)  a notin (x)  a  !a
//
// joined by commas, with any whitespace around the tokens. The value list of
// in/notin holds comma-separated values, each possibly empty: "()" is the set
// holding only the empty value, "(,x)" holds "" and "x". On a label that is
// absent, "!=" and "notin" hold; "=", "in" and exists do not. Requirements
// built in code need at least one value for in/notin (none matches nothing
// with "in" and everything with "notin").

// Label selector operators, as stored in LabelRequirement.Operator.
const (
	OpEquals       = "="
	OpNotEquals    = "!="
	OpIn           = "in"
	OpNotIn        = "notin"
	OpExists       = "exists"
	OpDoesNotExist = "!"
)

// Limits of label keys and values, as in Kubernetes.
const (
	MaxLabelNameLength   = 63  // the name part of a key, and a value
	MaxLabelPrefixLength = 253 // the DNS subdomain before "/"
)

// LabelRequirement is one term of a label selector.
type LabelRequirement struct {
	Key      string
	Operator string // =, !=, in, notin, exists, !
	Values   []string
}

// Selector is a parsed label selector: every requirement must hold. A nil
// or empty Selector matches everything.
type Selector []LabelRequirement

// ValidateLabelKey checks a label key: an optional DNS subdomain prefix and
// "/", then a name of at most 63 characters made of alphanumerics, '-', '_'
// and '.', starting and ending with an alphanumeric.
func ValidateLabelKey(k string) error {
	if k == "" {
		return fmt.Errorf("label key must not be empty")
	}
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if err := validateDNSSubdomain(prefix); err != nil {
			return fmt.Errorf("label key %q: prefix %w", k, err)
		}
		if strings.IndexByte(name, '/') >= 0 {
			return fmt.Errorf("label key %q: at most one '/' is allowed", k)
		}
	}
	if name == "" {
		return fmt.Errorf("label key %q: name part must not be empty", k)
	}
	if err := validateLabelName(name); err != nil {
		return fmt.Errorf("label key %q: name part %w", k, err)
	}
	return nil
}

// ValidateLabelValue checks a label value: empty, or at most 63 characters
// made of alphanumerics, '-', '_' and '.', starting and ending with an
// alphanumeric.
func ValidateLabelValue(v string) error {
	if v == "" {
		return nil
	}
	if err := validateLabelName(v); err != nil {
		return fmt.Errorf("label value %q: %w", v, err)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validateLabelName(s string) error {
	if len(s) > MaxLabelNameLength {
		return fmt.Errorf("must be at most %d characters (has %d)", MaxLabelNameLength, len(s))
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return fmt.Errorf("must start and end with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("must contain only letters, digits, '-', '_' and '.' (found %q)", c)
		}
	}
	return nil
}

// validateDNSSubdomain checks a lower-case RFC 1123 subdomain.
func validateDNSSubdomain(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > MaxLabelPrefixLength {
		return fmt.Errorf("must be at most %d characters (has %d)", MaxLabelPrefixLength, len(s))
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return fmt.Errorf("must not have empty dot-separated parts")
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			lowerAlnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if !lowerAlnum && c != '-' {
				return fmt.Errorf("must be a lower-case DNS subdomain (found %q)", c)
			}
			if c == '-' && (i == 0 || i == len(part)-1) {
				return fmt.Errorf("must not start or end a dot-separated part with '-'")
			}
		}
	}
	return nil
}

// ParseSelector parses a label selector in kubectl syntax. The empty string
// is the empty selector, which matches everything. Errors quote the term
// that failed.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	terms, err := splitTerms(s)
	if err != nil {
		return nil, err
	}
	sel := make(Selector, 0, len(terms))
	for _, t := range terms {
		r, err := parseTerm(t)
		if err != nil {
			return nil, fmt.Errorf("label selector term %q: %w", strings.TrimSpace(t), err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits at commas that are not inside parentheses.
func splitTerms(s string) ([]string, error) {
	var terms []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				terms = append(terms, s[start:i])
				start = i + 1
			}
		}
	}
	terms = append(terms, s[start:])
	for i, t := range terms {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("label selector %q: term %d is empty", s, i+1)
		}
	}
	return terms, nil
}

// token kinds of the term lexer.
const (
	tokEOF = iota
	tokWord
	tokEq    // = or ==
	tokNotEq // !=
	tokNot   // !
	tokOpen
	tokClose
	tokComma
)

type token struct {
	kind int
	text string
}

func lexTerm(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{tokEq, "=="})
				i += 2
			} else {
				toks = append(toks, token{tokEq, "="})
				i++
			}
		case c == '!':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{tokNotEq, "!="})
				i += 2
			} else {
				toks = append(toks, token{tokNot, "!"})
				i++
			}
		case c == '(':
			toks = append(toks, token{tokOpen, "("})
			i++
		case c == ')':
			toks = append(toks, token{tokClose, ")"})
			i++
		case c == ',':
			toks = append(toks, token{tokComma, ","})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r=!(),", rune(s[j])) {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j]})
			i = j
		}
	}
	return append(toks, token{kind: tokEOF})
}

func parseTerm(term string) (LabelRequirement, error) {
	toks := lexTerm(term)
	pos := 0
	next := func() token { t := toks[pos]; pos++; return t }
	peek := func() token { return toks[pos] }
	end := func(r LabelRequirement) (LabelRequirement, error) {
		if t := peek(); t.kind != tokEOF {
			return LabelRequirement{}, fmt.Errorf("unexpected %q after the requirement", t.text)
		}
		return r, nil
	}

	if peek().kind == tokNot {
		next()
		k := next()
		if k.kind != tokWord {
			return LabelRequirement{}, fmt.Errorf("expected a label key after '!'")
		}
		if err := ValidateLabelKey(k.text); err != nil {
			return LabelRequirement{}, err
		}
		return end(LabelRequirement{Key: k.text, Operator: OpDoesNotExist})
	}
	k := next()
	if k.kind != tokWord {
		return LabelRequirement{}, fmt.Errorf("expected a label key, found %q", k.text)
	}
	if err := ValidateLabelKey(k.text); err != nil {
		return LabelRequirement{}, err
	}
	op := next()
	switch {
	case op.kind == tokEOF:
		return LabelRequirement{Key: k.text, Operator: OpExists}, nil
	case op.kind == tokEq || op.kind == tokNotEq:
		v := ""
		if peek().kind == tokWord {
			v = next().text
		}
		if err := ValidateLabelValue(v); err != nil {
			return LabelRequirement{}, err
		}
		o := OpEquals
		if op.kind == tokNotEq {
			o = OpNotEquals
		}
		return end(LabelRequirement{Key: k.text, Operator: o, Values: []string{v}})
	case op.kind == tokWord && (op.text == OpIn || op.text == OpNotIn):
		if t := next(); t.kind != tokOpen {
			return LabelRequirement{}, fmt.Errorf("expected '(' after %q", op.text)
		}
		var vals []string
		expectValue := true
		for {
			t := next()
			switch {
			case t.kind == tokClose:
				if expectValue { // "()" or "(a,)": an empty value
					vals = append(vals, "")
				}
				return end(LabelRequirement{Key: k.text, Operator: op.text, Values: vals})
			case t.kind == tokWord && expectValue:
				if err := ValidateLabelValue(t.text); err != nil {
					return LabelRequirement{}, err
				}
				vals = append(vals, t.text)
				expectValue = false
			case t.kind == tokComma:
				if expectValue { // "(,a)" or "(a,,b)": an empty value
					vals = append(vals, "")
				}
				expectValue = true
			case t.kind == tokEOF:
				return LabelRequirement{}, fmt.Errorf("missing ')'")
			default:
				return LabelRequirement{}, fmt.Errorf("unexpected %q in the value set", t.text)
			}
		}
	default:
		return LabelRequirement{}, fmt.Errorf("unknown operator %q (want =, ==, !=, in, notin)", op.text)
	}
}

// SelectorFromSet returns the selector requiring every key=value of set.
// A nil or empty set gives the empty selector, which matches everything.
func SelectorFromSet(set map[string]string) Selector {
	if len(set) == 0 {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sel := make(Selector, 0, len(keys))
	for _, k := range keys {
		sel = append(sel, LabelRequirement{Key: k, Operator: OpEquals, Values: []string{set[k]}})
	}
	return sel
}

// nothingKey is the label key of the selector that matches nothing.
const nothingKey = "shoal.dev/match-nothing"

// Nothing returns a selector that matches no object: it requires a label to
// exist and not to exist. It survives String and ParseSelector.
func Nothing() Selector {
	return Selector{
		{Key: nothingKey, Operator: OpExists},
		{Key: nothingKey, Operator: OpDoesNotExist},
	}
}

// LabelSelectorAsSelector converts the manifest form of a selector. As in
// Kubernetes, a nil *LabelSelector matches nothing (see Nothing) and an empty
// one matches everything. Errors name the offending field.
func LabelSelectorAsSelector(ls *LabelSelector) (Selector, error) {
	if ls == nil {
		return Nothing(), nil
	}
	var sel Selector
	keys := make([]string, 0, len(ls.MatchLabels))
	for k := range ls.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := ls.MatchLabels[k]
		if err := ValidateLabelKey(k); err != nil {
			return nil, fmt.Errorf("matchLabels[%q]: %w", k, err)
		}
		if err := ValidateLabelValue(v); err != nil {
			return nil, fmt.Errorf("matchLabels[%q]: %w", k, err)
		}
		sel = append(sel, LabelRequirement{Key: k, Operator: OpEquals, Values: []string{v}})
	}
	for i, e := range ls.MatchExpressions {
		field := "matchExpressions[" + strconv.Itoa(i) + "]"
		if err := ValidateLabelKey(e.Key); err != nil {
			return nil, fmt.Errorf("%s.key: %w", field, err)
		}
		r := LabelRequirement{Key: e.Key}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				return nil, fmt.Errorf("%s.values: must not be empty for operator %s", field, e.Operator)
			}
			for j, v := range e.Values {
				if err := ValidateLabelValue(v); err != nil {
					return nil, fmt.Errorf("%s.values[%d]: %w", field, j, err)
				}
			}
			r.Operator = OpIn
			if e.Operator == "NotIn" {
				r.Operator = OpNotIn
			}
			r.Values = append([]string(nil), e.Values...)
		case "Exists", "DoesNotExist":
			if len(e.Values) != 0 {
				return nil, fmt.Errorf("%s.values: must be empty for operator %s", field, e.Operator)
			}
			r.Operator = OpExists
			if e.Operator == "DoesNotExist" {
				r.Operator = OpDoesNotExist
			}
		default:
			return nil, fmt.Errorf("%s.operator: %q is not one of In, NotIn, Exists, DoesNotExist", field, e.Operator)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// Matches reports whether labels satisfy every requirement. A requirement
// with an operator this package does not know matches nothing.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.matches(labels) {
			return false
		}
	}
	return true
}

func (r LabelRequirement) matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case OpEquals, "==":
		return ok && len(r.Values) == 1 && v == r.Values[0]
	case OpNotEquals:
		return !ok || len(r.Values) != 1 || v != r.Values[0]
	case OpIn:
		return ok && slices.Contains(r.Values, v)
	case OpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case OpExists:
		return ok
	case OpDoesNotExist:
		return !ok
	}
	return false
}

// opRank orders requirements on the same key in the canonical form.
func opRank(op string) int {
	switch op {
	case OpExists:
		return 0
	case OpDoesNotExist:
		return 1
	case OpEquals, "==":
		return 2
	case OpNotEquals:
		return 3
	case OpIn:
		return 4
	case OpNotIn:
		return 5
	}
	return 6
}

// String renders the canonical form: requirements sorted by key, then
// operator, then values; the values of in/notin sorted and deduplicated.
// ParseSelector(s.String()) selects the same objects as s.
func (s Selector) String() string {
	parts := make([]string, 0, len(s))
	for _, r := range s {
		parts = append(parts, r.canonical())
	}
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := s[idx[a]], s[idx[b]]
		if ra.Key != rb.Key {
			return ra.Key < rb.Key
		}
		if opRank(ra.Operator) != opRank(rb.Operator) {
			return opRank(ra.Operator) < opRank(rb.Operator)
		}
		return parts[idx[a]] < parts[idx[b]]
	})
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = parts[j]
	}
	return strings.Join(out, ",")
}

func (r LabelRequirement) canonical() string {
	first := ""
	if len(r.Values) > 0 {
		first = r.Values[0]
	}
	switch r.Operator {
	case OpEquals, "==":
		return r.Key + "=" + first
	case OpNotEquals:
		return r.Key + "!=" + first
	case OpIn, OpNotIn:
		vals := slices.Clone(r.Values)
		sort.Strings(vals)
		vals = slices.Compact(vals)
		return r.Key + " " + r.Operator + " (" + strings.Join(vals, ",") + ")"
	case OpExists:
		return r.Key
	case OpDoesNotExist:
		return "!" + r.Key
	}
	return r.Key + " " + r.Operator + " (" + strings.Join(r.Values, ",") + ")"
}
