#!/usr/bin/env bash
# Benchmark of the spec pipeline (a measurement, not a test: nothing here fails on a number).
#
#   benches/spec.sh [runs] [--baseline BIN]
#
# Builds the release binary, generates two stacks into a temporary directory and prints:
#   - `swarmctl validate` of a 30-service stack: median wall time of N runs (default 30, at
#     least 10), process start included.                                  target < 20 ms
#   - `swarmctl graph` of a 5,000-service stack (load + validate + graph): median wall time of
#     5 runs, and peak RSS from /usr/bin/time -v (or VmHWM when that is missing).
#                                                                  target < 1 s, < 200 MB
#   - `swarmctl plan --cluster` of 1,000 services on 50 hypothetical nodes (load, validate,
#     graph, placement, plan; no engine): median wall time of N runs.     target < 50 ms
#
# --baseline BIN also times another build of swarmctl on the same plan, runs interleaved with
# this one's: on a VM whose speed drifts from minute to minute, the ratio is what compares.
set -euo pipefail

runs=30
baseline=""
while (( $# )); do
  case $1 in
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    *) runs=$1; shift ;;
  esac
done
if (( runs < 10 )); then runs=10; fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cargo build --release --quiet --bin swarmctl
bin="${CARGO_TARGET_DIR:-$root/target}/release/swarmctl"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A stack shaped like real ones: tiers that depend on each other with conditions, healthchecks,
# environment, ports, volumes, networks, configs, rollout settings.
generate() {
  local dir=$1 count=$2
  mkdir -p "$dir"
  printf 'listen 80;\n' > "$dir/app.conf"
  {
    printf 'name: bench\n'
    printf 'x-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n    options: {max-size: "10m"}\n'
    printf 'services:\n'
    local i
    for ((i = 0; i < count; i++)); do
      printf '  svc%05d:\n' "$i"
      printf '    <<: *common\n'
      printf '    image: "registry.local/app-%d:${TAG:-1.0}"\n' "$((i % 17))"
      printf '    command: ["serve", "--port", "8080", "--id", "%d"]\n' "$i"
      printf '    environment:\n      SERVICE_ID: "%d"\n      LOG_LEVEL: info\n      UPSTREAM: http://svc%05d:8080\n' "$i" "$(( i > 0 ? i - 1 : 0 ))"
      printf '    healthcheck:\n      test: ["CMD-SHELL", "wget -qO- http://localhost:8080/health || exit 1"]\n      interval: 10s\n      timeout: 2s\n      retries: 3\n'
      printf '    ports: ["%d:8080"]\n' "$((20000 + i))"
      printf '    volumes: ["data%d:/var/lib/app"]\n' "$((i % 10))"
      printf '    networks: [back]\n'
      printf '    configs: [{source: app_conf, target: /etc/app.conf}]\n'
      printf '    deploy:\n      replicas: 1\n      resources: {limits: {cpus: "0.5", memory: 256M}}\n'
      printf '    x-rollout: {max_surge: 1, max_unavailable: 0}\n'
      # Each service waits for up to three services of the previous tier of 10.
      if (( i >= 10 )); then
        local tier_start=$(( (i / 10 - 1) * 10 ))
        printf '    depends_on:\n'
        printf '      svc%05d: {condition: service_healthy}\n' "$(( tier_start + i % 10 ))"
        printf '      svc%05d: {condition: service_started}\n' "$(( tier_start + (i + 3) % 10 ))"
        printf '      svc%05d: {condition: service_healthy}\n' "$(( tier_start + (i + 7) % 10 ))"
      fi
    done
    printf 'networks:\n  back: {}\n'
    printf 'volumes:\n'
    for ((i = 0; i < 10; i++)); do printf '  data%d: {}\n' "$i"; done
    printf 'configs:\n  app_conf:\n    file: ./app.conf\n'
  } > "$dir/stack.yaml"
}

# The same services placed on a cluster: replicas 1-5 under node-label constraints (one of three
# tiers), spread over zones then racks, at most 2 per node on some, CPU and memory reservations,
# every 25th service global, every 10th a statefulset (ordinals pinned one per node).
placement() {
  local dir=$1 count=$2 nodes=$3 i
  generate "$dir" "$count"
  python3 - "$dir/stack.yaml" <<'PY'
import re, sys
path = sys.argv[1]
tiers = ["app", "data", "app"]
def deploy(match):
    i = int(match.group(1))
    if i % 25 == 0:
        shape = '      mode: global\n      placement: {constraints: ["node.labels.tier != edge"]}\n'
    else:
        shape = (f'      replicas: {1 + i % 5}\n'
                 f'      placement:\n        constraints: ["node.labels.tier == {tiers[i % 3]}", "node.role != manager"]\n'
                 f'        preferences: [{{spread: node.labels.zone}}, {{spread: node.labels.rack}}]\n'
                 + ('        max_replicas_per_node: 2\n' if i % 4 == 0 else ''))
    kind = '    x-kind: statefulset\n' if i % 10 == 5 else ''
    return (f'  svc{i:05d}:{match.group(2)}{kind}    deploy:\n{shape}'
            '      resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {cpus: "0.01", memory: 8M}}\n')
# Without host ports: on a swarm the mesh would publish 1,000 of them, and their warnings (about
# the host target) would be most of the output.
text = re.sub(r'^    ports: .*\n', '', open(path).read(), flags=re.M)
text = re.sub(r'  svc(\d{5}):(\n(?:(?!    deploy:).*\n)*?)    deploy:\n      replicas: 1\n      resources: .*\n', deploy, text)
open(path, "w").write(text)
# The lean copy: each service's image, kind and deploy only (what placement reads).
lean, keep = [], True
for line in text.split("\nnetworks:")[0].splitlines():
    if line.startswith("    ") and not line.startswith("     "):
        keep = line.split(":")[0].strip() in ("image", "x-kind", "deploy")
    elif not line.startswith("      "):
        keep = line.startswith("services:") or line.startswith("  svc")
    if keep:
        lean.append(line)
import os
os.makedirs(os.path.join(os.path.dirname(path), "..", "lean"), exist_ok=True)
open(os.path.join(os.path.dirname(path), "..", "lean", "stack.yaml"), "w").write("\n".join(lean) + "\n")
PY
  {
    printf 'nodes:\n'
    for ((i = 1; i <= nodes; i++)); do
      printf '  node-%02d:\n    role: %s\n    cpus: 16\n    memory: 64GiB\n' "$i" "$( ((i <= 3)) && echo manager || echo worker)"
      printf '    labels: {tier: %s, zone: zone-%d, rack: rack-%d}\n' "$( ((i <= 3)) && echo edge || { ((i % 2)) && echo app || echo data; })" "$((i % 3))" "$((i % 7))"
    done
  } > "$dir/cluster.yaml"
}

generate "$work/small" 30
generate "$work/large" 5000
placement "$work/placed" 1000 50

median_ms() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

time_runs() { # command… ; prints one wall time in ms per run
  local n=$1; shift
  local i start end
  for ((i = 0; i < n; i++)); do
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1
    end=$(date +%s%N)
    awk -v ns=$((end - start)) 'BEGIN {printf "%.2f\n", ns / 1e6}'
  done
}

"$bin" validate "$work/small" > /dev/null   # warm the page cache
"$bin" validate "$work/large" > /dev/null 2>&1 || true

"$bin" plan "$work/placed" --cluster "$work/placed/cluster.yaml" --output json > "$work/placed.json" 2> "$work/placed.err" \
  || { cat "$work/placed.err" >&2; echo "plan --cluster of the 1,000-service stack failed" >&2; exit 1; }
placed=$(time_runs "$runs" "$bin" plan "$work/placed" --cluster "$work/placed/cluster.yaml" | median_ms)
if [[ -n "$baseline" ]]; then
  pairs=$(for ((i = 0; i < runs; i++)); do
    ours=$(time_runs 1 "$bin" plan "$work/placed" --cluster "$work/placed/cluster.yaml")
    echo "$ours $(time_runs 1 "$baseline" plan "$work/placed" --cluster "$work/placed/cluster.yaml")"
  done)
  interleaved=$(cut -d' ' -f1 <<< "$pairs" | median_ms)
  base=$(cut -d' ' -f2 <<< "$pairs" | median_ms)
fi
lean=$(time_runs "$runs" "$bin" plan "$work/lean" --cluster "$work/placed/cluster.yaml" | median_ms)
small=$(time_runs "$runs" "$bin" validate "$work/small" | median_ms)
large=$(time_runs 5 "$bin" graph "$work/large" | median_ms)

cpu_ms=""
if [[ -x /usr/bin/time ]]; then
  report=$(/usr/bin/time -v "$bin" graph "$work/large" 2>&1 >/dev/null)
  rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' <<< "$report")
  # CPU time says what the wall time means on a busy machine.
  cpu_ms=$(awk -F: '/User time|System time/ {s += $2} END {printf "%.0f", s * 1000}' <<< "$report")
else
  rss_kb=$(bash -c '"$1" graph "$2" > /dev/null & pid=$!; peak=0; while kill -0 $pid 2>/dev/null; do v=$(awk "/VmHWM/ {print \$2}" /proc/$pid/status 2>/dev/null || echo 0); (( v > peak )) && peak=$v; done; echo $peak' _ "$bin" "$work/large")
fi

lines=$(wc -l < "$work/large/stack.yaml")
bytes=$(wc -c < "$work/large/stack.yaml")
printf 'machine: %s cores, load %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'validate, 30 services:        median %8s ms over %d runs (target < 20 ms)\n' "$small" "$runs"
printf 'graph, 5,000 services:        median %8s ms over 5 runs  (target < 1000 ms; %s lines, %s bytes)\n' "$large" "$lines" "$bytes"
printf 'graph, 5,000 services:        peak RSS %6d MB            (target < 200 MB)\n' "$((rss_kb / 1024))"
summary=$(python3 - "$work/placed.json" <<'PY'
import json, sys
placement = json.load(open(sys.argv[1]))["plan"]["placement"]
services = placement["services"]
print(f"{sum(s['placed'] for s in services)} tasks of {len(services)} Swarm services placed, {len(placement['problems'])} problems")
PY
)
printf 'plan --cluster, 1,000 services on 50 nodes: median %s ms over %d runs (target < 50 ms; %s)\n' "$placed" "$runs" "$summary"
printf 'plan --cluster, the same services with only their placement keys: median %s ms\n' "$lean"
if [[ -n "$baseline" ]]; then
  printf 'plan --cluster, interleaved with %s: median %s ms against %s ms (%.2fx)\n' "$baseline" "$interleaved" "$base" "$(awk -v a="$interleaved" -v b="$base" 'BEGIN {print a / b}')"
fi
if [[ -n "$cpu_ms" ]]; then
  printf 'graph, 5,000 services:        CPU time %6s ms (user + system, one run)\n' "$cpu_ms"
fi
