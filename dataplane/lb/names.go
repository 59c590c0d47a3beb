package lb

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// Names of the table's fixed sets and chains.
const (
	setAffinityIPs        = "affinity-ips"         // (ClusterIP . proto . port) : goto svc chain
	setAffinityNodePorts  = "affinity-nodeports"   // (proto . nodePort) : goto ext chain
	setClusterEndpoints   = "cluster-endpoints"    // (ClusterIP . proto . port . n) : endpoint
	setNodePortEndpoints  = "nodeport-endpoints"   // (proto . nodePort . n) : endpoint
	setNodePortMasquerade = "nodeport-masquerade"  // (proto . nodePort) masqueraded
	setNoEndpointServices = "no-endpoint-services" // (ClusterIP . proto . port) to reject
	setNoEndpointNodePort = "no-endpoint-nodeports"
	setClusterIPs         = "cluster-ips"  // every ClusterIP (masquerade from outside)
	setHairpin            = "hairpin"      // (endpoint . endpoint) for local endpoints
	setNodePortIPs        = "nodeport-ips" // Config.NodeIPs

	chainNATPrerouting  = "nat-prerouting"
	chainNATOutput      = "nat-output"
	chainNATPostrouting = "nat-postrouting"
	chainServices       = "services"
	chainNodePorts      = "nodeports"
	chainMarkMasq       = "mark-for-masquerade"
	chainFilterInput    = "filter-input"
	chainFilterForward  = "filter-forward"
	chainFilterOutput   = "filter-output"
	chainRejectServices = "reject-services"
	chainReject         = "reject-connection"
)

// Sets of the service ports that have n endpoints: cluster-3 holds
// (ClusterIP . proto . port), nodeport-3 (proto . nodePort).
func sizedSetName(nodePort bool, n uint32) string {
	if nodePort {
		return fmt.Sprintf("nodeport-%d", n)
	}
	return fmt.Sprintf("cluster-%d", n)
}

// maxReadable bounds the readable part of per-service names; the hash in
// front keeps them unique. The kernel allows 255 bytes.
const maxReadable = 160

// portHash is the short hash of a service port's identity that names its
// own chains and sets (only services with session affinity have any).
func portHash(k ServiceKey, p Port) string {
	sum := sha256.Sum256([]byte(k.Namespace + "/" + k.Name + "/" + portID(p)))
	return base32.StdEncoding.EncodeToString(sum[:])[:10]
}

func readable(s string) string {
	if len(s) > maxReadable {
		return s[:maxReadable]
	}
	return s
}

// Chains of a service port with session affinity: svc for its ClusterIP,
// ext for its NodePort, one per endpoint; and one set per endpoint of the
// clients sent there.
func affinityServiceChain(h string, k ServiceKey, p Port) string {
	return "svc-" + h + "-" + readable(k.Namespace+"/"+k.Name+"/"+portID(p))
}

func affinityExternalChain(h string, k ServiceKey, p Port) string {
	return "ext-" + h + "-" + readable(k.Namespace+"/"+k.Name+"/"+portID(p))
}

func affinityEndpointChain(h string, e endpoint) string {
	return "ep-" + h + "-" + endpointName(e)
}

func affinitySet(h string, e endpoint) string {
	return "aff-" + h + "-" + endpointName(e)
}

func endpointName(e endpoint) string {
	return strings.ReplaceAll(e.addr.String(), ":", ".") + "-" + fmt.Sprint(e.port)
}
