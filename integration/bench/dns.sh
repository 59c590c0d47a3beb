#!/usr/bin/env bash
# Shoal's cluster DNS server (agent/dns) vs dnsmasq answering the same names,
# measured with dnsperf, on 127.0.0.1 only. Installs dnsperf and dnsmasq-base
# (the dnsmasq binary without the Debian service that would start a
# system-wide daemon on port 53) when they are missing.
#
#   bash integration/bench/dns.sh                       # 1,000 services, 3 rounds x 10 s
#   bash integration/bench/dns.sh -services 10000 -nx 0.5 -rounds 5 -duration 5s
#
# Flags go to the Go program (integration/bench/dns); see its -help. The run
# is bounded in time (the program gives up after rounds x 2 x (duration +
# latency-duration + 20 s) + 1 min) and leaves nothing running: dnsmasq and
# dnsperf die with the program, and the program dies with this script.
#
# Security (issue 10) does not enter here: no agent and no API run; the
# Go program serves agent/dns in-process on loopback, and cluster DNS is
# unauthenticated UDP inside the pod network in a real agent too.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
[[ -x /usr/sbin/dnsmasq ]] || need+=(dnsmasq-base)
if ((${#need[@]})); then
	if [[ $(id -u) != 0 ]]; then
		echo "bench dns: missing ${need[*]}; install the Debian packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "${need[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

bin=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$bin/dnsbench" ./integration/bench/dns
"$bin/dnsbench" -dnsmasq /usr/sbin/dnsmasq -dnsperf "$(command -v dnsperf)" "$@" &
pid=$!
wait "$pid"
