#!/usr/bin/env bash
# Deploy benchmark (issue 4, speed): swarmctl vs docker-compose 1.29 vs the engine's floor.
#
#   bash benches/deploy.sh [--quick] [--runs N] [--sizes 20,50,100] [--variants plain,health]
#                          [--sweep 4,8,16|none] [--sweep-runs N] [--sweep-variants plain,health]
#                          [--noop-runs N] [--no-build]
#
#   --quick   3 runs, sizes 20 and 50, no --parallel sweep (~15 min on the 2-core reference machine)
#   default   5 runs, sizes 20/50/100, both variants, --parallel 4/8/16 sweep on 100 (both);
#             about two hours there (health/100 alone ~40 min: it saturates a 2-core engine)
#
# Stacks of N services in 4 dependency waves are generated into a temp dir as one
# `version: "3.8"` compose file both tools read (benches/engine_floor/stacklib.py). Per size and
# variant the tools run interleaved (swarmctl, compose, floor, swarmctl, ...), each from a clean
# slate: all containers, networks and swarmctl state of the run removed afterwards, untimed.
# Two swarmctl rows: `swarmctl` (its default, which checks every replica stays up for
# `--stable 3s` before "converged") and `swarmctl-stable0` (`--stable 0s`: no such window, the
# like-for-like row against docker-compose, which verifies nothing after `up -d`).
# Wall time is the whole process (start to exit); phases come from the engine's event stream.
# Results: benches/results/deploy.md (printed at the end), deploy.svg, and the raw rows next to it.
# See benches/README.md for what each figure means.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/engine_floor/stacklib.py
OUT=$ROOT/benches/results

RUNS=5
SIZES=20,50,100
VARIANTS=plain,health
SWEEP=4,8,16
SWEEP_RUNS=3
SWEEP_VARIANTS=plain,health
NOOP_RUNS=5
BUILD=1
ARGS="$*"

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}"; }
while (($#)); do
  case $1 in
    --quick) RUNS=3 SIZES=20,50 SWEEP=none NOOP_RUNS=3 ;;
    --runs) RUNS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --variants) VARIANTS=$2; shift ;;
    --sweep) SWEEP=$2; shift ;;
    --sweep-runs) SWEEP_RUNS=$2; shift ;;
    --sweep-variants) SWEEP_VARIANTS=$2; shift ;;
    --noop-runs) NOOP_RUNS=$2; shift ;;
    --no-build) BUILD= ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
IFS=, read -r -a SIZES <<<"$SIZES"
IFS=, read -r -a VARIANTS <<<"$VARIANTS"
IFS=, read -r -a SWEEP_VARIANTS <<<"$SWEEP_VARIANTS"
if [[ $SWEEP == none ]]; then SWEEP=(); else IFS=, read -r -a SWEEP <<<"$SWEEP"; fi
BIG=${SIZES[-1]}

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

command -v docker >/dev/null || die "docker CLI not found"
docker version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "cannot reach the Docker engine"
command -v python3 >/dev/null || die "python3 is needed"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
COMPOSE=/usr/bin/docker-compose
if [[ ! -x $COMPOSE ]]; then
  [[ $EUID -eq 0 ]] || die "$COMPOSE missing (apt-get install docker-compose)"
  log "installing docker-compose (Debian's 1.29)"
  apt-get install -y --no-install-recommends docker-compose >/dev/null || die "apt-get install docker-compose failed"
fi

