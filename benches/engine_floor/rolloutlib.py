#!/usr/bin/env python3
"""Helpers of benches/rollout.sh (standard library only).

  rolloutlib.py stack FLAVOUR N SURGE MIN_READY VERSION BENCH_ID FILE
        FLAVOUR swarmctl-host | swarmctl-swarm: one service `web` of the test app, N replicas,
        healthcheck every 1 s, x-rollout {max_surge: SURGE, max_unavailable: 0, min_ready};
        FLAVOUR docker: the same service for `docker stack deploy` (v3.8, no x-rollout; its
        update_config says start-first, parallelism SURGE, delay MIN_READY)
  rolloutlib.py wait-update DOCKER_HOST SERVICE N VERSION TIMEOUT_S [running]
        polls the manager every 0.1 s; prints "T_RUNNING T_COMPLETED" (ns since the epoch): the
        first poll that saw N tasks of VERSION running and no other task desired running, and
        the first that saw the service's UpdateStatus completed (0 if not within the timeout
        after the first; `running`: do not wait for it)
  rolloutlib.py analyze EVENTS OLD_IDS T0_NS T1_NS N BATCH MIN_READY_MS [START_MS]
        -> one JSON object: the phases of one rolling update, from `docker events` lines
           (`{{json .}}`, every engine concatenated) and the ids of the containers that ran
           before it (the old replicas)
  rolloutlib.py start-time SOCKET STACK B REPEATS BENCH_ID
        the start term of the floor, measured: B containers created like a running replica of
        STACK (its image, env, healthcheck, network; only the bench label), then started at once
        (B threads, one connection each, POST /containers/{id}/start), timed from the first call
        to the last call's return; REPEATS times, the containers removed after each; prints the
        median and every repeat, ms, as JSON
  rolloutlib.py swarm-start-time DOCKER_HOST STACK B REPEATS BENCH_ID
        the same term on a swarm, where a replica starts through the manager (orchestrator,
        scheduler, dispatcher) and an agent: a probe service made like STACK's `web` (its image,
        env, network, endpoint mode) but without a healthcheck, so that its tasks run as soon as
        their containers start, is scaled from 0 to B; timed from the update call to the last
        task's `running` timestamp (set by its node's agent, not seen by a poll); REPEATS times,
        scaled back to 0 between; prints JSON like start-time
  rolloutlib.py report RUNS.tsv META.txt -> the markdown results
"""
import calendar
import json
import math
import statistics
import sys
import threading
import time
import urllib.parse

from stacklib import UnixHTTPConnection

HEALTH = '["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"]'


