// Package streams speaks the streaming protocols kubectl and client-go use
// for a pod's exec, attach and port-forward, on the agent that runs the
// pod:
//
//   - remote commands (exec, attach) over a WebSocket whose subprotocol is
//     v5.channel.k8s.io or v4.channel.k8s.io: every binary message starts
//     with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error: the
//     command's end as a Status in JSON, 4 terminal resize: {"Width",
//     "Height"} in JSON); v5 adds channel 255, whose one-byte payload names
//     a channel its sender closed (the client closes stdin that way);
//   - the same remote commands on a connection upgraded to SPDY/3.1
//     (v4.channel.k8s.io, v3, v2: kubectl < 1.30, client-go's SPDY
//     executor), one SPDY stream per standard stream (command_spdy.go);
//   - port-forward as SPDY/3.1 streams (protocol portforward.k8s.io), either
//     tunnelled through a WebSocket (subprotocol
//     SPDY/3.1+portforward.k8s.io, what kubectl ≥ 1.30 asks first) or on a
//     connection upgraded to SPDY/3.1 (older clients): each forwarded
//     connection is a pair of streams, "data" and "error", with the same
//     "requestID" and "port" headers.
//
// It knows nothing of pods or containers: its callers (agent/kubelet) give
// it the command to run or the way to dial a port.
package streams
