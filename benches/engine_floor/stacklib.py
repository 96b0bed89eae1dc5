#!/usr/bin/env python3
"""Helpers of benches/deploy.sh (standard library only).

  stacklib.py generate N HEALTH(0|1) DIR BENCH_ID   -> DIR/compose.yaml, DIR/topology.tsv
  stacklib.py analyze TOPOLOGY EVENTS T0_NS T1_NS HEALTH(0|1)
                                                  -> one JSON object: phases of one run
  stacklib.py report RUNS.tsv NOOP.tsv META.txt     -> the markdown results

The stack: N services in 4 dependency waves; service j of wave k>0 depends on services
j and j+1 (mod size) of wave k-1, with `service_started`, or `service_healthy` in the health
variant. One `version: "3.8"` file that docker-compose 1.29 and swarmctl both read.
"""
import json
import re
import statistics
import sys

WAVES = 4
DEFAULT_PARALLEL = 8  # swarmctl deploy --parallel default; the sweep reuses the main series for it
SERVICE = re.compile(r"(w\d+-s\d{3})")


def topology(n):
    base, rem = divmod(n, WAVES)
    sizes = [base + (1 if k < rem else 0) for k in range(WAVES)]
    services = []
    for k, size in enumerate(sizes):
        for j in range(size):
            deps = []
            if k > 0:
                m = sizes[k - 1]
                deps = sorted({"w%d-s%03d" % (k - 1, j % m), "w%d-s%03d" % (k - 1, (j + 1) % m)})
            services.append(("w%d-s%03d" % (k, j), k, deps))
    return services


