package apiserver

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// TestOpenAPIPatchStrategy: the lists the strategic merge patch merges by
// key carry x-kubernetes-patch-strategy and -merge-key in the OpenAPI
// schemas (kubectl builds its apply and edit patches from them); other
// lists carry neither.
func TestOpenAPIPatchStrategy(t *testing.T) {
	for _, v3 := range []bool{false, true} {
		b := newSchemaBuilder(v3)
		b.addKinds(func(api.KindInfo) bool { return true })
		prop := func(def, field string) map[string]any {
			t.Helper()
			d, _ := b.defs[schemaDefPrefix+def].(map[string]any)
			props, _ := d["properties"].(map[string]any)
			p, _ := props[field].(map[string]any)
			if p == nil {
				t.Fatalf("v3=%v: no %s.%s", v3, def, field)
			}
			return p
		}
		for _, c := range []struct{ def, field, key string }{
			{"PodSpec", "containers", "name"},
			{"PodSpec", "initContainers", "name"},
			{"PodSpec", "volumes", "name"},
			{"Container", "ports", "containerPort"},
			{"Container", "env", "name"},
			{"Container", "volumeMounts", "mountPath"},
			{"ServiceSpec", "ports", "port"},
			{"ObjectMeta", "ownerReferences", "uid"},
			{"Container", "args", ""},
			{"PodSpec", "tolerations", ""},
		} {
			p := prop(c.def, c.field)
			strategy, _ := p["x-kubernetes-patch-strategy"].(string)
			key, _ := p["x-kubernetes-patch-merge-key"].(string)
			if want := map[bool]string{true: "merge"}[c.key != ""]; strategy != want || key != c.key {
				t.Errorf("v3=%v %s.%s: strategy %q key %q, want %q %q", v3, c.def, c.field, strategy, key, want, c.key)
			}
		}
	}
}
