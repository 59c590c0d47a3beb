#!/usr/bin/env bash
# `make vagrant-check`: what can be checked of the Vagrant environment
# without booting a VM.
#   1. vagrant validate on integration/vagrant/Vagrantfile;
#   2. provision.sh in netns mode into a scratch root, then systemd-analyze
#      verify on the shoal-agent.service it wrote (its ExecStart and
#      EnvironmentFile pointed into that root); any warning fails;
#   3. shellcheck on every shell script of the repository.
# A tool that is not installed is skipped with a message (.ci/run installs
# them all).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${SHOAL_BIN:-bin/shoal}
[[ -x $bin ]] || { echo "vagrant-check: $bin missing (make build)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if command -v vagrant >/dev/null; then
	echo "==> vagrant validate"
	# A token so that the Vagrantfile neither runs the binary nor writes
	# .bootstrap-token; providers whose plugin is absent are not checked.
	(cd integration/vagrant && SHOAL_TOKEN=SHOAL-1-validate SHOAL_BIN=$PWD/../../$bin VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate --ignore-provider)
else
	echo "==> vagrant validate: skipped, vagrant not installed (Debian: apt-get install vagrant)"
fi

echo "==> provision.sh (netns mode) and systemd-analyze verify on the unit it writes"
bash integration/hosts/provision.sh --mode netns --root "$scratch" --no-install --bin "$bin" \
	--node-name check --ip 192.0.2.1 --join 192.0.2.1,192.0.2.2,192.0.2.3 --bootstrap-expect 3 --token SHOAL-1-check --zone a
unit=$scratch/etc/systemd/system/shoal-agent.service
grep -q '^Restart=on-failure$' "$unit" || { echo "vagrant-check: $unit lacks Restart=on-failure" >&2; exit 1; }
grep -q '^EnvironmentFile=/etc/default/shoal$' "$unit" || { echo "vagrant-check: $unit lacks EnvironmentFile=/etc/default/shoal" >&2; exit 1; }
grep -q '^SHOAL_AGENT_ARGS=".*--bootstrap-expect 3' "$scratch/etc/default/shoal" || { echo "vagrant-check: no --bootstrap-expect in /etc/default/shoal" >&2; exit 1; }
if command -v systemd-analyze >/dev/null; then
	sed -e "s|^ExecStart=/usr/local/bin/shoal|ExecStart=$scratch/usr/local/bin/shoal|" \
		-e "s|^EnvironmentFile=/etc/default/shoal|EnvironmentFile=$scratch/etc/default/shoal|" "$unit" >"$scratch/shoal-agent.service"
	out=$(systemd-analyze verify "$scratch/shoal-agent.service" 2>&1) || { echo "$out" >&2; exit 1; }
	# Warnings (an unknown key, a missing binary) print but exit 0.
	out=$(grep -v 'sysinit.target not found' <<<"$out" || true)
	if [[ -n $out ]]; then
		echo "vagrant-check: systemd-analyze verify:" >&2
		echo "$out" >&2
		exit 1
	fi
	echo "shoal-agent.service: ok"
else
	echo "systemd-analyze verify: skipped, systemd-analyze not installed"
fi

if command -v shellcheck >/dev/null; then
	echo "==> shellcheck"
	scripts=()
	while IFS= read -r f; do
		[[ -f $f ]] && head -n1 "$f" | grep -qE '^#!.*(bash|/sh)' && scripts+=("$f")
	done < <(git ls-files)
	shellcheck -x "${scripts[@]}" # -x: follow what a script sources (the benches share benchproc/prepare.sh)
	echo "${#scripts[@]} scripts: ok"
else
	echo "==> shellcheck: skipped, not installed (Debian: apt-get install shellcheck)"
fi