ID=swb$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmctl-bench.XXXXXX")
EVENTS_PID=
LEAKED=()
cleanup_all() {
  local rc=$?
  if [[ -n $EVENTS_PID ]]; then kill "$EVENTS_PID" 2>/dev/null || true; fi
  remove_everything
  if ((${#LEAKED[@]})); then
    log "WARNING: the engine kept these networks (\"has active endpoints\" with no container: moby/moby#42119); they go with a daemon restart: ${LEAKED[*]}"
  fi
  rm -rf "$WORK"
  exit $rc
}
# Everything of this benchmark: containers by label, networks by name prefix. Containers are
# killed and seen exited before they are removed: `rm -f` of many running containers at once
# can leave Engine 20.10's endpoint count of their network out of step (moby/moby#42119), and
# the network then cannot be removed until the daemon restarts. Every run uses its own names,
# so such a leftover never collides with a later run.
remove_everything() {
  local ids net try
  ids=$(docker ps -aq --filter "label=org.swarmctl.bench=$ID" 2>/dev/null || true)
  if [[ -n $ids ]]; then
    docker kill $ids >/dev/null 2>&1 || true
    for ((try = 0; try < 60; try++)); do
      [[ -z $(docker ps -q --filter "label=org.swarmctl.bench=$ID" 2>/dev/null) ]] && break
      sleep 0.5
    done
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
  for net in $(docker network ls --format '{{.Name}}' --filter "name=^$ID-" 2>/dev/null); do
    [[ " ${LEAKED[*]} " == *" $net "* ]] && continue
    for ((try = 0; try < 5; try++)); do
      docker network rm "$net" >/dev/null 2>&1 && break
      sleep 1
    done
    if ((try == 5)); then
      LEAKED+=("$net")
      log "WARNING: network $net cannot be removed (\"has active endpoints\", none listed: moby/moby#42119)"
    fi
  done
  rm -rf "$WORK/state"
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

log "images: tests/images/build.sh busybox testapp"
bash "$ROOT/tests/images/build.sh" busybox testapp 2>&1 | sed 's/^/  /' >&2
if [[ -n $BUILD ]]; then
  log "cargo build --release (swarmctl, examples/engine_floor)"
  (cd "$ROOT" && cargo build --release --bin swarmctl --example engine_floor 2>&1 | tail -n 2 | sed 's/^/  /' >&2)
fi
# What is measured is the tree as built now, not as it is when the report is written.
REVISION="$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo ' + uncommitted changes in src/')"
# Private copies: other builds in the tree must not swap the binaries mid-benchmark.
mkdir -p "$WORK/bin"
cp "$ROOT/target/release/swarmctl" "$ROOT/target/release/examples/engine_floor" "$WORK/bin/"
SWARMCTL=$WORK/bin/swarmctl
FLOOR=$WORK/bin/engine_floor

mkdir -p "$OUT" "$WORK/logs"
RUNS_TSV=$WORK/runs.tsv
NOOP_TSV=$WORK/noop.tsv
printf 'variant\tsize\ttool\trun\twall_ms\trss_kb\tok\tload1\tanalysis\n' >"$RUNS_TSV"
: >"$NOOP_TSV"
BEGIN=$SECONDS
LOAD_BEGIN=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- one run

stack_dir() { echo "$WORK/stacks/$1$2"; } # VARIANT(p|h) SIZE
generate() { # VARIANT SIZE
  local v=${1:0:1} dir
  dir=$(stack_dir "$v" "$2")
  [[ -f $dir/compose.yaml ]] && return 0
  mkdir -p "$dir"
  python3 "$LIB" generate "$2" "$([[ $1 == health ]] && echo 1 || echo 0)" "$dir" "$ID"
}

# Every run has its own name (swarmctl --name, compose -p, floor prefix) and its own copy of
# the stack whose default network has its own /24 in 10.213.0.0/16+: if the engine keeps a
# network (see remove_everything), it neither collides with a later run nor holds one of the
# engine's default address pools, which every other user of the engine shares.
run_name() { # TOOL VARIANT SIZE RUN
  local kind
  case $1 in
    swarmctl) kind=s ;;
    swarmctl-stable0) kind=z ;;
    swarmctl-p*) kind=s${1#swarmctl-} ;;
    compose) kind=c ;;
    floor) kind=f ;;
  esac
  echo "$ID-$kind-${2:0:1}$3-$4"
}
SUBNETS=0
# Subnets held by networks that exist now, leftovers of earlier runs among them: skipped.
TAKEN_SUBNETS=" $(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' $(docker network ls -q) 2>/dev/null | tr -s ' \n' ' ') "
prepare_run() { # TOOL VARIANT SIZE RUN (in the main shell: it counts subnets)
  local name dir base
  name=$(run_name "$@")
  dir=$WORK/runs/$name
  [[ -d $dir ]] && return 0
  base=$(stack_dir "${2:0:1}" "$3")
  mkdir -p "$dir"
  cp "$base/topology.tsv" "$dir/"
  while [[ $TAKEN_SUBNETS == *" 10.$((213 + SUBNETS / 256)).$((SUBNETS % 256)).0/24 "* ]]; do SUBNETS=$((SUBNETS + 1)); done
  echo "10.$((213 + SUBNETS / 256)).$((SUBNETS % 256)).0/24" >"$dir/subnet"
  SUBNETS=$((SUBNETS + 1))
  { cat "$base/compose.yaml"; printf 'networks:\n  default:\n    ipam:\n      config:\n        - subnet: %s\n' "$(cat "$dir/subnet")"; } >"$dir/compose.yaml"
}

