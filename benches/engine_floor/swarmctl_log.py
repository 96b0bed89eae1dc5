#!/usr/bin/env python3
"""Where a `swarmctl deploy` spent its time, from its own output (plan + progress lines).

  swarmctl_log.py LOG...        -> one line per log, then the medians
  swarmctl_log.py --json LOG    -> one JSON object (benches/deploy.sh merges it into its rows)

Per mutation step (create/start): ready = when its last prerequisite finished, began =
finished - duration (progress lines give finish times to 0.1 s, durations to 0.01 s), so
slot wait = began - ready is the time it sat behind the `--parallel` bound. Also: mean
mutations in flight, median API durations, and the apply time swarmctl reports.
"""
import json
import re
import statistics
import sys

PLAN = re.compile(r"^#(\d+)\s+(\S+ \S+)\s+(\S+) \(([^)]*)\)(?: after (.*))?$")
DONE = re.compile(r"^\[\s*([\d.]+)s\] \S+ (\S+ \S+) (\S+) \(([\d.]+)s\)$")
SUMMARY = re.compile(r"(?:converged|did not converge|interrupted) in ([\d.]+)s")
MUTATIONS = ("create container", "start container", "create network")


def analyze(path):
    steps, finished, apply_s = {}, {}, None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = PLAN.match(line)
        if m:
            deps = [int(a.lstrip("#")) for a in m.group(5).split(",")] if m.group(5) else []
            steps[int(m.group(1))] = (m.group(2).strip(), m.group(3), deps)
            continue
        m = DONE.match(line)
        if m:
            finished[(m.group(2), m.group(3))] = (float(m.group(1)), float(m.group(4)))
            continue
        m = SUMMARY.search(line)
        if m:
            apply_s = float(m.group(1))
    done_at = {}
    for sid, (verb, obj, _) in steps.items():
        if (verb, obj) in finished:
            done_at[sid] = finished[(verb, obj)]
    waits, durations, busy = [], {"create container": [], "start container": []}, 0.0
    for sid, (verb, obj, deps) in steps.items():
        if verb not in MUTATIONS or sid not in done_at:
            continue
        end, duration = done_at[sid]
        busy += duration
        if verb in durations:
            durations[verb].append(duration)
        ready = max([done_at[d][0] for d in deps if d in done_at], default=0.0)
        waits.append(max(0.0, end - duration - ready))
    med = lambda v: statistics.median(v) if v else None
    return {
        "apply_s": apply_s,
        "mutations": len(waits),
        "in_flight_mean": busy / apply_s if apply_s else None,
        "create_p50_s": med(durations["create container"]),
        "start_p50_s": med(durations["start container"]),
        "slot_wait_p50_s": med(waits),
        "slot_wait_max_s": max(waits) if waits else None,
        "slot_wait_sum_s": sum(waits),
    }


def main():
    if sys.argv[1] == "--json":
        print(json.dumps({"swarmctl": analyze(sys.argv[2])}))
        return
    rows = [(path, analyze(path)) for path in sys.argv[1:]]
    keys = ["apply_s", "mutations", "in_flight_mean", "create_p50_s", "start_p50_s", "slot_wait_p50_s", "slot_wait_max_s", "slot_wait_sum_s"]
    print("log\t" + "\t".join(keys))
    for path, row in rows:
        print(path.rsplit("/", 1)[-1] + "\t" + "\t".join("%.2f" % row[k] if isinstance(row[k], float) else str(row[k]) for k in keys))
    if len(rows) > 1:
        values = [[r[k] for _, r in rows if r[k] is not None] for k in keys]
        print("median\t" + "\t".join("%.2f" % statistics.median(v) if v else "-" for v in values))


if __name__ == "__main__":
    main()
