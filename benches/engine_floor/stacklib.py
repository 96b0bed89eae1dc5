#!/usr/bin/env python3
"""Helpers of benches/deploy.sh and benches/swarm.sh (standard library only).

  stacklib.py generate N HEALTH(0|1) DIR BENCH_ID   -> DIR/compose.yaml, DIR/topology.tsv
  stacklib.py analyze TOPOLOGY EVENTS T0_NS T1_NS HEALTH(0|1)
                                                  -> one JSON object: phases of one run
  stacklib.py report RUNS.tsv NOOP.tsv META.txt     -> the markdown results

  stacklib.py generate-swarm N HEALTH(0|1) DIR BENCH_ID
                                                  -> DIR/compose.yaml, DIR/topology.tsv (Swarm)
  stacklib.py converge DOCKER_HOST STACK N TIMEOUT_S [INTERVAL_S]
                                                  -> polls the manager until the stack's N
                                                     services run all their replicas; prints
                                                     the time it saw that (ns since the epoch)
  stacklib.py swarm-phases DOCKER_HOST STACK TOPOLOGY T0_NS T1_NS
                                                  -> one JSON object: phases of one Swarm deploy,
                                                     from the manager's service and task records
  stacklib.py report-swarm RUNS.tsv NOOP.tsv META.txt
                                                  -> the markdown results of benches/swarm.sh

The stack: N services in 4 dependency waves; service j of wave k>0 depends on services
j and j+1 (mod size) of wave k-1, with `service_started`, or `service_healthy` in the health
variant. One `version: "3.8"` file that docker-compose 1.29 and swarmctl both read.
"""
import http.client
import json
import re
import socket
import statistics
import sys
import time
import urllib.parse

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
        z_any = any(r["variant"] == variant and r["tool"] == "swarmctl-stable0" for r in records)
        if z_any:
            out.append("swarmctl: its default (every replica checked to stay up for `--stable 3s` before \"converged\"); "
                       "`--stable 0s`: no such window, like for like with docker-compose, which verifies nothing after `up -d`.\n")
            out.append("| services | swarmctl | swarmctl `--stable 0s` | docker-compose | %s | swarmctl / floor | `--stable 0s` / floor | compose / floor | swarmctl / compose | `--stable 0s` / compose | runs |" % floor_label)
            out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        else:
            out.append("| services | swarmctl | docker-compose | %s | swarmctl / floor | compose / floor | swarmctl / compose | runs |" % floor_label)
            out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            s, c, f = med(variant, size, "swarmctl"), med(variant, size, "compose"), med(variant, size, floor_tool)
            z = med(variant, size, "swarmctl-stable0")
            if s is None and c is None and f is None:
                continue
            tools_ = ("swarmctl", "swarmctl-stable0", "compose", floor_tool) if z_any else ("swarmctl", "compose", floor_tool)
            n = "/".join(str(len(series(variant, size, t))) for t in tools_)
            bad = sum(failures(variant, size, t) for t in tools_)
            if bad:
                n += " (%d failed)" % bad
            if z_any:
                out.append("| %d | %s | %s | %s | %s | **%s** | **%s** | %s | %s | %s | %s |" % (
                    size, fmt_ms(s), fmt_ms(z), fmt_ms(c), fmt_ms(f), ratio(s, f), ratio(z, f), ratio(c, f), ratio(s, c), ratio(z, c), n))
            else:
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
            for tool in ("swarmctl", "swarmctl-stable0", "compose", floor_tool):
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
                    label = "--parallel " + tool[len("swarmctl-p"):] if tool.startswith("swarmctl-p") else "--stable 0s" if tool == "swarmctl-stable0" else "default"
                    out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s / %s |" % (
                        variant, size, label, sec(m("apply_s")), "%.0f" % m("mutations") if m("mutations") else "–",
                        "%.1f" % m("in_flight_mean") if m("in_flight_mean") else "–", sec(m("create_p50_s")), sec(m("start_p50_s")),
                        sec(m("slot_wait_p50_s")), sec(m("slot_wait_max_s")), sec(m("slot_wait_sum_s"))))
        out.append("")
    # Health chain vs its critical path.
    if any(r["variant"] == "health" for r in records):
        out.append("## Health-gated chain vs its critical path\n")
        out.append("Critical path = the DAG floor (each wave started the instant its dependencies are healthy, containers pre-created, no bound). Target: swarmctl within 1.10×.\n")
        out.append("| services | swarmctl | swarmctl `--stable 0s` | critical path (DAG floor) | swarmctl / critical path | `--stable 0s` / critical path | swarmctl / its own health chain |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            s, f = med("health", size, "swarmctl"), med("health", size, "floor")
            z = med("health", size, "swarmctl-stable0")
            chain = med("health", size, "swarmctl", "chain_health_ms")
            if s is None:
                continue
            out.append("| %d | %s | %s | %s | **%s** | **%s** | %s |" % (size, fmt_ms(s), fmt_ms(z), fmt_ms(f), ratio(s, f), ratio(z, f), ratio(s, chain)))
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


# ---------------------------------------------------------------- Swarm (benches/swarm.sh)


def generate_swarm(n, health, directory, bench_id):
    """The same topology as `generate`, as Swarm services both `swarmctl deploy --target swarm`
    and `docker stack deploy` (CLI 20.10) read: busybox sleeping, `init` so that a stop is
    immediate, `endpoint_mode: dnsrr` (this kernel has no IPVS). Dependencies use the short
    list form (= `service_started`): the v3 schema `docker stack deploy` validates against
    refuses the long form ("depends_on must be a list"), and it ignores dependencies anyway.
    HEALTH adds a cheap healthcheck (`true`, every second): a task is Running only once its
    container is healthy, for both tools."""
    lines = ['version: "3.8"', "services:"]
    for name, _, deps in topology(n):
        lines += [
            "  %s:" % name,
            "    image: swarmctl-test/busybox:latest",
            '    command: ["sleep", "86400"]',
            "    init: true",
            "    stop_grace_period: 1s",
            "    labels:",
            '      org.swarmctl.bench: "%s"' % bench_id,
            "    deploy:",
            "      replicas: 1",
            "      endpoint_mode: dnsrr",
        ]
        if health:
            lines += [
                "    healthcheck:",
                '      test: ["CMD", "true"]',
                "      interval: 1s",
                "      timeout: 2s",
                "      retries: 30",
            ]
        if deps:
            lines.append("    depends_on:")
            lines += ["      - %s" % dep for dep in deps]
    with open(directory + "/compose.yaml", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(directory + "/topology.tsv", "w") as f:
        for name, wave, deps in topology(n):
            f.write("%s\t%d\t%s\n" % (name, wave, ",".join(deps)))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def converge(docker_host, stack, n, timeout, interval=0.1):
    """What `docker service ls` shows as REPLICAS n/n for every service of the stack, asked of
    the manager every INTERVAL seconds over one kept-alive connection (`GET /services?status=true`,
    API 1.41: ServiceStatus.RunningTasks against DesiredTasks). Exit 0 and the time it first
    saw all N services converged (ns since the epoch) on stdout; exit 1 after TIMEOUT seconds
    with the last state on stderr."""
    if not docker_host.startswith("unix://"):
        sys.exit("converge: DOCKER_HOST must be unix://")
    conn = UnixHTTPConnection(docker_host[len("unix://"):])
    filters = urllib.parse.quote(json.dumps({"label": ["com.docker.stack.namespace=%s" % stack]}))
    path = "/v1.41/services?status=true&filters=%s" % filters
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            services = json.loads(body) if response.status == 200 else []
            seen = time.time_ns()
            status = [s.get("ServiceStatus") or {} for s in services]
            ready = sum(1 for st in status if st.get("DesiredTasks", 0) > 0 and st.get("RunningTasks") == st.get("DesiredTasks"))
            last = "%d services, %d with every replica running (want %d)" % (len(services), ready, n)
            if len(services) == n and ready == n:
                print(seen)
                return 0
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = "error: %s" % e
            conn.close()
        if time.monotonic() > deadline:
            print("converge: timed out after %ss: %s" % (timeout, last), file=sys.stderr)
            return 1
        time.sleep(interval)


def api_get(docker_host, path):
    conn = UnixHTTPConnection(docker_host[len("unix://"):], timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise OSError("GET %s: %s %s" % (path, response.status, body[:200]))
    return json.loads(body)


def timestamp_ns(text):
    """Docker's RFC 3339 time with nanoseconds ("2026-11-30T13:40:27.170123456Z") -> ns since the epoch."""
    import calendar
    date, _, rest = text.partition("T")
    clock = rest.rstrip("Z")
    if "+" in clock or clock.count("-"):
        clock = re.split(r"[+-]", clock)[0]  # the manager reports UTC; an offset is not expected
    hms, _, frac = clock.partition(".")
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi, se = (int(x) for x in hms.split(":"))
    return calendar.timegm((y, mo, d, h, mi, se)) * 10**9 + int((frac + "000000000")[:9])


def swarm_phases(docker_host, stack, topology_path, t0, t1):
    """Where a Swarm deploy's time went, from the manager's own records (tool-agnostic), in ms
    after the tool was launched: each service's creation (`CreatedAt`), the moment its task
    entered `running` (the task's status timestamp: with a healthcheck, once healthy), per
    wave the last of each, and per dependent service the gate: from its last dependency's task
    running to its own creation (the tool's reaction; a tool that ignores dependencies creates
    services before their dependencies run, so its gate is negative)."""
    services = read_topology(topology_path)
    filters = urllib.parse.quote(json.dumps({"label": ["com.docker.stack.namespace=%s" % stack]}))
    listed = api_get(docker_host, "/v1.41/services?filters=%s" % filters)
    tasks = api_get(docker_host, "/v1.41/tasks?filters=%s" % filters)
    by_id = {s["ID"]: s["Spec"]["Name"][len(stack) + 1:] for s in listed}
    created = {by_id[s["ID"]]: (timestamp_ns(s["CreatedAt"]) - t0) / 1e6 for s in listed}
    running = {}
    for task in tasks:
        name = by_id.get(task["ServiceID"])
        if name and task["Status"]["State"] == "running" and task.get("DesiredState") == "running":
            at = (timestamp_ns(task["Status"]["Timestamp"]) - t0) / 1e6
            running[name] = min(running.get(name, at), at)
    out = {"complete": all(s in running for s in services)}
    if not running:
        return out
    wall = (t1 - t0) / 1e6
    waves = sorted({w for w, _ in services.values()})
    out["first_create_ms"] = min(created.values())
    out["last_create_ms"] = max(created.values())
    out["last_running_ms"] = max(running.values())
    out["tail_ms"] = wall - out["last_running_ms"]
    out["create_to_running_p50_ms"] = median([running[s] - created[s] for s in running if s in created])
    out["waves"] = [
        {
            "created_ms": max(created.get(s, 0) for s, (w, _) in services.items() if w == k),
            "running_ms": max(running.get(s, 0) for s, (w, _) in services.items() if w == k),
        }
        for k in waves
    ]
    gates = [created[s] - max(running[d] for d in deps) for s, (_, deps) in services.items() if deps and s in created and all(d in running for d in deps)]
    out["gate_p50_ms"] = median(gates)
    out["gate_max_ms"] = max(gates) if gates else None
    return out


def report_swarm(runs_path, noop_path, meta_path):
    """The tables of benches/swarm.sh: cold deploys per size and variant, no-op re-deploys, memory."""
    rows = [line.rstrip("\n").split("\t") for line in open(runs_path) if line.strip()]
    header, rows = rows[0], rows[1:]
    records = [dict(zip(header, r)) for r in rows]
    for r in records:
        r["wall_ms"] = float(r["wall_ms"])
        r["return_ms"] = float(r["return_ms"]) if r["return_ms"] not in ("", "-") else None
        r["rss_kb"] = float(r["rss_kb"]) if r["rss_kb"] not in ("", "-") else None
        r["phases"] = json.loads(r["phases"]) if r.get("phases") not in (None, "", "-") else {}

    def ok(variant, size, tool):
        return [r for r in records if r["variant"] == variant and r["size"] == str(size) and r["tool"] == tool and r["ok"] == "1"]

    def failed(variant, size, tool):
        return sum(1 for r in records if r["variant"] == variant and r["size"] == str(size) and r["tool"] == tool and r["ok"] != "1")

    def mmm(values):
        values = sorted(v for v in values if v is not None)
        if not values:
            return None
        return values[0], statistics.median(values), values[-1]

    def sec(value):
        return "–" if value is None else "%.2f" % (value / 1000)

    def triple(t):
        return "–" if t is None else "%s / **%s** / %s" % (sec(t[0]), sec(t[1]), sec(t[2]))

    tools = [
        ("swarmctl", "swarmctl deploy (until converged)"),
        ("swarmctl-stable0", "swarmctl deploy `--stable 0s`"),
        ("docker-stack", "docker stack deploy + poll until n/n"),
        ("docker-stack-wait", "docker stack deploy `--detach=false` (waits itself)"),
    ]
    out = ["# swarmctl deploy benchmark: Swarm target\n", open(meta_path).read().strip() + "\n"]
    sizes = sorted({int(r["size"]) for r in records})
    # The targets, from the medians below.
    out.append("## Targets\n")
    out.append("| variant | services | swarmctl / docker stack + poll (target ≤ 1.0×) | `--stable 0s` / docker stack + poll | docker stack `--detach=false` / swarmctl (target ≥ 20×) |")
    out.append("|---|---:|---:|---:|---:|")
    for variant in ("plain", "health"):
        for size in sizes:
            med = {t: statistics.median([r["wall_ms"] for r in ok(variant, size, t)]) for t, _ in tools if ok(variant, size, t)}
            if "swarmctl" not in med:
                continue
            cell = lambda a, b: "%.2f×" % (med[a] / med[b]) if a in med and b in med else "–"
            out.append("| %s | %d | %s | %s | %s |" % (variant, size, cell("swarmctl", "docker-stack"), cell("swarmctl-stable0", "docker-stack"),
                                                   cell("docker-stack-wait", "swarmctl")))
    out.append("")
    for variant, title in (
        ("plain", "Cold deploy, no healthchecks"),
        ("health", "Cold deploy, healthcheck on every service (`true`, every 1 s)"),
    ):
        if not any(r["variant"] == variant for r in records):
            continue
        out.append("## %s\n" % title)
        out.append("Wall seconds, min / **median** / max over the runs; ratio = median swarmctl / median docker stack (until converged).\n")
        out.append("| services | tool | wall s (min / median / max) | docker stack deploy returned (min / median / max) | ratio to docker stack | runs |")
        out.append("|---:|---|---:|---:|---:|---:|")
        for size in sizes:
            docker = mmm(r["wall_ms"] for r in ok(variant, size, "docker-stack"))
            for tool, label in tools:
                if not ok(variant, size, tool) and not failed(variant, size, tool):
                    continue
                t = mmm(r["wall_ms"] for r in ok(variant, size, tool))
                returned = mmm(r["return_ms"] for r in ok(variant, size, tool)) if tool == "docker-stack" else None
                rat = ("%.2f×" % (t[1] / docker[1]) if tool != "docker-stack" else "1 (reference)") if t and docker else "–"
                if tool == "docker-stack-wait" and t and docker is None:
                    rat = "–"
                runs = str(len(ok(variant, size, tool))) + (" (%d failed)" % failed(variant, size, tool) if failed(variant, size, tool) else "")
                out.append("| %d | %s | %s | %s | %s | %s |" % (size, label, triple(t), triple(returned) if returned else "", rat, runs))
                if tool == "docker-stack-wait" and not t:
                    out[-1] = out[-1].replace("| – |", "| – (failed, see the log) |", 1)
        out.append("")
        out.append("Phases from the manager's service and task records (medians; seconds after the tool was launched). "
                   "*Wave k running*: the last task of dependency wave k entered `running`; *gate*: from a service's last "
                   "dependency running to its own creation (negative: created before its dependencies ran); *tail*: "
                   "last task running → converged (swarmctl: its exit; docker stack: the poll that saw n/n).\n")
        out.append("| services | tool | last service created | wave 0 / 1 / 2 / 3 running | create → running p50 | gate p50 / max | tail |")
        out.append("|---:|---|---:|---:|---:|---:|---:|")
        for size in sizes:
            for tool, label in tools:
                phases = [r["phases"] for r in ok(variant, size, tool) if r["phases"].get("waves")]
                if not phases:
                    continue
                m = lambda key: median([p.get(key) for p in phases])
                waves = " / ".join(sec(median([p["waves"][k]["running_ms"] for p in phases if len(p["waves"]) > k])) for k in range(len(phases[0]["waves"])))
                out.append("| %d | %s | %s | %s | %s | %s / %s | %s |" % (
                    size, tool, sec(m("last_create_ms")), waves, sec(m("create_to_running_p50_ms")),
                    sec(m("gate_p50_ms")), sec(m("gate_max_ms")), sec(m("tail_ms"))))
        out.append("")
    noop = [line.rstrip("\n").split("\t") for line in open(noop_path) if line.strip()]
    out.append("## No-op re-deploy and peak memory\n")
    out.append("| measure | min / median / max | target |")
    out.append("|---|---:|---|")
    by = {}
    for tool, size, wall, returned, ok_ in noop:
        if ok_ == "1":
            by.setdefault((tool, size), []).append((float(wall), float(returned) if returned not in ("", "-") else None))
    for (tool, size), values in sorted(by.items(), reverse=True):
        if tool == "swarmctl":
            t = mmm(v[0] for v in values)
            out.append("| no-op re-deploy, %s services, swarmctl (%d runs) | %s ms | < 200 ms median |" % (
                size, len(values), " / ".join(("**%.0f**" if i == 1 else "%.0f") % x for i, x in enumerate(t))))
        else:
            t, r = mmm(v[0] for v in values), mmm(v[1] for v in values)
            out.append("| no-op re-deploy, %s services, `docker stack deploy` returned (%d runs) | %s s | |" % (size, len(values), triple(r).replace("**", "**")))
            out.append("| … and until every service is n/n again | %s s | |" % triple(t))
    big = max(sizes) if sizes else None
    for variant in ("plain", "health"):
        rss = [r["rss_kb"] for r in ok(variant, big, "swarmctl") if r["rss_kb"]]
        if rss:
            t = mmm(rss)
            out.append("| swarmctl peak RSS, %d-service deploy, %s (%d runs) | %.1f / **%.1f** / %.1f MB | < 50 MB |" % (big, variant, len(rss), t[0] / 1024, t[1] / 1024, t[2] / 1024))
        drss = [r["rss_kb"] for r in ok(variant, big, "docker-stack") if r["rss_kb"]]
        if drss:
            t = mmm(drss)
            out.append("| `docker stack deploy` (CLI) peak RSS, %d services, %s | %.1f / **%.1f** / %.1f MB | |" % (big, variant, t[0] / 1024, t[1] / 1024, t[2] / 1024))
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
    elif command == "generate-swarm":
        generate_swarm(int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5])
    elif command == "converge":
        interval = float(sys.argv[6]) if len(sys.argv) > 6 else 0.1
        sys.exit(converge(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), interval))
    elif command == "swarm-phases":
        print(json.dumps(swarm_phases(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))))
    elif command == "report-swarm":
        report_swarm(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