start_events() { # FILE: the engine's container events of this benchmark, timestamped (ns)
  docker events --since "$(date +%s)" --filter "label=org.swarmctl.bench=$ID" --filter type=container \
    --filter event=create --filter event=start --filter event=health_status \
    --format '{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}' >"$1" 2>/dev/null &
  EVENTS_PID=$!
  sleep 0.2
}
stop_events() {
  sleep 0.3
  kill "$EVENTS_PID" 2>/dev/null || true
  wait "$EVENTS_PID" 2>/dev/null || true
  EVENTS_PID=
}

# The command line of TOOL for its run of VARIANT/SIZE (prepare_run first).
tool_command() { # TOOL VARIANT SIZE RUN
  local tool=$1 name dir
  name=$(run_name "$@")
  dir=$WORK/runs/$name
  case $tool in
    swarmctl) echo "$SWARMCTL deploy $dir --name $name --target host" ;;
    swarmctl-stable0) echo "$SWARMCTL deploy $dir --name $name --target host --stable 0s" ;;
    swarmctl-p*) echo "$SWARMCTL deploy $dir --name $name --target host --parallel ${tool#swarmctl-p}" ;;
    compose) echo "$COMPOSE -p $name -f $dir/compose.yaml up -d" ;;
    floor)
      local mode="--mode flat"
      if [[ $2 == health ]]; then mode="--mode dag --health"; fi
      echo "$FLOOR --topology $dir/topology.tsv --prefix $name --bench-id $ID --subnet $(cat "$dir/subnet") $mode" ;;
  esac
}

