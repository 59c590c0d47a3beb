package store

import (
	"fmt"
	"reflect"

	"github.com/shoal-dev/shoal/api"
)

// kindShape is what the store needs to know about the Go type of a kind,
// worked out once by reflection when the package loads.
type kindShape struct {
	info   api.KindInfo
	spec   int // index of the Spec field, -1 if the kind has none
	status int // index of the Status field, -1 if the kind has none
}

var shapes = func() map[string]*kindShape {
	m := make(map[string]*kindShape)
	for _, k := range api.Kinds() {
		t := reflect.TypeOf(k.New()).Elem()
		s := &kindShape{info: k, spec: -1, status: -1}
		if f, ok := t.FieldByName("Spec"); ok && len(f.Index) == 1 {
			s.spec = f.Index[0]
		}
		if f, ok := t.FieldByName("Status"); ok && len(f.Index) == 1 {
			s.status = f.Index[0]
		}
		m[k.Kind] = s
	}
	return m
}()

// shapeOf returns the shape of a served kind.
func shapeOf(kind string) (*kindShape, error) {
	s, ok := shapes[kind]
	if !ok {
		if kind == "" {
			return nil, fmt.Errorf("%w: missing kind", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: unknown kind %q (served: %v)", ErrInvalid, kind, api.KindNames())
	}
	return s, nil
}

// specEqual reports whether two objects of this kind have equal specs.
func (s *kindShape) specEqual(a, b api.Object) bool {
	return reflect.DeepEqual(
		reflect.ValueOf(a).Elem().Field(s.spec).Interface(),
		reflect.ValueOf(b).Elem().Field(s.spec).Interface())
}

// copyStatus sets dst's status to src's (a shallow copy: both are read-only
// once stored, so sharing slices and maps is safe).
func (s *kindShape) copyStatus(dst, src api.Object) {
	reflect.ValueOf(dst).Elem().Field(s.status).Set(reflect.ValueOf(src).Elem().Field(s.status))
}

// shallowCopy returns a new object whose top-level fields equal obj's. It
// shares maps and slices with obj, which is fine for read-only objects as
// long as only top-level value fields (such as metadata.resourceVersion) are
// changed on the copy.
func shallowCopy(obj api.Object) api.Object {
	v := reflect.ValueOf(obj).Elem()
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return c.Interface().(api.Object)
}

// checkKey validates a key against its kind's scope and returns the shape.
func checkKey(k Key) (*kindShape, error) {
	s, err := shapeOf(k.Kind)
	if err != nil {
		return nil, err
	}
	if k.Name == "" {
		return nil, fmt.Errorf("%w: %s: metadata.name must not be empty", ErrInvalid, s.info.Resource)
	}
	if s.info.Namespaced && k.Namespace == "" {
		return nil, fmt.Errorf("%w: %s %q: metadata.namespace must be set for a namespaced kind", ErrInvalid, s.info.Resource, k.Name)
	}
	if !s.info.Namespaced && k.Namespace != "" {
		return nil, fmt.Errorf("%w: %s %q: metadata.namespace must be empty for a cluster-scoped kind (got %q)", ErrInvalid, s.info.Resource, k.Name, k.Namespace)
	}
	return s, nil
}

// describe names an object in errors: pods "default/web", nodes "n1".
func describe(s *kindShape, k Key) string {
	if k.Namespace == "" {
		return fmt.Sprintf("%s %q", s.info.Resource, k.Name)
	}
	return fmt.Sprintf("%s %q", s.info.Resource, k.Namespace+"/"+k.Name)
}
