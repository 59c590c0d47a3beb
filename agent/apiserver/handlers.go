package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, t target) {
	if err := s.barrier(r); err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	obj, err := s.cfg.Reader.Get(t.key())
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	if !t.status {
		tb, serr := s.newTabler(r, t)
		if serr != nil {
			s.WriteError(w, r, serr)
			return
		}
		if tb != nil {
			s.writeTable(w, r, tb, []api.Object{obj}, 0)
			return
		}
	}
	s.writeObject(w, r, http.StatusOK, obj)
}

// parseSelector reads labelSelector and fieldSelector; a field the kind
// cannot be selected on is an error.
func parseSelector(r *http.Request, info api.KindInfo) (store.Selector, *api.StatusError) {
	var sel store.Selector
	q := r.URL.Query()
	if v := q.Get("labelSelector"); v != "" {
		ls, err := api.ParseSelector(v)
		if err != nil {
			return sel, api.NewBadRequest("labelSelector: %v", err)
		}
		sel.Labels = ls
	}
	if v := q.Get("fieldSelector"); v != "" {
		fs, err := api.ParseFieldSelector(v)
		if err != nil {
			return sel, api.NewBadRequest("fieldSelector: %v", err)
		}
		probe := info.New()
		for _, req := range fs {
			if _, ok := api.FieldValue(probe, req.Field); !ok {
				return sel, api.NewBadRequest("fieldSelector: field %q is not supported for %s", req.Field, info.Kind)
			}
		}
		sel.Fields = fs
	}
	return sel, nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, t target) {
	sel, serr := parseSelector(r, t.info)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	watch, serr := queryBool(r, "watch")
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	if watch {
		s.serveWatch(w, r, t, sel)
		return
	}
	s.serveList(w, r, t, sel)
}

// acceptedContentTypes are the media types a request body may declare; no
// Content-Type at all is accepted too.
var acceptedContentTypes = map[string]bool{
	"application/json":   true,
	"application/yaml":   true,
	"application/x-yaml": true,
	"text/yaml":          true,
}

// mediaProtobuf is Kubernetes' protobuf encoding, which Shoal does not
// read. kubectl's typed clients (kubectl create deployment|configmap|
// namespace|secret|service ...) send it whatever discovery says, so the
// refusal tells the kubectl user what works instead.
const (
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	protobufHint  = "; kubectl create <kind> sends protobuf: render the object with `kubectl create <kind> ... --dry-run=client -o yaml` and send it with `kubectl apply -f -` (or write the manifest and apply it)"
)

// readBody reads a request body within the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *api.StatusError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !acceptedContentTypes[mt] {
			hint := ""
			if mt == mediaProtobuf {
				hint = protobufHint
			}
			return nil, api.NewStatusError(http.StatusUnsupportedMediaType, api.ReasonUnsupportedMediaType, nil,
				"Content-Type %q is not supported (use application/json or application/yaml)%s", ct, hint)
		}
	}
	return s.readBodyRaw(w, r)
}

// readBodyRaw reads a request body within the size limit, whatever its
// Content-Type.
func (s *Server) readBodyRaw(w http.ResponseWriter, r *http.Request) ([]byte, *api.StatusError) {
	tooLarge := api.NewStatusError(http.StatusRequestEntityTooLarge, api.ReasonRequestEntityTooLarge, nil,
		"request body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	data, err := readAllSized(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, api.NewBadRequest("reading the request body: %v", err)
	}
	return data, nil
}

// maxPresized bounds readAllSized's first buffer.
const maxPresized = 64 << 10

// readAllSized is io.ReadAll for a body whose length the request declared
// (size; -1 or 0: unknown): one buffer of that size instead of ReadAll's
// doublings from 512 bytes. The first buffer is at most maxPresized, so a
// client that declares megabytes and sends them slowly does not hold them
// before they arrive. A body longer than declared still reads whole.
func readAllSized(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, min(size, maxPresized)+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow, as ReadAll does
		}
	}
}

