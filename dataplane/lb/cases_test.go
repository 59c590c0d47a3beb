package lb

import (
	"fmt"
	"strconv"
	"time"
)

// Service sets shared by the golden tests (Render) and the root tests (the
// kernel must list exactly what Render says).

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Table = "shoal"
	return cfg
}

func ep(ip string, port int) Endpoint { return Endpoint{IP: ip, Port: port} }

func localEP(ip string, port int) Endpoint { return Endpoint{IP: ip, Port: port, Local: true} }

type renderCase struct {
	name     string
	cfg      Config
	services []Service
}

func renderCases() []renderCase {
	web := Service{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []Port{{
		Name: "http", Protocol: "TCP", Port: 80,
		Endpoints: []Endpoint{ep("10.244.1.3", 8080), localEP("10.244.0.2", 8080), ep("10.244.2.7", 8080)},
	}}}
	multi := Service{Namespace: "shop", Name: "api", ClusterIP: "10.96.3.4", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, Endpoints: []Endpoint{ep("10.244.1.5", 8080), ep("10.244.2.5", 8080)}},
		{Name: "grpc", Protocol: "TCP", Port: 9090, Endpoints: []Endpoint{ep("10.244.1.5", 9090), ep("10.244.2.5", 9090)}},
		{Name: "metrics", Protocol: "TCP", Port: 9100, Endpoints: []Endpoint{ep("10.244.1.5", 9100)}},
	}}
	nodePort := Service{Namespace: "default", Name: "front", ClusterIP: "10.96.0.20", Ports: []Port{{
		Protocol: "TCP", Port: 80, NodePort: 30080,
		Endpoints: []Endpoint{localEP("10.244.0.4", 80), ep("10.244.1.4", 80)},
	}}}
	noEndpoints := Service{Namespace: "default", Name: "down", ClusterIP: "10.96.0.30", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30030},
		{Name: "dns", Protocol: "UDP", Port: 53},
	}}
	headless := Service{Namespace: "default", Name: "db", ClusterIP: "None", Ports: []Port{{
		Protocol: "TCP", Port: 5432, Endpoints: []Endpoint{ep("10.244.1.9", 5432)},
	}}}
	affinity := Service{Namespace: "default", Name: "sticky", ClusterIP: "10.96.0.40", AffinityTimeout: 3 * time.Hour,
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30040,
			Endpoints: []Endpoint{ep("10.244.1.6", 8080), localEP("10.244.0.6", 8080), ep("10.244.2.6", 8080)}}}}
	extLocal := Service{Namespace: "default", Name: "ingress", ClusterIP: "10.96.0.50", ExternalLocal: true,
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30050,
			Endpoints: []Endpoint{ep("10.244.1.8", 80), localEP("10.244.0.8", 80), ep("10.244.2.8", 80)}}}}
	extLocalNone := Service{Namespace: "default", Name: "ingress-elsewhere", ClusterIP: "10.96.0.51", ExternalLocal: true,
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30051,
			Endpoints: []Endpoint{ep("10.244.1.8", 81)}}}}
	intLocal := Service{Namespace: "kube-system", Name: "node-cache", ClusterIP: "10.96.0.60", InternalLocal: true,
		Ports: []Port{{Name: "dns", Protocol: "UDP", Port: 53,
			Endpoints: []Endpoint{ep("10.244.1.10", 53), localEP("10.244.0.10", 53)}}}}
	intLocalNone := Service{Namespace: "kube-system", Name: "node-agent", ClusterIP: "10.96.0.61", InternalLocal: true,
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80,
			Endpoints: []Endpoint{ep("10.244.1.11", 80)}}}}
	udp := Service{Namespace: "kube-system", Name: "dns", ClusterIP: "10.96.0.10", Ports: []Port{
		{Name: "dns", Protocol: "UDP", Port: 53, Endpoints: []Endpoint{ep("10.244.1.2", 53), ep("10.244.2.2", 53)}},
		{Name: "dns-tcp", Protocol: "TCP", Port: 53, Endpoints: []Endpoint{ep("10.244.1.2", 53), ep("10.244.2.2", 53)}},
	}}
	sctp := Service{Namespace: "default", Name: "signal", ClusterIP: "10.96.0.70", Ports: []Port{
		{Protocol: "SCTP", Port: 3868, NodePort: 30868, Endpoints: []Endpoint{ep("10.244.1.12", 3868)}},
	}}
	nodeIPs := testConfig()
	nodeIPs.NodeIPs = []string{"192.168.1.10", "10.0.0.1"}
	nodeIPs.ClusterCIDR = "10.244.0.0/20"
	noMasq := testConfig()
	noMasq.ClusterCIDR = ""

	return []renderCase{
		{"empty", testConfig(), nil},
		{"clusterip", testConfig(), []Service{web}},
		{"multiport", testConfig(), []Service{multi}},
		{"nodeport", testConfig(), []Service{nodePort}},
		{"noendpoints", testConfig(), []Service{noEndpoints}},
		{"headless", testConfig(), []Service{headless}},
		{"affinity", testConfig(), []Service{affinity}},
		{"externallocal", testConfig(), []Service{extLocal, extLocalNone}},
		{"internallocal", testConfig(), []Service{intLocal, intLocalNone}},
		{"udp", testConfig(), []Service{udp}},
		{"sctp", testConfig(), []Service{sctp}},
		{"nodeips", nodeIPs, []Service{nodePort}},
		{"nomasquerade", noMasq, []Service{web, nodePort}},
		{"all", testConfig(), []Service{web, multi, nodePort, noEndpoints, headless, affinity, extLocal, extLocalNone, intLocal, intLocalNone, udp, sctp}},
	}
}

// syntheticServices returns n ClusterIP services with eps endpoints each,
// all distinct: the shape of the benchmarks.
func syntheticServices(n, eps int) []Service {
	out := make([]Service, n)
	for i := range out {
		s := Service{Namespace: "ns" + strconv.Itoa(i%50), Name: "svc" + strconv.Itoa(i),
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)}
		p := Port{Name: "http", Protocol: "TCP", Port: 80}
		for j := range eps {
			k := i*eps + j
			p.Endpoints = append(p.Endpoints, Endpoint{IP: fmt.Sprintf("10.%d.%d.%d", 128+k/65536, k/256%256, k%256), Port: 8080})
		}
		s.Ports = []Port{p}
		out[i] = s
	}
	return out
}
