package api

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrorType classifies a FieldError.
type ErrorType string

// The kinds of field error. Each prints in its own way; see FieldError.Error.
const (
	// ErrorRequired: a field that must be set is missing or empty.
	ErrorRequired ErrorType = "Required"
	// ErrorInvalid: the value has the right type but breaks a rule.
	ErrorInvalid ErrorType = "Invalid"
	// ErrorNotSupported: the value is not one of an enumerated set.
	ErrorNotSupported ErrorType = "NotSupported"
	// ErrorUnknown: the manifest has a field Shoal does not know.
	ErrorUnknown ErrorType = "Unknown"
	// ErrorTooLong: a string or a collection is longer than allowed.
	ErrorTooLong ErrorType = "TooLong"
	// ErrorTypeMismatch: the manifest has a value of the wrong JSON type.
	ErrorTypeMismatch ErrorType = "TypeMismatch"
	// ErrorDuplicate: a value that must be unique appears twice.
	ErrorDuplicate ErrorType = "Duplicate"
	// ErrorForbidden: the field may not be set here, or not changed.
	ErrorForbidden ErrorType = "Forbidden"
	// ErrorNotFound: the value refers to something that does not exist,
	// such as a volume mount naming no volume of the pod.
	ErrorNotFound ErrorType = "NotFound"
	// ErrorTooMany: more errors were found than are reported.
	ErrorTooMany ErrorType = "TooMany"
)

// FieldError is one problem with one field of an object. Path names the
// field the way a manifest spells it: dots between fields, [i] for list
// elements and [key] for map entries, e.g. metadata.labels[app] or
// spec.template.spec.containers[0].image.
type FieldError struct {
	Type   ErrorType
	Path   string
	Value  any    // the offending value, for Invalid, NotSupported and Duplicate
	Detail string // what is wrong, or for NotSupported the allowed values
}

// Error prints the error the way Kubernetes users are used to reading it:
//
//	spec.template.spec.containers[0].image: Required value
//	spec.replicas: Invalid value: -1: must be greater than or equal to 0
//	spec.template.spec.containers[0].imagePullPolcy: unknown field
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	switch e.Type {
	case ErrorRequired:
		b.WriteString("Required value")
		if e.Detail != "" {
			b.WriteString(": " + e.Detail)
		}
	case ErrorInvalid:
		b.WriteString("Invalid value: " + formatValue(e.Value))
		if e.Detail != "" {
			b.WriteString(": " + e.Detail)
		}
	case ErrorNotSupported:
		b.WriteString("Unsupported value: " + formatValue(e.Value))
		if e.Detail != "" {
			b.WriteString(": supported values: " + e.Detail)
		}
	case ErrorUnknown:
		b.WriteString("unknown field")
	case ErrorTooLong:
		b.WriteString("Too long: " + e.Detail)
	case ErrorDuplicate:
		b.WriteString("Duplicate value: " + formatValue(e.Value))
	case ErrorForbidden:
		b.WriteString("Forbidden: " + e.Detail)
	case ErrorNotFound:
		b.WriteString("Not found: " + formatValue(e.Value))
	default: // TypeMismatch, TooMany and anything else carry their whole text
		b.WriteString(e.Detail)
	}
	return b.String()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case Quantity:
		return strconv.Quote(string(x))
	case IntOrString:
		if x.IsString {
			return strconv.Quote(x.StrVal)
		}
		return strconv.Itoa(int(x.IntVal))
	case *IntOrString:
		if x == nil {
			return "null"
		}
		return formatValue(*x)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprint(x)
	}
	// Anything structured prints as the JSON a manifest would hold.
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// Constructors for the common cases.

func Required(path, detail string) FieldError {
	return FieldError{Type: ErrorRequired, Path: path, Detail: detail}
}

func Invalid(path string, value any, detail string) FieldError {
	return FieldError{Type: ErrorInvalid, Path: path, Value: value, Detail: detail}
}

// NotSupported lists the allowed values in its message.
func NotSupported(path string, value any, allowed []string) FieldError {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = strconv.Quote(a)
	}
	return FieldError{Type: ErrorNotSupported, Path: path, Value: value, Detail: strings.Join(q, ", ")}
}

