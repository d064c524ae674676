#!/usr/bin/env bash
# Exercise Ray's `local` provider for real on this machine: an sshd on 127.0.0.1:22 (Debian's
# openssh-server), a generated key, `ray up -y`, a command on the cluster, `ray down -y`.
# Needs root, openssh-server and rsync (apt-get install -y openssh-server rsync).
#
#   scripts/local_provider_check.sh
#
# Traps it handles: `ray` must be on PATH in the SSH login shell that runs the setup and start
# commands (PermitUserEnvironment + ~/.ssh/environment here; a line in ~/.profile on real
# machines); do not pass --use-normal-shells. Everything it starts is stopped on exit.
# WARNING: `ray down` (and the head's start command) run `ray stop`, which stops EVERY Ray
# process of this machine: run it when no other Ray (a search, the test suite) is running.
# Seen here (2-core VM, Ray 2.60): up + exec + down in about 15 s.
set -euo pipefail
work=$(mktemp -d /tmp/qlp.XXXX)
repo=$(cd "$(dirname "$0")/.." && pwd)
cleanup() {
  ray down -y "$work/cluster.yaml" >/dev/null 2>&1 || true
  [ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null || true
  [ -f "$work/env.bak" ] && mv "$work/env.bak" ~/.ssh/environment || rm -f ~/.ssh/environment
  rm -rf "$work"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N "" -f "$work/id"
ssh-keygen -q -t ed25519 -N "" -f "$work/host_key"
mkdir -p ~/.ssh && chmod 700 ~/.ssh
[ -f ~/.ssh/environment ] && cp ~/.ssh/environment "$work/env.bak"
echo "PATH=$(dirname "$(command -v ray)"):$(dirname "$(command -v python3)"):/usr/sbin:/usr/bin:/bin" \
  > ~/.ssh/environment
cp "$work/id.pub" "$work/authorized_keys"
cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port 22
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
PermitUserEnvironment yes
StrictModes no
PidFile $work/sshd.pid
CFG
mkdir -p /run/sshd
/usr/sbin/sshd -f "$work/sshd_config"

cat > "$work/cluster.yaml" <<CFG
cluster_name: qatune-local-check
provider: {type: local, head_ip: 127.0.0.1, worker_ips: []}
auth: {ssh_user: $(whoami), ssh_private_key: $work/id}
file_mounts: {"$work/code": "$repo/search"}
setup_commands: ["python3 -c 'import ray'"]   # ray importable in the SSH login shell
head_start_ray_commands:
  - ray stop --force >/dev/null 2>&1 || true
  - RAY_AUTH_MODE=disabled ray start --head --port=6399 --num-cpus=1 --include-dashboard=false --temp-dir=$work/ray --autoscaling-config=~/ray_bootstrap_config.yaml
worker_start_ray_commands: []
CFG
RAY_AUTH_MODE=disabled ray up -y "$work/cluster.yaml" --no-config-cache
RAY_AUTH_MODE=disabled ray exec "$work/cluster.yaml" \
  "RAY_AUTH_MODE=disabled python3 -c \"import ray; ray.init(address='127.0.0.1:6399'); print('nodes alive:', sum(n['Alive'] for n in ray.nodes()))\""
test -d "$work/code" && echo "file mount synced: $(ls "$work/code" | wc -l) files"
RAY_AUTH_MODE=disabled ray down -y "$work/cluster.yaml"
echo "local provider: ray up / exec / down OK"
