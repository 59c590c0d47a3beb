package store

import (
	"reflect"
	"sync"
)

// walkField is what the reflective walks over objects (Intern, objectSize)
// need of one struct field: worked out once per type, since reflect's
// Type.Field builds a whole StructField on every call, and that was most of
// those walks' cost (CPU profile of the hollow apply, 100 nodes, 5,000 pods).
type walkField struct {
	index int
	// own: the field holds a value that is, as a rule, its object's own
	// (ownValue).
	own bool
}

// walkFieldsCache maps a struct type to its walkFields.
var walkFieldsCache sync.Map // reflect.Type -> []walkField

// walkFields returns the exported fields of struct type t that may reach a
// string, in order; fields of scalar kinds add nothing to either walk and
// are left out, as are unexported ones (the api types keep nothing there
// but time.Time's shared location).
func walkFields(t reflect.Type) []walkField {
	if f, ok := walkFieldsCache.Load(t); ok {
		return f.([]walkField)
	}
	var fs []walkField
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || !holdsStrings(sf.Type) {
			continue
		}
		fs = append(fs, walkField{index: i, own: ownValue(sf.Name)})
	}
	walkFieldsCache.Store(t, fs)
	return fs
}
