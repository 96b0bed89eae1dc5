#!/usr/bin/env bash
# Rolling-update benchmark: how long `swarmctl deploy` takes to roll N replicas of one service to
# a new version, against its floor ceil(N / B) × (start(B) + start → first healthy check +
# min_ready), on one
# host (the machine's engine) and on a 3-node Swarm of our own (tests/cluster/swarm.sh, cluster
# `bench-rollout`).
#
#   bash benches/rollout.sh [--runs 3] [--targets host,swarm] [--cells 4:1:0s,4:2:0s,...]
#                           [--no-reference] [--no-build]
#
#   --cells     N:B:MIN_READY,... one cell per entry: N replicas, max_surge B (max_unavailable 0,
#               so B new replicas at a time), x-rollout.min_ready MIN_READY.
#               Default 4:1:0s,4:2:0s,4:1:1s,20:1:0s,20:5:0s
#   --runs      timed updates per cell and tool (default 3)
#   --no-reference  skip the `docker service update` rows on the swarm
#
# Per cell: version 1 deployed (untimed), then updates to versions 2, 3, … alternate between
# `swarmctl deploy` (default --stable 3s) and `swarmctl deploy --stable 0s` (the order rotates
# each run); each is timed from launch to exit. On the swarm, the reference: the same service
# deployed by `docker stack deploy` (update_config start-first, parallelism B, delay MIN_READY),
# updated by `docker service update -d --env-add VERSION=…`, timed until the manager shows N new
# tasks running and no old one. During every timed update `docker events` of each engine record
# the containers' start, health_status, kill and die; benches/engine_floor/rolloutlib.py turns
# them into the floor and the phases. start(B), the engine's time to start B replicas at once, is
# measured per cell before its timed updates, 5 times, median: on one host B containers like a
# replica created and started together through the API (rolloutlib.py start-time); on the swarm
# a probe service like the stack's, without its healthcheck, scaled from 0 to B, until its
# agents report B tasks running (rolloutlib.py swarm-start-time). Results:
# benches/results/rollout.md and rollout-runs.tsv.
# Everything is removed at exit (Ctrl-C included); the cluster goes as soon as its part is done.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/engine_floor/rolloutlib.py
STACKLIB=$ROOT/benches/engine_floor/stacklib.py
OUT=$ROOT/benches/results
CLUSTER=bench-rollout
IMAGE=swarmctl-test/testapp:latest
DOCKER=/usr/bin/docker # Debian's docker.io CLI, 20.10 like the engine

RUNS=3
TARGETS=host,swarm
CELLS=4:1:0s,4:2:0s,4:1:1s,20:1:0s,20:5:0s
REFERENCE=1
BUILD=1
ARGS="$*"

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}"; }
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --cells) CELLS=$2; shift ;;
    --no-reference) REFERENCE= ;;
    --no-build) BUILD= ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
IFS=, read -r -a TARGETS <<<"$TARGETS"
IFS=, read -r -a CELLS <<<"$CELLS"

