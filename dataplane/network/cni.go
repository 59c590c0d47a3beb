package network

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// cniVersion is the newest version the distribution's plugins (1.1.1)
// accept.
const cniVersion = "1.0.0"

// Network names in libcni's cache and host-local's dataDir.
const (
	loNetName  = "shoal-lo"
	podNetName = "shoal"
)

// loConfList is the loopback network: its own one-plugin list, ifname lo.
// Pods are no longer set up with it (add brings lo up itself); it is kept
// to DEL the pods an older agent set up with it (their libcni cache entry).
func loConfList() (*libcni.NetworkConfigList, error) {
	return confList(loNetName, map[string]any{"type": "loopback"})
}

// podConfList is the pod network: bridge (the bridge is the pods' gateway;
// hairpin so a pod reaches itself through a service VIP; no masquerade, the
// "shoal-nat" table does that) with host-local IPAM over the pod CIDR.
func podConfList(c Config, ipamDir string) (*libcni.NetworkConfigList, error) {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      c.BridgeName,
		"isGateway":   true,
		"hairpinMode": true,
		"ipMasq":      false,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": c.PodCIDR}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": ipamDir,
		},
	}
	if c.MTU > 0 {
		bridge["mtu"] = c.MTU
	}
	return confList(podNetName, bridge)
}

func confList(name string, plugin map[string]any) (*libcni.NetworkConfigList, error) {
	b, err := json.Marshal(map[string]any{
		"cniVersion": cniVersion,
		"name":       name,
		"plugins":    []any{plugin},
	})
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(b)
}

// runtimeConf is one CNI invocation's arguments for pod on interface ifName.
func runtimeConf(pod PodRef, key, netnsPath, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: key,
		NetNS:       netnsPath,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", key},
		},
	}
}

// ipv4Of picks the first IPv4 address and its gateway out of a result.
func ipv4Of(res *types100.Result) (ip, gw net.IP, err error) {
	for _, c := range res.IPs {
		if v4 := c.Address.IP.To4(); v4 != nil {
			return v4, c.Gateway.To4(), nil
		}
	}
	return nil, nil, fmt.Errorf("CNI result has no IPv4 address: %v", res.IPs)
}
