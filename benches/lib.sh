# Sourced by the benchmark scripts after they set ROOT, WORK, DOCKER, CLUSTER, log and die: what
# they share — the revision measured, the guard on the machine's own engine, the test swarm.

HOST_SOCKET=unix:///var/run/docker.sock
CLUSTER_SH=$ROOT/tests/cluster/swarm.sh
CLUSTER_UP=

# Builds the release binary (unless BUILD is empty) and sets SWARMCTL to a private copy of it,
# which other builds in the tree cannot swap mid-benchmark, and REVISION to what was built (not
# what the tree is when the report is written).
release_swarmctl() {
  if [[ -n $BUILD ]]; then
    log "cargo build --release --bin swarmctl"
    (cd "$ROOT" && cargo build --release --bin swarmctl 2>&1 | tail -n 2 | sed 's/^/  /' >&2)
  fi
  [[ -x $ROOT/target/release/swarmctl ]] || die "no release build at target/release/swarmctl (run without --no-build)"
  REVISION="$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo ' + uncommitted changes in src/')"
  mkdir -p "$WORK/bin"
  cp "$ROOT/target/release/swarmctl" "$WORK/bin/"
  SWARMCTL=$WORK/bin/swarmctl
}

# The machine's own engine is only read: its swarm state must be the same at the end.
machine_swarm_state() { "$DOCKER" -H "$HOST_SOCKET" info -f '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}' 2>/dev/null || echo unreachable; }
MACHINE_STATE=$(machine_swarm_state)
warn_if_machine_swarm_changed() {
  if [[ $(machine_swarm_state) != "$MACHINE_STATE" ]]; then
    log "WARNING: the machine's own engine's swarm state changed: $MACHINE_STATE -> $(machine_swarm_state)"
  fi
}

# Starts the 3-node test swarm $CLUSTER with IMAGES on it (gone with this script, even killed:
# --owner-pid) and points DOCKER_HOST at its manager. Sets MANAGER and NODE_HOSTS.
cluster_up() { # IMAGES…
  local k
  log "starting cluster $CLUSTER (3 nodes, image $*)"
  CLUSTER_UP=1
  bash "$CLUSTER_SH" up --name "$CLUSTER" --nodes 3 --images "$@" --owner-pid $$ >"$WORK/cluster.env" 2>"$WORK/cluster.log" ||
    { sed 's/^/  /' "$WORK/cluster.log" >&2; die "swarm.sh up --name $CLUSTER failed"; }
  grep -E 'up in|already up' "$WORK/cluster.log" | sed 's/^/  /' >&2 || true
  MANAGER=$(sed -n 's/^DOCKER_HOST=//p' "$WORK/cluster.env")
  [[ $MANAGER == unix://* ]] || die "no DOCKER_HOST from swarm.sh env"
  NODE_HOSTS=()
  for k in 1 2 3; do NODE_HOSTS+=("$(sed -n "s/^SWARMCTL_NODE_${k}_HOST=//p" "$WORK/cluster.env")"); done
  # From here on every docker and swarmctl call goes to the cluster's manager (or, with -H, a node).
  export DOCKER_HOST=$MANAGER
  unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
  [[ $("$DOCKER" info -f '{{.Swarm.ControlAvailable}}') == true ]] || die "$MANAGER is not a swarm manager"
}

cluster_down() {
  [[ -n $CLUSTER_UP ]] || return 0
  log "tearing down cluster $CLUSTER"
  bash "$CLUSTER_SH" down --name "$CLUSTER" 2>&1 | sed 's/^/  /' >&2 || log "WARNING: swarm.sh down --name $CLUSTER failed"
  CLUSTER_UP=
}
