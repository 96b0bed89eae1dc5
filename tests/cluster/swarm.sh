#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for swarmctl's end-to-end
# tests: one dockerd per network namespace (the manager too), joined over a
# bridge in a "hub" namespace. The machine's own engine is never made part of
# it; only its images are copied in. See tests/cluster/README.md.
#
#   swarm.sh up --name NAME [--nodes 3] [--managers 1] [--dir DIR]
#               [--labels "node-2:tier=data,zone=b node-3:tier=web"]
#               [--images "swarmctl-test/busybox:latest swarmctl-test/testapp:latest"]
#               [--heartbeat 1s] [--owner-pid PID] [--keep-on-failure]
#       Starts the cluster and prints its environment (as `env` does). On an
#       existing healthy cluster of that name and shape it only converges labels
#       and images (a no-op when they match); leftovers of a crashed or killed
#       run are torn down first. On failure it tears down what it made.
#       --owner-pid: a watcher tears the cluster down once that process is gone
#       (a test binary killed by a timeout leaves nothing behind).
#   swarm.sh down --name NAME [--dir DIR]      tears everything down; fine on a
#                                              half-made cluster and on nothing
#   swarm.sh status --name NAME                one line per node; exit 0 if healthy
#   swarm.sh env --name NAME                   KEY=VALUE lines: DOCKER_HOST (the
#                                              manager), SWARMCTL_NODE_<k>_{NAME,HOST,IP,ROLE,NETNS,ID}, ...
#   swarm.sh kill-node --name NAME NODE        node loss: SIGKILL of the node's dockerd,
#                                              containerd, shims and tasks (its cgroup)
#   swarm.sh restart-node --name NAME NODE     starts a killed node's dockerd again
#                                              (same state); waits until it is Ready
#   swarm.sh disconnect-node --name NAME NODE  cuts the node's link (a partition);
#   swarm.sh reconnect-node --name NAME NODE   and restores it
#   swarm.sh exec --name NAME NODE -- CMD...   runs CMD in the node's network namespace
#   swarm.sh list                              clusters registered on this machine
#   swarm.sh gc                                tears down every cluster whose owner is gone
#
# Needs root. Installs iproute2 with apt-get if `ip` is missing (and says so).
# Environment: SWARMCTL_CLUSTER_ROOT (default /var/tmp/swarmctl-clusters) holds
# the clusters' folders; SWARMCTL_CLUSTER_GRACE (default 0.5) seconds between
# SIGTERM and SIGKILL on down. SWARMCTL_CLUSTER_DEBUG=1 traces the steps of down.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
CLUSTER_ROOT=${SWARMCTL_CLUSTER_ROOT:-/var/tmp/swarmctl-clusters}
REGISTRY=/run/swarmctl-clusters # NAME.env: DIR, INDEX and owner of every cluster that is up
LOCK_FILE=/run/lock/swarmctl-cluster.lock
GRACE=${SWARMCTL_CLUSTER_GRACE:-0.5}
CG=/sys/fs/cgroup
MARKER=.swarmctl-cluster
DEFAULT_IMAGES="swarmctl-test/busybox:latest swarmctl-test/testapp:latest"
HOST_SOCKET=unix:///var/run/docker.sock # the machine's own engine: only read from (images)

# Talk to the machine's engine only where asked to, and to nodes only by -H.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

log() { printf '[cluster] %s\n' "$*" >&2; }
debug() { [[ -z ${SWARMCTL_CLUSTER_DEBUG:-} ]] || printf '[cluster] %s %s\n' "$(date +%T.%N | cut -c1-12)" "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$SELF"; }

# ---------------------------------------------------------------- naming

# Every name derives from the cluster name: namespaces swarmctl.NAME.hub and
# swarmctl.NAME.node-K ('.' cannot occur in NAME, so no cluster's names match
# another's), cgroups /swarmctl/NAME/node-K, folders DIR/node-K.
ns_hub() { echo "swarmctl.$NAME.hub"; }
ns_node() { echo "swarmctl.$NAME.$1"; }
node_dir() { echo "$DIR/$1"; }
node_sock() { echo "unix://$DIR/$1/docker.sock"; }
node_ip() { echo "10.199.$INDEX.$((10 + ${1#node-}))"; }
cg_rel() { echo "swarmctl/$NAME${1:+/$1}"; }
dk() { # NODE ARGS... : the docker CLI against one node
  local n=$1
  shift
  docker -H "$(node_sock "$n")" "$@"
}

# ---------------------------------------------------------------- prerequisites

need_root() { [[ $EUID -eq 0 ]] || die "needs root (network namespaces, cgroups, dockerd)"; }

