package api

import (
	"strconv"
	"strings"
	"testing"
)

// base returns a valid, defaulted object decoded from a manifest.
func base(t *testing.T, manifest string) Object {
	t.Helper()
	o, err := DecodeObject([]byte(manifest))
	if err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	SetDefaults(o)
	if errs := Validate(o); errs != nil {
		t.Fatalf("base object is invalid: %v", errs)
	}
	return o
}

const (
	podManifest = `apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: web}}
spec:
  containers:
  - name: c
    image: nginx:1.27
    ports: [{name: http, containerPort: 80}]
    volumeMounts: [{name: data, mountPath: /data}]
    livenessProbe: {httpGet: {port: http}}
    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: "1", memory: 128Mi}}
    env: [{name: A, value: b}]
  volumes: [{name: data, emptyDir: {}}]
`
	rsManifest = `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
`
	dsManifest = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: d}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: agent:1}]}
`
	stsManifest = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: pg:16, volumeMounts: [{name: data, mountPath: /var/lib/pg}]}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`
	svcManifest = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`
	cmManifest = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a.conf: x}
`
	secretManifest = `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {password: x}
`
	nodeManifest = `apiVersion: v1
kind: Node
metadata: {name: node-1}
spec: {podCIDR: 10.244.1.0/24, taints: [{key: dedicated, value: db, effect: NoSchedule}]}
`
	nsManifest = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
`
	epManifest = `apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 10.244.1.5}, {ip: "fd00::5"}]
  ports: [{port: 8080}]
