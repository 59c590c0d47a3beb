package apiserver

import (
	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"

	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// TestOpenAPIV3: the index names one document per served group/version;
// each holds a schema per kind with its group/version/kind, generated from
// the Go types, and the operations with the fieldValidation parameter.
func TestOpenAPIV3(t *testing.T) {
	e := newEnv(t)
	var index struct {
		Paths map[string]struct {
			URL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(mustCode(t, e.get("/openapi/v3"), 200).body, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Paths) != 2 || index.Paths["api/v1"].URL == "" || !strings.HasPrefix(index.Paths["apis/apps/v1"].URL, "/openapi/v3/apis/apps/v1?hash=") {
		t.Fatalf("index: %+v", index)
	}
	type schema struct {
		Type       string            `json:"type"`
		Format     string            `json:"format"`
		Ref        string            `json:"$ref"`
		Items      *schema           `json:"items"`
		Properties map[string]schema `json:"properties"`
		AddlProps  *schema           `json:"additionalProperties"`
		IntOrStr   bool              `json:"x-kubernetes-int-or-string"`
		GVK        []map[string]any  `json:"x-kubernetes-group-version-kind"`
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(mustCode(t, e.get(index.Paths["apis/apps/v1"].URL), 200).body, &doc); err != nil {
		t.Fatal(err)
	}
	d := doc.Components.Schemas["shoal.api.Deployment"]
	if doc.OpenAPI != "3.0.0" || len(d.GVK) != 1 || d.GVK[0]["group"] != "apps" || d.GVK[0]["kind"] != "Deployment" || d.GVK[0]["version"] != "v1" {
		t.Fatalf("Deployment schema: %+v", d)
	}
	// TypeMeta is inlined, ObjectMeta is "metadata".
	for _, f := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := d.Properties[f]; !ok {
			t.Errorf("Deployment has no %s: %v", f, d.Properties)
		}
	}
	if d.Properties["metadata"].Ref != "#/components/schemas/shoal.api.ObjectMeta" {
		t.Errorf("metadata: %+v", d.Properties["metadata"])
	}
	c := doc.Components.Schemas["shoal.api.Container"].Properties
	if c["image"].Type != "string" || c["ports"].Type != "array" || c["ports"].Items.Ref != "#/components/schemas/shoal.api.ContainerPort" {
		t.Errorf("Container: image %+v ports %+v", c["image"], c["ports"])
	}
	if r := doc.Components.Schemas["shoal.api.ResourceRequirements"].Properties["limits"]; r.Type != "object" || r.AddlProps.Ref != "#/components/schemas/shoal.api.Quantity" {
		t.Errorf("limits: %+v", r)
	}
	if q := doc.Components.Schemas["shoal.api.Quantity"]; !q.IntOrStr {
		t.Errorf("Quantity: %+v", q)
	}
	if ts := doc.Components.Schemas["shoal.api.ObjectMeta"].Properties["creationTimestamp"]; ts.Type != "string" || ts.Format != "date-time" {
		t.Errorf("creationTimestamp: %+v", ts)
	}
	if _, ok := doc.Components.Schemas["shoal.api.Pod"]; ok {
		t.Error("the apps/v1 document defines Pod with a group/version/kind")
	}
	// Every field of the Go type is in the schema.
	rt := reflect.TypeFor[api.DeploymentSpec]()
	spec := doc.Components.Schemas["shoal.api.DeploymentSpec"].Properties
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if _, ok := spec[name]; !ok {
			t.Errorf("DeploymentSpec.%s is not in the schema", name)
		}
	}
	item := doc.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
	if !strings.Contains(string(item["put"]), `"name":"fieldValidation"`) || !strings.Contains(string(item["put"]), `"kind":"Deployment"`) {
		t.Errorf("put: %s", item["put"])
	}
	mustCode(t, e.get("/openapi/v3/apis/batch/v1"), 404).status(t)
}

func TestOpenAPIV2(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Swagger     string                    `json:"swagger"`
		Definitions map[string]map[string]any `json:"definitions"`
	}
	r := mustCode(t, e.get("/openapi/v2"), 200)
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.Swagger != "2.0" {
		t.Fatalf("v2: %v %s", err, r.body[:min(len(r.body), 200)])
	}
	for _, k := range api.Kinds() {
		d, ok := doc.Definitions["shoal.api."+k.Kind]
		if !ok || d["x-kubernetes-group-version-kind"] == nil {
			t.Errorf("%s: %v", k.Kind, d)
		}
	}
	if !strings.Contains(string(r.body), `"$ref":"#/definitions/shoal.api.PodSpec"`) {
		t.Error("v2 refs are not #/definitions/")
	}
	// client-go and kubectl < 1.27 ask for protobuf only: the same
	// document, as gnostic's Document.
	pr := mustCode(t, e.getAccept("/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"), 200)
	var pdoc openapi_v2.Document
	if err := proto.Unmarshal(pr.body, &pdoc); err != nil || pdoc.Swagger != "2.0" || len(pdoc.Definitions.GetAdditionalProperties()) != len(doc.Definitions) {
		t.Fatalf("protobuf v2: %v swagger %q, %d definitions, want %d", err, pdoc.Swagger, len(pdoc.Definitions.GetAdditionalProperties()), len(doc.Definitions))
	}
	// kubectl diff (< 1.27) looks there for a PATCH of the kind that
	// declares dryRun.
	patches := 0
	for _, p := range pdoc.GetPaths().GetPath() {
		op := p.GetValue().GetPatch()
		gvk := ""
		for _, ext := range op.GetVendorExtension() {
			if ext.GetName() == "x-kubernetes-group-version-kind" {
				gvk = ext.GetValue().GetYaml()
			}
		}
		for _, prm := range op.GetParameters() {
			if prm.GetParameter().GetNonBodyParameter().GetQueryParameterSubSchema().GetName() == "dryRun" && strings.Contains(gvk, "kind:") {
				patches++
			}
		}
	}
	if patches != len(api.Kinds()) {
		t.Errorf("protobuf v2: %d PATCH operations with a kind and dryRun, want %d", patches, len(api.Kinds()))
	}
	st := mustCode(t, e.getAccept("/openapi/v2", "application/yaml"), http.StatusNotAcceptable).status(t)
	if !strings.Contains(st.Message, "application/json") {
		t.Errorf("406: %s", st.Message)
	}
	mustCode(t, e.getAccept("/openapi/v2", "application/json, */*"), 200)
}
