package api

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckHostPath(t *testing.T) {
	allow := []string{"/data", "/srv/logs/"}
	cases := []struct {
		path  string
		allow []string
		ok    bool
		why   string // part of the error
	}{
		{"/", allow, false, "the host's root"},
		{"/etc", allow, false, "/etc is reserved"},
		{"/etc/ssl", allow, false, "/etc is reserved"},
		{"/etc/../etc", allow, false, `".."`},
		{"/data/../etc", allow, false, `".."`},
		{"/data/./x", allow, false, `"."`},
		{"data/x", allow, false, "absolute"},
		{"", allow, false, "empty"},
		{"/var", allow, false, "contains /var/lib/shoal, which is reserved"},
		{"/var/lib/shoal/volumes/x", allow, false, "/var/lib/shoal is reserved"},
		{"/run/containerd/containerd.sock", allow, false, "/run/containerd is reserved"},
		{"/proc/1", allow, false, "/proc is reserved"},
		{"/sys", allow, false, "/sys is reserved"},
		{"/dev/sda", allow, false, "/dev is reserved"},
		{"/data/x", allow, true, ""},
		{"/data", allow, true, ""},
		{"/data/x/", allow, true, ""},
		{"//data//x", allow, true, ""},
		{"/srv/logs/app", allow, true, ""},
		{"/srv/logs", allow, true, ""},
		{"/srv", allow, false, "not below an allowed directory"},
		{"/data2", allow, false, "not below an allowed directory"},
		{"/devices", []string{"/devices"}, true, ""},
		{"/data/x", nil, false, "--host-path-allow is empty"},
		// An unchecked allowlist cannot open a reserved path either.
		{"/etc/passwd", []string{"/"}, false, "/etc is reserved"},
	}
	for _, tc := range cases {
		err := CheckHostPath(tc.path, tc.allow)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckHostPath(%q, %q) = %v, want nil", tc.path, tc.allow, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("CheckHostPath(%q, %q) = nil, want an error", tc.path, tc.allow)
			continue
		}
		if !errors.Is(err, ErrHostPathNotAllowed) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CheckHostPath(%q, %q) = %v, want ErrHostPathNotAllowed mentioning %q", tc.path, tc.allow, err, tc.why)
		}
	}
}

func TestCheckHostPathAllow(t *testing.T) {
	extra := []string{"/opt/shoal-data", "/run/k3s/containerd.sock"}
	cases := []struct {
		allow []string
		ok    bool
	}{
		{nil, true},
		{[]string{"/data", "/srv/logs/"}, true},
		{[]string{"/"}, false},
		{[]string{"/etc"}, false},
		{[]string{"/etc/ssl"}, false},
		{[]string{"/var"}, false},
		{[]string{"/var/lib"}, false},
		{[]string{"/var/lib/shoal/volumes"}, false},
		{[]string{"/run"}, false},
		{[]string{"/proc/self"}, false},
		{[]string{"/opt"}, false},               // contains the data dir
		{[]string{"/opt/shoal-data/x"}, false},  // inside the data dir
		{[]string{"/run/k3s"}, false},           // contains the socket
		{[]string{"/opt/other", "/data"}, true}, // neighbours are fine
		{[]string{"/data", "relative"}, false},  // relative
		{[]string{"/data/../etc"}, false},       // ..
		{[]string{"/data", ""}, false},          // empty entry
	}
	for _, tc := range cases {
		err := CheckHostPathAllow(tc.allow, extra...)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHostPathAllow(%q) = %v, want ok=%v", tc.allow, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "host-path-allow") {
			t.Errorf("CheckHostPathAllow(%q) = %v, want the flag named", tc.allow, err)
		}
	}
}

func TestValidateHostPaths(t *testing.T) {
	vols := []Volume{
		{Name: "ok", HostPath: &HostPathVolumeSource{Path: "/data/x"}},
		{Name: "cm", ConfigMap: &ConfigMapVolumeSource{Name: "c"}},
		{Name: "root", HostPath: &HostPathVolumeSource{Path: "/"}},
	}
	tmpl := PodTemplateSpec{Spec: PodSpec{Volumes: vols}}
	allow := []string{"/data"}
	cases := []struct {
		obj  Object
		path string
	}{
		{&Pod{Spec: PodSpec{Volumes: vols}}, "spec.volumes[2].hostPath.path"},
		{&Deployment{Spec: DeploymentSpec{Template: tmpl}}, "spec.template.spec.volumes[2].hostPath.path"},
		{&ReplicaSet{Spec: ReplicaSetSpec{Template: tmpl}}, "spec.template.spec.volumes[2].hostPath.path"},
		{&DaemonSet{Spec: DaemonSetSpec{Template: tmpl}}, "spec.template.spec.volumes[2].hostPath.path"},
		{&StatefulSet{Spec: StatefulSetSpec{Template: tmpl}}, "spec.template.spec.volumes[2].hostPath.path"},
	}
	for _, tc := range cases {
		errs := ValidateHostPaths(tc.obj, allow)
		if len(errs) != 1 || errs[0].Path != tc.path || errs[0].Type != ErrorInvalid {
			t.Errorf("%s: ValidateHostPaths = %v, want one Invalid at %s", KindOf(tc.obj), errs, tc.path)
		}
	}
	if errs := ValidateHostPaths(&ConfigMap{}, nil); errs != nil {
		t.Errorf("ConfigMap: %v", errs)
	}
	if errs := ValidateHostPaths(&Pod{Spec: PodSpec{Volumes: vols[:2]}}, allow); errs != nil {
		t.Errorf("allowed pod: %v", errs)
	}
}
