#!/usr/bin/env bash
# The services figures that need a running agent: 10,000 Services × 10
# endpoints loaded into the `make demo` cluster, the time until its load
# balancer holds them all, and the agent's RSS. Starts the demo when it is
# not running; the Services it made are deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-10}
if ! [[ -s /tmp/shoal-demo/agent.pid ]] || ! kill -0 "$(cat /tmp/shoal-demo/agent.pid)" 2>/dev/null; then
	make demo >/dev/null
fi
pid=$(cat /tmp/shoal-demo/agent.pid)
go build -o bin/svcload ./integration/bench/svcload
bin/svcload -services "$SERVICES" -endpoints "$ENDPOINTS" -pid "$pid" "$@"
echo "nftables: $(ip netns exec shoal-demo nft list table ip shoal | wc -l) lines in table ip shoal"
bin/svcload -delete -services "$SERVICES"
