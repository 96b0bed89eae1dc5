#!/usr/bin/env bash
# Swarm deploy benchmark: `swarmctl deploy --target swarm` vs `docker stack deploy`, on a real
# 3-node Swarm of our own (tests/cluster/swarm.sh, cluster `bench-swarm`).
#
#   bash benches/swarm.sh [--quick] [--runs N] [--sizes 20,100] [--variants plain,health]
#                         [--health-sizes 20] [--tools swarmctl,swarmctl-stable0,docker-stack]
#                         [--noop-runs N] [--docker PATH] [--wait SIZE[:RUNS],...|none]
#                         [--docker-wait PATH] [--no-build]
#
#   --quick   1 run, size 20, plain only, 3 no-op runs, no docker-stack-wait (~3 min)
#   default   3 runs, sizes 20 and 100 (plain), 20 (health), 5 no-op runs on 100, and
#             docker-stack-wait on plain 20 in every run (~22 min)
#   --wait    where docker-stack-wait runs (plain variant only): sizes, each with at most RUNS
#             runs (default all), e.g. `--wait 20,100:1`; `none` skips it. Default 20.
#
# The cluster (3 dockerds in network namespaces; the machine's own engine is only read, for its
# images, and its swarm state is checked unchanged at the end) is started at the beginning and
# torn down at exit, also on Ctrl-C; `--owner-pid` makes it go even if this script is killed.
# Stacks of N services in 4 dependency waves (benches/engine_floor/stacklib.py generate-swarm):
# one `version: "3.8"` compose file both tools read. Per size and variant the tools run
# interleaved (the order rotates every run), each from a clean slate: every service removed,
# every task's container gone on every node, networks and configs removed (untimed).
#   swarmctl          swarmctl deploy FILE --name NAME --target swarm: exits once converged
#   swarmctl-stable0  the same with --stable 0s (no 3 s stability window per replica)
#   docker-stack      docker stack deploy -c FILE NAME (it returns before the tasks run), then
#                     the manager polled every 0.1 s until every service shows n/n replicas
#                     running (`docker service ls` REPLICAS); its bare return time is kept too
#   docker-stack-wait docker stack deploy --detach=false -c FILE NAME with a docker CLI >= 23
#                     (--docker-wait, default the `docker` on PATH; it negotiates API 1.41 with
#                     the 20.10 engine): it waits itself, service after service; timed to its exit
# No-op: the same command again on the largest plain stack, still up. Peak RSS: /usr/bin/time -v.
# Results: benches/results/swarm.md (printed at the end) and the raw rows beside it.
# See benches/README.md for what each figure means.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/engine_floor/stacklib.py
OUT=$ROOT/benches/results
CLUSTER=bench-swarm
IMAGE=swarmctl-test/busybox:latest

RUNS=3
SIZES=20,100
VARIANTS=plain,health
HEALTH_SIZES=20
TOOLS=swarmctl,swarmctl-stable0,docker-stack
NOOP_RUNS=5
DOCKER=/usr/bin/docker # Debian's docker.io CLI, 20.10 like the engine (see --docker)
DOCKER_WAIT=$(command -v docker || true) # a CLI >= 23 for docker-stack-wait (see --docker-wait)
WAIT=20
BUILD=1
ARGS="$*"

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}"; }
while (($#)); do
  case $1 in
    --quick) RUNS=1 SIZES=20 VARIANTS=plain NOOP_RUNS=3 WAIT=none ;;
    --runs) RUNS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --variants) VARIANTS=$2; shift ;;
    --health-sizes) HEALTH_SIZES=$2; shift ;;
    --tools) TOOLS=$2; shift ;;
    --noop-runs) NOOP_RUNS=$2; shift ;;
    --docker) DOCKER=$2; shift ;;
    --wait) WAIT=$2; shift ;;
    --docker-wait) DOCKER_WAIT=$2; shift ;;
    --no-build) BUILD= ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
IFS=, read -r -a SIZES <<<"$SIZES"
IFS=, read -r -a VARIANTS <<<"$VARIANTS"
IFS=, read -r -a HEALTH_SIZES <<<"$HEALTH_SIZES"
IFS=, read -r -a TOOLS <<<"$TOOLS"
for tool in "${TOOLS[@]}"; do
  case $tool in swarmctl | swarmctl-stable0 | docker-stack) ;; *) echo "unknown tool $tool (--tools)" >&2; exit 2 ;; esac
done
# docker-stack-wait: SIZE -> runs (plain variant only).
declare -A WAIT_RUNS=()
if [[ $WAIT != none ]]; then
  IFS=, read -r -a wait_cells <<<"$WAIT"
  for c in "${wait_cells[@]}"; do WAIT_RUNS[${c%%:*}]=$([[ $c == *:* ]] && echo "${c#*:}" || echo "$RUNS"); done
