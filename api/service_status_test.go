package api

import "testing"

// TestServiceAcceptsLoadBalancerStatus: client-go sends every Service with
// "status":{"loadBalancer":{}}; the strict decoder refused it as an unknown
// field, so a client-go Create of a Service failed.
func TestServiceAcceptsLoadBalancerStatus(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
		"spec":{"ports":[{"port":80}]},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	lb := obj.(*Service).Status.LoadBalancer
	if lb == nil || len(lb.Ingress) != 1 || lb.Ingress[0].IP != "192.0.2.1" {
		t.Fatalf("status.loadBalancer: %+v", lb)
	}
	if _, err := DecodeObject([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
		"spec":{"ports":[{"port":80}]},"status":{"loadBalancer":{}}}`)); err != nil {
		t.Fatal(err)
	}
}
