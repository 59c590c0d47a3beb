#!/usr/bin/env bash
# Provisions one Shoal host: the same script for a Vagrant VM (systemd
# mode) and for each host the netns harness and `make demo` simulate
# (netns mode), so every CI run exercises what `vagrant up` runs.
#
#   provision.sh [options]
#
#   --mode systemd|netns   systemd (default): write, enable and start
#                          shoal-agent.service; netns: only write the
#                          files (the harness starts the agent itself)
#   --root DIR             install below DIR instead of / (default /)
#   --no-install           do not apt-get install the missing packages
#   --bin FILE             the shoal binary to install as
#                          ROOT/usr/local/bin/shoal (default: keep the one
#                          there)
#   --node-name NAME       the host's node name (default: its hostname)
#   --ip IP                the address the agent listens on and is reached
#                          at (API :7070, Raft :7071, gossip :7946) and
#                          its Node's InternalIP (required)
#   --join IP,IP           the other initial hosts (gossip port 7946)
#   --bootstrap-expect N   form the cluster once N agents see each other
#   --token TOKEN          bootstrap or join token (shoal token generate /
#                          shoal token show)
#   --zone ZONE            failure zone (voters are spread over zones)
#   --data-dir DIR         the agent's data dir (default /var/lib/shoal)
#   --extra "FLAGS"        more agent flags, separated by spaces
#
# It writes ROOT/etc/default/shoal (SHOAL_AGENT_ARGS, mode 0600: it holds
# the token) and ROOT/etc/systemd/system/shoal-agent.service (restart on
# failure, flags from /etc/default/shoal). No value may hold whitespace:
# systemd splits $SHOAL_AGENT_ARGS on it.
set -euo pipefail

mode=systemd root=/ install=1 bin='' node_name='' ip='' join='' expect='' token='' zone='' data_dir=/var/lib/shoal extra=''
die() { echo "provision: $*" >&2; exit 2; }
need() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
while (($#)); do
	case $1 in
	--mode) need "$@"; mode=$2; shift ;;
	--root) need "$@"; root=$2; shift ;;
	--no-install) install=0 ;;
	--bin) need "$@"; bin=$2; shift ;;
	--node-name) need "$@"; node_name=$2; shift ;;
	--ip) need "$@"; ip=$2; shift ;;
	--join) need "$@"; join=$2; shift ;;
	--bootstrap-expect) need "$@"; expect=$2; shift ;;
	--token) need "$@"; token=$2; shift ;;
	--zone) need "$@"; zone=$2; shift ;;
	--data-dir) need "$@"; data_dir=$2; shift ;;
	--extra) need "$@"; extra=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

[[ $mode == systemd || $mode == netns ]] || die "--mode: systemd or netns, not $mode"
[[ -n $ip ]] || die "--ip is required"
[[ $ip =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "--ip $ip: an IPv4 address"
[[ -z $expect || $expect =~ ^[1-9][0-9]?$ ]] || die "--bootstrap-expect $expect: a number 1..99"
[[ -z $join || $join =~ ^[0-9.,]+$ ]] || die "--join $join: IPv4 addresses separated by commas"
[[ -z $zone || $zone =~ ^[a-zA-Z0-9._-]{1,63}$ ]] || die "--zone $zone: letters, digits, '.', '_', '-' (at most 63)"
[[ -z $node_name || $node_name =~ ^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$ ]] || die "--node-name $node_name: a DNS label (lower case)"
[[ -z $token || $token =~ ^[A-Za-z0-9._-]+$ ]] || die "--token: unexpected characters"
[[ $data_dir == /* && ! $data_dir =~ [[:space:]] ]] || die "--data-dir $data_dir: an absolute path without spaces"
[[ -z $bin || -x $bin ]] || die "--bin $bin: not an executable file"
[[ $root == /* ]] || die "--root $root: an absolute path"
root=${root%/}

if ((install)); then
	[[ $(id -u) == 0 ]] || die "installing packages needs root (or pass --no-install)"
	missing=()
	for p in containerd runc nftables containernetworking-plugins iproute2; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if ((${#missing[@]})); then
		echo "provision: installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
fi

mkdir -p "$root/usr/local/bin" "$root/etc/default" "$root/etc/systemd/system"
if [[ -n $bin ]]; then
	install -m 0755 "$bin" "$root/usr/local/bin/shoal.new"
	mv -f "$root/usr/local/bin/shoal.new" "$root/usr/local/bin/shoal"
fi

args=(--data-dir "$data_dir" --http-addr "$ip:7070" --raft-addr "$ip:7071" --bind "$ip:7946" --node-ip "$ip")
[[ -n $node_name ]] && args+=(--node-name "$node_name")
[[ -n $zone ]] && args+=(--zone "$zone")
if [[ -n $join ]]; then
	j=
	IFS=, read -ra peers <<<"$join"
	for p in "${peers[@]}"; do
		[[ -z $p || $p == "$ip" ]] && continue
		j+=${j:+,}$p:7946
	done
	[[ -n $j ]] && args+=(--join "$j")
fi
[[ -n $expect ]] && args+=(--bootstrap-expect "$expect")
[[ -n $token ]] && args+=(--token "$token")
if [[ -n $extra ]]; then
	read -ra more <<<"$extra"
	args+=("${more[@]}")
fi

umask 077
cat >"$root/etc/default/shoal.new" <<EOF
# Flags of shoal-agent.service, written by integration/hosts/provision.sh.
# Change them here, then: systemctl restart shoal-agent
SHOAL_AGENT_ARGS="${args[*]}"
EOF
mv -f "$root/etc/default/shoal.new" "$root/etc/default/shoal"
umask 022
cat >"$root/etc/systemd/system/shoal-agent.service" <<'EOF'
[Unit]
Description=Shoal agent (container orchestrator)
Documentation=https://github.com/shoal-dev/shoal
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
Type=simple
EnvironmentFile=/etc/default/shoal
ExecStart=/usr/local/bin/shoal agent $SHOAL_AGENT_ARGS
Restart=on-failure
RestartSec=2
# Containers run under containerd's shims, not in this unit's cgroup:
# stopping or restarting the agent leaves them running.
KillMode=process
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF

if [[ $mode == systemd ]]; then
	[[ $root == "" ]] || die "--mode systemd installs on this machine: --root must be /"
	systemctl daemon-reload
	systemctl enable --now containerd
	systemctl enable shoal-agent
	systemctl restart shoal-agent
	echo "provision: shoal-agent.service started (journalctl -u shoal-agent -f)"
else
	echo "provision: wrote $root/etc/default/shoal and $root/etc/systemd/system/shoal-agent.service"
fi
