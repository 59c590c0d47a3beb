#!/usr/bin/env bash
# The services figures that need a running agent: 10,000 Services × 10
# endpoints loaded into the `make demo` cluster, the time until its load
# balancer holds them all, and the agent's RSS (split into anonymous and
# file-backed pages, with the Go heap's statistics). Starts the demo when
# it is not running, with the profiler on and the agent's soft memory
# limit at MEMORY_LIMIT (default 120MiB; MEMORY_LIMIT= for none, Go's
# defaults); a demo already running is measured as it is, and the agent's
# flags are printed either way. The Services it made are deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-10}
MEMORY_LIMIT=${MEMORY_LIMIT-120MiB}
if ! [[ -s /tmp/shoal-demo/agent.pid ]] || ! kill -0 "$(cat /tmp/shoal-demo/agent.pid)" 2>/dev/null; then
	SHOAL_AGENT_ARGS="--pprof ${MEMORY_LIMIT:+--memory-limit $MEMORY_LIMIT} ${SHOAL_AGENT_ARGS:-}" make demo >/dev/null
fi
pid=$(cat /tmp/shoal-demo/agent.pid)
echo "agent: $(tr '\0' ' ' </proc/"$pid"/cmdline)"
if gml=$(tr '\0' '\n' </proc/"$pid"/environ | grep -E '^(GOMEMLIMIT|GOGC)='); then
	echo "agent environment: $gml"
fi
go build -o bin/svcload ./integration/bench/svcload
bin/svcload -services "$SERVICES" -endpoints "$ENDPOINTS" -pid "$pid" "$@"
echo "nftables: $(ip netns exec shoal-demo nft list table ip shoal | wc -l) lines in table ip shoal"
bin/svcload -delete -services "$SERVICES"