log() { printf '[rollout-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[rollout-bench] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (the cluster)"
command -v python3 >/dev/null || die "python3 is needed"
[[ -x $DOCKER ]] || die "docker CLI $DOCKER not found"
source "$ROOT/benches/lib.sh"
"$DOCKER" -H "$HOST_SOCKET" image inspect "$IMAGE" >/dev/null 2>&1 || (cd "$ROOT" && bash tests/images/build.sh testapp >&2)

ID=ro$$ # stack names, the bench label
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmctl-rollout-bench.XXXXXX")
export SWARMCTL_STATE_DIR=$WORK/state
HOST_STACKS=()
cleanup_all() {
  local rc=$? ids
  trap - EXIT INT TERM
  jobs -p | xargs -r kill 2>/dev/null || true # event streams of an interrupted run
  cluster_down
  # Host stacks: whatever is left of them (a run interrupted mid-update), by label and name.
  ids=$("$DOCKER" -H "$HOST_SOCKET" ps -aq --filter "label=org.swarmctl.bench=$ID")
  [[ -z $ids ]] || "$DOCKER" -H "$HOST_SOCKET" rm -f $ids >/dev/null 2>&1 || true
  for name in "${HOST_STACKS[@]}"; do "$DOCKER" -H "$HOST_SOCKET" network rm "${name}_default" >/dev/null 2>&1 || true; done
  warn_if_machine_swarm_changed
  rm -rf "$WORK"
  exit $rc
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

release_swarmctl
mkdir -p "$WORK/logs" "$WORK/state" "$OUT"

RUNS_TSV=$WORK/runs.tsv
printf 'target\tsize\tbatch\tmin_ready\ttool\trun\twall_ms\tcompleted_ms\tok\tload1\tphases\n' >"$RUNS_TSV"

# ---------------------------------------------------------------- engines of a target

ENGINES=()   # where the containers run: event streams and old-replica lists
TARGET=
use_host() {
  unset DOCKER_HOST
  TARGET=host ENGINES=("$HOST_SOCKET")
}
use_swarm() {
  cluster_up "$IMAGE"
  ENGINES=("${NODE_HOSTS[@]}")
  TARGET=swarm
}
# The label that finds a stack's containers on every engine.
label_of() { if [[ $TARGET == host ]]; then echo "io.swarmctl.stack=$1"; else echo "com.docker.swarm.service.name=$1_web"; fi; }
running_ids() { # NAME
  local e
  for e in "${ENGINES[@]}"; do "$DOCKER" -H "$e" ps -q --no-trunc --filter "label=$(label_of "$1")"; done
}

# ---------------------------------------------------------------- one timed update

# TOOL NAME FILE N B MIN_READY VERSION RUN: times the update to VERSION (FILE already says it).
timed_update() {
  local tool=$1 name=$2 file=$3 n=$4 b=$5 mr=$6 version=$7 run=$8 stem e pids=() t0 t1 rc=0 ok=1 out completed=- phases load
  stem=$WORK/logs/$TARGET-$n-$b-$mr-$tool-$run
  running_ids "$name" >"$stem.old"
  for e in "${ENGINES[@]}"; do
    "$DOCKER" -H "$e" events --format '{{json .}}' --filter type=container --filter "label=$(label_of "$name")" >>"$stem.events" 2>/dev/null &
    pids+=($!)
  done
  sleep 0.5 # the streams are connected
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s%N)
  case $tool in
    swarmctl) NO_COLOR=1 "$SWARMCTL" deploy "$(dirname "$file")" --name "$name" --target "$TARGET" >"$stem.log" 2>&1 || rc=$? ;;
    swarmctl-stable0) NO_COLOR=1 "$SWARMCTL" deploy "$(dirname "$file")" --name "$name" --target "$TARGET" --stable 0s >"$stem.log" 2>&1 || rc=$? ;;
    docker-update)
      "$DOCKER" service update -d --env-add "VERSION=$version" --update-parallelism "$b" --update-order start-first \
        --update-delay "$mr" --update-monitor 5s --update-failure-action pause "${name}_web" >"$stem.log" 2>&1 || rc=$?
      ;;
  esac
  t1=$(date +%s%N)
  if [[ $tool == docker-update ]] && ((rc == 0)); then
    out=$(python3 "$LIB" wait-update "$MANAGER" "${name}_web" "$n" "$version" 300 2>>"$stem.log") || rc=$?
    if ((rc == 0)); then
      t1=${out% *}
      [[ ${out#* } == 0 ]] || completed=$(((${out#* } - t0) / 1000000))
    fi
  fi
  sleep 1 # the last events arrive
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  # Did it converge? N replicas of VERSION running (and healthy), none of the old.
  if ((rc == 0)); then
    if [[ $TARGET == swarm ]]; then
      python3 "$LIB" wait-update "$MANAGER" "${name}_web" "$n" "$version" 5 running >/dev/null 2>>"$stem.log" || rc=97
    else
      local have
      have=$("$DOCKER" ps -q --filter "label=$(label_of "$name")" --filter health=healthy | xargs -r "$DOCKER" inspect -f '{{range .Config.Env}}{{println .}}{{end}}' | grep -cx "VERSION=$version" || true)
      ((have == n)) && [[ $("$DOCKER" ps -q --filter "label=$(label_of "$name")" | wc -l) -eq $n ]] || { rc=97; echo "not converged: $have of $n healthy replicas of $version" >>"$stem.log"; }
    fi
  fi
  ((rc == 0)) || ok=0
  phases=$(python3 "$LIB" analyze "$stem.events" "$stem.old" "$t0" "$t1" "$n" "$b" "$(ms_of "$mr")" "$START_MS" 2>>"$stem.log" || echo '{}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$TARGET" "$n" "$b" "$mr" "$tool" "$run" "$(((t1 - t0) / 1000000))" "$completed" "$ok" "$load" "$phases" >>"$RUNS_TSV"
  cp "$RUNS_TSV" "$OUT/rollout-runs.partial.tsv"
  log "$(printf '%-5s N=%-3s B=%-2s min_ready=%-3s %-16s run %s: %6d ms  floor %s ms  load %s%s' "$TARGET" "$n" "$b" "$mr" "$tool" "$run" \
    "$(((t1 - t0) / 1000000))" "$(python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1]).get("floor_ms", -1))' "$phases")" "$load" \
    "$( ((rc == 0)) || echo "  FAILED ($rc)")")"
  if ((rc != 0)); then tail -n 15 "$stem.log" | sed 's/^/    /' >&2; cp "$stem.log" "$OUT/failed-rollout-$TARGET-$n-$b-$tool-$run.log"; fi
  return 0
}
ms_of() { python3 -c 'import re,sys; m = re.fullmatch(r"([0-9.]+)(ms|s)", sys.argv[1]); print(float(m[1]) * (1 if m[2] == "ms" else 1000))' "$1"; }

# Waits until no container of NAME is left on any engine (untimed).
wait_gone() {
  local try
  for ((try = 0; try < 240; try++)); do
    [[ -z $(for e in "${ENGINES[@]}"; do "$DOCKER" -H "$e" ps -aq --filter "label=$(label_of "$1")"; done) ]] && return 0
    sleep 0.5
  done
  log "WARNING: containers of $1 still there after 120 s"
}

# ---------------------------------------------------------------- one cell

cell() { # N B MIN_READY
  local n=$1 b=$2 mr=$3 name dir file version=1 run i tool order
  name=$ID${TARGET:0:1}${n}b${b}m${mr%s} START_MS=-
  dir=$WORK/stacks/$name
  file=$dir/compose.yaml
  mkdir -p "$dir"
  flavour=swarmctl-$TARGET
  python3 "$LIB" stack "$flavour" "$n" "$b" "$mr" "$version" "$ID" "$file"
  [[ $TARGET == host ]] && HOST_STACKS+=("$name")
  log "$TARGET N=$n B=$b min_ready=$mr: version 1 (untimed)"
  "$SWARMCTL" deploy "$dir" --name "$name" --target "$TARGET" --stable 0s >"$WORK/logs/$name-v1.log" 2>&1 ||
    { tail -n 20 "$WORK/logs/$name-v1.log" >&2; die "deploy of version 1 failed"; }
  local st
  if [[ $TARGET == host ]]; then
    st=$(python3 "$LIB" start-time /var/run/docker.sock "$name" "$b" 5 "$ID") || die "start-time of $name failed"
  else
    st=$(python3 "$LIB" swarm-start-time "$MANAGER" "$name" "$b" 5 "$ID") || die "swarm-start-time of $name failed"
  fi
  START_MS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["start_ms"])' "$st")
  log "$TARGET N=$n B=$b: start($b) $st"
  echo "$st" >"$WORK/logs/$name-start-time.json"
  for ((run = 1; run <= RUNS; run++)); do
    order=(swarmctl swarmctl-stable0)
    ((run % 2)) || order=(swarmctl-stable0 swarmctl)
    for tool in "${order[@]}"; do
      version=$((version + 1))
      python3 "$LIB" stack "$flavour" "$n" "$b" "$mr" "$version" "$ID" "$file"
      timed_update "$tool" "$name" "$file" "$n" "$b" "$mr" "$version" "$run"
    done
  done
  "$SWARMCTL" down "$dir" --name "$name" --target "$TARGET" >"$WORK/logs/$name-down.log" 2>&1 || log "WARNING: swarmctl down $name failed"
  wait_gone "$name"
  if [[ $TARGET == swarm && -n $REFERENCE ]]; then
    name=${name}d version=1
    python3 "$LIB" stack docker "$n" "$b" "$mr" "$version" "$ID" "$dir/docker.yaml"
    "$DOCKER" stack deploy -c "$dir/docker.yaml" "$name" >"$WORK/logs/$name-v1.log" 2>&1 || die "docker stack deploy $name failed"
    python3 "$LIB" wait-update "$MANAGER" "${name}_web" "$n" "$version" 300 running >/dev/null || die "docker stack $name did not converge"
    for ((run = 1; run <= RUNS; run++)); do
      version=$((version + 1))
      timed_update docker-update "$name" "$dir/docker.yaml" "$n" "$b" "$mr" "$version" "$run"
    done
    "$DOCKER" stack rm "$name" >/dev/null 2>&1 || true
    wait_gone "$name"
  fi
}

