package api

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDefaultPullPolicy(t *testing.T) {
	cases := map[string]string{
		"nginx":                          PullAlways,
		"nginx:latest":                   PullAlways,
		"nginx:1.27":                     PullIfNotPresent,
		"localhost:5000/app":             PullAlways,
		"localhost:5000/app:latest":      PullAlways,
		"localhost:5000/app:v2":          PullIfNotPresent,
		"registry.example.com/a/b:3":     PullIfNotPresent,
		"nginx@sha256:0123456789abcdef":  PullIfNotPresent,
		"nginx:latest@sha256:0123456789": PullIfNotPresent,
	}
	for image, want := range cases {
		if got := defaultPullPolicy(image); got != want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSetDefaultsDeployment(t *testing.T) {
	d := &Deployment{
		ObjectMeta: ObjectMeta{Name: "web"},
		Spec: DeploymentSpec{Template: PodTemplateSpec{Spec: PodSpec{
			Containers: []Container{{
				Name: "web", Image: "nginx",
				Ports:          []ContainerPort{{ContainerPort: 80}},
				LivenessProbe:  &Probe{HTTPGet: &HTTPGetAction{Port: FromInt(80)}},
				ReadinessProbe: &Probe{TCPSocket: &TCPSocketAction{Port: FromInt(80)}, PeriodSeconds: 3},
			}},
			Volumes: []Volume{{Name: "c", ConfigMap: &ConfigMapVolumeSource{Name: "c"}}},
		}}},
	}
	SetDefaults(d)
	want := &Deployment{
		TypeMeta:   TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"},
		Spec: DeploymentSpec{
			Replicas: ptr[int32](1),
			Template: PodTemplateSpec{Spec: PodSpec{
				Containers: []Container{{
					Name: "web", Image: "nginx", ImagePullPolicy: PullAlways,
					Ports: []ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
					LivenessProbe: &Probe{HTTPGet: &HTTPGetAction{Port: FromInt(80), Path: "/", Scheme: "HTTP"},
						TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3},
					ReadinessProbe: &Probe{TCPSocket: &TCPSocketAction{Port: FromInt(80)},
						TimeoutSeconds: 1, PeriodSeconds: 3, SuccessThreshold: 1, FailureThreshold: 3},
				}},
				Volumes:                       []Volume{{Name: "c", ConfigMap: &ConfigMapVolumeSource{Name: "c", DefaultMode: ptr[int32](0o644)}}},
				RestartPolicy:                 "Always",
				TerminationGracePeriodSeconds: ptr[int64](30),
			}},
			Strategy: DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &RollingUpdateDeployment{
				MaxSurge: ptr(FromString("25%")), MaxUnavailable: ptr(FromString("25%")),
			}},
			RevisionHistoryLimit:    ptr[int32](10),
			ProgressDeadlineSeconds: ptr[int32](600),
		},
	}
	if !reflect.DeepEqual(d, want) {
		a, _ := EncodeYAML(d)
		b, _ := EncodeYAML(want)
		t.Fatalf("defaulted:\n%s\nwant:\n%s", a, b)
	}

	// Recreate gets no rolling-update parameters; explicit values stay.
	r := &Deployment{Spec: DeploymentSpec{Replicas: ptr[int32](0), Strategy: DeploymentStrategy{Type: RecreateStrategy}}}
	SetDefaults(r)
	if r.Spec.Strategy.RollingUpdate != nil || *r.Spec.Replicas != 0 {
		t.Fatalf("Recreate defaulted to %+v, replicas %d", r.Spec.Strategy, *r.Spec.Replicas)
	}
}

func TestSetDefaultsOtherKinds(t *testing.T) {
	ds := &DaemonSet{}
	SetDefaults(ds)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != RollingUpdateStrategy || ru == nil ||
		*ru.MaxUnavailable != FromInt(1) || *ru.MaxSurge != FromInt(0) {
		t.Errorf("DaemonSet update strategy = %+v", ds.Spec.UpdateStrategy)
	}

	ss := &StatefulSet{}
	SetDefaults(ss)
	if ss.Spec.PodManagementPolicy != OrderedReadyPodManagement || ss.Spec.UpdateStrategy.Type != RollingUpdateStrategy ||
		*ss.Spec.UpdateStrategy.RollingUpdate.Partition != 0 || *ss.Spec.Replicas != 1 {
		t.Errorf("StatefulSet spec = %+v", ss.Spec)
	}

	rs := &ReplicaSet{}
	SetDefaults(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Template.Spec.RestartPolicy != RestartAlways || rs.Namespace != "default" {
		t.Errorf("ReplicaSet = %+v", rs)
	}

	svc := &Service{ObjectMeta: ObjectMeta{Namespace: "shop"}, Spec: ServiceSpec{Ports: []ServicePort{
		{Port: 80}, {Port: 53, Protocol: "UDP", TargetPort: FromString("dns")},
	}}}
	SetDefaults(svc)
	wantPorts := []ServicePort{
		{Port: 80, Protocol: "TCP", TargetPort: FromInt(80)},
		{Port: 53, Protocol: "UDP", TargetPort: FromString("dns")},
	}
	if svc.Spec.Type != ServiceTypeClusterIP || svc.Namespace != "shop" || !reflect.DeepEqual(svc.Spec.Ports, wantPorts) {
		t.Errorf("Service = %+v", svc)
	}

	sec := &Secret{Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}, StringData: map[string]string{"b": "two", "c": "three"}}
	SetDefaults(sec)
	wantData := map[string][]byte{"a": []byte("1"), "b": []byte("two"), "c": []byte("three")}
	if sec.Type != SecretTypeOpaque || sec.StringData != nil || !reflect.DeepEqual(sec.Data, wantData) {
		t.Errorf("Secret = %+v", sec)
	}

	ep := &Endpoints{Subsets: []EndpointSubset{{Ports: []EndpointPort{{Port: 80}}}}}
	SetDefaults(ep)
	if ep.Subsets[0].Ports[0].Protocol != ProtocolTCP {
		t.Errorf("Endpoints port protocol = %q", ep.Subsets[0].Ports[0].Protocol)
	}

	// Cluster-scoped kinds have no namespace.
	n := &Node{ObjectMeta: ObjectMeta{Name: "n", Namespace: "oops"}}
	SetDefaults(n)
	if n.Namespace != "" || n.Kind != "Node" || n.APIVersion != "v1" {
		t.Errorf("Node = %+v", n)
	}
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "x"}}
	SetDefaults(ns)
	if ns.Namespace != "" {
		t.Errorf("Namespace got namespace %q", ns.Namespace)
	}

	pod := &Pod{Spec: PodSpec{RestartPolicy: RestartNever, InitContainers: []Container{{Image: "busybox:1"}}}}
	SetDefaults(pod)
	if pod.Spec.RestartPolicy != RestartNever || pod.Spec.InitContainers[0].ImagePullPolicy != PullIfNotPresent {
		t.Errorf("Pod spec = %+v", pod.Spec)
	}
}