APT_UPDATED=
apt_install() { # PACKAGE...
  if [[ -z $APT_UPDATED ]]; then
    log "apt-get update (to install $*)"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

check_tools() {
  command -v ip >/dev/null || apt_install iproute2
  local t
  for t in nsenter unshare setsid flock; do
    command -v "$t" >/dev/null || apt_install util-linux
  done
  for t in dockerd containerd runc docker; do
    command -v "$t" >/dev/null || die "$t not found: this needs Debian's docker.io (dockerd, containerd, runc) and the docker CLI"
  done
}

# ---------------------------------------------------------------- cgroups

cg_v2() { [[ -f $CG/cgroup.controllers ]]; }

# The hierarchies where a path exists or is to be made: v2 has one; v1 one per
# controller (docker's cgroup-parent creates the node's cgroup in each).
cg_roots() {
  if cg_v2; then echo "$CG"; else
    local d
    for d in "$CG"/*/; do
      d=${d%/}
      [[ -f $d/cgroup.procs ]] && echo "$d"
    done
  fi
}

# The cgroup the node's daemons run in (their tasks go to its siblings).
# v1: pids (to list them) and freezer (to stop them all at once before SIGKILL).
cg_daemon_dirs() { # NODE
  if cg_v2; then echo "$CG/$(cg_rel "$1")/daemon"; else
    echo "$CG/pids/$(cg_rel "$1")/daemon"
    echo "$CG/freezer/$(cg_rel "$1")/daemon"
  fi
}

cg_list_root() { if cg_v2; then echo "$CG"; else echo "$CG/pids"; fi; }

cg_pids() { # REL : every process in that cgroup and below
  local top
  top="$(cg_list_root)/$1"
  [[ -d $top ]] || return 0
  find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

# SIGKILLs every process of a cgroup subtree and waits until they are gone.
# Their PIDs are added to KILLED (they stay zombies until PID 1 reaps them: wait_reaped).
cg_kill() { # REL
  local rel=$1 i pids fz killed
  killed=$(cg_pids "$rel")
  if cg_v2 && [[ -f $CG/$rel/cgroup.kill ]]; then
    echo 1 >"$CG/$rel/cgroup.kill" 2>/dev/null || true
  else
    # Frozen first, so no process forks between listing and killing.
    if cg_v2; then fz=$CG/$rel/cgroup.freeze; else fz=$CG/freezer/$rel/freezer.state; fi
    if [[ -f $fz ]]; then
      if cg_v2; then echo 1 >"$fz"; else echo FROZEN >"$fz"; fi 2>/dev/null || true
      for i in $(seq 50); do
        if cg_v2; then grep -q '^frozen 1' "${fz%/*}/cgroup.events" 2>/dev/null && break
        else [[ $(cat "$fz" 2>/dev/null) == FROZEN ]] && break; fi
        sleep 0.02
      done
    fi
    killed+=" $(cg_pids "$rel")"
    for pid in $killed; do kill -KILL "$pid" 2>/dev/null || true; done
    if [[ -f $fz ]]; then
      if cg_v2; then echo 0 >"$fz"; else echo THAWED >"$fz"; fi 2>/dev/null || true
    fi
  fi
  for i in $(seq 250); do
    pids=$(cg_pids "$rel")
    [[ -z $pids ]] && { KILLED+=" $killed"; return 0; }
    if ((i % 25 == 0)); then for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done; fi
    sleep 0.02
  done
  die "processes of cgroup $rel survive SIGKILL: $(echo $pids)"
}

KILLED=
# A dead process leaves its cgroup before it is reaped, and PID 1 may take a second
# or two for that (it does here); kill -0 still succeeds on a zombie.
wait_reaped() {
  local i pid left
  for i in $(seq 250); do
    left=
    for pid in $KILLED; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
    [[ -z $left ]] && return 0
    KILLED=$left
    sleep 0.02
  done
  log "warning: processes killed but not yet reaped by PID 1:$left"
}

cg_remove() { # REL : removes the cgroup directories (depth first) in every hierarchy
  local root d
  for root in $(cg_roots); do
    [[ -d $root/$1 ]] || continue
    find "$root/$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
    if [[ -d $root/$1 ]]; then # a cgroup is busy for a moment after its last process died
      sleep 0.2
      find "$root/$1" -depth -type d -exec rmdir {} + 2>/dev/null || log "warning: cgroup $root/$1 could not be removed"
    fi
    rmdir "$root/swarmctl" 2>/dev/null || true # only when no other cluster uses it
  done
  return 0
}

# ---------------------------------------------------------------- registry, lock

lock() {
  mkdir -p "${LOCK_FILE%/*}"
  exec 8>"$LOCK_FILE"
  flock 8
}

# Finds DIR and INDEX of cluster NAME: registry, else --dir, else the default folder.
load_registry() {
  local f=$REGISTRY/$NAME.env d i
  INDEX=
  if [[ -f $f ]]; then
    d=$(sed -n 's/^DIR=//p' "$f")
    i=$(sed -n 's/^INDEX=//p' "$f")
    [[ -z $OPT_DIR || $OPT_DIR == "$d" ]] || die "cluster $NAME is registered with --dir $d, not $OPT_DIR"
    DIR=$d
    INDEX=$i
  else
    DIR=${OPT_DIR:-$CLUSTER_ROOT/$NAME}
  fi
}

# Index 0..63 of the cluster's address ranges: a hash of the name, the next free one
# if a registered cluster has it.
allocate_index() {
  local i taken f
  i=$(($(printf '%s' "$NAME" | cksum | cut -d' ' -f1) % 64))
  taken=" "
  if [[ -d $REGISTRY ]]; then
    for f in "$REGISTRY"/*.env; do
      [[ -f $f && $f != "$REGISTRY/$NAME.env" ]] || continue
      taken+="$(sed -n 's/^INDEX=//p' "$f") "
    done
  fi
  for _ in $(seq 64); do
    [[ $taken == *" $i "* ]] || { INDEX=$i; return; }
    i=$(((i + 1) % 64))
  done
  die "all 64 cluster address ranges are in use (swarm.sh list)"
}

register() { # [OWNER_PID OWNER_START]
  mkdir -p "$REGISTRY"
  printf 'DIR=%s\nINDEX=%s\nOWNER_PID=%s\nOWNER_START=%s\n' "$DIR" "$INDEX" "${1:-}" "${2:-}" >"$REGISTRY/$NAME.env.tmp"
  mv "$REGISTRY/$NAME.env.tmp" "$REGISTRY/$NAME.env"
}

proc_start() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null; } # PID -> start time (ticks since boot)

# The owner of a registered cluster (a process that asked for it with --owner-pid):
# prints its PID; returns 0 if it is alive, 1 if it is gone, 2 if there is none.
owner_state() { # [NAME]
  local f=$REGISTRY/${1:-$NAME}.env pid start
  [[ -f $f ]] || return 2
  pid=$(sed -n 's/^OWNER_PID=//p' "$f")
  start=$(sed -n 's/^OWNER_START=//p' "$f")
  [[ -n $pid ]] || return 2
  echo "$pid"
  [[ $(proc_start "$pid") == "$start" ]]
}

# ---------------------------------------------------------------- state

STATE_FILE() { echo "$DIR/cluster.env"; }

state_get() { # KEY
  [[ -f $(STATE_FILE) ]] || return 1
  sed -n "s/^$1=//p" "$(STATE_FILE)"
}

write_state() {
  local k n f
  f=$(STATE_FILE)
  {
    echo "SWARMCTL_CLUSTER_NAME=$NAME"
    echo "SWARMCTL_CLUSTER_DIR=$DIR"
    echo "SWARMCTL_CLUSTER_INDEX=$INDEX"
    echo "SWARMCTL_CLUSTER_NODES=$NODES"
    echo "SWARMCTL_CLUSTER_MANAGERS=$MANAGERS"
    echo "SWARMCTL_CLUSTER_HEARTBEAT=$HEARTBEAT"
    echo "SWARMCTL_CLUSTER_SUBNET=10.199.$INDEX.0/24"
    echo "SWARMCTL_CLUSTER_OVERLAY_POOL=10.$((64 + INDEX)).0.0/16"
    echo "SWARMCTL_CLUSTER_LOCAL_POOL=10.$((128 + INDEX)).0.0/16"
    echo "DOCKER_HOST=$(node_sock node-1)"
    for k in $(seq "$NODES"); do
      n=node-$k
      echo "SWARMCTL_NODE_${k}_NAME=$n"
      echo "SWARMCTL_NODE_${k}_HOST=$(node_sock "$n")"
      echo "SWARMCTL_NODE_${k}_IP=$(node_ip "$n")"
      if ((k <= MANAGERS)); then echo "SWARMCTL_NODE_${k}_ROLE=manager"; else echo "SWARMCTL_NODE_${k}_ROLE=worker"; fi
      echo "SWARMCTL_NODE_${k}_NETNS=$(ns_node "$n")"
      echo "SWARMCTL_NODE_${k}_ID=$(cat "$DIR/$n/node-id" 2>/dev/null || true)"
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------- network

netns_exists() { [[ -e /run/netns/$1 ]]; }

make_network() {
  local hub n k ns
  hub=$(ns_hub)
  ip netns add "$hub"
  ip -n "$hub" link set lo up
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  for k in $(seq "$NODES"); do
    n=node-$k
    ns=$(ns_node "$n")
    ip netns add "$ns"
    ip -n "$hub" link add "v-$n" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "v-$n" master br0 up
    ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# `ip netns add` makes /run/netns a mount point; when the last namespace is gone
# and no other cluster is being made (we hold the lock), it is undone.
tidy_run_netns() {
  [[ -d /run/netns ]] || return 0
  [[ -z $(ls -A /run/netns) ]] || return 0
  if awk '$5 == "/run/netns" { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    umount /run/netns 2>/dev/null || return 0
  fi
  rmdir /run/netns 2>/dev/null || true
}

# ---------------------------------------------------------------- daemons

write_daemon_json() { # NODE
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d/data" "$d/exec"
  cat >"$d/daemon.json" <<EOF
{
  "hosts": ["$(node_sock "$n")"],
  "data-root": "$d/data",
  "exec-root": "$d/exec",
  "pidfile": "$d/docker.pid",
  "bridge": "none",
  "iptables": false,
  "ip-masq": false,
  "default-address-pools": [{ "base": "10.$((128 + INDEX)).0.0/16", "size": 24 }],
  "cgroup-parent": "/$(cg_rel "$n")",
  "storage-driver": "overlay2",
  "shutdown-timeout": 1,
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "2" },
  "log-level": "info"
}
EOF
}

# Starts the node's dockerd (which starts its own containerd) in its network
# namespace, with its own hostname, mount namespace and /run: the shims'
# sockets (/run/containerd/s) and every mount the daemon makes live and die
# with the node, and no system containerd at /run/containerd is picked up.
start_daemon() { # NODE
  local n=$1 d f cg_files=()
  d=$(node_dir "$n")
  for f in $(cg_daemon_dirs "$n"); do
    mkdir -p "$f"
    cg_files+=("$f/cgroup.procs")
  done
  # Stale after a kill-node: dockerd would take a reused PID for a running containerd.
  rm -f "$d/docker.sock" "$d/docker.pid" "$d/exec/containerd/containerd.pid"
  # The shell enters the cgroups first, so everything it becomes and starts is in them.
  setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
    bash -c 'for f in "${@:3}"; do echo $$ >"$f"; done
      exec nsenter --net="/run/netns/$1" -- unshare --uts --mount --propagation slave -- \
        sh -c "hostname $2 && mount -t tmpfs -o mode=755,size=64m swarmctl-run /run && exec dockerd --config-file \"\$0\"" "$0"' \
    "$d/daemon.json" "$(ns_node "$n")" "$n" "${cg_files[@]}" \
    >>"$d/dockerd.log" 2>&1 </dev/null 8>&- &
  # setsid, env, bash, nsenter, unshare and sh all exec: this is dockerd's PID.
  echo $! >"$d/launcher.pid"
  disown $! # not a job of this script: no "Killed" notice when it is killed
}

wait_daemon() { # NODE [TIMEOUT]
  local n=$1 timeout=${2:-30} start=$SECONDS d pid
  d=$(node_dir "$n")
  pid=$(cat "$d/launcher.pid")
  until [[ -S $d/docker.sock ]] && dk "$n" version -f '{{.Server.Version}}' >/dev/null 2>&1; do
    if ((SECONDS - start > timeout)) || ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$d/dockerd.log" >&2 || true
      die "$n: dockerd did not come up (its log above: $d/dockerd.log)"
    fi
    sleep 0.05
  done
}

# ---------------------------------------------------------------- images

# Makes sure the machine's engine has the images; ours are built by tests/images/build.sh.
ensure_host_images() {
  local img missing=() names=() name
  for img in $IMAGES; do
    docker -H "$HOST_SOCKET" image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
  done
  ((${#missing[@]})) || return 0
  for img in "${missing[@]}"; do
    [[ $img == swarmctl-test/* ]] || die "image $img is not on this machine's engine (and not one tests/images/build.sh makes)"
    name=${img#swarmctl-test/}
    names+=("${name%%:*}")
  done
  log "building ${names[*]} with tests/images/build.sh"
  DOCKER_HOST=$HOST_SOCKET bash "$ROOT/tests/images/build.sh" "${names[@]}" >&2 || die "tests/images/build.sh ${names[*]} failed"
  for img in "${missing[@]}"; do
    docker -H "$HOST_SOCKET" image inspect "$img" >/dev/null 2>&1 || die "image $img still missing after tests/images/build.sh"
  done
}

# Images a node lacks, or has in another version than the machine's engine.
images_missing_on() { # NODE
  local img want have
  for img in $IMAGES; do
    want=$(docker -H "$HOST_SOCKET" image inspect -f '{{.Id}}' "$img")
    have=$(dk "$1" image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
    [[ $want == "$have" ]] || echo "$img"
  done
}

# Saves what any node lacks once, then loads it into those nodes in parallel.
# Runs in the background during `up`; its failure is reported in DIR/images.failed.
load_images() { # NODE...
  local n todo=() union=() pids=() tar=$DIR/images.tar
  declare -A seen=()
  for n in "$@"; do
    local m
    m=$(images_missing_on "$n")
    [[ -n $m ]] || continue
    todo+=("$n")
    for img in $m; do [[ -n ${seen[$img]:-} ]] || { seen[$img]=1; union+=("$img"); }; done
  done
  ((${#todo[@]})) || return 0
  docker -H "$HOST_SOCKET" save -o "$tar" "${union[@]}"
  for n in "${todo[@]}"; do
    dk "$n" load -q -i "$tar" >/dev/null &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  rm -f "$tar"
  ((failed == 0)) || return 1
  for n in "${todo[@]}"; do
    [[ -z $(images_missing_on "$n") ]] || { echo "$n lacks $(images_missing_on "$n" | tr '\n' ' ')"; return 1; }
  done
}

# ---------------------------------------------------------------- swarm

swarm_init() {
  local ip
  ip=$(node_ip node-1)
  dk node-1 swarm init --advertise-addr "$ip" --listen-addr "$ip:2377" \
    --default-addr-pool "10.$((64 + INDEX)).0.0/16" --default-addr-pool-mask-length 24 \
    --dispatcher-heartbeat "$HEARTBEAT" >/dev/null
}

swarm_join() { # NODE TOKEN
  local ip
  ip=$(node_ip "$1")
  dk "$1" swarm join --token "$2" --advertise-addr "$ip" --listen-addr "$ip:2377" "$(node_ip node-1):2377" >/dev/null
}

# Sets every node's labels to exactly those asked for.
apply_labels() {
  local k n want have key args pids=() p
  for k in $(seq "$NODES"); do
    n=node-$k
    want=$(labels_of "$n")
    have=$(dk node-1 node inspect -f '{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}} {{end}}' "$n")
    [[ $(echo $want | tr ' ' '\n' | sort) == $(echo $have | tr ' ' '\n' | sort) ]] && continue
    args=()
    for kv in $have; do
      key=${kv%%=*}
      [[ " $want " == *" $kv "* ]] || args+=(--label-rm "$key")
    done
    for kv in $want; do args+=(--label-add "$kv"); done
    dk node-1 node update "${args[@]}" "$n" >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "docker node update (labels) failed"; done
}

labels_of() { # NODE -> "k=v k=v"
  local entry out=()
  for entry in $LABELS; do
    [[ ${entry%%:*} == "$1" ]] || continue
    IFS=, read -ra kvs <<<"${entry#*:}"
    out+=("${kvs[@]}")
  done
  echo "${out[*]}"
}

# The manager's view: "HOSTNAME STATUS AVAILABILITY ROLE" per node.
node_table() {
  dk node-1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{if .ManagerStatus}}manager{{else}}worker{{end}}' 2>/dev/null
}

wait_ready() { # TIMEOUT
  local timeout=$1 start=$SECONDS ready
  while :; do
    ready=$(node_table | awk '$2 == "Ready" { n++ } END { print n + 0 }')
    ((ready == NODES)) && [[ $(node_table | wc -l) -eq $NODES ]] && return 0
    if ((SECONDS - start > timeout)); then
      node_table >&2 || true
      die "only $ready of $NODES nodes Ready after ${timeout}s"
    fi
    sleep 0.1
  done
}

# Healthy: every node's daemon answers and the manager sees NODES nodes Ready
# with the right roles. Prints what is wrong.
healthy() {
  local k n table
  [[ -f $(STATE_FILE) ]] || { echo "no state file $(STATE_FILE)"; return 1; }
  for k in $(seq "$NODES"); do
    n=node-$k
    timeout 10 docker -H "$(node_sock "$n")" version -f '{{.Server.Version}}' >/dev/null 2>&1 || { echo "$n: dockerd does not answer"; return 1; }
  done
  table=$(node_table) || { echo "the manager does not answer node ls"; return 1; }
  for k in $(seq "$NODES"); do
    n=node-$k
    local role=worker
    ((k <= MANAGERS)) && role=manager
    grep -qx "$n Ready Active $role" <<<"$table" || { echo "$n is not Ready/Active/$role: $(grep "^$n " <<<"$table" || echo absent)"; return 1; }
  done
  [[ $(wc -l <<<"$table") -eq $NODES ]] || { echo "the swarm has $(wc -l <<<"$table") nodes, not $NODES"; return 1; }
}

# ---------------------------------------------------------------- owner watcher

# A detached process that runs `down` once the owner process is gone.
start_watcher() { # PID
  local pid=$1 start
  start=$(proc_start "$pid")
  [[ -n $start ]] || die "--owner-pid $pid: no such process"
  stop_watcher
  register "$pid" "$start"
  setsid bash -c '
    while [[ $(awk "{ print \$22 }" /proc/$1/stat 2>/dev/null) == "$2" ]]; do sleep 1; done
    rm -f "$4/watcher.pid"
    exec bash "$3" down --name "$5" --dir "$4"' _ "$pid" "$start" "$SELF" "$DIR" "$NAME" \
    >>"$DIR/watcher.log" 2>&1 </dev/null 8>&- &
  echo $! >"$DIR/watcher.pid"
  disown $!
}

stop_watcher() {
  local f=$DIR/watcher.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  # Only our watcher: a bash whose command line names this cluster's folder.
  if [[ -n $pid && $pid != "$$" && $pid != "$PPID" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR"; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ---------------------------------------------------------------- up / down

# Every node name that has a trace: folders, namespaces, cgroups.
known_nodes() {
  {
    if [[ -d $DIR ]]; then find "$DIR" -mindepth 1 -maxdepth 1 -type d -name 'node-*' -printf '%f\n'; fi
    ls /run/netns 2>/dev/null | sed -n "s/^swarmctl\.$NAME\.\(node-[0-9]*\)$/\1/p"
    ls "$(cg_list_root)/$(cg_rel)" 2>/dev/null | sed -n '/^node-[0-9]*$/p'
  } | sort -u -V || true # ls fails where there is nothing
}

anything_there() {
  [[ -f $REGISTRY/$NAME.env || -e $DIR ]] && return 0
  netns_exists "$(ns_hub)" && return 0
  [[ -d $(cg_list_root)/$(cg_rel) ]] && return 0
  [[ -n $(known_nodes) ]]
}

do_down() {
  local start n pids=() mounts rm_pids=() p
  start=$(now)
  debug "down $NAME"
  stop_watcher
  local nodes
  nodes=$(known_nodes)
  # SIGTERM to every node's dockerd, SIGKILL to all that is left after GRACE s.
  for n in $nodes; do
    for pid in $(cg_pids "$(cg_rel "$n")/daemon"); do
      [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
  done
  if ((${#pids[@]})); then
    local deadline
    deadline=$(awk -v t="$(now)" -v g="$GRACE" 'BEGIN { printf "%.3f", t + g }')
    while [[ -n $(cg_pids "$(cg_rel)") ]] && awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
      sleep 0.05
    done
  fi
  # All nodes at once: freezing the cluster's cgroup freezes every node's below it.
  debug "SIGTERM phase over"
  if [[ -d $(cg_list_root)/$(cg_rel) ]]; then cg_kill "$(cg_rel)"; fi
  debug "killed"
  T_KILLED=$(since "$start")
  # Nothing should be mounted here (the daemons mount in their own namespaces), but a
  # crashed older layout or a hand-made mount must not make rm -rf reach through.
  if [[ -n ${DIR:-} && -d $DIR ]]; then
    mounts=$(awk -v d="$DIR/" 'index($5, d) == 1 || $5 == substr(d, 1, length(d) - 1) { print $5 }' /proc/self/mountinfo | sort -r)
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  fi
  debug "unmounted"
  for n in $nodes; do
    netns_exists "$(ns_node "$n")" && ip netns del "$(ns_node "$n")"
  done
  netns_exists "$(ns_hub)" && ip netns del "$(ns_hub)" # takes the bridge and the veths with it
  tidy_run_netns
  debug "namespaces deleted"
  cg_remove "$(cg_rel)"
  debug "cgroups removed"
  if [[ -n ${DIR:-} && -d $DIR ]]; then
    if [[ -f $DIR/$MARKER || -z $(ls -A "$DIR") ]]; then
      [[ -z $(awk -v d="$DIR/" 'index($5, d) == 1 { print }' /proc/self/mountinfo) ]] || die "mounts left under $DIR"
      # One rm per node in parallel, while PID 1 reaps the killed processes; the
      # marker (a dot file, not in the glob) goes last, so an interrupted down can be redone.
      for n in "$DIR"/*; do rm -rf --one-file-system "$n" & rm_pids+=($!); done
    else
      log "warning: $DIR is not a cluster folder (no $MARKER); left as it is"
    fi
  fi
  rm -f "$REGISTRY/$NAME.env"
  rmdir "$REGISTRY" 2>/dev/null || true
  rmdir "$CLUSTER_ROOT" 2>/dev/null || true
  wait_reaped
  for p in "${rm_pids[@]}"; do wait "$p" || log "warning: rm -rf under $DIR failed"; done
  if ((${#rm_pids[@]})); then rm -f "$DIR/$MARKER"; rmdir "$DIR"; fi
  rmdir "$CLUSTER_ROOT" 2>/dev/null || true
  debug "files removed, processes reaped"
  log "$NAME: down in $(since "$start") s (processes gone after ${T_KILLED:-0} s)"
}

do_up() {
  local start k n t0 token_w token_m pids=() p img_pid why=
  start=$(now)
  if anything_there; then
    local owner owner_rc=0
    owner=$(owner_state) || owner_rc=$?
    if ((owner_rc == 0)) && [[ $owner != "${OWNER_PID:-}" ]]; then
      # A plain `up` (no owner) next to a test run that owns the cluster is fine if it fits.
      [[ -z $OWNER_PID ]] || die "cluster $NAME belongs to the live process $owner ($(tr '\0' ' ' <"/proc/$owner/cmdline" | cut -c1-80)); use another --name"
    fi
    if ((owner_rc == 1)); then why="its owner, process $owner, is gone"; fi
    if ((owner_rc != 1)) && [[ -f $(STATE_FILE) ]] && [[ $(state_get SWARMCTL_CLUSTER_NODES) == "$NODES" &&
      $(state_get SWARMCTL_CLUSTER_MANAGERS) == "$MANAGERS" && $(state_get SWARMCTL_CLUSTER_HEARTBEAT) == "$HEARTBEAT" &&
      $(state_get SWARMCTL_CLUSTER_DIR) == "$DIR" ]] && why=$(healthy); then
      load_images $(seq -f 'node-%g' "$NODES") || die "loading images failed"
      apply_labels
      if [[ -n $OWNER_PID ]]; then start_watcher "$OWNER_PID"; fi
      log "$NAME: already up and healthy ($NODES nodes); labels and images checked in $(since "$start") s"
      cat "$(STATE_FILE)"
      return 0
    fi
    log "$NAME: cleaning up what an earlier run left${why:+ ($why)}"
    do_down
    DIR=${OPT_DIR:-$CLUSTER_ROOT/$NAME}
  fi
  [[ $DIR == /* && $DIR != *[[:space:]]* ]] || die "--dir must be an absolute path without spaces: $DIR"
  # Unix socket paths are at most 107 bytes; this one is the longest the daemons make.
  local longest="$DIR/node-$NODES/exec/containerd/containerd.sock.ttrpc"
  ((${#longest} <= 107)) || die "--dir is too long for unix socket paths (${#longest} > 107 bytes): $longest"
  if [[ -e $DIR && -n $(ls -A "$DIR" 2>/dev/null) && ! -f $DIR/$MARKER ]]; then
    die "$DIR exists and is not a cluster folder; give another --dir"
  fi
  allocate_index
  if [[ -n $OWNER_PID ]]; then register "$OWNER_PID" "$(proc_start "$OWNER_PID")"; else register; fi
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
  FAILING=1
  t0=$(now)
  make_network
  for k in $(seq "$NODES"); do
    write_daemon_json "node-$k"
    start_daemon "node-$k"
  done
  for k in $(seq "$NODES"); do wait_daemon "node-$k"; done
  log "$NAME: network and $NODES daemons up in $(since "$t0") s"
  # Images load in the background while the swarm forms.
  rm -f "$DIR/images.failed"
  (load_images $(seq -f 'node-%g' "$NODES") >"$DIR/images.failed" 2>&1 && rm -f "$DIR/images.failed") &
  img_pid=$!
  t0=$(now)
  swarm_init
  dk node-1 node inspect -f '{{.ID}}' self >"$DIR/node-1/node-id"
  token_w=$(dk node-1 swarm join-token -q worker)
  token_m=$(dk node-1 swarm join-token -q manager)
  for k in $(seq 2 "$NODES"); do
    if ((k <= MANAGERS)); then swarm_join "node-$k" "$token_m" & else swarm_join "node-$k" "$token_w" & fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "docker swarm join failed"; done
  for k in $(seq 2 "$NODES"); do dk "node-$k" info -f '{{.Swarm.NodeID}}' >"$DIR/node-$k/node-id"; done
  wait_ready 60
  apply_labels
  log "$NAME: swarm of $NODES nodes ($MANAGERS manager(s)) Ready and labelled in $(since "$t0") s"
  t0=$(now)
  wait "$img_pid" || die "loading images failed: $(cat "$DIR/images.failed" 2>/dev/null)"
  [[ -z $IMAGES ]] || log "$NAME: images loaded (waited $(since "$t0") s more): $IMAGES"
  write_state
  if [[ -n $OWNER_PID ]]; then start_watcher "$OWNER_PID"; fi
  FAILING=
  log "$NAME: up in $(since "$start") s"
  cat "$(STATE_FILE)"
}

on_exit() {
  local rc=$?
  if [[ -n ${FAILING:-} ]]; then
    if [[ -n $KEEP_ON_FAILURE ]]; then
      log "$NAME: up failed; left as it is for debugging (--keep-on-failure): $DIR"
    else
      log "$NAME: up failed; tearing down what it made (--keep-on-failure keeps it, to debug)"
      FAILING=
      (do_down) || true
    fi
  fi
  exit "$rc"
}

require_node() { # NODE
  [[ $1 =~ ^node-[0-9]+$ ]] || die "a node is named node-K, not '$1'"
  [[ -d $DIR/$1 ]] || die "cluster $NAME has no $1 (swarm.sh status --name $NAME)"
}

do_kill_node() { # NODE
  local n=$1 start
  require_node "$n"
  start=$(now)
  cg_kill "$(cg_rel "$n")"
  log "$NAME: $n killed (dockerd, containerd, shims, tasks) in $(since "$start") s"
}

do_restart_node() { # NODE
  local n=$1 start
  require_node "$n"
  [[ -z $(cg_pids "$(cg_rel "$n")") ]] || die "$n is running (kill-node first)"
  start=$(now)
  NODES=$(state_get SWARMCTL_CLUSTER_NODES)
  start_daemon "$n"
  wait_daemon "$n"
  local t=$SECONDS
  # The manager may still list the node as Ready from before its death: first the
  # node's own view (active once its session with a manager stands), then the manager's.
  until [[ $(dk "$n" info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active ]] && node_table | grep -q "^$n Ready "; do
    ((SECONDS - t < 60)) || die "$n did not become Ready again in 60 s"
    sleep 0.1
  done
  log "$NAME: $n restarted and Ready in $(since "$start") s"
}

do_status() {
  local k n pids healthy_rc=0 why
  if [[ ! -f $(STATE_FILE) ]]; then
    if anything_there; then echo "$NAME: leftovers of an unfinished cluster in $DIR (swarm.sh down --name $NAME)"; else echo "$NAME: no such cluster"; fi
    return 1
  fi
  echo "cluster $NAME: $DIR, nodes on 10.199.$INDEX.0/24, heartbeat $HEARTBEAT"
  local table
  table=$(node_table || true)
  for k in $(seq "$NODES"); do
    n=node-$k
    pids=$(cg_pids "$(cg_rel "$n")" | wc -l)
    printf '  %-8s %-14s %-28s processes %-3s swarm: %s\n' "$n" "$(node_ip "$n")" "$(ns_node "$n")" "$pids" \
      "$(grep "^$n " <<<"$table" | cut -d' ' -f2- || echo '?')"
  done
  why=$(healthy) || healthy_rc=1
  if ((healthy_rc)); then echo "unhealthy: $why"; else echo "healthy"; fi
  return $healthy_rc
}

# ---------------------------------------------------------------- main

CMD=${1:-}
[[ -n $CMD ]] || { usage; exit 2; }
shift
NAME= OPT_DIR= NODES=3 MANAGERS=1 HEARTBEAT=1s LABELS= IMAGES=$DEFAULT_IMAGES OWNER_PID= KEEP_ON_FAILURE=
IMAGES_SET= LABEL_LIST=()
ARGS=()
while (($#)); do
  case $1 in
    --name) NAME=$2; shift 2 ;;
    --dir) OPT_DIR=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    --managers) MANAGERS=$2; shift 2 ;;
    --heartbeat) HEARTBEAT=$2; shift 2 ;;
    --labels) LABEL_LIST+=("$2"); shift 2 ;;
    --images) if [[ -z $IMAGES_SET ]]; then IMAGES=; IMAGES_SET=1; fi; IMAGES+=" $2"; shift 2 ;;
    --owner-pid) OWNER_PID=$2; shift 2 ;;
    --keep-on-failure) KEEP_ON_FAILURE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ARGS+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
LABELS="${LABEL_LIST[*]:-}"
IMAGES=$(echo $IMAGES)

case $CMD in
  -h | --help | help) usage; exit 0 ;;
  list | gc)
    [[ -d $REGISTRY ]] || exit 0
    for f in "$REGISTRY"/*.env; do
      [[ -f $f ]] || continue
      n=$(basename "$f" .env)
      rc=0
      owner=$(owner_state "$n") || rc=$?
      case $rc in 0) o="owner $owner (alive)" ;; 1) o="owner $owner (gone)" ;; *) o="no owner" ;; esac
      if [[ $CMD == list ]]; then
        printf '%-24s %s, %s\n' "$n" "$(sed -n 's/^DIR=//p' "$f")" "$o"
      elif ((rc == 1)); then
        log "gc: $n ($o)"
        bash "$SELF" down --name "$n"
      fi
    done
    exit 0 ;;
esac

[[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,23}$ ]] || die "--name: 1-24 of [a-z0-9-], starting with a letter or digit (got '$NAME')"
[[ $NODES =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 32)) || die "--nodes: 1 to 32"
[[ $MANAGERS =~ ^[0-9]+$ ]] && ((MANAGERS >= 1 && MANAGERS <= NODES)) || die "--managers: 1 to --nodes"
[[ $HEARTBEAT =~ ^[0-9]+(ms|s|m)$ && ! $HEARTBEAT =~ ^0+[a-z]+$ ]] || die "--heartbeat: a duration above 0 like 1s or 500ms"
for entry in $LABELS; do
  [[ $entry =~ ^node-([0-9]+):[A-Za-z0-9._/-]+=[^,]*(,[A-Za-z0-9._/-]+=[^,]*)*$ ]] || die "--labels: NODE:key=value[,key=value] entries, got '$entry'"
  ((BASH_REMATCH[1] >= 1 && BASH_REMATCH[1] <= NODES)) || die "--labels: ${entry%%:*} is not one of the $NODES nodes"
done
[[ -z $OWNER_PID || $OWNER_PID =~ ^[0-9]+$ ]] || die "--owner-pid: a process id"

case $CMD in
  up)
    need_root
    check_tools
    ensure_host_images # before the lock: a first build takes minutes (build.sh has its own lock)
    lock
    load_registry
    trap on_exit EXIT
    trap 'exit 130' INT TERM HUP # so that on_exit runs
    do_up
    ;;
  down)
    need_root
    lock
    load_registry
    do_down
    ;;
  status | env | kill-node | restart-node | disconnect-node | reconnect-node | exec)
    load_registry
    if [[ -f $(STATE_FILE) ]]; then
      INDEX=$(state_get SWARMCTL_CLUSTER_INDEX)
      NODES=$(state_get SWARMCTL_CLUSTER_NODES)
      MANAGERS=$(state_get SWARMCTL_CLUSTER_MANAGERS)
      HEARTBEAT=$(state_get SWARMCTL_CLUSTER_HEARTBEAT)
    elif [[ $CMD != status ]]; then
      die "cluster $NAME is not up (no $(STATE_FILE))"
    fi
    case $CMD in
      status) do_status ;;
      env) cat "$(STATE_FILE)" ;;
      kill-node) need_root; [[ ${#ARGS[@]} -eq 1 ]] || die "kill-node NODE"; do_kill_node "${ARGS[0]}" ;;
      restart-node) need_root; [[ ${#ARGS[@]} -eq 1 ]] || die "restart-node NODE"; lock; do_restart_node "${ARGS[0]}" ;;
      disconnect-node | reconnect-node)
        need_root
        [[ ${#ARGS[@]} -eq 1 ]] || die "$CMD NODE"
        require_node "${ARGS[0]}"
        if [[ $CMD == disconnect-node ]]; then state=down; else state=up; fi
        ip -n "$(ns_hub)" link set "v-${ARGS[0]}" "$state"
        log "$NAME: ${ARGS[0]} link $state" ;;
      exec)
        need_root
        ((${#ARGS[@]} >= 2)) || die "exec NODE -- CMD..."
        require_node "${ARGS[0]}"
        exec nsenter --net="/run/netns/$(ns_node "${ARGS[0]}")" -- "${ARGS[@]:1}" ;;
    esac
    ;;
  *) die "unknown command $CMD (see --help)" ;;
esac
