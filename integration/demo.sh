#!/usr/bin/env bash
# Brings up a one-node Shoal cluster in the background and shows it working.
#   bash integration/demo.sh        start (or restart) the demo agent, apply the example
#   bash integration/demo.sh stop   stop it
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=${SHOAL_DEMO_DIR:-/tmp/shoal-demo}
PIDFILE=$DEMO_DIR/agent.pid
LOG=$DEMO_DIR/agent.log
export SHOAL_ADDR=${SHOAL_ADDR:-http://127.0.0.1:7070}
SHOAL=bin/shoal

stop_agent() {
	if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		kill "$(cat "$PIDFILE")"
		for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
		echo "stopped the demo agent (pid $(cat "$PIDFILE"))"
	fi
	rm -f "$PIDFILE"
}

if [[ ${1:-} == stop ]]; then
	stop_agent
	exit 0
fi

command -v go >/dev/null || { echo "demo: Go 1.26 is needed to build shoal (see README)" >&2; exit 1; }
[[ -x $SHOAL ]] || make build

stop_agent
mkdir -p "$DEMO_DIR"
echo "==> starting a one-node dev cluster: $SHOAL agent -dev --data-dir $DEMO_DIR/data"
nohup "$SHOAL" agent -dev --node-name demo --data-dir "$DEMO_DIR/data" >"$LOG" 2>&1 &
echo $! >"$PIDFILE"

# Wait until the agent answers and has elected itself and created the
# default namespace: a condition with a deadline, not a fixed sleep.
deadline=$((SECONDS + 30))
until "$SHOAL" get namespace default >/dev/null 2>&1; do
	if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "demo: the agent exited; its log:" >&2; cat "$LOG" >&2; exit 1
	fi
	if ((SECONDS > deadline)); then
		echo "demo: the agent did not become ready in 30s; its log:" >&2; cat "$LOG" >&2; exit 1
	fi
	sleep 0.2
done

run() { echo; echo "\$ shoal $*"; "$SHOAL" "$@"; }
run status
run apply -f integration/examples/web.yaml
run get deployments
run get services
run get configmaps -l app=web
run get deployment web -o yaml
echo
echo "The agent keeps running (pid $(cat "$PIDFILE"), log $LOG, API $SHOAL_ADDR)."
echo "Try 'bin/shoal get pods', 'bin/shoal describe deployment web'; stop it with: make demo-stop"