fi
BIG=${SIZES[-1]}

log() { printf '[swarm-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[swarm-bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

[[ $EUID -eq 0 ]] || die "needs root (the cluster: network namespaces, cgroups, dockerd)"
command -v python3 >/dev/null || die "python3 is needed"
[[ -x $DOCKER ]] || die "docker CLI $DOCKER not found (--docker PATH)"
source "$ROOT/benches/lib.sh"
if [[ ! -x /usr/bin/time ]]; then
  log "installing /usr/bin/time (Debian's time)"
  apt-get install -y -qq --no-install-recommends time >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends time >/dev/null; } ||
    die "apt-get install time failed"
fi
# `docker stack deploy --detach=false` (wait for convergence) exists from CLI 23 on only.
DOCKER_VERSION=$("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null || echo unknown)
if "$DOCKER" stack deploy --help 2>/dev/null | grep -q -- '--detach'; then
  DETACH_NOTE="this CLI has \`docker stack deploy --detach\` (default true)"
else
  DETACH_NOTE="this CLI has no \`docker stack deploy --detach=false\` (added in CLI 23): it always returns before convergence"
fi
# docker-stack-wait needs a CLI whose `stack deploy` waits (23 and later).
WAIT_NOTE=
if ((${#WAIT_RUNS[@]})); then
  [[ -x $DOCKER_WAIT ]] || die "docker-stack-wait: no docker CLI at '$DOCKER_WAIT' (--docker-wait PATH, or --wait none)"
  DOCKER_WAIT_VERSION=$("$DOCKER_WAIT" version -f '{{.Client.Version}}' 2>/dev/null || echo unknown)
  "$DOCKER_WAIT" stack deploy --help 2>/dev/null | grep -q -- '--detach' ||
    die "docker-stack-wait: $DOCKER_WAIT (CLI $DOCKER_WAIT_VERSION) has no \`stack deploy --detach\` (CLI 23 and later; --wait none)"
  WAIT_NOTE="; docker-stack-wait: docker CLI $DOCKER_WAIT_VERSION ($DOCKER_WAIT), \`stack deploy --detach=false\`"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmctl-swarm-bench.XXXXXX")
cleanup_all() {
  local rc=$?
  trap - EXIT INT TERM
  cluster_down
  warn_if_machine_swarm_changed
  rm -rf "$WORK"
  exit $rc
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

release_swarmctl
mkdir -p "$WORK/logs" "$OUT"

# ---------------------------------------------------------------- the cluster

cluster_up "$IMAGE"

# ---------------------------------------------------------------- clean slate

# Everything on the cluster is this benchmark's: every service goes, then we wait until no
# container is left on any node, then networks (retried: an overlay network cannot go while its
# last endpoints are being released) and configs (swarmctl's lock and history) go.
wipe() {
  local try count n ids
  ids=$("$DOCKER" service ls -q)
  [[ -z $ids ]] || "$DOCKER" service rm $ids >/dev/null 2>&1 || true
  for ((try = 0; try < 240; try++)); do
    count=0
    for n in "${NODE_HOSTS[@]}"; do count=$((count + $("$DOCKER" -H "$n" ps -aq | wc -l))); done
    ((count == 0)) && [[ -z $("$DOCKER" service ls -q) ]] && break
    sleep 0.5
  done
  ((count == 0)) || log "WARNING: $count containers still on the nodes after 120 s"
  for ((try = 0; try < 40; try++)); do
    ids=$("$DOCKER" network ls -q --filter driver=overlay --filter scope=swarm | grep -vx "$("$DOCKER" network inspect -f '{{.Id}}' ingress | cut -c1-12)" || true)
    [[ -z $ids ]] && break
    "$DOCKER" network rm $ids >/dev/null 2>&1 || true
    sleep 0.5
  done
  [[ -z $ids ]] || log "WARNING: overlay networks still there after 20 s: $ids (names are per run; going on)"
  ids=$("$DOCKER" config ls -q)
  [[ -z $ids ]] || "$DOCKER" config rm $ids >/dev/null 2>&1 || true
  ids=$("$DOCKER" secret ls -q)
  [[ -z $ids ]] || "$DOCKER" secret rm $ids >/dev/null 2>&1 || true
  sleep 1
}

# ---------------------------------------------------------------- one run

stack_file() { echo "$WORK/stacks/${1:0:1}$2/compose.yaml"; } # VARIANT SIZE
generate() { # VARIANT SIZE
  local dir
  dir=$(dirname "$(stack_file "$1" "$2")")
  [[ -f $dir/compose.yaml ]] && return 0
  mkdir -p "$dir"
  python3 "$LIB" generate-swarm "$2" "$([[ $1 == health ]] && echo 1 || echo 0)" "$dir" "$CLUSTER"
}
run_name() { # TOOL VARIANT SIZE RUN: a stack name of its own per run (a lingering network never collides)
  local kind
  case $1 in swarmctl) kind=s ;; swarmctl-stable0) kind=z ;; docker-stack) kind=d ;; docker-stack-wait) kind=w ;; esac
  echo "b${2:0:1}$3$kind$4"
}
tool_command() { # TOOL VARIANT SIZE NAME
  local file
  file=$(stack_file "$2" "$3")
  case $1 in
    swarmctl) echo "$SWARMCTL deploy $file --name $4 --target swarm" ;;
    swarmctl-stable0) echo "$SWARMCTL deploy $file --name $4 --target swarm --stable 0s" ;;
    docker-stack) echo "$DOCKER stack deploy -c $file $4" ;;
    docker-stack-wait) echo "$DOCKER_WAIT stack deploy --detach=false -c $file $4" ;;
  esac
}
rss_of() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): \([0-9]*\)$/\1/p' "$1" 2>/dev/null | tail -n 1; }