`
)

type validateCase struct {
	name   string
	mutate func(o Object)
	want   string // the whole of Validate(o).Error()
}

func runValidateCases(t *testing.T, manifest string, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base(t, manifest)
			tc.mutate(o)
			errs := Validate(o)
			if errs == nil {
				t.Fatalf("valid, want %s", tc.want)
			}
			if errs.Error() != tc.want {
				t.Fatalf("errors:\n got %s\nwant %s", errs, tc.want)
			}
		})
	}
}

func podOf(o Object) *PodSpec          { return &o.(*Pod).Spec }
func ctr(o Object) *Container          { return &o.(*Pod).Spec.Containers[0] }
func depSpec(o Object) *DeploymentSpec { return &o.(*Deployment).Spec }

func TestValidateMetadata(t *testing.T) {
	runValidateCases(t, podManifest, []validateCase{
		{"name required", func(o Object) { o.GetObjectMeta().Name = "" }, "metadata.name: Required value: name or generateName is required"},
		{"generateName is enough", func(o Object) { o.GetObjectMeta().Name = ""; o.GetObjectMeta().GenerateName = "Web-" },
			`metadata.generateName: Invalid value: "Web-x": ` + dns1123SubdomainMsg},
		{"name not DNS", func(o Object) { o.GetObjectMeta().Name = "Web_1" }, `metadata.name: Invalid value: "Web_1": ` + dns1123SubdomainMsg},
		{"namespace required", func(o Object) { o.GetObjectMeta().Namespace = "" }, "metadata.namespace: Required value"},
		{"namespace is a label", func(o Object) { o.GetObjectMeta().Namespace = "a.b" }, `metadata.namespace: Invalid value: "a.b": ` + dns1123LabelMsg},
		{"label key", func(o Object) { o.GetObjectMeta().Labels["bad key"] = "v" },
			`metadata.labels[bad key]: Invalid value: "bad key": ` + ValidateLabelKey("bad key").Error()},
		{"label value", func(o Object) { o.GetObjectMeta().Labels["app"] = "-web" },
			`metadata.labels[app]: Invalid value: "-web": ` + ValidateLabelValue("-web").Error()},
		{"annotation key", func(o Object) { o.GetObjectMeta().Annotations = map[string]string{"a/b/c": "x"} },
			`metadata.annotations[a/b/c]: Invalid value: "a/b/c": ` + ValidateLabelKey("a/b/c").Error()},
		{"owner reference", func(o Object) {
			o.GetObjectMeta().OwnerReferences = []OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "r"}}
		}, "metadata.ownerReferences[0].uid: Required value"},
		{"deletion grace period", func(o Object) { o.GetObjectMeta().DeletionGracePeriodSeconds = ptr[int64](-1) },
			"metadata.deletionGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"},
	})
	runValidateCases(t, nodeManifest, []validateCase{
		{"cluster-scoped has no namespace", func(o Object) { o.GetObjectMeta().Namespace = "default" },
			"metadata.namespace: Forbidden: not allowed on a cluster-scoped object"},
	})
	runValidateCases(t, svcManifest, []validateCase{
		{"service name is a DNS-1035 label", func(o Object) { o.GetObjectMeta().Name = "1web" },
			`metadata.name: Invalid value: "1web": ` + dns1035LabelMsg},
	})
}

func TestValidateLimits(t *testing.T) {
	type limitCase struct {
		name     string
		manifest string
		set      func(o Object, n int) // make the limited thing n long
		limit    int
		want     string // error at limit+1
	}
	cases := []limitCase{
		{"pod name", podManifest, func(o Object, n int) { o.GetObjectMeta().Name = longName(n) }, DNS1123SubdomainMaxLength,
			"metadata.name: Too long: must have at most 253 characters"},
		{"namespace name", nsManifest, func(o Object, n int) { o.GetObjectMeta().Name = strings.Repeat("a", n) }, DNS1123LabelMaxLength,
			"metadata.name: Too long: must have at most 63 characters"},
		{"service name", svcManifest, func(o Object, n int) { o.GetObjectMeta().Name = strings.Repeat("a", n) }, DNS1123LabelMaxLength,
			"metadata.name: Too long: must have at most 63 characters"},
		{"statefulset name", stsManifest, func(o Object, n int) { o.GetObjectMeta().Name = strings.Repeat("a", n) }, DNS1123LabelMaxLength,
			"metadata.name: Too long: must have at most 63 characters"},
		{"label value", podManifest, func(o Object, n int) { o.GetObjectMeta().Labels["app"] = strings.Repeat("v", n) }, MaxLabelNameLength,
			`metadata.labels[app]: Invalid value: "` + strings.Repeat("v", 64) + `": ` + ValidateLabelValue(strings.Repeat("v", 64)).Error()},
		{"label key name", podManifest, func(o Object, n int) { o.GetObjectMeta().Labels = map[string]string{strings.Repeat("k", n): "v"} }, MaxLabelNameLength,
			`metadata.labels[` + strings.Repeat("k", 64) + `]: Invalid value: "` + strings.Repeat("k", 64) + `": ` + ValidateLabelKey(strings.Repeat("k", 64)).Error()},
		{"annotations", podManifest, func(o Object, n int) {
			o.GetObjectMeta().Annotations = map[string]string{"k": strings.Repeat("x", n-1)}
		}, MaxAnnotationsBytes,
			"metadata.annotations: Too long: must have at most 262144 bytes in total"},
		{"configmap data", cmManifest, func(o Object, n int) { o.(*ConfigMap).Data = map[string]string{"k": strings.Repeat("x", n)} }, MaxConfigDataBytes,
			"data: Too long: must have at most 1048576 bytes in total"},
		{"secret data", secretManifest, func(o Object, n int) { o.(*Secret).Data = map[string][]byte{"k": make([]byte, n)} }, MaxConfigDataBytes,
			"data: Too long: must have at most 1048576 bytes in total"},
		{"configmap key", cmManifest, func(o Object, n int) { o.(*ConfigMap).Data = map[string]string{strings.Repeat("k", n): ""} }, MaxConfigKeyLength,
			"data[" + strings.Repeat("k", 254) + "]: Too long: must have at most 253 characters"},
		{"container name", podManifest, func(o Object, n int) { ctr(o).Name = strings.Repeat("c", n) }, DNS1123LabelMaxLength,
			"spec.containers[0].name: Too long: must have at most 63 characters"},
		{"port name", podManifest, func(o Object, n int) {
			ctr(o).Ports[0].Name = strings.Repeat("p", n)
			ctr(o).LivenessProbe.HTTPGet.Port = FromInt(80)
		}, IANAServiceNameMaxLength, "spec.containers[0].ports[0].name: Too long: must have at most 15 characters"},
		{"container port", podManifest, func(o Object, n int) { ctr(o).Ports[0].ContainerPort = int32(n) }, MaxPort,
			"spec.containers[0].ports[0].containerPort: Invalid value: 65536: must be between 1 and 65535, inclusive"},
		{"service port", svcManifest, func(o Object, n int) { o.(*Service).Spec.Ports[0].Port = int32(n) }, MaxPort,
			"spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"},
		{"session affinity timeout", svcManifest, func(o Object, n int) {
			o.(*Service).Spec.SessionAffinity = ServiceAffinityClientIP
			o.(*Service).Spec.SessionAffinityConfig = &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: ptr(int32(n))}}
		}, MaxSessionAffinityTimeoutSeconds, "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be between 1 and 86400, inclusive"},
		{"node port", svcManifest, func(o Object, n int) {
			o.(*Service).Spec.Type = ServiceTypeNodePort
			o.(*Service).Spec.Ports[0].NodePort = int32(n)
		}, MaxNodePort, "spec.ports[0].nodePort: Invalid value: 32768: must be between 30000 and 32767, inclusive"},
		{"preferred weight", podManifest, func(o Object, n int) {
			podOf(o).Affinity = &Affinity{NodeAffinity: &NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []PreferredSchedulingTerm{{Weight: int32(n)}}}}
		}, MaxSchedulingWeight, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 101: must be between 1 and 100, inclusive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base(t, tc.manifest)
			tc.set(o, tc.limit)
			if errs := Validate(o); errs != nil {
				t.Fatalf("at the limit %d: %v", tc.limit, errs)
			}
			o = base(t, tc.manifest)
			tc.set(o, tc.limit+1)
			if errs := Validate(o); errs.Error() != tc.want {
				t.Fatalf("over the limit:\n got %v\nwant %s", errs, tc.want)
			}
		})
	}
	// The lower bounds of ports.
	runValidateCases(t, podManifest, []validateCase{
		{"port 0", func(o Object) { ctr(o).Ports[0].ContainerPort = 0 },
			"spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive"},
	})
	runValidateCases(t, svcManifest, []validateCase{
		{"node port below range", func(o Object) {
			o.(*Service).Spec.Type = ServiceTypeNodePort
			o.(*Service).Spec.Ports[0].NodePort = MinNodePort - 1
		}, "spec.ports[0].nodePort: Invalid value: 29999: must be between 30000 and 32767, inclusive"},
		{"service port 0", func(o Object) { o.(*Service).Spec.Ports[0].Port = 0 },
			"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"session affinity timeout 0", func(o Object) {
			o.(*Service).Spec.SessionAffinity = ServiceAffinityClientIP
			o.(*Service).Spec.SessionAffinityConfig = &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: ptr[int32](0)}}
		}, "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be between 1 and 86400, inclusive"},
	})
	o := base(t, svcManifest)
	o.(*Service).Spec.Type = ServiceTypeNodePort
	o.(*Service).Spec.Ports[0].NodePort = MinNodePort
	if errs := Validate(o); errs != nil {
		t.Fatalf("nodePort %d: %v", MinNodePort, errs)
	}
}

// longName is a valid DNS subdomain of n characters.
func longName(n int) string {
	s := strings.Repeat(strings.Repeat("a", 62)+".", 5)[:n]
	return strings.TrimSuffix(s[:n-1], ".") + strings.Repeat("b", n-len(strings.TrimSuffix(s[:n-1], ".")))
}

func TestValidatePodSpec(t *testing.T) {
	runValidateCases(t, podManifest, []validateCase{
		{"no containers", func(o Object) { podOf(o).Containers = nil }, "spec.containers: Required value: a pod needs at least one container"},
		{"image required", func(o Object) { ctr(o).Image = "" }, "spec.containers[0].image: Required value"},
		{"image whitespace", func(o Object) { ctr(o).Image = "nginx " }, `spec.containers[0].image: Invalid value: "nginx ": must not have leading or trailing whitespace`},
		{"container name", func(o Object) { ctr(o).Name = "C" }, `spec.containers[0].name: Invalid value: "C": ` + dns1123LabelMsg},
		{"container name required", func(o Object) { ctr(o).Name = "" }, "spec.containers[0].name: Required value"},
		{"duplicate container", func(o Object) {
			podOf(o).InitContainers = []Container{{Name: "c", Image: "busybox"}}
		}, `spec.containers[0].name: Duplicate value: "c"`},
		{"pull policy", func(o Object) { ctr(o).ImagePullPolicy = "Sometimes" },
			`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`},
		{"restart policy", func(o Object) { podOf(o).RestartPolicy = "Maybe" },
			`spec.restartPolicy: Unsupported value: "Maybe": supported values: "Always", "OnFailure", "Never"`},
		{"protocol", func(o Object) { ctr(o).Ports[0].Protocol = "SCTP" },
			`spec.containers[0].ports[0].protocol: Unsupported value: "SCTP": supported values: "TCP", "UDP"`},
		{"host port", func(o Object) { ctr(o).Ports[0].HostPort = -1 },
			"spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"},
		{"duplicate port name", func(o Object) { ctr(o).Ports = append(ctr(o).Ports, ContainerPort{Name: "http", ContainerPort: 81}) },
			`spec.containers[0].ports[1].name: Duplicate value: "http"`},
		{"port name needs a letter", func(o Object) { ctr(o).Ports[0].Name = "8080"; ctr(o).LivenessProbe.HTTPGet.Port = FromInt(1) },
			`spec.containers[0].ports[0].name: Invalid value: "8080": must be an IANA service name: lower-case letters, digits and single '-' between them, with at least one letter`},
		{"env name", func(o Object) { ctr(o).Env[0].Name = "1A=" },
			`spec.containers[0].env[0].name: Invalid value: "1A=": must consist of letters, digits, '-', '.' and '_', not starting with a digit`},
		{"env name required", func(o Object) { ctr(o).Env[0].Name = "" }, "spec.containers[0].env[0].name: Required value"},
		{"env valueFrom with value", func(o Object) {
			ctr(o).Env[0].ValueFrom = &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.name"}}
		}, "spec.containers[0].env[0].valueFrom: Forbidden: may not be specified when value is not empty"},
		{"env valueFrom empty", func(o Object) { ctr(o).Env[0] = EnvVar{Name: "A", ValueFrom: &EnvVarSource{}} },
			"spec.containers[0].env[0].valueFrom: Required value: must specify one of configMapKeyRef, secretKeyRef or fieldRef"},
		{"env secret key", func(o Object) {
			ctr(o).Env[0] = EnvVar{Name: "A", ValueFrom: &EnvVarSource{SecretKeyRef: &KeySelector{Name: "s"}}}
		}, "spec.containers[0].env[0].valueFrom.secretKeyRef.key: Required value"},
		{"envFrom needs a source", func(o Object) { ctr(o).EnvFrom = []EnvFromSource{{Prefix: "X_"}} },
			"spec.containers[0].envFrom[0]: Required value: must specify configMapRef or secretRef"},
		{"duplicate volume", func(o Object) {
			podOf(o).Volumes = append(podOf(o).Volumes, Volume{Name: "data", EmptyDir: &EmptyDirVolumeSource{}})
		},
			`spec.volumes[1].name: Duplicate value: "data"`},
		{"volume without source", func(o Object) { podOf(o).Volumes[0].EmptyDir = nil },
			"spec.volumes[0]: Required value: must specify one volume source: emptyDir, hostPath, configMap, secret or persistentVolumeClaim"},
		{"volume with two sources", func(o Object) { podOf(o).Volumes[0].HostPath = &HostPathVolumeSource{Path: "/tmp"} },
			"spec.volumes[0].hostPath: Forbidden: may not specify more than one volume source"},
		{"hostPath relative", func(o Object) {
			podOf(o).Volumes[0] = Volume{Name: "data", HostPath: &HostPathVolumeSource{Path: "tmp"}}
		},
			`spec.volumes[0].hostPath.path: Invalid value: "tmp": must be an absolute path`},
		{"secret volume name", func(o Object) { podOf(o).Volumes[0] = Volume{Name: "data", Secret: &SecretVolumeSource{}} },
			"spec.volumes[0].secret.secretName: Required value"},
		{"configMap item path escapes", func(o Object) {
			podOf(o).Volumes[0] = Volume{Name: "data", ConfigMap: &ConfigMapVolumeSource{Name: "c", Items: []KeyToPath{{Key: "k", Path: "../etc/passwd"}}}}
		}, `spec.volumes[0].configMap.items[0].path: Invalid value: "../etc/passwd": must not contain '..'`},
		{"file mode", func(o Object) {
			podOf(o).Volumes[0] = Volume{Name: "data", ConfigMap: &ConfigMapVolumeSource{Name: "c", DefaultMode: ptr[int32](0o1000)}}
		}, "spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a file mode between 0 and 0777 (511)"},
		{"mount of unknown volume", func(o Object) { ctr(o).VolumeMounts[0].Name = "date" },
			`spec.containers[0].volumeMounts[0].name: Not found: "date"`},
		{"mount path relative", func(o Object) { ctr(o).VolumeMounts[0].MountPath = "data" },
			`spec.containers[0].volumeMounts[0].mountPath: Invalid value: "data": must be an absolute path`},
		{"mount path required", func(o Object) { ctr(o).VolumeMounts[0].MountPath = "" },
			"spec.containers[0].volumeMounts[0].mountPath: Required value"},
		{"cpu does not parse", func(o Object) { ctr(o).Resources.Requests[ResourceCPU] = "lots" },
			`spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantity "lots": must be a non-negative number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ...)`},
		{"memory request above limit", func(o Object) { ctr(o).Resources.Requests[ResourceMemory] = "1Gi" },
			`spec.containers[0].resources.requests[memory]: Invalid value: "1Gi": must be less than or equal to memory limit of 128Mi`},
		{"cpu request above limit", func(o Object) { ctr(o).Resources.Requests[ResourceCPU] = "1001m" },
			`spec.containers[0].resources.requests[cpu]: Invalid value: "1001m": must be less than or equal to cpu limit of 1`},
		{"probe without handler", func(o Object) { ctr(o).LivenessProbe.HTTPGet = nil },
			"spec.containers[0].livenessProbe: Required value: must specify one handler: exec, httpGet or tcpSocket"},
		{"probe with two handlers", func(o Object) { ctr(o).LivenessProbe.TCPSocket = &TCPSocketAction{Port: FromInt(80)} },
			"spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than one handler"},
		{"probe negative", func(o Object) { ctr(o).LivenessProbe.PeriodSeconds = -1 },
			"spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"liveness success threshold", func(o Object) { ctr(o).LivenessProbe.SuccessThreshold = 2 },
			"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"},
		{"probe port", func(o Object) { ctr(o).LivenessProbe.HTTPGet.Port = FromInt(0) },
			"spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"probe scheme", func(o Object) { ctr(o).LivenessProbe.HTTPGet.Scheme = "FTP" },
			`spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`},
		{"init container probe", func(o Object) {
			podOf(o).InitContainers = []Container{{Name: "i", Image: "busybox", ReadinessProbe: &Probe{Exec: &ExecAction{Command: []string{"true"}}}}}
		}, "spec.initContainers[0].readinessProbe: Forbidden: init containers may not have probes"},
		{"preStop without action", func(o Object) { ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{}} },
			"spec.containers[0].lifecycle.preStop: Required value: must specify one handler: exec, httpGet or sleep"},
		{"preStop with two actions", func(o Object) {
			ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Exec: &ExecAction{Command: []string{"drain"}}, Sleep: &SleepAction{Seconds: 3}}}
		}, "spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than one handler"},
		{"preStop exec without command", func(o Object) { ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Exec: &ExecAction{}}} },
			"spec.containers[0].lifecycle.preStop.exec.command: Required value"},
		{"preStop httpGet path", func(o Object) {
			ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{HTTPGet: &HTTPGetAction{Path: "drain", Port: FromString("http")}}}
		}, `spec.containers[0].lifecycle.preStop.httpGet.path: Invalid value: "drain": must start with '/'`},
		{"preStop httpGet port", func(o Object) {
			ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{HTTPGet: &HTTPGetAction{Port: FromInt(70000)}}}
		}, "spec.containers[0].lifecycle.preStop.httpGet.port: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"preStop sleep 0", func(o Object) { ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Sleep: &SleepAction{}}} },
			"spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 0: must be greater than 0"},
		{"preStop sleep longer than the grace period", func(o Object) {
			*podOf(o).TerminationGracePeriodSeconds = 10
			ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Sleep: &SleepAction{Seconds: 11}}}
		}, "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 11: must not be greater than terminationGracePeriodSeconds (10)"},
		{"preStop sleep longer than the default grace period", func(o Object) {
			podOf(o).TerminationGracePeriodSeconds = nil
			ctr(o).Lifecycle = &Lifecycle{PreStop: &LifecycleHandler{Sleep: &SleepAction{Seconds: 31}}}
		}, "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 31: must not be greater than terminationGracePeriodSeconds (30)"},
		{"init container lifecycle", func(o Object) {
			podOf(o).InitContainers = []Container{{Name: "i", Image: "busybox", Lifecycle: &Lifecycle{PreStop: &LifecycleHandler{Sleep: &SleepAction{Seconds: 1}}}}}
		}, "spec.initContainers[0].lifecycle: Forbidden: init containers may not have lifecycle hooks"},
		{"grace period", func(o Object) { *podOf(o).TerminationGracePeriodSeconds = -5 },
			"spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0"},
		{"node selector", func(o Object) { podOf(o).NodeSelector = map[string]string{"disk": "s s d"} },
			`spec.nodeSelector[disk]: Invalid value: "s s d": ` + ValidateLabelValue("s s d").Error()},
		{"affinity operator", func(o Object) {
			podOf(o).Affinity = nodeAffinity(NodeSelectorRequirement{Key: "disk", Operator: "Equals", Values: []string{"ssd"}})
		},
			`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Equals": supported values: "DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"`},
		{"affinity In needs values", func(o Object) { podOf(o).Affinity = nodeAffinity(NodeSelectorRequirement{Key: "disk", Operator: "In"}) },
			"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when operator is In"},
		{"affinity Gt needs an integer", func(o Object) {
			podOf(o).Affinity = nodeAffinity(NodeSelectorRequirement{Key: "cores", Operator: "Gt", Values: []string{"many"}})
		}, `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: "many": must be an integer`},
		{"affinity without terms", func(o Object) {
			podOf(o).Affinity = &Affinity{NodeAffinity: &NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &NodeSelector{}}}
		}, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"},
		{"toleration operator", func(o Object) { podOf(o).Tolerations = []Toleration{{Key: "k", Operator: "Matches"}} },
			`spec.tolerations[0].operator: Unsupported value: "Matches": supported values: "Equal", "Exists"`},
		{"toleration effect", func(o Object) { podOf(o).Tolerations = []Toleration{{Key: "k", Effect: "NoRun"}} },
			`spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"`},
		{"toleration Exists with value", func(o Object) { podOf(o).Tolerations = []Toleration{{Key: "k", Operator: "Exists", Value: "v"}} },
			`spec.tolerations[0].value: Invalid value: "v": must be empty when operator is Exists`},
		{"toleration without key", func(o Object) { podOf(o).Tolerations = []Toleration{{Value: "v"}} },
			`spec.tolerations[0].operator: Invalid value: "": must be Exists when key is empty`},
		{"tolerationSeconds without NoExecute", func(o Object) {
			podOf(o).Tolerations = []Toleration{{Key: "k", Effect: TaintNoSchedule, TolerationSeconds: ptr[int64](5)}}
		}, `spec.tolerations[0].effect: Invalid value: "NoSchedule": must be NoExecute when tolerationSeconds is set`},
	})
}