def stack(flavour, n, surge, min_ready, version, bench_id, path):
    lines = ['version: "3.8"', "services:", "  web:", "    image: swarmctl-test/testapp:latest"]
    lines += ['    environment: {TESTAPP_PORTS: "8080", VERSION: "%s"}' % version]
    lines += ["    healthcheck: {test: %s, interval: 1s, timeout: 2s, retries: 3}" % HEALTH]
    lines += ["    stop_grace_period: 2s", '    labels: {org.swarmctl.bench: "%s"}' % bench_id]
    if flavour == "swarmctl-host":
        lines += ["    deploy: {replicas: %d}" % n]
    elif flavour == "swarmctl-swarm":
        lines += ["    deploy: {replicas: %d, endpoint_mode: dnsrr}" % n]
    elif flavour == "docker":
        lines += ["    deploy:", "      replicas: %d" % n, "      endpoint_mode: dnsrr",
                  "      update_config: {parallelism: %s, order: start-first, delay: %s, monitor: 5s, failure_action: pause}" % (surge, min_ready)]
    else:
        sys.exit("unknown flavour " + flavour)
    if flavour != "docker":
        lines += ["    x-rollout: {max_surge: %s, max_unavailable: 0, min_ready: %s, progress_deadline: 2m}" % (surge, min_ready)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def wait_update(docker_host, service, n, version, timeout, want_completed=True):
    conn = UnixHTTPConnection(docker_host[len("unix://"):])
    tasks_path = "/v1.41/tasks?filters=%s" % urllib.parse.quote(json.dumps({"service": [service]}))
    service_path = "/v1.41/services/%s" % service
    want = "VERSION=%s" % version
    deadline = time.monotonic() + timeout
    t_running = t_completed = 0
    running_mono = 0.0
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            conn.request("GET", tasks_path)
            tasks = json.loads(conn.getresponse().read())
            conn.request("GET", service_path)
            svc = json.loads(conn.getresponse().read())
            seen = time.time_ns()
            desired = [t for t in tasks if t.get("DesiredState") == "running"]
            new = [t for t in desired if t["Status"]["State"] == "running" and want in t["Spec"]["ContainerSpec"].get("Env", [])]
            state = (svc.get("UpdateStatus") or {}).get("State", "")
            last = "%d of %d tasks of %s running, %d desired running, update %s" % (len(new), n, version, len(desired), state or "-")
            if not t_running and len(new) == n and len(desired) == n:
                t_running, running_mono = seen, time.monotonic()
            if not t_completed and state == "completed":
                t_completed = seen
            if t_running and (t_completed or not want_completed or time.monotonic() - running_mono > 20):
                break  # `completed` is a side figure: 20 s at most after the tasks ran
        except (OSError, ValueError, KeyError) as e:
            last = "error: %s" % e
            conn.close()
        time.sleep(0.1)
    if not t_running:
        print("wait-update: timed out after %ss: %s" % (timeout, last), file=sys.stderr)
        return 1
    print(t_running, t_completed)
    return 0


def api(conn, method, path, body=None):
    """One Engine API call on `conn`: its JSON answer (None when empty); raises on an error status."""
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"} if body is not None else {})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %s %s" % (method, path, r.status, data[:200]))
    return json.loads(data) if data else None


def start_time(sock, stack, b, repeats, bench_id):
    def call(method, path, body=None, conn=None):
        return api(conn or UnixHTTPConnection(sock, timeout=60), method, path, body)
    filters = urllib.parse.quote(json.dumps({"label": ["io.swarmctl.stack=%s" % stack]}))
    replicas = call("GET", "/v1.41/containers/json?filters=%s" % filters)
    if not replicas:
        sys.exit("start-time: no running replica of %s" % stack)
    ref = call("GET", "/v1.41/containers/%s/json" % replicas[0]["Id"])
    cfg, host = ref["Config"], ref["HostConfig"]
    body = {"Image": cfg["Image"], "Env": cfg.get("Env"), "Cmd": cfg.get("Cmd"), "Entrypoint": cfg.get("Entrypoint"),
            "Healthcheck": cfg.get("Healthcheck"), "StopTimeout": cfg.get("StopTimeout"),
            "Labels": {"org.swarmctl.bench": bench_id},
            "HostConfig": {"NetworkMode": host.get("NetworkMode")}}
    times = []
    for rep in range(repeats):
        ids = [call("POST", "/v1.41/containers/create?name=%s-startprobe-%d-%d" % (stack, rep, i), body)["Id"] for i in range(b)]
        conns = [UnixHTTPConnection(sock, timeout=60) for _ in ids]
        for c in conns:
            c.connect()
        ends, errors = [], []
        def start(cid, c):
            try:
                call("POST", "/v1.41/containers/%s/start" % cid, conn=c)
                ends.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=start, args=(cid, c)) for cid, c in zip(ids, conns)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not errors:
            times.append((max(ends) - t0) * 1000)
        for cid in ids:
            call("DELETE", "/v1.41/containers/%s?force=true" % cid)
        if errors:
            sys.exit("start-time: %s" % errors[0])
        time.sleep(0.5)
    print(json.dumps({"start_ms": median(times), "repeats_ms": [round(t) for t in times]}))