RUNS_TSV=$WORK/runs.tsv
NOOP_TSV=$WORK/noop.tsv
printf 'variant\tsize\ttool\trun\twall_ms\treturn_ms\trss_kb\tok\tload1\tphases\n' >"$RUNS_TSV"
: >"$NOOP_TSV"

# Runs TOOL once; wall = launch to converged: swarmctl's exit, or docker-stack's first poll that
# saw every service n/n. Afterwards the same poll checks swarmctl's claim (ok=0 if it lied).
run_one() { # TOOL VARIANT SIZE RUN [record=1]
  local tool=$1 variant=$2 size=$3 run=$4 record=${5:-1} name cmd t0 t1 t2 rc=0 load wall ret=- rss stem phases
  name=$(run_name "$tool" "$variant" "$size" "$run")
  cmd=$(tool_command "$tool" "$variant" "$size" "$name")
  stem=$WORK/logs/$variant-$size-$tool-$run
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s%N)
  NO_COLOR=1 /usr/bin/time -v -o "$stem.time" $cmd >"$stem.log" 2>&1 || rc=$?
  t1=$(date +%s%N)
  if [[ $tool == docker-stack ]]; then
    ret=$(((t1 - t0) / 1000000))
    if ((rc == 0)); then
      t2=$(python3 "$LIB" converge "$MANAGER" "$name" "$size" 600 0.1 2>>"$stem.log") || rc=$?
    fi
    [[ -n ${t2:-} ]] && t1=$t2
  elif ((rc == 0)); then
    python3 "$LIB" converge "$MANAGER" "$name" "$size" 5 0.1 >/dev/null 2>>"$stem.log" || { rc=99; echo "swarmctl exited 0 but the stack is not n/n" >>"$stem.log"; }
  fi
  wall=$(((t1 - t0) / 1000000))
  rss=$(rss_of "$stem.time")
  # Untimed: where the time went, from the manager's records of this stack.
  phases=$(python3 "$LIB" swarm-phases "$MANAGER" "$name" "$(dirname "$(stack_file "$variant" "$size")")/topology.tsv" "$t0" "$t1" 2>>"$stem.log" || echo '{}')
  if ((rc != 0)); then
    log "FAILED ($rc): $tool $variant $size run $run; last lines of its output:"
    tail -n 15 "$stem.log" | sed 's/^/    /' >&2
    cp "$stem.log" "$OUT/failed-swarm-$variant-$size-$tool-$run.log"
  fi
  if [[ $record == 1 ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$size" "$tool" "$run" "$wall" "$ret" "${rss:--}" \
      "$([[ $rc == 0 ]] && echo 1 || echo 0)" "$load" "$phases" >>"$RUNS_TSV"
    cp "$RUNS_TSV" "$OUT/swarm-runs.partial.tsv" # survives a killed run
  fi
  log "$(printf '%-6s %4s %-16s run %s: %6d ms%s  rss %s KB  load %s' "$variant" "$size" "$tool" "$run" "$wall" \
    "$([[ $ret != - ]] && echo " (returned after $ret ms)")" "${rss:--}" "$load")"
  return $rc
}

# The same command again on the stack TOOL's last run left up.
noop() { # TOOL VARIANT SIZE RUN
  local tool=$1 name cmd t0 t1 t2 rc i ret stem
  name=$(run_name "$@")
  cmd=$(tool_command "$tool" "$2" "$3" "$name")
  for ((i = 1; i <= NOOP_RUNS; i++)); do
    rc=0 ret=- stem=$WORK/logs/noop-$tool-$i
    t0=$(date +%s%N)
    NO_COLOR=1 $cmd >"$stem.log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    # A no-op that changed something is not one.
    if [[ $tool == swarmctl* ]] && ((rc == 0)) && ! grep -qx 'no changes' "$stem.log"; then rc=98; fi
    if [[ $tool == docker-stack ]]; then
      ret=$(((t1 - t0) / 1000000))
      t2=$(python3 "$LIB" converge "$MANAGER" "$name" "$3" 600 0.1 2>>"$stem.log") || rc=$?
      [[ -n ${t2:-} ]] && t1=$t2
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$3" "$(((t1 - t0) / 1000000))" "$ret" "$([[ $rc == 0 ]] && echo 1 || echo 0)" >>"$NOOP_TSV"
    log "no-op $tool $3 run $i: $(((t1 - t0) / 1000000)) ms$([[ $ret != - ]] && echo " (returned after $ret ms)") (exit $rc)"
  done
}

# ---------------------------------------------------------------- the benchmark

sizes_of() { if [[ $1 == health ]]; then echo "${HEALTH_SIZES[@]}"; else echo "${SIZES[@]}"; fi; }
for variant in "${VARIANTS[@]}"; do for size in $(sizes_of "$variant"); do generate "$variant" "$size"; done; done
generate plain "$BIG"
generate plain "${SIZES[0]}"

BEGIN=$SECONDS
LOAD_BEGIN=$(cut -d' ' -f1-3 /proc/loadavg)
wipe
log "warm-up (not recorded): one plain ${SIZES[0]}-service deploy per tool"
for tool in "${TOOLS[@]}"; do run_one "$tool" plain "${SIZES[0]}" 0 0 || true; wipe; done

for variant in "${VARIANTS[@]}"; do
  for size in $(sizes_of "$variant"); do
    for ((run = 1; run <= RUNS; run++)); do
      # The order rotates each run, so no tool always goes first after a wipe.
      order=()
      for ((i = 0; i < ${#TOOLS[@]}; i++)); do order+=("${TOOLS[$(((i + run - 1) % ${#TOOLS[@]}))]}"); done
      if [[ $variant == plain && -n ${WAIT_RUNS[$size]:-} ]] && ((run <= WAIT_RUNS[$size])); then
        order+=(docker-stack-wait) # last: it is slow, and the others keep their rotation
      fi
      for tool in "${order[@]}"; do
        if run_one "$tool" "$variant" "$size" "$run" && [[ $variant == plain && $size == "$BIG" && $run == "$RUNS" ]] &&
          [[ $tool == swarmctl || $tool == docker-stack ]]; then
          noop "$tool" "$variant" "$size" "$run"
        fi
        wipe
      done
    done
  done
done

# ---------------------------------------------------------------- report

ELAPSED=$((SECONDS - BEGIN))
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM:" \
    "a 3-node Swarm of dockerds in network namespaces on this one machine (tests/cluster/swarm.sh), Docker Engine" \
    "$("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $("$DOCKER" info -f '{{.Driver}}');" \
    "docker CLI $DOCKER_VERSION ($DOCKER; $DETACH_NOTE)$WAIT_NOTE; swarmctl $REVISION, release build."
  echo
  echo "$RUNS interleaved run(s) per cell (the order rotates each run), each from a clean slate;" \
    "wall time from launch until converged. Load average 1/5/15 min: $LOAD_BEGIN at start, $(cut -d' ' -f1-3 /proc/loadavg) at end" \
    "(median 1-min load at the start of runs: $(awk -F'\t' 'NR > 1 {print $9}' "$RUNS_TSV" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'))." \
    "Total benchmark time $((ELAPSED / 60)) min $((ELAPSED % 60)) s. Command: \`bash benches/swarm.sh${ARGS:+ $ARGS}\`."
} >"$WORK/meta.txt"
python3 "$LIB" report-swarm "$RUNS_TSV" "$NOOP_TSV" "$WORK/meta.txt" >"$OUT/swarm.md"
cp "$RUNS_TSV" "$OUT/swarm-runs.tsv"
cp "$NOOP_TSV" "$OUT/swarm-noop.tsv"
rm -f "$OUT/swarm-runs.partial.tsv"
# Each run's output (evidence; not committed).
rm -rf "$OUT/logs-swarm"
cp -r "$WORK/logs" "$OUT/logs-swarm"
printf '*\n' >"$OUT/logs-swarm/.gitignore"
cat "$OUT/swarm.md"