// readObject reads and strictly decodes the body as an object of the URL's
// kind and checks it against the URL: namespace, and name for an existing
// object. It neither defaults nor validates.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, t target) (api.Object, *api.StatusError) {
	data, serr := s.readBody(w, r)
	if serr != nil {
		return nil, serr
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, api.NewBadRequest("the request body is empty; send a %s object", t.info.Kind)
	}
	obj := t.info.New()
	if err := api.DecodeInto(data, obj); err != nil {
		return nil, decodeStatus(err, t.info)
	}
	m := obj.GetObjectMeta()
	if t.info.Namespaced {
		switch m.Namespace {
		case "":
			m.Namespace = t.namespace
		case t.namespace:
		default:
			return nil, api.NewBadRequest("metadata.namespace: %q does not match the namespace in the URL, %q", m.Namespace, t.namespace)
		}
	} else if m.Namespace != "" {
		return nil, api.NewBadRequest("metadata.namespace: must be empty, %s is not namespaced (got %q)", t.info.Kind, m.Namespace)
	}
	if t.name != "" {
		switch m.Name {
		case "":
			m.Name = t.name
		case t.name:
		default:
			return nil, api.NewBadRequest("metadata.name: %q does not match the name in the URL, %q", m.Name, t.name)
		}
	}
	return obj, nil
}

// decodeStatus turns a decoding error into a 400 naming the fields.
func decodeStatus(err error, info api.KindInfo) *api.StatusError {
	if errors.Is(err, api.ErrTooLarge) {
		return api.NewStatusError(http.StatusRequestEntityTooLarge, api.ReasonRequestEntityTooLarge, nil, "request body: %v", err)
	}
	serr := api.NewBadRequest("request body is not a valid %s: %v", info.Kind, err)
	var fes api.FieldErrors
	if errors.As(err, &fes) {
		serr.ErrStatus.Details = &api.StatusDetails{Kind: info.Kind, Group: info.Group, Causes: causesOf(fes)}
	}
	return serr
}

// causesOf lists field errors as Status causes.
func causesOf(fes api.FieldErrors) []api.StatusCause {
	out := make([]api.StatusCause, len(fes))
	for i, fe := range fes {
		msg := fe.Error()
		if fe.Path != "" {
			msg = strings.TrimPrefix(msg, fe.Path+": ")
		}
		out[i] = api.StatusCause{Type: "Field" + string(fe.Type), Message: msg, Field: fe.Path}
	}
	return out
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, t target) {
	obj, serr := s.readObject(w, r, t)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	if admit := s.nodeAdmission(r.Context(), t, VerbCreate); admit != nil {
		if err := admit(nil, obj); err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, obj.GetObjectMeta().Name))
			return
		}
	}
	dryRun, serr := queryDryRun(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	out, err := s.prop.create(ctx, t.info, obj, dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, obj.GetObjectMeta().Name))
		return
	}
	s.writeObject(w, r, http.StatusCreated, out)
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, t target) {
	obj, serr := s.readObject(w, r, t)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	dryRun, serr := queryDryRun(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	out, err := s.prop.update(ctx, t.info, obj, t.status, s.nodeAdmission(r.Context(), t, VerbUpdate), dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	s.writeObject(w, r, http.StatusOK, out)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, t target) {
	data, serr := s.readBody(w, r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	var opts api.DeleteOptions
	if len(strings.TrimSpace(string(data))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&opts); err != nil {
			s.WriteError(w, r, api.NewBadRequest("request body is not valid DeleteOptions: %v", err))
			return
		}
		if dec.More() {
			s.WriteError(w, r, api.NewBadRequest("request body holds more than one DeleteOptions object"))
			return
		}
		if opts.Kind != "" && opts.Kind != "DeleteOptions" {
			s.WriteError(w, r, api.NewBadRequest("kind: %q must be DeleteOptions", opts.Kind))
			return
		}
	}
	if v := r.URL.Query().Get("gracePeriodSeconds"); v != "" && opts.GracePeriodSeconds == nil {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.WriteError(w, r, api.NewBadRequest("gracePeriodSeconds: %q is not an integer", v))
			return
		}
		opts.GracePeriodSeconds = &g
	}
	q := r.URL.Query()
	if v := q.Get("propagationPolicy"); v != "" && opts.PropagationPolicy == nil {
		opts.PropagationPolicy = &v
	}
	if v := q.Get("orphanDependents"); v != "" && opts.OrphanDependents == nil {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.WriteError(w, r, api.NewBadRequest("orphanDependents: %q is not a boolean (use true or false)", v))
			return
		}
		opts.OrphanDependents = &b
	}
	dryRun, serr := parseDryRun(append(q["dryRun"], opts.DryRun...))
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	out, err := s.prop.delete(ctx, t.info, t.key(), opts, s.nodeAdmission(r.Context(), t, VerbDelete), dryRun)
	if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, t.name))
		return
	}
	s.writeObject(w, r, http.StatusOK, out)
}