func nodeAffinity(r NodeSelectorRequirement) *Affinity {
	return &Affinity{NodeAffinity: &NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &NodeSelector{
		NodeSelectorTerms: []NodeSelectorTerm{{MatchExpressions: []NodeSelectorRequirement{r}}},
	}}}
}

func TestValidateDeployment(t *testing.T) {
	runValidateCases(t, deploymentYAML, []validateCase{
		{"negative replicas", func(o Object) { *depSpec(o).Replicas = -1 },
			"spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
		{"selector required", func(o Object) { depSpec(o).Selector = nil }, "spec.selector: Required value"},
		{"selector empty", func(o Object) { depSpec(o).Selector = &LabelSelector{} },
			"spec.selector: Invalid value: {}: empty selector is not allowed: it would select every pod"},
		{"selector does not match", func(o Object) { depSpec(o).Template.Labels = map[string]string{"app": "api"} },
			`spec.template.metadata.labels: Invalid value: {"app":"api"}: selector does not match template labels`},
		{"selector expression does not match", func(o Object) {
			depSpec(o).Selector.MatchExpressions = []LabelSelectorRequirement{{Key: "tier", Operator: "Exists"}}
		}, `spec.template.metadata.labels: Invalid value: {"app":"web"}: selector does not match template labels`},
		{"selector operator", func(o Object) {
			depSpec(o).Selector.MatchExpressions = []LabelSelectorRequirement{{Key: "tier", Operator: "Gt", Values: []string{"1"}}}
		}, `spec.selector.matchExpressions[0].operator: Unsupported value: "Gt": supported values: "DoesNotExist", "Exists", "In", "NotIn"`},
		{"template restart policy", func(o Object) { depSpec(o).Template.Spec.RestartPolicy = RestartNever },
			`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`},
		{"template container", func(o Object) { depSpec(o).Template.Spec.Containers[0].Image = "" },
			"spec.template.spec.containers[0].image: Required value"},
		{"strategy type", func(o Object) { depSpec(o).Strategy.Type = "BlueGreen" },
			`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`},
		{"recreate with rollingUpdate", func(o Object) { depSpec(o).Strategy.Type = RecreateStrategy },
			"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy type is Recreate"},
		{"both zero", func(o Object) {
			depSpec(o).Strategy.RollingUpdate = &RollingUpdateDeployment{MaxSurge: ptr(FromString("0%")), MaxUnavailable: ptr(FromInt(0))}
		}, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when maxSurge is 0"},
		{"bad percentage", func(o Object) { depSpec(o).Strategy.RollingUpdate.MaxSurge = ptr(FromString("25")) },
			`spec.strategy.rollingUpdate.maxSurge: Invalid value: "25": must be an integer or a percentage such as '25%'`},
		{"negative surge", func(o Object) { depSpec(o).Strategy.RollingUpdate.MaxSurge = ptr(FromInt(-1)) },
			"spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"},
		{"unavailable over 100%", func(o Object) { depSpec(o).Strategy.RollingUpdate.MaxUnavailable = ptr(FromString("150%")) },
			`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`},
		{"progress deadline", func(o Object) { depSpec(o).MinReadySeconds = 600 },
			"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"},
		{"revision history", func(o Object) { *depSpec(o).RevisionHistoryLimit = -1 },
			"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"},
	})
	// A surge of zero is fine when some unavailability is allowed.
	o := base(t, deploymentYAML)
	depSpec(o).Strategy.RollingUpdate = &RollingUpdateDeployment{MaxSurge: ptr(FromInt(0)), MaxUnavailable: ptr(FromString("10%"))}
	if errs := Validate(o); errs != nil {
		t.Fatal(errs)
	}
}

func TestValidateOtherWorkloads(t *testing.T) {
	runValidateCases(t, rsManifest, []validateCase{
		{"negative replicas", func(o Object) { *o.(*ReplicaSet).Spec.Replicas = -1 },
			"spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
		{"selector mismatch", func(o Object) { o.(*ReplicaSet).Spec.Template.Labels = nil },
			"spec.template.metadata.labels: Invalid value: {}: selector does not match template labels"},
	})
	ds := func(o Object) *DaemonSetSpec { return &o.(*DaemonSet).Spec }
	runValidateCases(t, dsManifest, []validateCase{
		{"update strategy", func(o Object) { ds(o).UpdateStrategy.Type = RecreateStrategy },
			`spec.updateStrategy.type: Unsupported value: "Recreate": supported values: "OnDelete", "RollingUpdate"`},
		{"OnDelete with rollingUpdate", func(o Object) { ds(o).UpdateStrategy.Type = OnDeleteStrategy },
			"spec.updateStrategy.rollingUpdate: Forbidden: may not be specified when strategy type is OnDelete"},
		{"max unavailable zero", func(o Object) { ds(o).UpdateStrategy.RollingUpdate.MaxUnavailable = ptr(FromInt(0)) },
			"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when maxSurge is 0"},
		{"selector required", func(o Object) { ds(o).Selector = nil }, "spec.selector: Required value"},
	})
	ss := func(o Object) *StatefulSetSpec { return &o.(*StatefulSet).Spec }
	runValidateCases(t, stsManifest, []validateCase{
		{"pod management", func(o Object) { ss(o).PodManagementPolicy = "Random" },
			`spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", "Parallel"`},
		{"partition", func(o Object) { *ss(o).UpdateStrategy.RollingUpdate.Partition = -1 },
			"spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"},
		{"claim name", func(o Object) { ss(o).VolumeClaimTemplates[0].Name = "Data" },
			`spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data"; spec.volumeClaimTemplates[0].metadata.name: Invalid value: "Data": ` + dns1123LabelMsg},
		{"claim name required", func(o Object) {
			ss(o).VolumeClaimTemplates[0].Name = ""
			ss(o).Template.Spec.Containers[0].VolumeMounts = nil
		},
			"spec.volumeClaimTemplates[0].metadata.name: Required value"},
		{"claim storage parses", func(o Object) { ss(o).VolumeClaimTemplates[0].Spec.Resources.Requests[ResourceStorage] = "big" },
			`spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Invalid value: "big": quantity "big": must be a non-negative number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ...)`},
		{"claim storage required", func(o Object) { ss(o).VolumeClaimTemplates[0].Spec.Resources.Requests = nil },
			"spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Required value"},
		{"claim access mode", func(o Object) { ss(o).VolumeClaimTemplates[0].Spec.AccessModes = []string{"RWO"} },
			`spec.volumeClaimTemplates[0].spec.accessModes[0]: Unsupported value: "RWO": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"`},
		{"duplicate claim", func(o Object) {
			ss(o).VolumeClaimTemplates = append(ss(o).VolumeClaimTemplates, ss(o).VolumeClaimTemplates[0])
		},
			`spec.volumeClaimTemplates[1].metadata.name: Duplicate value: "data"`},
		{"service name", func(o Object) { ss(o).ServiceName = "DB" }, `spec.serviceName: Invalid value: "DB": ` + dns1035LabelMsg},
		{"negative replicas", func(o Object) { ss(o).Replicas = ptr[int32](-2) },
			"spec.replicas: Invalid value: -2: must be greater than or equal to 0"},
	})
}

func TestValidateService(t *testing.T) {
	sp := func(o Object) *ServiceSpec { return &o.(*Service).Spec }
	runValidateCases(t, svcManifest, []validateCase{
		{"ports required", func(o Object) { sp(o).Ports = nil },
			"spec.ports: Required value: a service needs at least one port unless clusterIP is None"},
		{"port name required when several", func(o Object) { sp(o).Ports = append(sp(o).Ports, ServicePort{Port: 443, Protocol: "TCP"}) },
			"spec.ports[1].name: Required value: each port needs a name when there are several"},
		{"duplicate port name", func(o Object) { sp(o).Ports = append(sp(o).Ports, ServicePort{Name: "http", Port: 443}) },
			`spec.ports[1].name: Duplicate value: "http"`},
		{"protocol", func(o Object) { sp(o).Ports[0].Protocol = "ICMP" },
			`spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP"`},
		{"type", func(o Object) { sp(o).Type = "LoadBalancer" },
			`spec.type: Unsupported value: "LoadBalancer": supported values: "ClusterIP", "NodePort"`},
		{"nodePort needs NodePort type", func(o Object) { sp(o).Ports[0].NodePort = 30001 },
			"spec.ports[0].nodePort: Forbidden: may only be set when type is NodePort"},
		{"clusterIP not IPv4", func(o Object) { sp(o).ClusterIP = "fd00::1" },
			`spec.clusterIP: Invalid value: "fd00::1": must be an IPv4 address or "None"`},
		{"clusterIP garbage", func(o Object) { sp(o).ClusterIP = "10.96.0.300" },
			`spec.clusterIP: Invalid value: "10.96.0.300": must be an IPv4 address or "None"`},
		{"target port name", func(o Object) { sp(o).Ports[0].TargetPort = FromString("Web_Port") },
			`spec.ports[0].targetPort: Invalid value: "Web_Port": must be an IANA service name: lower-case letters, digits and single '-' between them, with at least one letter`},
		{"selector value", func(o Object) { sp(o).Selector["app"] = "web app" },
			`spec.selector[app]: Invalid value: "web app": ` + ValidateLabelValue("web app").Error()},
		{"headless NodePort", func(o Object) { sp(o).ClusterIP = ClusterIPNone; sp(o).Type = ServiceTypeNodePort },
			`spec.clusterIP: Invalid value: "None": may not be None for a NodePort service`},
		{"duplicate port number", func(o Object) { sp(o).Ports = append(sp(o).Ports, ServicePort{Name: "alt", Port: 80}) },
			"spec.ports[1].port: Duplicate value: 80"},
		{"duplicate node port", func(o Object) {
			sp(o).Type = ServiceTypeNodePort
			sp(o).Ports[0].NodePort = 30080
			sp(o).Ports = append(sp(o).Ports, ServicePort{Name: "alt", Port: 81, NodePort: 30080})
		}, "spec.ports[1].nodePort: Duplicate value: 30080"},
		{"session affinity", func(o Object) { sp(o).SessionAffinity = "Sticky" },
			`spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"`},
		{"session affinity config without ClientIP", func(o Object) {
			sp(o).SessionAffinityConfig = &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: ptr[int32](60)}}
		}, "spec.sessionAffinityConfig: Forbidden: may only be set when sessionAffinity is ClientIP"},
		{"external traffic policy on a ClusterIP service", func(o Object) { sp(o).ExternalTrafficPolicy = TrafficPolicyLocal },
			"spec.externalTrafficPolicy: Forbidden: may only be set when type is NodePort"},
		{"external traffic policy", func(o Object) { sp(o).Type = ServiceTypeNodePort; sp(o).ExternalTrafficPolicy = "Nearest" },
			`spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", "Local"`},
		{"internal traffic policy", func(o Object) { sp(o).InternalTrafficPolicy = "Node" },
			`spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"`},
	})
	// The same number on two protocols is two ports; ClientIP affinity, the
	// traffic policies and publishNotReadyAddresses are fine on their own.
	o := base(t, svcManifest)
	sp(o).Type = ServiceTypeNodePort
	sp(o).Ports = append(sp(o).Ports, ServicePort{Name: "quic", Port: 80, Protocol: ProtocolUDP})
	sp(o).SessionAffinity = ServiceAffinityClientIP
	sp(o).ExternalTrafficPolicy = TrafficPolicyLocal
	sp(o).InternalTrafficPolicy = TrafficPolicyLocal
	sp(o).PublishNotReadyAddresses = true
	if errs := Validate(o); errs != nil {
		t.Errorf("TCP and UDP on one port, ClientIP, Local policies: %v", errs)
	}
	// Headless services may have no ports; a valid IPv4 clusterIP is fine.
	for _, ip := range []string{ClusterIPNone, "10.96.0.10"} {
		o := base(t, svcManifest)
		sp(o).ClusterIP = ip
		if ip == ClusterIPNone {
			sp(o).Ports = nil
		}
		if errs := Validate(o); errs != nil {
			t.Errorf("clusterIP %s: %v", ip, errs)
		}
	}
}

func TestValidateConfigAndSecrets(t *testing.T) {
	runValidateCases(t, cmManifest, []validateCase{
		{"bad key", func(o Object) { o.(*ConfigMap).Data["a/b"] = "x" },
			`data[a/b]: Invalid value: "a/b": must consist of letters, digits, '-', '_' and '.'`},
		{"dot-dot key", func(o Object) { o.(*ConfigMap).Data[".."] = "x" },
			`data[..]: Invalid value: "..": must not be '.' or start with '..'`},
		{"key in data and binaryData", func(o Object) { o.(*ConfigMap).BinaryData = map[string][]byte{"a.conf": {1}} },
			`binaryData[a.conf]: Duplicate value: "a.conf"`},
	})
	runValidateCases(t, secretManifest, []validateCase{
		{"bad key", func(o Object) { o.(*Secret).Data["pass word"] = nil },
			`data[pass word]: Invalid value: "pass word": must consist of letters, digits, '-', '_' and '.'`},
		{"bad stringData key", func(o Object) { o.(*Secret).StringData = map[string]string{"a:b": "x"} },
			`stringData[a:b]: Invalid value: "a:b": must consist of letters, digits, '-', '_' and '.'`},
	})
}

func TestValidateNodeAndEndpoints(t *testing.T) {
	ns := func(o Object) *NodeSpec { return &o.(*Node).Spec }
	runValidateCases(t, nodeManifest, []validateCase{
		{"pod CIDR", func(o Object) { ns(o).PodCIDR = "10.244.1.0" },
			`spec.podCIDR: Invalid value: "10.244.1.0": must be a CIDR such as 10.244.1.0/24`},
		{"taint effect", func(o Object) { ns(o).Taints[0].Effect = "NoRun" },
			`spec.taints[0].effect: Unsupported value: "NoRun": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"`},
		{"taint effect required", func(o Object) { ns(o).Taints[0].Effect = "" }, "spec.taints[0].effect: Required value"},
		{"taint key required", func(o Object) { ns(o).Taints[0].Key = "" }, "spec.taints[0].key: Required value"},
		{"duplicate taint", func(o Object) { ns(o).Taints = append(ns(o).Taints, ns(o).Taints[0]) },
			`spec.taints[1]: Duplicate value: "dedicated:NoSchedule"`},
		{"role", func(o Object) { o.(*Node).Status.Role = "leader" },
			`status.role: Unsupported value: "leader": supported values: "nonvoter", "voter", "worker"`},
	})
	ss := func(o Object) *EndpointSubset { return &o.(*Endpoints).Subsets[0] }
	runValidateCases(t, epManifest, []validateCase{
		{"address", func(o Object) { ss(o).Addresses[0].IP = "10.244.1" },
			`subsets[0].addresses[0].ip: Invalid value: "10.244.1": must be an IP address`},
		{"address required", func(o Object) { ss(o).NotReadyAddresses = []EndpointAddress{{}} },
			"subsets[0].notReadyAddresses[0].ip: Required value"},
		{"port", func(o Object) { ss(o).Ports[0].Port = 70000 },
			"subsets[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"port protocol", func(o Object) { ss(o).Ports[0].Protocol = "tcp" },
			`subsets[0].ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP"`},
		{"port names when several", func(o Object) { ss(o).Ports = append(ss(o).Ports, EndpointPort{Name: "b", Port: 1}) },
			"subsets[0].ports[0].name: Required value: each port needs a name when there are several"},
	})
}

func TestValidateSortsAndCaps(t *testing.T) {
	o := base(t, podManifest)
	for i := 0; i < 30; i++ {
		podOf(o).Containers = append(podOf(o).Containers, Container{Name: "x" + strconv.Itoa(i)})
	}
	errs := Validate(o)
	if len(errs) != MaxFieldErrors+1 || errs[MaxFieldErrors].Error() != "and 10 more errors" {
		t.Fatalf("got %d errors: %v", len(errs), errs)
	}
	// Sorted by path, indexes in numeric order.
	for i := 0; i < MaxFieldErrors; i++ {
		if want := "spec.containers[" + strconv.Itoa(i+1) + "].image"; errs[i].Path != want {
			t.Fatalf("error %d is at %q, want %q", i, errs[i].Path, want)
		}
	}
	if err := errs.ErrOrNil(); err == nil {
		t.Fatal("ErrOrNil of a non-empty list is nil")
	}
	if err := Validate(base(t, podManifest)).ErrOrNil(); err != nil {
		t.Fatalf("ErrOrNil of a valid object = %v", err)
	}
}

func TestValidateUpdate(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		mutate   func(o Object)
		want     string // "" for an allowed update
	}{
		{"scale deployment", deploymentYAML, func(o Object) { *depSpec(o).Replicas = 5 }, ""},
		{"new image", deploymentYAML, func(o Object) { depSpec(o).Template.Spec.Containers[0].Image = "nginx:1.28" }, ""},
		{"deployment selector", deploymentYAML, func(o Object) {
			depSpec(o).Selector.MatchLabels["tier"] = "web"
			depSpec(o).Template.Labels["tier"] = "web"
		}, `spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"web"}}: field is immutable`},
		{"rename", deploymentYAML, func(o Object) { o.GetObjectMeta().Name = "web2" },
			`metadata.name: Invalid value: "web2": field is immutable`},
		{"replicaset selector", rsManifest, func(o Object) {
			o.(*ReplicaSet).Spec.Selector.MatchLabels["v"] = "2"
			o.(*ReplicaSet).Spec.Template.Labels["v"] = "2"
		}, `spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"2"}}: field is immutable`},
		{"daemonset selector", dsManifest, func(o Object) {
			o.(*DaemonSet).Spec.Selector = &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}}
		}, `spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Exists"}]}: field is immutable`},
		{"statefulset claims", stsManifest, func(o Object) {
			o.(*StatefulSet).Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[ResourceStorage] = "2Gi"
		}, "spec.volumeClaimTemplates: Forbidden: field is immutable"},
		{"statefulset service", stsManifest, func(o Object) { o.(*StatefulSet).Spec.ServiceName = "db2" },
			`spec.serviceName: Invalid value: "db2": field is immutable`},
		{"statefulset scale", stsManifest, func(o Object) { *o.(*StatefulSet).Spec.Replicas = 3 }, ""},
		{"service clusterIP", svcManifest, func(o Object) { o.(*Service).Spec.ClusterIP = "10.96.0.11" },
			`spec.clusterIP: Invalid value: "10.96.0.11": field is immutable`},
		{"service clusterIP cleared", svcManifest, func(o Object) { o.(*Service).Spec.ClusterIP = "" },
			`spec.clusterIP: Invalid value: "": field is immutable`},
		{"service ports", svcManifest, func(o Object) { o.(*Service).Spec.Ports[0].Port = 81 }, ""},
		{"immutable configmap", cmManifest, func(o Object) { o.(*ConfigMap).Data["a.conf"] = "y" },
			"data: Forbidden: field is immutable when `immutable` is set"},
		{"immutable configmap unset", cmManifest, func(o Object) { o.(*ConfigMap).Immutable = nil },
			"immutable: Forbidden: may not be unset once set"},
		{"immutable secret", secretManifest, func(o Object) { o.(*Secret).Data["password"] = []byte("y") },
			"data: Forbidden: field is immutable when `immutable` is set"},
		{"secret type", secretManifest, func(o Object) { o.(*Secret).Type = "kubernetes.io/tls" },
			`type: Invalid value: "kubernetes.io/tls": field is immutable`},
		{"pod image", podManifest, func(o Object) { ctr(o).Image = "nginx:1.28" }, ""},
		{"pod binding", podManifest, func(o Object) { podOf(o).NodeName = "node-1" }, ""},
		{"pod env", podManifest, func(o Object) { ctr(o).Env[0].Value = "c" },
			"spec: Forbidden: pod updates may only change container images, activeDeadlineSeconds, add tolerations and set nodeName"},
		{"pod added toleration", podManifest, func(o Object) { podOf(o).Tolerations = []Toleration{{Operator: "Exists"}} }, ""},
		{"node pod CIDR", nodeManifest, func(o Object) { o.(*Node).Spec.PodCIDR = "10.244.2.0/24" },
			`spec.podCIDR: Invalid value: "10.244.2.0/24": field is immutable`},
		{"node labels", nodeManifest, func(o Object) { o.GetObjectMeta().Labels = map[string]string{"zone": "a"} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := base(t, tc.manifest)
			switch o := old.(type) {
			case *Service:
				o.Spec.ClusterIP = "10.96.0.10"
			case *ConfigMap:
				o.Immutable = ptr(true)
			case *Secret:
				o.Immutable = ptr(true)
			}
			n := old.DeepCopyObject()
			tc.mutate(n)
			errs := ValidateUpdate(n, old)
			if tc.want == "" {
				if errs != nil {
					t.Fatalf("update refused: %v", errs)
				}
				return
			}
			if errs.Error() != tc.want {
				t.Fatalf("errors:\n got %v\nwant %s", errs, tc.want)
			}
		})
	}
	// Once bound, a pod stays on its node.
	old := base(t, podManifest)
	podOf(old).NodeName = "node-1"
	n := old.DeepCopyObject()
	podOf(n).NodeName = "node-2"
	if errs := ValidateUpdate(n, old); errs.Error() != `spec.nodeName: Invalid value: "node-2": field is immutable` {
		t.Fatalf("rebinding: %v", errs)
	}
	if errs := ValidateUpdate(base(t, podManifest), base(t, nodeManifest)); errs.Error() != `kind: Invalid value: "Pod": may not change from Node` {
		t.Fatalf("kind change: %v", errs)
	}
}