# ---------------------------------------------------------------- the benchmark

BEGIN=$SECONDS
LOAD_BEGIN=$(cut -d' ' -f1-3 /proc/loadavg)
for target in "${TARGETS[@]}"; do
  case $target in host) use_host ;; swarm) use_swarm ;; *) die "unknown target $target" ;; esac
  for c in "${CELLS[@]}"; do
    IFS=: read -r n b mr <<<"$c"
    cell "$n" "$b" "$mr"
  done
  if [[ $target == swarm ]]; then
    SERVER="$("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $("$DOCKER" info -f '{{.Driver}}')"
    cluster_down
  fi
done
unset DOCKER_HOST

ELAPSED=$((SECONDS - BEGIN))
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM." \
    "host: the machine's Docker Engine $("$DOCKER" -H "$HOST_SOCKET" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $("$DOCKER" -H "$HOST_SOCKET" info -f '{{.Driver}}');" \
    "swarm: a 3-node Swarm of dockerds in network namespaces on this machine (tests/cluster/swarm.sh)${SERVER:+, Docker Engine $SERVER};" \
    "docker CLI $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null) ($DOCKER); swarmctl $REVISION, release build."
  echo
  echo "$RUNS timed update(s) per cell and tool, swarmctl's two rows alternating on one deployed stack." \
    "Load average 1/5/15 min: $LOAD_BEGIN at start, $(cut -d' ' -f1-3 /proc/loadavg) at end" \
    "(median 1-min load at the start of the timed updates: $(awk -F'\t' 'NR > 1 {print $10}' "$RUNS_TSV" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'))." \
    "Total benchmark time $((ELAPSED / 60)) min $((ELAPSED % 60)) s. Command: \`bash benches/rollout.sh${ARGS:+ $ARGS}\`."
} >"$WORK/meta.txt"
python3 "$LIB" report "$RUNS_TSV" "$WORK/meta.txt" >"$OUT/rollout.md"
cp "$RUNS_TSV" "$OUT/rollout-runs.tsv"
rm -f "$OUT/rollout-runs.partial.tsv"
rm -rf "$OUT/logs-rollout"
cp -r "$WORK/logs" "$OUT/logs-rollout"
printf '*\n' >"$OUT/logs-rollout/.gitignore"
cat "$OUT/rollout.md"
