#!/usr/bin/env bash
# `make demo`: three Shoal hosts on this machine, and a walk through a
# cluster that elects its own control plane and heals itself.
#   bash integration/demo.sh        start (a leftover run is removed first)
#   bash integration/demo.sh stop   stop it and remove everything it made
#
# The hosts are network namespaces (shoal-demo-h1..3) plugged into a
# switch namespace (shoal-demo-sw), each with a private containerd and a
# `shoal agent` running inside it, provisioned by the script a Vagrant VM
# runs (integration/hosts/provision.sh). The work is done by
# integration/cmd/demohosts, which keeps the cluster until `make demo-stop`.
# Nothing in the machine's own network namespace changes. For a laptop,
# the one-host `make demo-dev` is lighter.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=${SHOAL_DEMO_HOSTS_DIR:-/tmp/shoal-demo-hosts}
PIDFILE=$DEMO_DIR/demohosts.pid
LOG=$DEMO_DIR/demo.log

stop_all() {
	if [[ -f $PIDFILE ]]; then
		pid=$(cat "$PIDFILE")
		if kill -0 "$pid" 2>/dev/null && grep -q demohosts "/proc/$pid/cmdline" 2>/dev/null; then
			echo "==> stopping the demo (pid $pid)"
			kill "$pid"
			for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			grep -E '^(==> stop|demohosts:)' "$LOG" | tail -n 3 || true
		fi
		rm -f "$PIDFILE"
	fi
	# Whatever a crashed or killed run left: its namespaces, the processes
	# in them, its containers and mounts.
	if [[ -x bin/demohosts ]]; then
		bin/demohosts cleanup -dir "$DEMO_DIR"
	fi
}

[[ $(id -u) == 0 ]] || { echo "demo: run as root (containerd, network namespaces)" >&2; exit 1; }
if [[ ${1:-} == stop ]]; then
	stop_all
	exit 0
fi

command -v go >/dev/null || { echo "demo: Go 1.26 is needed to build shoal (see README)" >&2; exit 1; }
missing=()
for p in containerd runc containernetworking-plugins nftables iproute2 util-linux curl; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "==> installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "==> building bin/shoal and bin/demohosts"
make build >/dev/null
go build -o bin/demohosts ./integration/cmd/demohosts

stop_all
mkdir -p "$DEMO_DIR"
: >"$LOG"
setsid bin/demohosts up -dir "$DEMO_DIR" -bin bin/shoal -manifest integration/examples/web.yaml >"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PIDFILE"
tail -n +1 -f "$LOG" --pid "$pid" &
tailpid=$!
# ^C before the demo is ready stops it and removes what it made.
trap 'kill "$tailpid" 2>/dev/null || true; echo; echo "demo: interrupted; stopping it" >&2; stop_all; exit 130' INT TERM
deadline=$((SECONDS + 600))
until grep -q '^==> ready' "$LOG"; do
	if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
		sleep 0.5
		kill "$tailpid" 2>/dev/null || true
		echo "demo: failed (log: $LOG); cleaning up" >&2
		stop_all
		exit 1
	fi
	sleep 0.3
done
trap - INT TERM
sleep 0.3
kill "$tailpid" 2>/dev/null || true
wait "$tailpid" 2>/dev/null || true