run_one() { # TOOL VARIANT SIZE RUN [record=1]
  local tool=$1 variant=$2 size=$3 run=$4 record=${5:-1} cmd t0 t1 rc=0 rss analysis load wall
  prepare_run "$tool" "$variant" "$size" "$run"
  cmd=$(tool_command "$tool" "$variant" "$size" "$run")
  mkdir -p "$WORK/state"
  local stem=$WORK/logs/$variant-$size-$tool-$run
  load=$(cut -d' ' -f1 /proc/loadavg)
  start_events "$stem.events"
  t0=$(date +%s%N)
  SWARMCTL_STATE_DIR=$WORK/state NO_COLOR=1 /usr/bin/time -f '%M' -o "$stem.rss" $cmd >"$stem.log" 2>&1 || rc=$?
  t1=$(date +%s%N)
  stop_events
  wall=$(((t1 - t0) / 1000000))
  rss=$(tail -n 1 "$stem.rss" 2>/dev/null | grep -E '^[0-9]+$' || echo -)
  analysis=$(python3 "$LIB" analyze "$(stack_dir "${variant:0:1}" "$size")/topology.tsv" "$stem.events" "$t0" "$t1" \
    "$([[ $variant == health ]] && echo 1 || echo 0)" 2>/dev/null || echo '{}')
  if [[ $tool == swarmctl* ]]; then
    analysis=$(python3 - "$analysis" "$(python3 "$ROOT/benches/engine_floor/swarmctl_log.py" --json "$stem.log" 2>/dev/null || echo '{}')" <<'PY'
import json, sys
merged = json.loads(sys.argv[1]); merged.update(json.loads(sys.argv[2])); print(json.dumps(merged))
PY
)
  fi
  if ((rc != 0)); then
    log "FAILED ($rc): $tool $variant $size run $run; last lines of its output:"
    tail -n 15 "$stem.log" | sed 's/^/    /' >&2
    cp "$stem.log" "$OUT/failed-$variant-$size-$tool-$run.log"
  fi
  if [[ $record == 1 ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$size" "$tool" "$run" "$wall" "$rss" \
      "$([[ $rc == 0 ]] && echo 1 || echo 0)" "$load" "$analysis" >>"$RUNS_TSV"
    cp "$RUNS_TSV" "$OUT/deploy-runs.partial.tsv" # survives a killed run
  fi
  log "$(printf '%-7s %4s %-12s run %s: %6d ms  rss %s KB  load %s' "$variant" "$size" "$tool" "$run" "$wall" "$rss" "$load")"
  return $rc
}

settle() { # clean slate between runs (untimed)
  remove_everything
  # Leftovers are harmless to others (own subnets); a full run leaks about ten on Engine 20.10.
  ((${#LEAKED[@]} <= 40)) || die "more than 40 networks kept by the engine; stopping"
  sleep 1
}

# ---------------------------------------------------------------- the benchmark

# A no-op re-deploy right after TOOL's last cold deploy of the plain BIG stack (still up).
noop() { # TOOL RUN: the cold run whose stack is up
  local tool=$1 cold=$2 cmd t0 t1 rc run
  cmd=$(tool_command "$tool" plain "$BIG" "$cold")
  for ((run = 1; run <= NOOP_RUNS; run++)); do
    rc=0
    t0=$(date +%s%N)
    SWARMCTL_STATE_DIR=$WORK/state $cmd >"$WORK/logs/noop-$tool-$run.log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\t%s\n' "$tool" "$BIG" "$(((t1 - t0) / 1000000))" "$([[ $rc == 0 ]] && echo 1 || echo 0)" >>"$NOOP_TSV"
    log "no-op $tool run $run: $(((t1 - t0) / 1000000)) ms (exit $rc): $(tail -n 1 "$WORK/logs/noop-$tool-$run.log")"
  done
}

for variant in "${VARIANTS[@]}"; do for size in "${SIZES[@]}"; do generate "$variant" "$size"; done; done
generate plain "$BIG"                # the no-op re-deploy's stack
generate plain "${SIZES[0]}"         # the warm-up's (a health-only run generates no plain stack)

log "warm-up (not recorded): one plain ${SIZES[0]}-service deploy per tool"
for tool in swarmctl compose floor; do run_one "$tool" plain "${SIZES[0]}" 0 0 || true; settle; done

DEFAULT_PARALLEL=8 # swarmctl deploy --parallel default; its sweep figure is the main swarmctl series
for variant in "${VARIANTS[@]}"; do
  for size in "${SIZES[@]}"; do
    for ((run = 1; run <= RUNS; run++)); do
      tools=(swarmctl swarmctl-stable0 compose floor)
      if [[ $size == "$BIG" && " ${SWEEP_VARIANTS[*]} " == *" $variant "* ]] && ((run <= SWEEP_RUNS)); then
        for p in "${SWEEP[@]}"; do
          if [[ $p != "$DEFAULT_PARALLEL" ]]; then tools+=("swarmctl-p$p"); fi
        done
      fi
      for tool in "${tools[@]}"; do
        if run_one "$tool" "$variant" "$size" "$run" && [[ $variant == plain && $size == "$BIG" && $run == "$RUNS" ]] &&
          [[ $tool == swarmctl || $tool == compose ]]; then
          noop "$tool" "$run"
        fi
        settle
      done
    done
  done
done

# ---------------------------------------------------------------- report

ELAPSED=$((SECONDS - BEGIN))
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM;" \
    "Docker Engine $(docker version -f '{{.Server.Version}} (API {{.Server.APIVersion}})'), storage driver $(docker info -f '{{.Driver}}');" \
    "$($COMPOSE version --short 2>/dev/null | sed 's/^/docker-compose /');" \
    "swarmctl $REVISION, release build."
  echo
  echo "Medians of $RUNS interleaved runs per cell (swarmctl, swarmctl --stable 0s, compose, floor, swarmctl, …), each from a clean slate;" \
    "wall time of the whole process. Load average 1/5/15 min: $LOAD_BEGIN at start, $(cut -d' ' -f1-3 /proc/loadavg) at end" \
    "(median 1-min load during runs: $(awk -F'\t' 'NR > 1 {print $8}' "$RUNS_TSV" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'))." \
    "Total benchmark time $((ELAPSED / 60)) min $((ELAPSED % 60)) s. Command: \`bash benches/deploy.sh${ARGS:+ $ARGS}\`."
  if ((${#LEAKED[@]})); then
    echo
    echo "Engine leftovers: ${#LEAKED[@]} network(s) the engine refused to remove (\"has active endpoints\" with none attached, moby/moby#42119): ${LEAKED[*]}."
  fi
} >"$WORK/meta.txt"
python3 "$LIB" report "$RUNS_TSV" "$NOOP_TSV" "$WORK/meta.txt" >"$OUT/deploy.md"
python3 "$ROOT/benches/engine_floor/plot.py" "$RUNS_TSV" >"$OUT/deploy.svg"
cp "$RUNS_TSV" "$OUT/deploy-runs.tsv"
rm -f "$OUT/deploy-runs.partial.tsv"
cp "$NOOP_TSV" "$OUT/deploy-noop.tsv"
# Logs and event streams of every run (evidence; not committed).
rm -rf "$OUT/logs"
cp -r "$WORK/logs" "$OUT/logs"
printf '*\n' >"$OUT/logs/.gitignore"
cat "$OUT/deploy.md"
