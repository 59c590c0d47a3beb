# Sourced by the benchmark scripts that compare Shoal with etcd (memory.sh,
# writes.sh) from the repository's root: installs etcd-server (Debian) when
# etcd is missing, builds bin/etcdload and bin/shoal.
if ! command -v etcd >/dev/null; then
	if [[ $(id -u) == 0 ]]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server
	else
		echo "bench: etcd not found; install the Debian package etcd-server" >&2; exit 1
	fi
fi
mkdir -p bin
(cd integration/bench/etcdload && go build -o ../../../bin/etcdload .)
make build