func UnknownField(path string) FieldError {
	return FieldError{Type: ErrorUnknown, Path: path}
}

// TooLong says that the field may hold at most max bytes (or entries, with
// unit "items").
func TooLong(path string, max int, unit string) FieldError {
	return FieldError{Type: ErrorTooLong, Path: path, Detail: fmt.Sprintf("must have at most %d %s", max, unit)}
}

func TypeMismatch(path, detail string) FieldError {
	return FieldError{Type: ErrorTypeMismatch, Path: path, Detail: detail}
}

func Duplicate(path string, value any) FieldError {
	return FieldError{Type: ErrorDuplicate, Path: path, Value: value}
}

func Forbidden(path, detail string) FieldError {
	return FieldError{Type: ErrorForbidden, Path: path, Detail: detail}
}

func NotFound(path string, value any) FieldError {
	return FieldError{Type: ErrorNotFound, Path: path, Value: value}
}

// MaxFieldErrors is how many field errors one object reports at most; the
// rest are summarised by a final TooMany error.
const MaxFieldErrors = 20

// FieldErrors is every problem found in one object. A nil or empty list
// means none; use ErrOrNil to turn it into an error value.
type FieldErrors []FieldError

// Error joins the errors with "; ".
func (l FieldErrors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// ErrOrNil returns nil for an empty list and the list otherwise, avoiding
// the trap of a nil FieldErrors wrapped in a non-nil error interface.
func (l FieldErrors) ErrOrNil() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sorted orders the errors by path, keeping the order of errors on the
// same path, and caps the list at MaxFieldErrors. It returns nil for an
// empty list.
func (l FieldErrors) Sorted() FieldErrors {
	if len(l) == 0 {
		return nil
	}
	out := make(FieldErrors, 0, len(l))
	var more int
	for _, e := range l {
		if e.Type == ErrorTooMany {
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return pathLess(out[i].Path, out[j].Path) })
	if len(out) > MaxFieldErrors {
		more = len(out) - MaxFieldErrors
		out = out[:MaxFieldErrors:MaxFieldErrors]
		out = append(out, FieldError{Type: ErrorTooMany, Detail: fmt.Sprintf("and %d more errors", more)})
	}
	return out
}

// pathLess orders paths as text, except that runs of digits compare as
// numbers, so that containers[2] comes before containers[10].
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// HasType reports whether some error in the list has type t.
func (l FieldErrors) HasType(t ErrorType) bool {
	for _, e := range l {
		if e.Type == t {
			return true
		}
	}
	return false
}

// path builds field paths: child fields join with dots, list indexes and
// map keys go in brackets.
type path string

func (p path) child(name string) path {
	if p == "" {
		return path(name)
	}
	return p + "." + path(name)
}

func (p path) index(i int) path { return p + path("["+strconv.Itoa(i)+"]") }

func (p path) key(k string) path { return p + path("["+k+"]") }

func (p path) String() string { return string(p) }

// causeReasons maps our error types to the reasons Kubernetes puts in the
// causes of an Invalid status.
var causeReasons = map[ErrorType]string{
	ErrorRequired:     "FieldValueRequired",
	ErrorInvalid:      "FieldValueInvalid",
	ErrorNotSupported: "FieldValueNotSupported",
	ErrorUnknown:      "FieldValueUnknown",
	ErrorTooLong:      "FieldValueTooLong",
	ErrorTypeMismatch: "FieldValueTypeInvalid",
	ErrorDuplicate:    "FieldValueDuplicate",
	ErrorForbidden:    "FieldValueForbidden",
	ErrorNotFound:     "FieldValueNotFound",
	ErrorTooMany:      "FieldValueTooMany",
}

// Causes turns the list into the causes of an Invalid Status (see
// NewInvalid): the message of each is the error without its path.
func (l FieldErrors) Causes() []StatusCause {
	out := make([]StatusCause, len(l))
	for i, e := range l {
		msg := e
		msg.Path = ""
		out[i] = StatusCause{Type: causeReasons[e.Type], Field: e.Path, Message: msg.Error()}
	}
	return out
}
