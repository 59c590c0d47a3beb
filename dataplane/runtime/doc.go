// Package runtime drives containerd for the node loop: images, containers,
// tasks, exec, attach, exit and OOM events, and container log files (the
// agent reads each container's output through FIFOs and writes it as CRI
// records with their time: containerio.go, logformat.go).
//
// It talks to a containerd daemon (1.6 or newer) through the containerd v2 Go
// client, in one containerd namespace ("shoal" by default). Every method moves
// one container one step (pull, create, start, stop, remove) and is safe to
// repeat: creating an existing container, starting a running one, stopping a
// stopped one or removing an absent one succeeds without doing anything. The
// node loop decides; this package only does.
//
// A container is identified by a deterministic ID (see ContainerID) and
// carries labels the node loop sets (pod UID, name, namespace, container
// name, attempt) plus the runtime's own (log path, start time, OOM kill), so
// an agent that restarts adopts what is running from List alone.
//
// Containers run under containerd's runc v2 shim with runc or crun as the
// OCI runtime (Config.OCIRuntime: runc by default, the one the suite runs;
// crun, or auto: crun where it is installed and the cgroup layout lets it
// run, for its cheaper start). The choice is
// recorded with each container, so an agent restarted with the other one
// still manages what the first created.
//
// Pods never share the host network namespace: ContainerSpec.NetNSPath is
// required. Containers are never privileged; they get containerd's default
// seccomp profile, no-new-privileges and the default capability set.
//
// Not here: the pod network (package network), volume contents (package
// volume), probes (package probe), and restart policy and back-off, which the
// node loop decides. The package must not know about Raft, the store or the
// API objects: it imports no other Shoal package, and the node loop turns a
// pod into ContainerSpecs.
//
// Files: spec.go (ContainerSpec, IDs, validation, the OCI spec),
// container.go (Create, Start, Stop, Remove, List), containerio.go (the
// output's FIFOs, stdin, Attach), logformat.go (log records), exec.go,
// events.go, logs.go (rotation and reading), runtime.go (the connection
// and images), ociruntime.go (runc or crun: Config.OCIRuntime).
package runtime
