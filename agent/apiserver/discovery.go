package apiserver

import (
	"net/http"
	"runtime"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// Discovery: what kubectl and client-go read before anything else. The
// documents are built from api.Kinds, so a kind added to the registry is
// discovered without another list to keep in step.
//
// kubectl ≥ 1.30 first asks for the aggregated form
// (application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList)
// and gets it (discovery_aggregated.go); a client that asks for plain JSON
// gets the legacy documents and fetches /api/v1 and /apis/apps/v1 one by
// one.

// APIVersions is the body of /api.
type APIVersions struct {
	api.TypeMeta               `json:",inline"`
	Versions                   []string                    `json:"versions"`
	ServerAddressByClientCIDRs []ServerAddressByClientCIDR `json:"serverAddressByClientCIDRs"`
}

// ServerAddressByClientCIDR is where clients of a network should reach the
// server; Shoal lists none (every agent answers on its own address).
type ServerAddressByClientCIDR struct {
	ClientCIDR    string `json:"clientCIDR"`
	ServerAddress string `json:"serverAddress"`
}

// APIGroupList is the body of /apis.
type APIGroupList struct {
	api.TypeMeta `json:",inline"`
	Groups       []APIGroup `json:"groups"`
}

// APIGroup is one named group and its versions.
type APIGroup struct {
	api.TypeMeta     `json:",inline"`
	Name             string                      `json:"name"`
	Versions         []GroupVersionForDiscovery  `json:"versions"`
	PreferredVersion GroupVersionForDiscovery    `json:"preferredVersion"`
	ServerAddresses  []ServerAddressByClientCIDR `json:"serverAddressByClientCIDRs,omitempty"`
}

// GroupVersionForDiscovery names one version of a group.
type GroupVersionForDiscovery struct {
	GroupVersion string `json:"groupVersion"`
	Version      string `json:"version"`
}

// APIResourceList is the body of /api/v1 and /apis/{group}/{version}.
type APIResourceList struct {
	api.TypeMeta `json:",inline"`
	GroupVersion string        `json:"groupVersion"`
	Resources    []APIResource `json:"resources"`
}

// APIResource is one resource or subresource ("pods/status").
type APIResource struct {
	Name         string   `json:"name"`
	SingularName string   `json:"singularName"`
	Namespaced   bool     `json:"namespaced"`
	Group        string   `json:"group,omitempty"`
	Version      string   `json:"version,omitempty"`
	Kind         string   `json:"kind"`
	Verbs        []string `json:"verbs"`
	ShortNames   []string `json:"shortNames,omitempty"`
	Categories   []string `json:"categories,omitempty"`
}

// ResourceVerbs are the verbs the Server serves on every resource: list and
// watch on collections, create on a namespace's collection (and on
// cluster-scoped ones), get, update, patch and delete on objects.
// deletecollection is not served.
//
// patch is served by the PATCH handlers (issue 13, part 3). kubectl needs
// it listed, and described in the OpenAPI document with the
// fieldValidation parameter, to leave validation to the server: without
// it, kubectl apply --validate=strict falls back to the protobuf OpenAPI
// v2 document, which Shoal does not serve, and refuses to apply.
var ResourceVerbs = []string{VerbCreate, VerbDelete, VerbGet, VerbList, VerbPatch, VerbUpdate, VerbWatch}

// categoryAll lists the resources `kubectl get all` shows, as Kubernetes
// puts them in the "all" category.
var categoryAll = map[string]bool{
	"pods": true, "services": true, "replicasets": true,
	"deployments": true, "daemonsets": true, "statefulsets": true,
}

// subresource is a subresource served for some kind.
type subresource struct {
	name  string
	kind  string // the kind its body is ("" means the parent's)
	verbs []string
	// applies reports whether the kind has it.
	applies func(api.KindInfo) bool
}

// subresources are the subresources Shoal serves: status here, pods/log,
// exec, attach and portforward by the agent (agent/cluster_route.go),
// routed to the agent that runs the pod.
var subresources = []subresource{
	{name: "status", verbs: []string{VerbGet, VerbUpdate}, applies: hasStatus},
	{name: "log", verbs: []string{VerbGet}, applies: isPods},
	{name: "exec", kind: "PodExecOptions", verbs: []string{VerbCreate, VerbGet}, applies: isPods},
	{name: "attach", kind: "PodAttachOptions", verbs: []string{VerbCreate, VerbGet}, applies: isPods},
	{name: "portforward", kind: "PodPortForwardOptions", verbs: []string{VerbCreate, VerbGet}, applies: isPods},
}

func isPods(k api.KindInfo) bool { return k.Group == "" && k.Resource == "pods" }

// groupVersions lists the served group/versions, core first, then named
// groups in registry order.
func groupVersions() (core []string, groups []GroupVersionForDiscovery) {
	for _, k := range api.Kinds() {
		if k.Group == "" {
			if !slices.Contains(core, k.Version) {
				core = append(core, k.Version)
			}
			continue
		}
		gv := GroupVersionForDiscovery{GroupVersion: k.APIVersion(), Version: k.Version}
		if !slices.Contains(groups, gv) {
			groups = append(groups, gv)
		}
	}
	return core, groups
}

// resourceList builds the APIResourceList of one group/version; ok is false
// when no kind is served there.
func resourceList(group, version string) (APIResourceList, bool) {
	l := APIResourceList{
		TypeMeta:  api.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		Resources: []APIResource{},
	}
	for _, k := range api.Kinds() {
		if k.Group != group || k.Version != version {
			continue
		}
		l.GroupVersion = k.APIVersion()
		r := APIResource{
			Name:         k.Resource,
			SingularName: strings.ToLower(k.Kind),
			Namespaced:   k.Namespaced,
			Kind:         k.Kind,
			Verbs:        ResourceVerbs,
			ShortNames:   k.ShortNames,
		}
		if categoryAll[k.Resource] {
			r.Categories = []string{"all"}
		}
		l.Resources = append(l.Resources, r)
		for _, sub := range subresources {
			if !sub.applies(k) {
				continue
			}
			kind := sub.kind
			if kind == "" {
				kind = k.Kind
			}
			l.Resources = append(l.Resources, APIResource{
				Name: k.Resource + "/" + sub.name, Namespaced: k.Namespaced, Kind: kind, Verbs: sub.verbs,
			})
		}
	}
	return l, l.GroupVersion != ""
}

// discoveryGET answers 405 unless the request is a GET (or HEAD).
func (s *Server) discoveryGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.MethodNotAllowed(w, r, "GET")
		return false
	}
	return true
}

