#!/usr/bin/env bash
# The services figures that need a running agent: 10,000 Services × 10
# endpoints loaded into the `make demo` cluster, the time until its load
# balancer holds them all, and the agent's RSS (split into anonymous and
# file-backed pages, with the Go heap's statistics). Starts the demo when
# it is not running, with the profiler on and the agent's soft memory
# limit at MEMORY_LIMIT (default 120MiB; MEMORY_LIMIT= for none, Go's
# defaults); a demo already running is measured as it is, and the agent's
# flags are printed either way. The Services it made are deleted at the end.
#
# NONVOTER=1 measures a second agent instead: it joins the demo as a
# non-voter, with its own private containerd and pod network namespace
# (shoal-demo-nv, made by demohost), gets the same MEMORY_LIMIT, and is
# stopped and cleaned up at the end; the writes still go to the demo agent.
#
# Security (issue 10): the demo is secure by default, and so is what this
# measures, as a user runs it: svcload and the CLI use the admin token and
# CA in the demo's data dir, and the second agent joins with the worker
# join token that `shoal token show` prints. A demo started with
# SHOAL_AGENT_ARGS=--insecure (loopback only) is measured over plain HTTP.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-10}
MEMORY_LIMIT=${MEMORY_LIMIT-120MiB}
if ! [[ -s /tmp/shoal-demo/agent.pid ]] || ! kill -0 "$(cat /tmp/shoal-demo/agent.pid)" 2>/dev/null; then
	SHOAL_AGENT_ARGS="--pprof ${MEMORY_LIMIT:+--memory-limit $MEMORY_LIMIT} ${SHOAL_AGENT_ARGS:-}" make demo-dev >/dev/null
fi
pid=$(cat /tmp/shoal-demo/agent.pid)
data=/tmp/shoal-demo/data
server=http://127.0.0.1:7070
if [[ -s $data/admin.token ]]; then
	server=https://127.0.0.1:7070
	SHOAL_TOKEN=$(cat "$data/admin.token")
	export SHOAL_TOKEN SHOAL_CA_FILE=$data/tls/ca.crt
fi
profile=$server
netns=shoal-demo
go build -o bin/svcload ./integration/bench/svcload

if [[ ${NONVOTER:-} == 1 ]]; then
	nv=$(mktemp -d /tmp/shoal-nonvoter.XXXXXX)
	nvstop() {
		for f in agent demohost; do
			if [[ -s $nv/$f.pid ]] && kill -0 "$(cat "$nv/$f.pid")" 2>/dev/null; then
				kill "$(cat "$nv/$f.pid")"
				for _ in $(seq 100); do kill -0 "$(cat "$nv/$f.pid")" 2>/dev/null || break; sleep 0.1; done
				kill -9 "$(cat "$nv/$f.pid")" 2>/dev/null || true
			fi
		done
		grep " $nv/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
		rm -rf "$nv"
	}
	trap nvstop EXIT
	go build -o bin/demohost ./integration/cmd/demohost
	bin/demohost -env "$nv/host.env" -registry 127.0.0.1:5001 -netns shoal-demo-nv >"$nv/demohost.log" 2>&1 &
	echo $! >"$nv/demohost.pid"
	deadline=$((SECONDS + 120))
	until [[ -s $nv/host.env ]]; do
		if ! kill -0 "$(cat "$nv/demohost.pid")" 2>/dev/null || ((SECONDS > deadline)); then
			echo "services: the second host's setup failed:" >&2; cat "$nv/demohost.log" >&2; exit 1
		fi
		sleep 0.2
	done
	# shellcheck disable=SC1091
	source "$nv/host.env"
	mode=(--insecure)
	if [[ $server == https://* ]]; then
		worker=$(SHOAL_ADDR=$server bin/shoal token show | grep -i worker | grep -oE 'SHOAL-1-[a-z0-9-]+' | head -1)
		[[ -n $worker ]] || { echo "services: no worker join token from shoal token show" >&2; exit 1; }
		mode=(--token "$worker" --join-api 127.0.0.1:7070)
	fi
	bin/shoal agent --node-name demo-nv --data-dir "$nv/data" --http-addr 127.0.0.1:7080 --raft-addr 127.0.0.1:7081 \
		--bind 127.0.0.1:7956 --join 127.0.0.1:7946 "${mode[@]}" \
		--containerd-socket "$SHOAL_DEMO_CONTAINERD_SOCKET" --containerd-namespace "$SHOAL_DEMO_CONTAINERD_NAMESPACE" \
		--runc-root "$SHOAL_DEMO_RUNC_ROOT" --cgroup-parent "$SHOAL_DEMO_CGROUP_PARENT" --pod-netns "$SHOAL_DEMO_NETNS" \
		--pprof ${MEMORY_LIMIT:+--memory-limit "$MEMORY_LIMIT"} >"$nv/agent.log" 2>&1 &
	echo $! >"$nv/agent.pid"
	deadline=$((SECONDS + 60))
	until SHOAL_ADDR=$server bin/shoal get nodes 2>/dev/null | grep -qE '^demo-nv +Ready'; do
		if ! kill -0 "$(cat "$nv/agent.pid")" 2>/dev/null || ((SECONDS > deadline)); then
			echo "services: the second agent did not come up:" >&2; tail -20 "$nv/agent.log" >&2; exit 1
		fi
		sleep 0.3
	done
	SHOAL_ADDR=$server bin/shoal get nodes
	pid=$(cat "$nv/agent.pid")
	profile=${server%:7070}:7080
	netns=shoal-demo-nv
fi

echo "agent: $(tr '\0' ' ' </proc/"$pid"/cmdline)"
if gml=$(tr '\0' '\n' </proc/"$pid"/environ | grep -E '^(GOMEMLIMIT|GOGC)='); then
	echo "agent environment: $gml"
fi
bin/svcload -server "$server" -data-dir "$data" -profile "$profile" -netns "$netns" -services "$SERVICES" -endpoints "$ENDPOINTS" -pid "$pid" "$@"
echo "nftables: $(ip netns exec "$netns" nft list table ip shoal | wc -l) lines in table ip shoal"
bin/svcload -server "$server" -data-dir "$data" -delete -services "$SERVICES"
