#!/usr/bin/env bash
# Brings up a one-node Shoal cluster that runs real containers, and shows it
# working: containerd, CNI pod networking, a Deployment rolled out, its
# Service's endpoints, logs and exec.
#   bash integration/demo-dev.sh        start (or restart) the demo, apply the example
#   bash integration/demo-dev.sh stop   stop it and remove everything it made
#
# Nothing here touches the machine's own network: pods are wired inside a
# network namespace the demo creates (shoal-demo), and containers run on a
# private containerd, not the machine's.
#
# The agent is secure, as every agent is by default (issue 10): -dev makes
# the cluster CA and the first admin token in its data dir
# ($DEMO_DIR/data/admin.token, $DEMO_DIR/data/tls/ca.crt), the API is
# HTTPS, and the CLI here gets them through SHOAL_TOKEN and SHOAL_CA_FILE.
# With SHOAL_AGENT_ARGS=--insecure (allowed: everything binds loopback) the
# API is plain HTTP without authentication.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=${SHOAL_DEMO_DIR:-/tmp/shoal-demo}
DATA=$DEMO_DIR/data
scheme=https
[[ " ${SHOAL_AGENT_ARGS:-} " == *" --insecure "* ]] && scheme=http
export SHOAL_ADDR=${SHOAL_ADDR:-$scheme://127.0.0.1:7070}
SHOAL=bin/shoal
LOG=$DEMO_DIR/agent.log

stop_pid() { # name pidfile
	local f=$DEMO_DIR/$2
	if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
		kill "$(cat "$f")"
		for _ in $(seq 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$(cat "$f")" 2>/dev/null || true
		echo "stopped the demo $1"
	fi
	rm -f "$f"
}

stop_all() {
	stop_pid agent agent.pid
	stop_pid host demohost.pid
	# Pod network namespaces are bind mounts under the agent's state dir.
	if [[ -d $DEMO_DIR ]]; then
		grep " $DEMO_DIR/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	fi
}

if [[ ${1:-} == stop ]]; then
	stop_all
	exit 0
fi

[[ $(id -u) == 0 ]] || { echo "demo: run as root (containerd, network namespaces)" >&2; exit 1; }
command -v go >/dev/null || { echo "demo: Go 1.26 is needed to build shoal (see README)" >&2; exit 1; }
missing=()
for p in containerd runc containernetworking-plugins nftables iproute2; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "==> installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
make build >/dev/null
go build -o bin/demohost ./integration/cmd/demohost

stop_all
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

echo "==> a private containerd, an image registry on 127.0.0.1:5000 with the demo image, a network namespace for pods"
nohup bin/demohost -env "$DEMO_DIR/host.env" >"$DEMO_DIR/demohost.log" 2>&1 &
echo $! >"$DEMO_DIR/demohost.pid"
deadline=$((SECONDS + 120))
until [[ -s $DEMO_DIR/host.env ]]; do
	if ! kill -0 "$(cat "$DEMO_DIR/demohost.pid")" 2>/dev/null || ((SECONDS > deadline)); then
		echo "demo: the host setup failed; its log:" >&2; cat "$DEMO_DIR/demohost.log" >&2; exit 1
	fi
	sleep 0.2
done
# shellcheck disable=SC1091
source "$DEMO_DIR/host.env"

echo "==> a one-node dev cluster: $SHOAL agent -dev (log: $LOG)"
# shellcheck disable=SC2086 # SHOAL_AGENT_ARGS is a list of flags
nohup "$SHOAL" agent -dev --node-name demo --data-dir "$DATA" \
	--containerd-socket "$SHOAL_DEMO_CONTAINERD_SOCKET" --containerd-namespace "$SHOAL_DEMO_CONTAINERD_NAMESPACE" \
	--runc-root "$SHOAL_DEMO_RUNC_ROOT" --cgroup-parent "$SHOAL_DEMO_CGROUP_PARENT" \
	--pod-netns "$SHOAL_DEMO_NETNS" ${SHOAL_AGENT_ARGS:-} >"$LOG" 2>&1 & # SHOAL_AGENT_ARGS: extra agent flags, split on spaces
echo $! >"$DEMO_DIR/agent.pid"

# Wait until the agent has written its credentials (secure), answers and
# has elected itself: a condition with a deadline, not a fixed sleep.
creds() {
	[[ $scheme == http ]] && return 0
	[[ -s $DATA/admin.token && -s $DATA/tls/ca.crt ]] || return 1
	SHOAL_TOKEN=$(cat "$DATA/admin.token")
	export SHOAL_TOKEN SHOAL_CA_FILE=$DATA/tls/ca.crt
}
deadline=$((SECONDS + 60))
until creds && "$SHOAL" get namespace default >/dev/null 2>&1; do
	if ! kill -0 "$(cat "$DEMO_DIR/agent.pid")" 2>/dev/null || ((SECONDS > deadline)); then
		echo "demo: the agent did not come up; its log:" >&2; cat "$LOG" >&2; exit 1
	fi
	sleep 0.2
done

run() { echo; echo "\$ shoal $*"; "$SHOAL" "$@"; }
run status
run get nodes -o wide
run apply -f integration/examples/web.yaml
run rollout status deployment/web --timeout 120s
run get pods -o wide
run get services
run get endpoints
pod=$("$SHOAL" get pods -l app=web | awk 'NR==2 {print $1}')
run logs "$pod"
run exec "$pod" -- /app cat /srv/index.html
ip=$("$SHOAL" get pods -l app=web -o wide | awk -v p="$pod" '$1 == p {print $6}')
echo
echo "\$ ip netns exec $SHOAL_DEMO_NETNS_NAME curl -s http://$ip:8080/healthz   # from the node's pod network"
ip netns exec "$SHOAL_DEMO_NETNS_NAME" curl -s --max-time 5 "http://$ip:8080/healthz"
vip=$("$SHOAL" get service web -o wide | awk 'NR==2 {print $3}')
echo
echo "\$ ip netns exec $SHOAL_DEMO_NETNS_NAME curl -s http://$vip/hostname   # the Service's ClusterIP, load-balanced by nftables"
for _ in 1 2 3; do ip netns exec "$SHOAL_DEMO_NETNS_NAME" curl -s --max-time 5 "http://$vip/hostname"; done
echo
echo "\$ shoal exec $pod -- /app get http://web/hostname   # by name from inside a pod (cluster DNS)"
"$SHOAL" exec "$pod" -- /app get http://web/hostname
echo
echo
echo "The demo keeps running (agent pid $(cat "$DEMO_DIR/agent.pid"), log $LOG, API $SHOAL_ADDR)."
if [[ $scheme == https ]]; then
	echo "Its admin token and CA: $DATA/admin.token, $DATA/tls/ca.crt; for the CLI:"
	echo "  export SHOAL_TOKEN=\$(cat $DATA/admin.token) SHOAL_CA_FILE=$DATA/tls/ca.crt"
fi
echo "Try 'bin/shoal scale deployment web --replicas 5', 'bin/shoal get pods -o wide'; stop it with: make demo-dev-stop"