def swarm_start_time(docker_host, stack, b, repeats, bench_id):
    conn = UnixHTTPConnection(docker_host[len("unix://"):], timeout=60)

    def call(method, path, body=None):
        return api(conn, method, "/v1.41" + path, body)

    spec = call("GET", "/services/%s_web" % stack)["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    container["Healthcheck"] = {"Test": ["NONE"]}
    container["Labels"] = {"org.swarmctl.bench": bench_id}
    spec.update(Name="%s_startprobe" % stack, Labels={"org.swarmctl.bench": bench_id}, Mode={"Replicated": {"Replicas": 0}})
    sid = call("POST", "/services/create", spec)["ID"]
    tasks_path = "/tasks?filters=%s" % urllib.parse.quote(json.dumps({"service": [sid], "desired-state": ["running"]}))

    def scale(replicas):
        current = call("GET", "/services/%s" % sid)
        current["Spec"]["Mode"] = {"Replicated": {"Replicas": replicas}}
        sent = time.time_ns()
        call("POST", "/services/%s/update?version=%d" % (sid, current["Version"]["Index"]), current["Spec"])
        return sent

    def running():
        return [t for t in call("GET", tasks_path) if t["Status"]["State"] == "running"]

    times = []
    try:
        for _ in range(repeats):
            sent = scale(b)
            deadline = time.monotonic() + 60
            while len(up := running()) < b:
                if time.monotonic() > deadline:
                    sys.exit("swarm-start-time: %d of %d probe tasks running after 60 s" % (len(up), b))
                time.sleep(0.02)
            times.append((max(epoch_ns(t["Status"]["Timestamp"]) for t in up) - sent) / 1e6)
            scale(0)
            while running():
                time.sleep(0.05)
            time.sleep(0.5)
    finally:
        call("DELETE", "/services/%s" % sid)
    print(json.dumps({"start_ms": median(times), "repeats_ms": [round(t) for t in times]}))


def epoch_ns(timestamp):
    """RFC 3339 with nanoseconds (the engine's), to ns since the epoch."""
    whole, _, rest = timestamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 10**9 + int((rest + "000000000")[:9])


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def analyze(events_path, old_path, t0, t1, n, batch, min_ready_ms, start_ms=None):
    old = {line.strip()[:12] for line in open(old_path) if line.strip()}
    start, healthy, kill, die, stopped = {}, {}, {}, {}, {}
    events, decoder = [], json.JSONDecoder()
    for line in open(events_path):  # the engines' streams share the file: a line may hold two objects
        line, at = line.strip(), 0
        while line.startswith("{", at):
            e, at = decoder.raw_decode(line, at)
            events.append(e)
    for e in events:
        cid, action, at = e.get("id", "")[:12], e.get("Action") or e.get("status", ""), (int(e["timeNano"]) - t0) / 1e6
        if cid in old:
            if action == "kill":
                kill.setdefault(cid, at)
            elif action == "die":
                die.setdefault(cid, at)
            elif action == "stop":  # the engine's stop call returned: cleaned up, no longer running
                stopped.setdefault(cid, at)
        elif action == "start":
            start.setdefault(cid, at)
        elif action == "health_status: healthy" and cid in start:
            healthy.setdefault(cid, at)
    new = sorted((start[c], healthy.get(c), c) for c in start)
    out = {"new_started": len(new), "new_healthy": sum(1 for s in new if s[1] is not None), "old_stopped": len(die)}
    wall = (t1 - t0) / 1e6
    sh = [h - s for s, h, _ in new if h is not None]
    out["start_to_healthy_p50_ms"] = median(sh)
    out["start_to_healthy_min_ms"] = min(sh) if sh else None
    out["start_to_healthy_max_ms"] = max(sh) if sh else None
    batches = math.ceil(n / batch)
    out["batches"] = batches
    out["start_ms"] = start_ms  # start(B), measured apart (start-time, swarm-start-time)
    if out["start_to_healthy_p50_ms"] is not None:
        out["floor_ms"] = batches * ((start_ms or 0) + out["start_to_healthy_p50_ms"] + min_ready_ms)
    if not new or out["new_healthy"] < n:
        return out
    groups = [new[i:i + batch] for i in range(0, len(new), batch)][:batches]
    stops = sorted((kill.get(c, die[c]), die[c], c) for c in die)
    out["head_ms"] = new[0][0]  # launch -> first new replica started (start-up, observe, plan, creates)
    out["batch_start_to_healthy_sum_ms"] = sum(max(h for _, h, _ in g) - g[0][0] for g in groups)
    gaps, react, stop_dur, after_stop, cleanup = [], [], [], [], []
    for i, g in enumerate(groups):
        healthy_at = max(h for _, h, _ in g)
        mine = stops[i * batch:(i + 1) * batch]  # the old replicas this batch replaced
        if mine:
            react.append(mine[0][0] - healthy_at)
            stop_dur.extend(d - k for k, d, _ in mine)
            cleanup.extend(stopped[c] - d for _, d, c in mine if c in stopped)
        if i + 1 < len(groups):
            gaps.append(groups[i + 1][0][0] - healthy_at)
            if mine:
                after_stop.append(groups[i + 1][0][0] - max(d for _, d, _ in mine))
    out["gap_sum_ms"] = sum(gaps)  # last healthy of a batch -> first start of the next
    out["gap_p50_ms"] = median(gaps)
    out["healthy_to_kill_p50_ms"] = median(react)
    out["stop_p50_ms"] = median(stop_dur)
    out["stopped_to_next_start_p50_ms"] = median(after_stop)
    out["cleanup_p50_ms"] = median(cleanup)
    out["last_healthy_ms"] = max(h for _, h, _ in new)
    out["last_old_stopped_ms"] = max((d for _, d, _ in stops), default=None)
    out["tail_ms"] = wall - out["last_healthy_ms"]  # includes the last old stop and --stable
    return out


ROWS = [
    ("swarmctl", "swarmctl deploy"),
    ("swarmctl-stable0", "swarmctl deploy `--stable 0s`"),
    ("docker-update", "`docker service update -d` + poll"),
]


def report(runs_path, meta_path):
    rows = [line.rstrip("\n").split("\t") for line in open(runs_path) if line.strip()]
    header, rows = rows[0], rows[1:]
    records = [dict(zip(header, r)) for r in rows]
    for r in records:
        r["wall_ms"] = float(r["wall_ms"])
        r["phases"] = json.loads(r["phases"]) if r.get("phases") not in (None, "", "-") else {}

    def sec(v):
        return "–" if v is None else "%.2f" % (v / 1000)

    def mmm(values):
        values = sorted(v for v in values if v is not None)
        return (values[0], statistics.median(values), values[-1]) if values else None

    def triple(t):
        return "–" if t is None else "%s / **%s** / %s" % (sec(t[0]), sec(t[1]), sec(t[2]))

    def cell_of(r):
        return (r["target"], int(r["size"]), int(r["batch"]), r["min_ready"])

    def runs_of(cell, tool):
        return [r for r in records if cell_of(r) == cell and r["tool"] == tool]

    cells = []
    for r in records:
        if cell_of(r) not in cells:
            cells.append(cell_of(r))
    out = ["# swarmctl rolling-update benchmark\n", open(meta_path).read().strip() + "\n"]
    out.append("## Wall time against the floor\n")
    out.append("One service `web` (the test app, healthcheck every 1 s, `stop_grace_period: 2s`) of N replicas, "
               "updated (an env var changed) with `max_surge: B, max_unavailable: 0`. Wall: launch → exit "
               "(docker: launch of `docker service update -d` → the first poll that saw N new tasks running and no old one). "
               "**Floor** = ceil(N / B) × (start(B) + start → first healthy check + min_ready). *start(B)*: the time the engine "
               "takes to start B replicas at once, median of 5, measured on the same engine in the same benchmark run just "
               "before the cell's timed updates. On one host: B containers created like a replica (same image, env, "
               "healthcheck, network), started together through the API, first start call → last call's return. On the "
               "swarm, where a replica starts through the manager (orchestrator, scheduler, dispatcher) and an agent: a "
               "probe service like the stack's (same image, env, network) but without a healthcheck, scaled from 0 to B, "
               "update call → the last task's `running` timestamp (its agent's). *start → healthy*: the "
               "median over the new replicas of that very run (container `start` event → `health_status: healthy` event). "
               "Seconds, min / **median** / max over the runs; ratio = median wall / median floor (target ≤ 1.10×).\n")
    out.append("| target | N | batch B | min_ready | tool | wall s | start(B) s | start→healthy p50 s | floor s | ratio | runs |")
    out.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for cell in cells:
        target, size, batch, min_ready = cell
        for tool, label in ROWS:
            mine = runs_of(cell, tool)
            if not mine:
                continue
            good = [r for r in mine if r["ok"] == "1"]
            wall = mmm(r["wall_ms"] for r in good)
            floor = mmm(r["phases"].get("floor_ms") for r in good)
            sh = median([r["phases"].get("start_to_healthy_p50_ms") for r in good])
            st = median([r["phases"].get("start_ms") for r in good])
            rat = "%.2f×" % (wall[1] / floor[1]) if wall and floor else "–"
            runs = "%d%s" % (len(good), " (%d failed)" % (len(mine) - len(good)) if len(mine) > len(good) else "")
            out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                target, size, batch, min_ready, label, triple(wall), sec(st), sec(sh), sec(floor[1]) if floor else "–", rat, runs))
    out.append("")
    out.append("## Where the time goes\n")
    out.append("Medians over the runs, seconds, from the engines' event streams (relative to the launch). "
               "*head*: launch → first new replica started (start-up, observe, plan, on one host the new containers created). "
               "*Σ batch*: per batch, first start → last healthy, summed (what the floor counts, plus spread within a batch). "
               "*Σ gaps*: last healthy of a batch → first start of the next, summed (the reaction: old replica told to stop, "
               "its stop, the next start call); per gap: *healthy → kill* of the old replica, its *stop* (kill → die), "
               "and *stopped → next start* (from the old replica's `die`); of that, *engine clean-up*: `die` → the engine's "
               "`stop` event, the old replica's network and mounts released, during which the engine still lists it as running "
               "(– where not recorded). *tail*: last new replica healthy → exit (the last old replica's stop, `--stable`).\n")
    out.append("| target | N | B | min_ready | tool | wall | head | Σ batch | Σ gaps | gap p50 | healthy → kill | stop | stopped → next start | engine clean-up | tail |")
    out.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cell in cells:
        target, size, batch, min_ready = cell
        for tool, _ in ROWS:
            good = [r for r in runs_of(cell, tool) if r["ok"] == "1"]
            ph = [r["phases"] for r in good if "head_ms" in r["phases"]]
            if not ph:
                continue
            m = lambda k: sec(median([p.get(k) for p in ph]))
            out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                target, size, batch, min_ready, tool, sec(median([r["wall_ms"] for r in good])), m("head_ms"),
                m("batch_start_to_healthy_sum_ms"), m("gap_sum_ms"), m("gap_p50_ms"), m("healthy_to_kill_p50_ms"),
                m("stop_p50_ms"), m("stopped_to_next_start_p50_ms"), m("cleanup_p50_ms"), m("tail_ms")))
    completed = [r for r in records if r["tool"] == "docker-update" and r["ok"] == "1" and r.get("completed_ms") not in (None, "", "-", "0")]
    if completed:
        out.append("")
        out.append("`docker-update`: Swarm marks the update `completed` only after its `monitor` window (5 s, Swarm's default, "
                   "which swarmctl also sends) following the last batch; launch → `completed`, median: " + ", ".join(
                       "%s N=%s B=%s: %s s" % (t, s, b, sec(median([float(r["completed_ms"]) for r in completed if (r["target"], r["size"], r["batch"]) == (t, s, b)])))
                       for t, s, b in sorted({(r["target"], r["size"], r["batch"]) for r in completed})) + ".")
    out.append("")
    print("\n".join(out))


def main():
    cmd = sys.argv[1]
    if cmd == "stack":
        stack(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8])
    elif cmd == "wait-update":
        sys.exit(wait_update(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), sys.argv[7:8] != ["running"]))
    elif cmd == "analyze":
        start_ms = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] not in ("", "-") else None
        print(json.dumps(analyze(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8]), start_ms)))
    elif cmd == "start-time":
        start_time(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif cmd == "swarm-start-time":
        swarm_start_time(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