def generate(n, health, directory, bench_id):
    services = topology(n)
    condition = "service_healthy" if health else "service_started"
    lines = ['version: "3.8"', "services:"]
    for name, _, deps in services:
        lines += [
            "  %s:" % name,
            "    image: swarmctl-test/testapp:latest",
            "    environment:",
            '      TESTAPP_PORTS: "8080"',
        ]
        if health:
            lines.append("      TESTAPP_START_DELAY: 1s")
        lines += ["    labels:", '      org.swarmctl.bench: "%s"' % bench_id]
        if health:
            lines += [
                "    healthcheck:",
                '      test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"]',
                "      interval: 1s",
                "      timeout: 2s",
                "      retries: 30",
            ]
        if deps:
            lines.append("    depends_on:")
            for dep in deps:
                lines += ["      %s:" % dep, "        condition: %s" % condition]
    with open(directory + "/compose.yaml", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(directory + "/topology.tsv", "w") as f:
        for name, wave, deps in services:
            f.write("%s\t%d\t%s\n" % (name, wave, ",".join(deps)))


def read_topology(path):
    services = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if parts and parts[0]:
            services[parts[0]] = (int(parts[1]), [d for d in parts[2].split(",") if d] if len(parts) > 2 else [])
    return services


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def analyze(topology_path, events_path, t0, t1, health):
    """Phases of one deploy from the engine's own event stream (tool-agnostic)."""
    services = read_topology(topology_path)
    created, started, healthy = {}, {}, {}
    for line in open(events_path):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        ns, rest = int(parts[0]), parts[1] + " " + parts[2]
        if ns < t0:
            continue  # an earlier run's event, replayed
        match = SERVICE.search(parts[2])
        if not match:
            continue
        name = match.group(1)
        ms = (ns - t0) / 1e6
        if rest.startswith("create "):
            created.setdefault(name, ms)
        elif rest.startswith("start "):
            started.setdefault(name, ms)
        elif rest.startswith("health_status: healthy"):
            healthy.setdefault(name, ms)
    out = {"events_complete": all(s in started for s in services) and (not health or all(s in healthy for s in services))}
    if not started:
        return out
    wall = (t1 - t0) / 1e6
    out["first_create_ms"] = min(created.values()) if created else None
    out["last_start_ms"] = max(started.values())
    ready = healthy if health else started
    out["last_ready_ms"] = max(ready.values()) if ready else None
    out["tail_ms"] = wall - out["last_ready_ms"] if out["last_ready_ms"] is not None else None
    out["create_to_start_p50_ms"] = median([started[s] - created[s] for s in started if s in created])
    # Gate latency: from the moment a service's dependencies met their condition to its create
    # event (the tool's reaction) and to its start event (reaction + create + start).
    react, gate = [], []
    for name, (wave, deps) in services.items():
        if not deps or name not in started:
            continue
        if not all(d in ready for d in deps):
            continue
        opened = max(ready[d] for d in deps)
        if name in created:
            react.append(created[name] - opened)
        gate.append(started[name] - opened)
    out["gate_to_create_p50_ms"] = median(react)
    out["gate_to_start_p50_ms"] = median(gate)
    out["gate_to_start_max_ms"] = max(gate) if gate else None
    if health and healthy:
        # Docker's own start -> first healthy probe, per service, and the longest chain of it.
        intrinsic = {s: healthy[s] - started[s] for s in healthy if s in started}
        out["start_to_healthy_p50_ms"] = median(intrinsic.values())
        longest = {}
        for name in sorted(services, key=lambda s: services[s][0]):
            wave, deps = services[name]
            longest[name] = intrinsic.get(name, 0) + max([longest.get(d, 0) for d in deps], default=0)
        out["chain_health_ms"] = max(longest.values())
    return out


def fmt_ms(value):
    if value is None:
        return "–"
    return "%.2f s" % (value / 1000) if value >= 1000 else "%.0f ms" % value


def ratio(a, b):
    return "%.2f×" % (a / b) if a and b else "–"


def report(runs_path, noop_path, meta_path):
    rows = [line.rstrip("\n").split("\t") for line in open(runs_path) if line.strip()]
    header, rows = rows[0], rows[1:]
    records = [dict(zip(header, r)) for r in rows]
    for r in records:
        r["wall_ms"] = float(r["wall_ms"])
        r["rss_kb"] = float(r["rss_kb"]) if r["rss_kb"] not in ("", "-") else None
        r["analysis"] = json.loads(r["analysis"]) if r.get("analysis") not in (None, "", "-") else {}

    def series(variant, size, tool):
        return [r for r in records if r["variant"] == variant and r["size"] == str(size) and r["tool"] == tool and r["ok"] == "1"]

    def med(variant, size, tool, key="wall_ms"):
        values = [r[key] if key in ("wall_ms", "rss_kb") else r["analysis"].get(key) for r in series(variant, size, tool)]
        return median(values)

    def failures(variant, size, tool):
        return sum(1 for r in records if r["variant"] == variant and r["size"] == str(size) and r["tool"] == tool and r["ok"] != "1")

    out = []
    out.append("# swarmctl deploy benchmark\n")
    out.append(open(meta_path).read().strip() + "\n")
    sizes = sorted({int(r["size"]) for r in records})
    for variant, title, floor_tool in (
        ("plain", "Cold deploy, no healthchecks (`service_started`)", "floor"),
        ("health", "Cold deploy, healthchecks (`service_healthy`, interval 1 s, app ready after 1 s)", "floor"),
    ):
        if not any(r["variant"] == variant for r in records):
            continue
        out.append("## %s\n" % title)
        floor_label = "floor (all N at once)" if variant == "plain" else "floor (DAG, event-driven, pre-created)"
        out.append("| services | swarmctl | docker-compose | %s | swarmctl / floor | compose / floor | swarmctl / compose | runs |" % floor_label)
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            s, c, f = med(variant, size, "swarmctl"), med(variant, size, "compose"), med(variant, size, floor_tool)
            if s is None and c is None and f is None:
                continue
            n = "/".join(str(len(series(variant, size, t))) for t in ("swarmctl", "compose", floor_tool))
            bad = sum(failures(variant, size, t) for t in ("swarmctl", "compose", floor_tool))
            if bad:
                n += " (%d failed)" % bad
            out.append("| %d | %s | %s | %s | **%s** | %s | %s | %s |" % (size, fmt_ms(s), fmt_ms(c), fmt_ms(f), ratio(s, f), ratio(c, f), ratio(s, c), n))
        out.append("")
        # Phases from the engine's events (medians).
        out.append("Phases from the engine's event stream (medians; ms after the tool was launched):\n")
        if variant == "plain":
            out.append("| services | tool | first create | last start | create→start p50 | deps started → own start p50 / max |")
            out.append("|---:|---|---:|---:|---:|---:|")
        else:
            out.append("| services | tool | first create | last healthy | create→start p50 | start→healthy p50 | deps healthy → own create p50 | deps healthy → own start p50 / max | health chain (Σ start→healthy) | wall / health chain |")
            out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            for tool in ("swarmctl", "compose", floor_tool):
                if not series(variant, size, tool):
                    continue
                m = lambda key: med(variant, size, tool, key)
                if variant == "plain":
                    gate = "(ignores deps)" if tool == "floor" else "%s / %s" % (fmt_ms(m("gate_to_start_p50_ms")), fmt_ms(m("gate_to_start_max_ms")))
                    out.append("| %d | %s | %s | %s | %s | %s |" % (size, tool, fmt_ms(m("first_create_ms")), fmt_ms(m("last_start_ms")), fmt_ms(m("create_to_start_p50_ms")), gate))
                else:
                    out.append("| %d | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
                        size, tool, fmt_ms(m("first_create_ms")), fmt_ms(m("last_ready_ms")), fmt_ms(m("create_to_start_p50_ms")),
                        fmt_ms(m("start_to_healthy_p50_ms")), "pre-created" if tool == "floor" or (m("gate_to_create_p50_ms") or 0) < 0 else fmt_ms(m("gate_to_create_p50_ms")), fmt_ms(m("gate_to_start_p50_ms")),
                        fmt_ms(m("gate_to_start_max_ms")), fmt_ms(m("chain_health_ms")), ratio(m("wall_ms"), m("chain_health_ms"))))
        out.append("")
    # Inside swarmctl, from its own progress output.
    tools = sorted({r["tool"] for r in records if r["tool"].startswith("swarmctl")})
    if any(r["analysis"].get("swarmctl") for r in records):
        out.append("## Inside swarmctl (from its plan and progress lines; medians)\n")
        out.append("Slot wait = time a create/start sat ready behind the `--parallel` bound; in flight = mean mutating calls running.\n")
        out.append("| variant | services | run | apply | mutations | in flight | create p50 | start p50 | slot wait p50 / max / total |")
        out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for variant in ("plain", "health"):
            for size in sizes:
                for tool in tools:
                    rows_ = [r["analysis"].get("swarmctl") or {} for r in series(variant, size, tool)]
                    if not rows_:
                        continue
                    m = lambda key: median([row.get(key) for row in rows_])
                    sec = lambda v: "–" if v is None else "%.2f s" % v
                    label = "--parallel " + tool[len("swarmctl-p"):] if tool.startswith("swarmctl-p") else "default"
                    out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s / %s |" % (
                        variant, size, label, sec(m("apply_s")), "%.0f" % m("mutations") if m("mutations") else "–",
                        "%.1f" % m("in_flight_mean") if m("in_flight_mean") else "–", sec(m("create_p50_s")), sec(m("start_p50_s")),
                        sec(m("slot_wait_p50_s")), sec(m("slot_wait_max_s")), sec(m("slot_wait_sum_s"))))
        out.append("")
    # Health chain vs its critical path.
    if any(r["variant"] == "health" for r in records):
        out.append("## Health-gated chain vs its critical path\n")
        out.append("Critical path = the DAG floor (each wave started the instant its dependencies are healthy, containers pre-created, no bound). Target: swarmctl within 1.10×.\n")
        out.append("| services | swarmctl | critical path (DAG floor) | swarmctl / critical path | swarmctl / its own health chain |")
        out.append("|---:|---:|---:|---:|---:|")
        for size in sizes:
            s, f = med("health", size, "swarmctl"), med("health", size, "floor")
            chain = med("health", size, "swarmctl", "chain_health_ms")
            if s is None:
                continue
            out.append("| %d | %s | %s | **%s** | %s |" % (size, fmt_ms(s), fmt_ms(f), ratio(s, f), ratio(s, chain)))
        out.append("")
    # --parallel sweep.
    sweep = {r["tool"] for r in records if r["tool"].startswith("swarmctl-p")}
    if sweep:
        sweep.add("swarmctl-p%d" % DEFAULT_PARALLEL)
        sweep = sorted(sweep, key=lambda t: int(t[len("swarmctl-p"):]))
        out.append("## swarmctl `--parallel` on the largest stack\n")
        out.append("Interleaved with the main series in its first runs; `--parallel %d` (the default) is the main swarmctl series.\n" % DEFAULT_PARALLEL)
        out.append("| variant | services | " + " | ".join("`--parallel %s`" % t[len("swarmctl-p"):] for t in sweep) + " | floor | runs each |")
        out.append("|---|---:|" + "---:|" * (len(sweep) + 2))
        for variant in ("plain", "health"):
            for size in sizes:
                tool = lambda t: "swarmctl" if t == "swarmctl-p%d" % DEFAULT_PARALLEL else t
                vals = [med(variant, size, tool(t)) if any(series(variant, size, x) for x in sweep) else None for t in sweep]
                if all(v is None for v in vals):
                    continue
                floor_v = med(variant, size, "floor")
                counts = "/".join(str(len(series(variant, size, tool(t)))) for t in sweep)
                out.append("| %s | %d | %s | %s | %s |" % (variant, size, " | ".join(fmt_ms(v) for v in vals), fmt_ms(floor_v), counts))
        out.append("")
    # No-op and memory.
    out.append("## No-op re-deploy and peak memory\n")
    noop = [line.rstrip("\n").split("\t") for line in open(noop_path) if line.strip()]
    if noop:
        by_tool = {}
        for tool, size, wall, ok in noop:
            if ok == "1":
                by_tool.setdefault((tool, size), []).append(float(wall))
        out.append("| measure | value | target |")
        out.append("|---|---:|---|")
        for (tool, size), walls in sorted(by_tool.items()):
            target = "< 100 ms" if tool == "swarmctl" else ""
            out.append("| no-op re-deploy, %s services, %s (median of %d) | **%s** | %s |" % (size, tool, len(walls), fmt_ms(median(walls)), target))
    big = max(sizes)
    for variant in ("plain", "health"):
        rss = med(variant, big, "swarmctl", "rss_kb")
        if rss:
            peak = max(r["rss_kb"] for r in series(variant, big, "swarmctl") if r["rss_kb"])
            out.append("| swarmctl peak RSS, %d-service deploy, %s (median / max) | **%.1f MB** / %.1f MB | < 50 MB |" % (big, variant, rss / 1024, peak / 1024))
        crss = med(variant, big, "compose", "rss_kb")
        if crss:
            out.append("| docker-compose peak RSS, %d-service deploy, %s (median) | %.1f MB | |" % (big, variant, crss / 1024))
    out.append("")
    print("\n".join(out))


def main():
    command = sys.argv[1]
    if command == "generate":
        generate(int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5])
    elif command == "analyze":
        print(json.dumps(analyze(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1")))
    elif command == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