func TestFieldErrorFormats(t *testing.T) {
	cases := []struct {
		e    FieldError
		want string
	}{
		{Required("spec.template.spec.containers[0].image", ""), "spec.template.spec.containers[0].image: Required value"},
		{UnknownField("spec.template.spec.containers[0].imagePullPolcy"), "spec.template.spec.containers[0].imagePullPolcy: unknown field"},
		{Invalid("spec.replicas", int32(-1), "must be greater than or equal to 0"), "spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
		{Invalid("metadata.name", "A", "bad"), `metadata.name: Invalid value: "A": bad`},
		{NotSupported("spec.type", "X", []string{"A", "B"}), `spec.type: Unsupported value: "X": supported values: "A", "B"`},
		{TooLong("metadata.name", 253, "characters"), "metadata.name: Too long: must have at most 253 characters"},
		{TypeMismatch("spec.replicas", "expected integer, got string"), "spec.replicas: expected integer, got string"},
		{Duplicate("spec.volumes[1].name", "data"), `spec.volumes[1].name: Duplicate value: "data"`},
		{Forbidden("spec.x", "no"), "spec.x: Forbidden: no"},
		{NotFound("spec.y", "v"), `spec.y: Not found: "v"`},
		{Invalid("q", Quantity("1Gi"), "big"), `q: Invalid value: "1Gi": big`},
		{Invalid("p", ptr(FromString("25%")), "x"), `p: Invalid value: "25%": x`},
		{Invalid("m", map[string]string{"a": "b"}, "x"), `m: Invalid value: {"a":"b"}: x`},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %s\nwant %s", got, tc.want)
		}
	}
	l := FieldErrors{Required("b", ""), UnknownField("a")}
	if l.Error() != "b: Required value; a: unknown field" || l.Sorted().Error() != "a: unknown field; b: Required value" {
		t.Fatalf("list: %s / %s", l, l.Sorted())
	}
	c := l.Causes()
	if len(c) != 2 || c[1] != (StatusCause{Type: "FieldValueUnknown", Field: "a", Message: "unknown field"}) {
		t.Fatalf("causes = %+v", c)
	}
	if p := path("metadata").child("labels").key("app"); p != "metadata.labels[app]" {
		t.Fatalf("path = %s", p)
	}
}
