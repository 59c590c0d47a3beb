package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// The /scale subresource (autoscaling/v1 Scale) of Deployments,
// ReplicaSets and StatefulSets: GET reads spec.replicas and
// status.replicas, PUT and PATCH write spec.replicas and nothing else.

// Scale is autoscaling/v1's Scale.
type Scale struct {
	api.TypeMeta `json:",inline"`
	Metadata     api.ObjectMeta `json:"metadata"`
	Spec         ScaleSpec      `json:"spec"`
	Status       ScaleStatus    `json:"status"`
}

// ScaleSpec is the wanted number of replicas.
type ScaleSpec struct {
	Replicas int32 `json:"replicas"`
}

// ScaleStatus is the observed number of replicas and the selector of the
// pods, in the string form of a label selector.
type ScaleStatus struct {
	Replicas int32  `json:"replicas"`
	Selector string `json:"selector,omitempty"`
}

// scaleAPIVersion is the group and version of Scale.
const scaleAPIVersion = "autoscaling/v1"

// resolveScale recognises .../{deployments|replicasets|statefulsets}/{name}/scale
// and returns the target of the object it scales.
func resolveScale(group, version, rest string) (target, bool) {
	if !strings.HasSuffix(rest, "/scale") {
		return target{}, false
	}
	t, serr := resolve(group, version, strings.TrimSuffix(rest, "/scale"))
	if serr != nil || t.name == "" || t.status || !scalable(t.info.Kind) {
		return target{}, false
	}
	return t, true
}

func scalable(kind string) bool {
	switch kind {
	case "Deployment", "ReplicaSet", "StatefulSet":
		return true
	}
	return false
}

// replicasOf returns a pointer to the object's spec.replicas pointer.
func replicasOf(obj api.Object) (**int32, *api.LabelSelector, int32) {
	switch o := obj.(type) {
	case *api.Deployment:
		return &o.Spec.Replicas, o.Spec.Selector, o.Status.Replicas
	case *api.ReplicaSet:
		return &o.Spec.Replicas, o.Spec.Selector, o.Status.Replicas
	case *api.StatefulSet:
		return &o.Spec.Replicas, o.Spec.Selector, o.Status.Replicas
	}
	return nil, nil, 0
}

// scaleOf builds the Scale of a workload.
func scaleOf(obj api.Object) Scale {
	m := obj.GetObjectMeta()
	rp, sel, have := replicasOf(obj)
	sc := Scale{
		TypeMeta: api.TypeMeta{APIVersion: scaleAPIVersion, Kind: "Scale"},
		Metadata: api.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp},
		Status: ScaleStatus{Replicas: have},
	}
	if rp != nil && *rp != nil {
		sc.Spec.Replicas = **rp
	} else {
		sc.Spec.Replicas = 1
	}
	if s, err := api.LabelSelectorAsSelector(sel); err == nil && sel != nil {
		sc.Status.Selector = s.String()
	}
	return sc
}

// decodeScale reads a Scale strictly and checks it against the object.
func decodeScale(data []byte, t target) (Scale, *api.StatusError) {
	var sc Scale
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return sc, api.NewBadRequest("request body is not a valid Scale: %v", err)
	}
	if dec.More() {
		return sc, api.NewBadRequest("request body holds more than one Scale")
	}
	switch {
	case sc.Kind != "" && sc.Kind != "Scale":
		return sc, api.NewBadRequest("kind: %q must be Scale", sc.Kind)
	case sc.APIVersion != "" && sc.APIVersion != scaleAPIVersion:
		return sc, api.NewBadRequest("apiVersion: %q must be %s", sc.APIVersion, scaleAPIVersion)
	case sc.Metadata.Name != "" && sc.Metadata.Name != t.name:
		return sc, api.NewBadRequest("metadata.name: %q does not match the name in the URL, %q", sc.Metadata.Name, t.name)
	case sc.Metadata.Namespace != "" && sc.Metadata.Namespace != t.namespace:
		return sc, api.NewBadRequest("metadata.namespace: %q does not match the namespace in the URL, %q", sc.Metadata.Namespace, t.namespace)
	case sc.Spec.Replicas < 0:
		return sc, api.NewStatusError(http.StatusUnprocessableEntity, api.ReasonInvalid,
			&api.StatusDetails{Name: t.name, Kind: "Scale", Group: "autoscaling",
				Causes: []api.StatusCause{{Type: "FieldValueInvalid", Field: "spec.replicas", Message: "must be greater than or equal to 0"}}},
			"Scale.autoscaling %q is invalid: spec.replicas: Invalid value: %d: must be greater than or equal to 0", t.name, sc.Spec.Replicas)
	}
	return sc, nil
}

