package api

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckPodCIDR(t *testing.T) {
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	cases := []struct {
		cidr    string
		cluster netip.Prefix
		why     string // "" for ok
	}{
		{"10.244.1.0/24", cluster, ""},
		{"10.244.0.0/16", cluster, ""},
		{"10.244.1.0/24", netip.Prefix{}, ""},
		{"0.0.0.0/0", cluster, "default route"},
		{"0.0.0.0/0", netip.Prefix{}, "default route"},
		{"0.0.0.0/1", cluster, "inside the cluster CIDR"},
		{"10.0.0.0/8", cluster, "inside the cluster CIDR"},
		{"10.245.0.0/24", cluster, "inside the cluster CIDR"},
		{"192.168.1.0/24", cluster, "inside the cluster CIDR"},
		{"fd00::/64", cluster, "inside the cluster CIDR"},
		{"10.244.1.5/24", cluster, "host bits"},
		{"10.244.1.0", cluster, "must be a CIDR"},
		{"", cluster, "must be a CIDR"},
	}
	for _, tc := range cases {
		_, err := CheckPodCIDR(tc.cidr, tc.cluster)
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("CheckPodCIDR(%q, %v) = %v, want nil", tc.cidr, tc.cluster, err)
		case tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("CheckPodCIDR(%q, %v) = %v, want an error about %q", tc.cidr, tc.cluster, err, tc.why)
		}
	}
}

func TestValidateNodePodCIDRs(t *testing.T) {
	node := func(name, cidr string, more ...string) *Node {
		return &Node{ObjectMeta: ObjectMeta{Name: name}, Spec: NodeSpec{PodCIDR: cidr, PodCIDRs: more}}
	}
	others := []*Node{node("a", "10.244.1.0/24"), node("b", "10.244.2.0/24", "10.244.2.0/24"), node("c", "")}
	cases := []struct {
		n       *Node
		cluster string
		path    string // "" for valid
		why     string
	}{
		{node("d", "10.244.3.0/24"), "10.244.0.0/16", "", ""},
		{node("d", ""), "10.244.0.0/16", "", ""},
		{node("a", "10.244.1.0/24"), "10.244.0.0/16", "", ""}, // itself
		{node("d", "0.0.0.0/1"), "10.244.0.0/16", "spec.podCIDR", "inside the cluster CIDR"},
		{node("d", "0.0.0.0/0"), "", "spec.podCIDR", "default route"},
		{node("d", "10.244.1.0/24"), "10.244.0.0/16", "spec.podCIDR", "overlaps node a's"},
		{node("d", "10.244.0.0/22"), "10.244.0.0/16", "spec.podCIDR", "overlaps node a's"},
		{node("d", "10.244.2.128/25"), "10.244.0.0/16", "spec.podCIDR", "overlaps node b's"},
		{node("d", "10.244.3.0/24", "10.244.3.0/24", "10.244.1.0/24"), "10.244.0.0/16", "spec.podCIDRs[1]", "overlaps node a's"},
		{node("d", "10.244.3.0/24"), "bogus", "spec.podCIDR", "cluster CIDR"},
	}
	for _, tc := range cases {
		errs := ValidateNodePodCIDRs(tc.n, tc.cluster, others)
		if tc.path == "" {
			if errs != nil {
				t.Errorf("%s %s: %v, want valid", tc.n.Name, tc.n.Spec.PodCIDR, errs)
			}
			continue
		}
		if len(errs) != 1 || errs[0].Path != tc.path || !strings.Contains(errs[0].Error(), tc.why) {
			t.Errorf("%s %s %v: %v, want one error at %s about %q", tc.n.Name, tc.n.Spec.PodCIDR, tc.n.Spec.PodCIDRs, errs, tc.path, tc.why)
		}
	}
}
