package apiserver

import (
	"context"
	"errors"
	"net/http"
	"reflect"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// dryRunAll is the one value of dryRun Kubernetes defines.
const dryRunAll = "All"

// parseDryRun checks dryRun values (from the query or a DeleteOptions
// body): each must be "All"; any makes the request a dry run.
func parseDryRun(values []string) (bool, *api.StatusError) {
	for _, v := range values {
		if v != dryRunAll {
			return false, api.NewBadRequest("dryRun: %q is not supported (the only value is All)", v)
		}
	}
	return len(values) > 0, nil
}

// queryDryRun reads the dryRun query parameter.
func queryDryRun(r *http.Request) (bool, *api.StatusError) {
	return parseDryRun(r.URL.Query()["dryRun"])
}

// dryRunCreate answers a dry-run create of next (defaulted, validated and
// completed): as the store would, it refuses a name already taken.
func (p *proposer) dryRunCreate(ctx context.Context, info api.KindInfo, next api.Object) (api.Object, error) {
	if err := p.backend.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	_, err := p.reader.Get(store.KeyOf(next))
	switch {
	case err == nil:
		return nil, api.NewAlreadyExists(info, next.GetObjectMeta().Name)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return next, nil
}

// dryRunUpdate is what the store would make of an update of old to next:
// a status write keeps old's metadata and spec, any other write keeps
// old's status and counts a spec change in metadata.generation. The
// resourceVersion stays old's: nothing was written.
func dryRunUpdate(old, next api.Object, status bool) api.Object {
	if status {
		out := old.DeepCopyObject()
		copyField(out, next, "Status")
		return out
	}
	out := next.DeepCopyObject()
	copyField(out, old, "Status")
	ov, nv := reflect.ValueOf(old).Elem().FieldByName("Spec"), reflect.ValueOf(out).Elem().FieldByName("Spec")
	if ov.IsValid() && !reflect.DeepEqual(ov.Interface(), nv.Interface()) {
		out.GetObjectMeta().Generation++
	}
	return out
}

// copyField sets dst's field name to a deep copy of src's, for two objects
// of the same kind; a kind without the field is left alone.
func copyField(dst, src api.Object, name string) {
	dv := reflect.ValueOf(dst).Elem().FieldByName(name)
	if !dv.IsValid() {
		return
	}
	c := src.DeepCopyObject()
	dv.Set(reflect.ValueOf(c).Elem().FieldByName(name))
}
