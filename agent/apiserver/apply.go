package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Server-side apply, the part Shoal has: create-or-merge by field manager.
// The configuration a manager applies is kept, per manager, in the
// annotation AppliedAnnotation; the next apply of the same manager is a
// strategic merge of the new configuration over the live object, plus the
// removal of the fields (map keys, and elements of lists merged by key)
// that its previous configuration set and the new one leaves out. There is
// no per-field ownership: a field another writer set is overwritten without
// a conflict, and force is accepted but changes nothing.

// AppliedAnnotation holds a JSON object mapping each field manager to the
// configuration it last applied.
const AppliedAnnotation = "apply.shoal.dev/applied"

// maxFieldManagerLen is Kubernetes' bound on a fieldManager.
const maxFieldManagerLen = 128

func checkFieldManager(m string) *api.StatusError {
	switch {
	case m == "":
		return api.NewBadRequest("fieldManager: required for an apply patch (%s)", mediaApplyPatch)
	case len(m) > maxFieldManagerLen:
		return api.NewBadRequest("fieldManager: %d characters, the limit is %d", len(m), maxFieldManagerLen)
	case strings.IndexFunc(m, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return api.NewBadRequest("fieldManager: %q holds characters that are not printable", m)
	}
	return nil
}

// appliedRecord reads an object's AppliedAnnotation; a record that does not
// parse counts as empty (the next apply rewrites it).
func appliedRecord(m *api.ObjectMeta) map[string]map[string]any {
	rec := map[string]map[string]any{}
	if v, ok := m.Annotations[AppliedAnnotation]; ok {
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			return map[string]map[string]any{}
		}
	}
	return rec
}

// setApplied stores rec in obj's AppliedAnnotation.
func setApplied(obj api.Object, rec map[string]map[string]any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	m := obj.GetObjectMeta()
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[AppliedAnnotation] = string(b)
	return nil
}

func (s *Server) handleApply(w http.ResponseWriter, r *http.Request, t target, data []byte, dryRun bool) {
	if t.status {
		s.WriteError(w, r, api.NewStatusError(http.StatusUnsupportedMediaType, api.ReasonUnsupportedMediaType, nil,
			"server-side apply to the status subresource is not supported; use a merge patch"))
		return
	}
	manager := r.URL.Query().Get("fieldManager")
	if serr := checkFieldManager(manager); serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	if _, serr := queryBool(r, "force"); serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	// The configuration is checked as an object of the URL's kind, then
	// kept as the generic document the manager sent.
	cfg := t.info.New()
	if err := api.DecodeInto(data, cfg); err != nil {
		s.WriteError(w, r, decodeStatus(err, t.info))
		return
	}
	cm := cfg.GetObjectMeta()
	switch {
	case cm.Name != "" && cm.Name != t.name:
		s.WriteError(w, r, api.NewBadRequest("metadata.name: %q does not match the name in the URL, %q", cm.Name, t.name))
		return
	case cm.Namespace != "" && cm.Namespace != t.namespace:
		s.WriteError(w, r, api.NewBadRequest("metadata.namespace: %q does not match the namespace in the URL, %q", cm.Namespace, t.namespace))
		return
	case cm.Annotations[AppliedAnnotation] != "":
		s.WriteError(w, r, api.NewBadRequest("metadata.annotations: %s is kept by the server and may not be applied", AppliedAnnotation))
		return
	}
	cm.Name, cm.Namespace = t.name, t.namespace
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		s.WriteError(w, r, api.NewBadRequest("the apply configuration: %v", err))
		return
	}
	var applied map[string]any
	if err := json.Unmarshal(js, &applied); err != nil {
		s.WriteError(w, r, api.NewBadRequest("the apply configuration is not one object: %v", err))
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if err := s.cfg.Backend.ReadBarrier(ctx); err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	for attempt := 1; ; attempt++ {
		_, err := s.cfg.Reader.Get(t.key())
		if errors.Is(err, store.ErrNotFound) {
			obj := cfg.DeepCopyObject()
			if err := setApplied(obj, map[string]map[string]any{manager: applied}); err != nil {
				s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
				return
			}
			if admit := s.nodeAdmission(r.Context(), t, VerbCreate); admit != nil {
				if err := admit(nil, obj); err != nil {
					s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
					return
				}
			}
			out, err := s.prop.create(ctx, t.info, obj, dryRun)
			if api.IsAlreadyExists(err) && attempt < maxPatchAttempts {
				continue // created meanwhile: merge into it
			}
			if err != nil {
				s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
				return
			}
			s.writeObject(w, r, http.StatusCreated, out)
			return
		}
		if err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
			return
		}
		break
	}
	out, err := s.prop.patch(ctx, t.info, t.key(), false, func(old api.Object) (api.Object, error) {
		rec := appliedRecord(old.GetObjectMeta())
		patch, err := json.Marshal(applyPatchFor(rec[manager], applied, nil))
		if err != nil {
			return nil, err
		}
		obj, err := patchObject(t.info, old, func(doc []byte) ([]byte, error) { return applyStrategicPatch(doc, patch) })
		if err != nil {
			return nil, err
		}
		rec[manager] = applied
		return obj, setApplied(obj, rec)
	}, s.nodeAdmission(r.Context(), t, VerbPatch), dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	s.writeObject(w, r, http.StatusOK, out)
}

// applyPatchFor builds the strategic merge patch of an apply: cur, plus a
// deletion of each field prev set that cur leaves out (null for a map key,
// a "$patch: delete" element for an element of a list merged by key).
// Lists merged as a whole are replaced by cur's anyway.
func applyPatchFor(prev, cur map[string]any, path []string) map[string]any {
	patch := map[string]any{}
	for k, v := range cur {
		patch[k] = deepCopyJSON(v)
	}
	for k, pv := range prev {
		cv, ok := cur[k]
		if !ok {
			patch[k] = nil
			continue
		}
		child := append(append([]string(nil), path...), k)
		switch p := pv.(type) {
		case map[string]any:
			if c, ok := cv.(map[string]any); ok {
				patch[k] = applyPatchFor(p, c, child)
			}
		case []any:
			c, ok := cv.([]any)
			key, keyed := mergeKeyFor(child)
			if !ok || !keyed {
				continue
			}
			patch[k] = applyListPatchFor(p, c, key, child)
		}
	}
	return patch
}

func applyListPatchFor(prev, cur []any, key string, path []string) []any {
	index := func(list []any) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, e := range list {
			if em, ok := e.(map[string]any); ok && em[key] != nil {
				if _, dup := m[keyString(em[key])]; !dup {
					m[keyString(em[key])] = em
				}
			}
		}
		return m
	}
	inPrev, inCur := index(prev), index(cur)
	out := make([]any, 0, len(cur))
	for _, e := range cur {
		cm, ok := e.(map[string]any)
		if !ok {
			out = append(out, deepCopyJSON(e))
			continue
		}
		if pm := inPrev[keyString(cm[key])]; pm != nil {
			out = append(out, applyPatchFor(pm, cm, path))
		} else {
			out = append(out, deepCopyJSON(cm))
		}
	}
	for _, e := range prev {
		pm, ok := e.(map[string]any)
		if !ok || pm[key] == nil || inCur[keyString(pm[key])] != nil {
			continue
		}
		out = append(out, map[string]any{key: pm[key], directivePatch: "delete"})
	}
	return out
}
