package api

import "strings"

// Default values filled in by SetDefaults, as Kubernetes fills them.
const (
	DefaultNamespace                     = "default"
	DefaultTerminationGracePeriodSeconds = 30
	DefaultProbeTimeoutSeconds           = 1
	DefaultProbePeriodSeconds            = 10
	DefaultProbeSuccessThreshold         = 1
	DefaultProbeFailureThreshold         = 3
	DefaultRevisionHistoryLimit          = 10
	DefaultProgressDeadlineSeconds       = 600
	DefaultMaxSurge                      = "25%"
	DefaultMaxUnavailable                = "25%"
	DefaultVolumeMode                    = 0o644
	DefaultSessionAffinityTimeoutSeconds = 10800 // 3 hours

	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"

	SecretTypeOpaque = "Opaque"

	ServiceAffinityNone     = "None"
	ServiceAffinityClientIP = "ClientIP"
)

// SetDefaults fills the fields a manifest may leave out, in place, the way
// Kubernetes defaults them, and sets apiVersion and kind. Applying it twice
// changes nothing the second time. For a Secret it also moves stringData
// into data, as the API server does on write.
func SetDefaults(obj Object) {
	SetTypeMeta(obj)
	meta := obj.GetObjectMeta()
	if info, ok := LookupKind(KindOf(obj)); ok {
		if info.Namespaced {
			if meta.Namespace == "" {
				meta.Namespace = DefaultNamespace
			}
		} else {
			meta.Namespace = "" // cluster-scoped: a namespace means nothing
		}
	}
	switch o := obj.(type) {
	case *Pod:
		defaultPodSpec(&o.Spec)
	case *ReplicaSet:
		defaultReplicas(&o.Spec.Replicas)
		defaultPodSpec(&o.Spec.Template.Spec)
	case *Deployment:
		defaultDeployment(&o.Spec)
	case *DaemonSet:
		defaultDaemonSet(&o.Spec)
	case *StatefulSet:
		defaultStatefulSet(&o.Spec)
	case *Service:
		defaultService(&o.Spec)
	case *Endpoints:
		for i := range o.Subsets {
			for j := range o.Subsets[i].Ports {
				defaultString(&o.Subsets[i].Ports[j].Protocol, ProtocolTCP)
			}
		}
	case *Secret:
		defaultString(&o.Type, SecretTypeOpaque)
		if len(o.StringData) > 0 {
			if o.Data == nil {
				o.Data = make(map[string][]byte, len(o.StringData))
			}
			for k, v := range o.StringData {
				o.Data[k] = []byte(v)
			}
		}
		o.StringData = nil
	}
}

func defaultString(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defaultInt32(p **int32, v int32) {
	if *p == nil {
		*p = &v
	}
}

func defaultIntOrString(p **IntOrString, v IntOrString) {
	if *p == nil {
		*p = &v
	}
}

func defaultReplicas(p **int32) { defaultInt32(p, 1) }

func defaultPodSpec(s *PodSpec) {
	defaultString(&s.RestartPolicy, RestartAlways)
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(DefaultTerminationGracePeriodSeconds)
		s.TerminationGracePeriodSeconds = &g
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i])
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i])
	}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if v.ConfigMap != nil {
			defaultInt32(&v.ConfigMap.DefaultMode, DefaultVolumeMode)
		}
		if v.Secret != nil {
			defaultInt32(&v.Secret.DefaultMode, DefaultVolumeMode)
		}
	}
}

func defaultContainer(c *Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	for i := range c.Ports {
		defaultString(&c.Ports[i].Protocol, ProtocolTCP)
	}
	for _, p := range []*Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			defaultProbe(p)
		}
	}
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.HTTPGet != nil {
		defaultHTTPGet(l.PreStop.HTTPGet)
	}
}

// defaultPullPolicy is Always for an image without a tag or tagged
// "latest", IfNotPresent otherwise (also for an image pinned by digest).
func defaultPullPolicy(image string) string {
	if strings.Contains(image, "@") {
		return PullIfNotPresent
	}
	last := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(last, ":")
	if i < 0 || last[i+1:] == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

func defaultProbe(p *Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = DefaultProbeTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = DefaultProbePeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultProbeFailureThreshold
	}
	if p.HTTPGet != nil {
		defaultHTTPGet(p.HTTPGet)
	}
}

// defaultHTTPGet fills an HTTP action of a probe or a hook.
func defaultHTTPGet(h *HTTPGetAction) {
	defaultString(&h.Path, "/")
	defaultString(&h.Scheme, "HTTP")
}

func defaultDeployment(s *DeploymentSpec) {
	defaultReplicas(&s.Replicas)
	defaultPodSpec(&s.Template.Spec)
	defaultString(&s.Strategy.Type, RollingUpdateStrategy)
	if s.Strategy.Type == RollingUpdateStrategy {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		defaultIntOrString(&ru.MaxSurge, FromString(DefaultMaxSurge))
		defaultIntOrString(&ru.MaxUnavailable, FromString(DefaultMaxUnavailable))
	}
	defaultInt32(&s.RevisionHistoryLimit, DefaultRevisionHistoryLimit)
	defaultInt32(&s.ProgressDeadlineSeconds, DefaultProgressDeadlineSeconds)
}

func defaultDaemonSet(s *DaemonSetSpec) {
	defaultPodSpec(&s.Template.Spec)
	defaultString(&s.UpdateStrategy.Type, RollingUpdateStrategy)
	if s.UpdateStrategy.Type == RollingUpdateStrategy {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateDaemonSet{}
		}
		ru := s.UpdateStrategy.RollingUpdate
		defaultIntOrString(&ru.MaxUnavailable, FromInt(1))
		defaultIntOrString(&ru.MaxSurge, FromInt(0))
	}
	defaultInt32(&s.RevisionHistoryLimit, DefaultRevisionHistoryLimit)
}

func defaultStatefulSet(s *StatefulSetSpec) {
	defaultReplicas(&s.Replicas)
	defaultPodSpec(&s.Template.Spec)
	defaultString(&s.PodManagementPolicy, OrderedReadyPodManagement)
	defaultString(&s.UpdateStrategy.Type, RollingUpdateStrategy)
	if s.UpdateStrategy.Type == RollingUpdateStrategy {
		if s.UpdateStrategy.RollingUpdate == nil {
			s.UpdateStrategy.RollingUpdate = &RollingUpdateStatefulSetStrategy{}
		}
		defaultInt32(&s.UpdateStrategy.RollingUpdate.Partition, 0)
	}
	defaultInt32(&s.RevisionHistoryLimit, DefaultRevisionHistoryLimit)
}

func defaultService(s *ServiceSpec) {
	defaultString(&s.Type, ServiceTypeClusterIP)
	defaultString(&s.SessionAffinity, ServiceAffinityNone)
	if s.SessionAffinity == ServiceAffinityClientIP {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &ClientIPConfig{}
		}
		defaultInt32(&s.SessionAffinityConfig.ClientIP.TimeoutSeconds, DefaultSessionAffinityTimeoutSeconds)
	}
	if s.Type == ServiceTypeNodePort {
		defaultString(&s.ExternalTrafficPolicy, TrafficPolicyCluster)
	}
	defaultString(&s.InternalTrafficPolicy, TrafficPolicyCluster)
	for i := range s.Ports {
		p := &s.Ports[i]
		defaultString(&p.Protocol, ProtocolTCP)
		if p.TargetPort == (IntOrString{}) {
			p.TargetPort = FromInt(p.Port)
		}
	}
}
