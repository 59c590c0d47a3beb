#!/usr/bin/env bash
# make bench: Shoal's replicated store through the HTTP API, secure (the
# default: mutual TLS, HTTPS, bearer token) and --insecure in the same run
# (the ratio is the cost of security, issue 10: target <= 1.2x), vs etcd 3.4
# as an anchor, 64 writers spread over 3 agents on loopback: etcd with TLS as
# Kubernetes runs it (client certificates, mutual TLS between members; the
# anchor for secure) and in plaintext (the anchor for insecure), -etcd-modes
# plain,tls picks them; and the join of a 4th agent with the worker join
# token, start to Node Ready (min / median / max). Installs etcd-server
# (Debian) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. integration/bench/benchproc/prepare.sh
go build -o bin/writes ./integration/bench/writes
bin/writes -etcd "$(command -v etcd)" -etcdload bin/etcdload "$@"
