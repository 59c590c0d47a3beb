package api

// STUB: replaced by the selector implementation. Signatures are final.

// LabelRequirement is one term of a label selector.
type LabelRequirement struct {
	Key      string
	Operator string // =, !=, in, notin, exists, !
	Values   []string
}

// Selector is a parsed label selector: every requirement must hold. A nil
// or empty Selector matches everything.
type Selector []LabelRequirement

// FieldRequirement is one term of a field selector: Field = or != Value.
type FieldRequirement struct {
	Field    string
	Operator string // =, !=
	Value    string
}

// FieldSelector is a parsed field selector; empty matches everything.
type FieldSelector []FieldRequirement

func ParseSelector(s string) (Selector, error)                    { panic("not implemented") }
func ParseFieldSelector(s string) (FieldSelector, error)          { panic("not implemented") }
func SelectorFromSet(set map[string]string) Selector              { panic("not implemented") }
func LabelSelectorAsSelector(ls *LabelSelector) (Selector, error) { panic("not implemented") }
func (s Selector) Matches(labels map[string]string) bool          { panic("not implemented") }
func (s Selector) String() string                                 { panic("not implemented") }
func (f FieldSelector) Matches(obj Object) bool                   { panic("not implemented") }
func (f FieldSelector) String() string                            { panic("not implemented") }

// FieldValue returns the value of a selectable field of obj: metadata.name,
// metadata.namespace for every kind; spec.nodeName and status.phase for pods;
// spec.unschedulable for nodes. ok is false for a field the kind lacks.
func FieldValue(obj Object, field string) (value string, ok bool) { panic("not implemented") }