func TestSetDefaultsServiceTraffic(t *testing.T) {
	defaulted := func(spec ServiceSpec) ServiceSpec {
		svc := &Service{Spec: spec}
		SetDefaults(svc)
		return svc.Spec
	}
	timeout := func(s ServiceSpec) *int32 {
		if s.SessionAffinityConfig == nil || s.SessionAffinityConfig.ClientIP == nil {
			return nil
		}
		return s.SessionAffinityConfig.ClientIP.TimeoutSeconds
	}

	// ClusterIP: affinity None without a config, no external policy, the
	// internal one Cluster.
	s := defaulted(ServiceSpec{})
	if s.SessionAffinity != ServiceAffinityNone || s.SessionAffinityConfig != nil ||
		s.ExternalTrafficPolicy != "" || s.InternalTrafficPolicy != TrafficPolicyCluster || s.PublishNotReadyAddresses {
		t.Errorf("ClusterIP service defaulted to %+v", s)
	}

	// NodePort: the external policy is Cluster too.
	s = defaulted(ServiceSpec{Type: ServiceTypeNodePort})
	if s.ExternalTrafficPolicy != TrafficPolicyCluster || s.InternalTrafficPolicy != TrafficPolicyCluster {
		t.Errorf("NodePort service defaulted to %+v", s)
	}

	// ClientIP gets the default timeout however much of the config is
	// missing, and keeps its own.
	for _, c := range []*SessionAffinityConfig{nil, {}, {ClientIP: &ClientIPConfig{}}} {
		s = defaulted(ServiceSpec{SessionAffinity: ServiceAffinityClientIP, SessionAffinityConfig: c})
		if got := timeout(s); got == nil || *got != DefaultSessionAffinityTimeoutSeconds {
			t.Errorf("ClientIP with config %+v: timeout %v, want %d", c, got, DefaultSessionAffinityTimeoutSeconds)
		}
	}
	s = defaulted(ServiceSpec{
		Type: ServiceTypeNodePort, SessionAffinity: ServiceAffinityClientIP,
		SessionAffinityConfig: &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: ptr[int32](60)}},
		ExternalTrafficPolicy: TrafficPolicyLocal, InternalTrafficPolicy: TrafficPolicyLocal,
	})
	if *timeout(s) != 60 || s.ExternalTrafficPolicy != TrafficPolicyLocal || s.InternalTrafficPolicy != TrafficPolicyLocal {
		t.Errorf("explicit values were overwritten: %+v", s)
	}
}

func TestSetDefaultsPreStop(t *testing.T) {
	pod := &Pod{Spec: PodSpec{Containers: []Container{{
		Name: "c", Image: "web:1",
		Lifecycle: &Lifecycle{PreStop: &LifecycleHandler{HTTPGet: &HTTPGetAction{Port: FromInt(8080)}}},
	}}}}
	SetDefaults(pod)
	want := &HTTPGetAction{Port: FromInt(8080), Path: "/", Scheme: "HTTP"}
	if got := pod.Spec.Containers[0].Lifecycle.PreStop.HTTPGet; !reflect.DeepEqual(got, want) {
		t.Errorf("preStop httpGet defaulted to %+v, want %+v", got, want)
	}
}

// allTestdataObjects decodes every object in testdata.
func allTestdataObjects(t *testing.T) []Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := DecodeManifests(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, objs...)
	}
	return out
}

func TestSetDefaultsIdempotent(t *testing.T) {
	objs := allTestdataObjects(t)
	for _, info := range Kinds() {
		objs = append(objs, info.New()) // empty objects of every kind
	}
	for _, o := range objs {
		SetDefaults(o)
		once := o.DeepCopyObject()
		SetDefaults(o)
		if !reflect.DeepEqual(once, o) {
			t.Errorf("SetDefaults on %s/%s is not idempotent", KindOf(o), o.GetObjectMeta().Name)
		}
	}
}

// Every testdata object is valid once defaulted: the manifests are
// realistic, so this is also a check that validation is not too strict.
func TestTestdataValidates(t *testing.T) {
	for _, o := range allTestdataObjects(t) {
		SetDefaults(o)
		if errs := Validate(o); errs != nil {
			t.Errorf("%s/%s: %v", KindOf(o), o.GetObjectMeta().Name, errs)
		}
	}
}