func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, t target) {
	switch r.Method {
	case http.MethodGet:
		if err := s.barrier(r); err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
			return
		}
		obj, err := s.cfg.Reader.Get(t.key())
		if err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
			return
		}
		s.WriteJSON(w, r, http.StatusOK, scaleOf(obj))
	case http.MethodPut, http.MethodPatch:
		s.writeScale(w, r, t)
	default:
		s.MethodNotAllowed(w, r, "GET, PUT, PATCH")
	}
}

// writeScale serves PUT (a Scale) and PATCH (a patch of the Scale) by
// setting the workload's spec.replicas, retried like a patch. A
// resourceVersion in the Scale is a precondition on the workload's.
func (s *Server) writeScale(w http.ResponseWriter, r *http.Request, t target) {
	dryRun, serr := queryDryRun(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	var data []byte
	var apply patchFunc
	verb := VerbUpdate
	if r.Method == http.MethodPatch {
		verb = VerbPatch
		mt, serr := patchType(r)
		if serr == nil && mt == mediaApplyPatch {
			serr = api.NewStatusError(http.StatusUnsupportedMediaType, api.ReasonUnsupportedMediaType, nil,
				"server-side apply to the scale subresource is not supported; use a merge patch")
		}
		if serr != nil {
			s.WriteError(w, r, serr)
			return
		}
		if _, apply, serr = s.readPatch(w, r, mt); serr != nil {
			s.WriteError(w, r, serr)
			return
		}
	} else {
		if data, serr = s.readBody(w, r); serr != nil {
			s.WriteError(w, r, serr)
			return
		}
		if _, serr := decodeScale(data, t); serr != nil {
			s.WriteError(w, r, serr)
			return
		}
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	out, err := s.prop.patch(ctx, t.info, t.key(), false, func(old api.Object) (api.Object, error) {
		body := data
		if apply != nil {
			cur, err := json.Marshal(scaleOf(old))
			if err != nil {
				return nil, err
			}
			if body, err = apply(cur); err != nil {
				var pe *patchError
				if errors.As(err, &pe) {
					return nil, api.NewStatusError(http.StatusUnprocessableEntity, api.ReasonInvalid, nil, "Scale.autoscaling %q is invalid: %v", t.name, err)
				}
				return nil, api.NewBadRequest("applying the patch: %v", err)
			}
		}
		sc, serr := decodeScale(body, t)
		if serr != nil {
			return nil, serr
		}
		om := old.GetObjectMeta()
		if sc.Metadata.ResourceVersion != "" && sc.Metadata.ResourceVersion != om.ResourceVersion {
			return nil, api.NewConflict(t.info, t.name, conflictMessage)
		}
		if sc.Metadata.UID != "" && sc.Metadata.UID != om.UID {
			return nil, api.NewConflict(t.info, t.name, fmt.Sprintf("metadata.uid %q does not match the stored object's %q", sc.Metadata.UID, om.UID))
		}
		next := old.DeepCopyObject()
		rp, _, _ := replicasOf(next)
		n := sc.Spec.Replicas
		*rp = &n
		return next, nil
	}, s.nodeAdmission(r.Context(), t, verb), dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	s.WriteJSON(w, r, http.StatusOK, scaleOf(out))
}
