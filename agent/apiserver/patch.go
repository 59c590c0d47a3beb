package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Media types of PATCH bodies.
const (
	mediaJSONPatch      = "application/json-patch+json"
	mediaMergePatch     = "application/merge-patch+json"
	mediaStrategicPatch = "application/strategic-merge-patch+json"
	mediaApplyPatch     = "application/apply-patch+yaml"
)

// maxPatchAttempts bounds the re-reads of a patch that lost a race with
// another writer.
const maxPatchAttempts = 5

// patchFunc applies a patch to a JSON document.
type patchFunc func(doc []byte) ([]byte, error)

// patchType reads a PATCH's Content-Type: 415 for anything else than the
// four patch types.
func patchType(r *http.Request) (string, *api.StatusError) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case mediaJSONPatch, mediaMergePatch, mediaStrategicPatch, mediaApplyPatch:
			return mt, nil
		}
	}
	return "", api.NewStatusError(http.StatusUnsupportedMediaType, api.ReasonUnsupportedMediaType, nil,
		"PATCH: Content-Type %q is not supported (use %s, %s, %s or %s)", ct,
		mediaJSONPatch, mediaMergePatch, mediaStrategicPatch, mediaApplyPatch)
}

// readPatch reads a PATCH body and returns the function that applies it,
// checking its shape first: a malformed patch is a 400 whatever the
// object holds.
func (s *Server) readPatch(w http.ResponseWriter, r *http.Request, mt string) ([]byte, patchFunc, *api.StatusError) {
	data, serr := s.readBodyRaw(w, r)
	if serr != nil {
		return nil, nil, serr
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil, api.NewBadRequest("the request body is empty; send a patch")
	}
	switch mt {
	case mediaJSONPatch:
		ops, err := parseJSONPatch(data)
		if err != nil {
			return nil, nil, api.NewBadRequest("%v", err)
		}
		return data, func(doc []byte) ([]byte, error) { return applyJSONPatch(doc, ops) }, nil
	case mediaMergePatch, mediaStrategicPatch:
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, nil, api.NewBadRequest("a %s body is a JSON object: %v", mt, err)
		}
		if mt == mediaMergePatch {
			return data, func(doc []byte) ([]byte, error) { return applyMergePatch(doc, data) }, nil
		}
		return data, func(doc []byte) ([]byte, error) { return applyStrategicPatch(doc, data) }, nil
	}
	return data, nil, nil
}

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request, t target) {
	mt, serr := patchType(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	dryRun, serr := queryDryRun(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	data, apply, serr := s.readPatch(w, r, mt)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	if mt == mediaApplyPatch {
		s.handleApply(w, r, t, data, dryRun)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	out, err := s.prop.patch(ctx, t.info, t.key(), t.status, func(old api.Object) (api.Object, error) {
		return patchObject(t.info, old, apply)
	}, s.nodeAdmission(r.Context(), t, VerbPatch), dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	s.writeObject(w, r, http.StatusOK, out)
}

// patchObject applies a patch to old's JSON and decodes the result, which
// must still be the same object: a result that does not decode, or renames
// or moves the object, is a 422 naming the field.
func patchObject(info api.KindInfo, old api.Object, apply patchFunc) (api.Object, error) {
	om := old.GetObjectMeta()
	doc, err := json.Marshal(withTypeMeta(old))
	if err != nil {
		return nil, err
	}
	patched, err := apply(doc)
	if err != nil {
		var pe *patchError
		if errors.As(err, &pe) {
			return nil, api.NewInvalid(info, om.Name, []api.StatusCause{{Type: "FieldValueInvalid", Message: pe.Error()}})
		}
		return nil, api.NewBadRequest("applying the patch: %v", err)
	}
	obj := info.New()
	if err := api.DecodeInto(patched, obj); err != nil {
		if errors.Is(err, api.ErrTooLarge) {
			return nil, api.NewStatusError(http.StatusRequestEntityTooLarge, api.ReasonRequestEntityTooLarge, nil, "the patched object: %v", err)
		}
		var fes api.FieldErrors
		if errors.As(err, &fes) {
			return nil, api.NewInvalid(info, om.Name, causesOf(fes))
		}
		return nil, api.NewInvalid(info, om.Name, []api.StatusCause{{Type: "FieldValueInvalid", Message: "the patched object does not decode: " + err.Error()}})
	}
	m := obj.GetObjectMeta()
	if m.Name != om.Name {
		return nil, api.NewInvalid(info, om.Name, []api.StatusCause{{Type: "FieldValueInvalid", Field: "metadata.name",
			Message: "the patch may not rename the object (" + om.Name + " to " + m.Name + ")"}})
	}
	if m.Namespace != om.Namespace {
		return nil, api.NewInvalid(info, om.Name, []api.StatusCause{{Type: "FieldValueInvalid", Field: "metadata.namespace",
			Message: "the patch may not move the object to another namespace"}})
	}
	return obj, nil
}

// patch applies apply to the current object and stores the result, within
// the same checks as update (admit, validation). The patch is applied to
// the version read and written as a compare-and-swap against it; when
// another writer got there first, it is applied again to the new version
// (at most maxPatchAttempts times), unless the patch itself set a
// resourceVersion other than the one read, which is then a precondition:
// 409 when it does not hold.
func (p *proposer) patch(ctx context.Context, info api.KindInfo, key store.Key, status bool, apply func(old api.Object) (api.Object, error), admit admitFunc, dryRun bool) (api.Object, error) {
	if err := p.backend.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		old, err := p.reader.Get(key)
		if err != nil {
			return nil, err
		}
		obj, err := apply(old)
		if err != nil {
			return nil, err
		}
		wantRV, err := obj.GetObjectMeta().ResourceVersionInt()
		if err != nil {
			return nil, api.NewInvalid(info, key.Name, []api.StatusCause{{Type: "FieldValueInvalid", Field: "metadata.resourceVersion", Message: err.Error()}})
		}
		oldRV, err := old.GetObjectMeta().ResourceVersionInt()
		if err != nil {
			return nil, err
		}
		retryable := wantRV == 0 || wantRV == oldRV
		if !status {
			api.SetDefaults(obj)
		}
		out, err := p.replace(ctx, info, obj, old, wantRV, status, admit, dryRun)
		if err != nil && retryable && errors.Is(err, store.ErrConflict) && attempt < maxPatchAttempts {
			continue
		}
		return out, err
	}
}
