#!/usr/bin/env bash
# Memory per object (issue 14): three Shoal voters and three etcd 3.4
# members each loaded with the same number of 1 KiB objects, then every
# process's RSS (and the Shoal voters' Go heap after a collection); prints
# Shoal's mean RSS over etcd's. Default 10,000 objects (a short run for
# make bench); the issue's figure is `memory.sh -objects 100000`. Other
# flags: -profile DIR (heap profiles of the voters), -base-shoal BIN
# (before/after in one run). Installs etcd-server (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. integration/bench/benchproc/prepare.sh
go build -o bin/memory ./integration/bench/memory
bin/memory -etcd "$(command -v etcd)" -etcdload bin/etcdload "$@"
