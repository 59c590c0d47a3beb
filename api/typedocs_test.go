package api

import (
	"strings"
	"testing"
)

func TestTypeDocs(t *testing.T) {
	d := TypeDocs()
	for key, want := range map[string]string{
		"Pod":                   "Pod is one or more containers",
		"PodSpec.RestartPolicy": "Always, OnFailure, Never",
		"ObjectMeta":            "ObjectMeta is the metadata",
	} {
		if !strings.Contains(d[key], want) {
			t.Errorf("%s: %q, want it to contain %q", key, d[key], want)
		}
	}
	if _, ok := d["PodSpec.Containers"]; ok {
		t.Errorf("PodSpec.Containers has no comment but got %q", d["PodSpec.Containers"])
	}
}
