package api

import (
	"sort"
	"strings"
)

// KindInfo describes how a kind is served: its group/version, the plural
// resource name in URLs, and whether it lives in a namespace.
type KindInfo struct {
	Kind       string
	Group      string // "" for the core group
	Version    string
	Resource   string // plural, lower case: "pods"
	ShortNames []string
	Namespaced bool
	New        func() Object
}

// APIVersion is group/version, or just the version for the core group.
func (k KindInfo) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

var kinds = []KindInfo{
	{Kind: "Namespace", Version: "v1", Resource: "namespaces", ShortNames: []string{"ns"}, New: func() Object { return &Namespace{} }},
	{Kind: "Node", Version: "v1", Resource: "nodes", ShortNames: []string{"no"}, New: func() Object { return &Node{} }},
	{Kind: "Pod", Version: "v1", Resource: "pods", ShortNames: []string{"po"}, Namespaced: true, New: func() Object { return &Pod{} }},
	{Kind: "Service", Version: "v1", Resource: "services", ShortNames: []string{"svc"}, Namespaced: true, New: func() Object { return &Service{} }},
	{Kind: "Endpoints", Version: "v1", Resource: "endpoints", ShortNames: []string{"ep"}, Namespaced: true, New: func() Object { return &Endpoints{} }},
	{Kind: "ConfigMap", Version: "v1", Resource: "configmaps", ShortNames: []string{"cm"}, Namespaced: true, New: func() Object { return &ConfigMap{} }},
	{Kind: "Secret", Version: "v1", Resource: "secrets", Namespaced: true, New: func() Object { return &Secret{} }},
	{Kind: "Event", Version: "v1", Resource: "events", ShortNames: []string{"ev"}, Namespaced: true, New: func() Object { return &Event{} }},
	{Kind: "ReplicaSet", Group: "apps", Version: "v1", Resource: "replicasets", ShortNames: []string{"rs"}, Namespaced: true, New: func() Object { return &ReplicaSet{} }},
	{Kind: "Deployment", Group: "apps", Version: "v1", Resource: "deployments", ShortNames: []string{"deploy"}, Namespaced: true, New: func() Object { return &Deployment{} }},
	{Kind: "DaemonSet", Group: "apps", Version: "v1", Resource: "daemonsets", ShortNames: []string{"ds"}, Namespaced: true, New: func() Object { return &DaemonSet{} }},
	{Kind: "StatefulSet", Group: "apps", Version: "v1", Resource: "statefulsets", ShortNames: []string{"sts"}, Namespaced: true, New: func() Object { return &StatefulSet{} }},
}

// Kinds lists every kind Shoal serves.
func Kinds() []KindInfo { return append([]KindInfo(nil), kinds...) }

// LookupGroupResource finds a kind by its API group ("" for the core
// group) and plural resource, as a URL names it. Every request looks its
// kind up this way: unlike Kinds, it copies nothing.
func LookupGroupResource(group, resource string) (KindInfo, bool) {
	for _, k := range kinds {
		if k.Resource == resource && k.Group == group {
			return k, true
		}
	}
	return KindInfo{}, false
}

// LookupKind finds a kind by its Kind name ("Pod").
func LookupKind(kind string) (KindInfo, bool) {
	for _, k := range kinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// LookupResource finds a kind by what a user types on a command line or in a
// URL: the plural resource, the singular, a short name or the Kind, in any case.
func LookupResource(name string) (KindInfo, bool) {
	n := strings.ToLower(name)
	for _, k := range kinds {
		if n == k.Resource || n == strings.ToLower(k.Kind) {
			return k, true
		}
		for _, s := range k.ShortNames {
			if n == s {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// KindNames lists the served kinds, sorted, for error messages.
func KindNames() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.Kind)
	}
	sort.Strings(out)
	return out
}

// KindOf returns the kind of a typed object, from its Go type.
func KindOf(obj Object) string {
	switch obj.(type) {
	case *Namespace:
		return "Namespace"
	case *Node:
		return "Node"
	case *Pod:
		return "Pod"
	case *Service:
		return "Service"
	case *Endpoints:
		return "Endpoints"
	case *ConfigMap:
		return "ConfigMap"
	case *Secret:
		return "Secret"
	case *ReplicaSet:
		return "ReplicaSet"
	case *Deployment:
		return "Deployment"
	case *DaemonSet:
		return "DaemonSet"
	case *StatefulSet:
		return "StatefulSet"
	case *PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *Event:
		return "Event"
	}
	return ""
}

// SetTypeMeta fills apiVersion and kind from the object's Go type.
func SetTypeMeta(obj Object) {
	k, ok := LookupKind(KindOf(obj))
	if !ok {
		return
	}
	tm := obj.GetTypeMeta()
	tm.Kind = k.Kind
	tm.APIVersion = k.APIVersion()
}

func (o *Namespace) DeepCopyObject() Object             { return deepCopy(o) }
func (o *Node) DeepCopyObject() Object                  { return deepCopy(o) }
func (o *Pod) DeepCopyObject() Object                   { return deepCopy(o) }
func (o *Service) DeepCopyObject() Object               { return deepCopy(o) }
func (o *Endpoints) DeepCopyObject() Object             { return deepCopy(o) }
func (o *ConfigMap) DeepCopyObject() Object             { return deepCopy(o) }
func (o *Secret) DeepCopyObject() Object                { return deepCopy(o) }
func (o *ReplicaSet) DeepCopyObject() Object            { return deepCopy(o) }
func (o *Deployment) DeepCopyObject() Object            { return deepCopy(o) }
func (o *DaemonSet) DeepCopyObject() Object             { return deepCopy(o) }
func (o *StatefulSet) DeepCopyObject() Object           { return deepCopy(o) }
func (o *PersistentVolumeClaim) DeepCopyObject() Object { return deepCopy(o) }
func (o *Event) DeepCopyObject() Object                 { return deepCopy(o) }
