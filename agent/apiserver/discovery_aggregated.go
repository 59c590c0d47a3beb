package apiserver

import (
	"mime"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// Aggregated discovery (apidiscovery.k8s.io v2, and v2beta1 of the same
// shape): what kubectl ≥ 1.30 asks for at /api and /apis first. One answer
// holds every resource of every version, so kubectl needs two requests
// instead of 2 + one per group/version. A client that does not ask for it
// gets the legacy documents (discovery.go).

// APIGroupDiscoveryList is the aggregated body of /api (the core group) and
// /apis (the named groups).
type APIGroupDiscoveryList struct {
	api.TypeMeta `json:",inline"`
	Metadata     api.ListMeta        `json:"metadata"`
	Items        []APIGroupDiscovery `json:"items"`
}

// APIGroupDiscovery is one group; its name is in metadata ("" for core).
type APIGroupDiscovery struct {
	Metadata discoveryName         `json:"metadata"`
	Versions []APIVersionDiscovery `json:"versions"`
}

type discoveryName struct {
	Name string `json:"name,omitempty"`
}

// APIVersionDiscovery is one version of a group and its resources.
type APIVersionDiscovery struct {
	Version   string                 `json:"version"`
	Resources []APIResourceDiscovery `json:"resources"`
	Freshness string                 `json:"freshness"`
}

// GroupVersionKind names the kind a resource answers with.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// APIResourceDiscovery is one resource and its subresources.
type APIResourceDiscovery struct {
	Resource         string                    `json:"resource"`
	ResponseKind     GroupVersionKind          `json:"responseKind"`
	Scope            string                    `json:"scope"`
	SingularResource string                    `json:"singularResource"`
	Verbs            []string                  `json:"verbs"`
	ShortNames       []string                  `json:"shortNames,omitempty"`
	Categories       []string                  `json:"categories,omitempty"`
	Subresources     []APISubresourceDiscovery `json:"subresources,omitempty"`
}

// APISubresourceDiscovery is one subresource.
type APISubresourceDiscovery struct {
	Subresource  string           `json:"subresource"`
	ResponseKind GroupVersionKind `json:"responseKind"`
	Verbs        []string         `json:"verbs"`
}

// aggregatedVersion returns the apidiscovery.k8s.io version an Accept
// header asks for first ("v2" or "v2beta1"), or "" for the legacy form.
func aggregatedVersion(accept string) string {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "application/json" && params["as"] == "" && params["g"] == "" {
			return "" // plain JSON preferred
		}
		if mt != "application/json" || params["as"] != "APIGroupDiscoveryList" || params["g"] != "apidiscovery.k8s.io" {
			continue
		}
		if v := params["v"]; v == "v2" || v == "v2beta1" {
			return v
		}
	}
	return ""
}

// aggregatedDiscovery builds the list of the core group (core true) or of
// the named groups, from api.Kinds.
func aggregatedDiscovery(version string, core bool) APIGroupDiscoveryList {
	l := APIGroupDiscoveryList{
		TypeMeta: api.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/" + version},
		Items:    []APIGroupDiscovery{},
	}
	for _, k := range api.Kinds() {
		if (k.Group == "") != core {
			continue
		}
		gi := -1
		for i, g := range l.Items {
			if g.Metadata.Name == k.Group {
				gi = i
			}
		}
		if gi < 0 {
			l.Items = append(l.Items, APIGroupDiscovery{Metadata: discoveryName{Name: k.Group}})
			gi = len(l.Items) - 1
		}
		g := &l.Items[gi]
		vi := -1
		for i, v := range g.Versions {
			if v.Version == k.Version {
				vi = i
			}
		}
		if vi < 0 {
			g.Versions = append(g.Versions, APIVersionDiscovery{Version: k.Version, Freshness: "Current"})
			vi = len(g.Versions) - 1
		}
		v := &g.Versions[vi]
		v.Resources = append(v.Resources, resourceDiscovery(k))
	}
	return l
}

// resourceDiscovery describes one kind as the legacy APIResourceList does
// (resourceList), in the aggregated shape.
func resourceDiscovery(k api.KindInfo) APIResourceDiscovery {
	legacy, _ := resourceList(k.Group, k.Version)
	gvk := GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
	r := APIResourceDiscovery{Resource: k.Resource, ResponseKind: gvk, Scope: "Cluster"}
	if k.Namespaced {
		r.Scope = "Namespaced"
	}
	for _, lr := range legacy.Resources {
		switch {
		case lr.Name == k.Resource:
			r.SingularResource, r.Verbs, r.ShortNames, r.Categories = lr.SingularName, lr.Verbs, lr.ShortNames, lr.Categories
		case strings.HasPrefix(lr.Name, k.Resource+"/"):
			sk := gvk
			sk.Kind = lr.Kind
			if lr.Kind != k.Kind {
				sk.Group, sk.Version = "", "v1" // PodExecOptions and the like are core/v1
			}
			r.Subresources = append(r.Subresources, APISubresourceDiscovery{
				Subresource: strings.TrimPrefix(lr.Name, k.Resource+"/"), ResponseKind: sk, Verbs: lr.Verbs,
			})
		}
	}
	return r
}

// serveAggregated answers /api or /apis in the aggregated form if the
// client asks for it, and reports whether it did.
func (s *Server) serveAggregated(w http.ResponseWriter, r *http.Request, core bool) bool {
	w.Header().Add("Vary", "Accept")
	v := aggregatedVersion(r.Header.Get("Accept"))
	if v == "" {
		return false
	}
	b := mustEncode(aggregatedDiscovery(v, core))
	w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v="+v+";as=APIGroupDiscoveryList")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(append(b, '\n'))
	}
	return true
}