func (s *Server) serveAPIVersions(w http.ResponseWriter, r *http.Request) {
	if !s.discoveryGET(w, r) || s.serveAggregated(w, r, true) {
		return
	}
	core, _ := groupVersions()
	s.WriteJSON(w, r, http.StatusOK, APIVersions{
		TypeMeta:                   api.TypeMeta{Kind: "APIVersions"},
		Versions:                   core,
		ServerAddressByClientCIDRs: []ServerAddressByClientCIDR{},
	})
}

func (s *Server) serveAPIGroupList(w http.ResponseWriter, r *http.Request) {
	if !s.discoveryGET(w, r) || s.serveAggregated(w, r, false) {
		return
	}
	_, gvs := groupVersions()
	l := APIGroupList{TypeMeta: api.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []APIGroup{}}
	for _, gv := range gvs {
		name, _, _ := strings.Cut(gv.GroupVersion, "/")
		i := slices.IndexFunc(l.Groups, func(g APIGroup) bool { return g.Name == name })
		if i < 0 {
			// The first version registered is the preferred one.
			l.Groups = append(l.Groups, APIGroup{Name: name, PreferredVersion: gv})
			i = len(l.Groups) - 1
		}
		l.Groups[i].Versions = append(l.Groups[i].Versions, gv)
	}
	s.WriteJSON(w, r, http.StatusOK, l)
}

func (s *Server) serveAPIGroup(w http.ResponseWriter, r *http.Request) {
	if !s.discoveryGET(w, r) {
		return
	}
	name := r.PathValue("group")
	_, gvs := groupVersions()
	g := APIGroup{TypeMeta: api.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: name}
	for _, gv := range gvs {
		if n, _, _ := strings.Cut(gv.GroupVersion, "/"); n == name {
			if len(g.Versions) == 0 {
				g.PreferredVersion = gv
			}
			g.Versions = append(g.Versions, gv)
		}
	}
	if len(g.Versions) == 0 {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the server could not find the requested resource: API group %q is not served", name))
		return
	}
	s.WriteJSON(w, r, http.StatusOK, g)
}

// serveResourceList answers /api/{version} (group "") and
// /apis/{group}/{version}.
func (s *Server) serveResourceList(w http.ResponseWriter, r *http.Request, group, version string) {
	if !s.discoveryGET(w, r) {
		return
	}
	l, ok := resourceList(group, version)
	if !ok {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the server could not find the requested resource %q", strings.TrimSuffix(apiPrefix(group, version), "/")))
		return
	}
	s.WriteJSON(w, r, http.StatusOK, l)
}

// KubernetesVersion is the Kubernetes API release whose shapes Shoal
// serves; /version reports it so that kubectl's version-skew warning stays
// quiet for the kubectl this was tested with.
const (
	KubernetesMajor = "1"
	KubernetesMinor = "32"
)

// VersionInfo is the body of /version, in Kubernetes' shape (what
// `kubectl version` reads), with Shoal's own version in Version and in
// GitVersion's build metadata.
type VersionInfo struct {
	Major        string `json:"major"`
	Minor        string `json:"minor"`
	GitVersion   string `json:"gitVersion"`
	GitCommit    string `json:"gitCommit"`
	GitTreeState string `json:"gitTreeState"`
	BuildDate    string `json:"buildDate"`
	GoVersion    string `json:"goVersion"`
	Compiler     string `json:"compiler"`
	Platform     string `json:"platform"`
	// Version is Shoal's version (ServerConfig.Version).
	Version string `json:"version"`
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !s.discoveryGET(w, r) {
		return
	}
	s.WriteJSON(w, r, http.StatusOK, VersionInfo{
		Major:        KubernetesMajor,
		Minor:        KubernetesMinor,
		GitVersion:   "v" + KubernetesMajor + "." + KubernetesMinor + ".0-shoal+" + semverBuild(s.cfg.Version),
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
		Version:      s.cfg.Version,
	})
}

// semverBuild makes v usable as semver build metadata: [0-9A-Za-z-] in
// dot-separated identifiers; anything else becomes '-'.
func semverBuild(v string) string {
	b := []byte(v)
	for i, c := range b {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '.'
		if !ok {
			b[i] = '-'
		}
	}
	out := strings.Trim(strings.ReplaceAll(string(b), "..", ".-."), ".")
	if out == "" {
		return "dev"
	}
	return out
}
