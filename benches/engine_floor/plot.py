#!/usr/bin/env python3
"""deploy-runs.tsv -> an SVG bar chart of median cold-deploy wall times (no plotting library:
the benchmark must run on a bare machine).

    python3 benches/engine_floor/plot.py benches/results/deploy-runs.tsv > benches/results/deploy.svg
"""
import sys
from statistics import median

TOOLS = (("swarmctl", "swarmctl", "#2f6fb0"), ("compose", "docker-compose 1.29", "#c8663a"), ("floor", "engine floor (health: critical path)", "#8a8a8a"))
PANELS = (("plain", "no healthchecks (service_started)"), ("health", "healthchecks (service_healthy)"))


def read(path):
    lines = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    header = lines[0]
    walls = {}
    for row in lines[1:]:
        r = dict(zip(header, row))
        if r["ok"] == "1":
            walls.setdefault((r["variant"], int(r["size"]), r["tool"]), []).append(float(r["wall_ms"]) / 1000)
    return {key: median(values) for key, values in walls.items()}


def svg(medians):
    sizes = sorted({size for (_, size, _) in medians})
    panels = [(v, title) for v, title in PANELS if any(key[0] == v for key in medians)]
    panel_h, left, bar, gap = 230, 60, 34, 28
    group = bar * len(TOOLS) + gap
    width = max(640, left + 40 + len(sizes) * (group + 60))
    height = 60 + panel_h * len(panels) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15" font-weight="bold">Cold deploy, median wall time (s): stacks of N services in 4 waves</text>' % left]
    for i, (_, label, colour) in enumerate(TOOLS):
        x = left + i * 170
        out.append('<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="45">%s</text>' % (x, colour, x + 18, label))
    for p, (variant, title) in enumerate(panels):
        y0 = 60 + p * panel_h
        base = y0 + panel_h - 40
        top = max(value for key, value in medians.items() if key[0] == variant) * 1.15
        scale = (panel_h - 70) / top  # each panel its own scale: the two differ sixfold
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (left, y0 + 18, title))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (left, base, width - 20, base))
        for s, size in enumerate(sizes):
            gx = left + 20 + s * (group + 60)
            for t, (tool, _, colour) in enumerate(TOOLS):
                value = medians.get((variant, size, tool))
                if value is None:
                    continue
                h = value * scale
                x = gx + t * bar
                out.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>' % (x, base - h, bar - 4, h, colour))
                out.append('<text x="%d" y="%.1f" text-anchor="middle" font-size="10">%.1f</text>' % (x + (bar - 4) / 2, base - h - 3, value))
            out.append('<text x="%d" y="%d" text-anchor="middle">%d services</text>' % (gx + group / 2 - gap / 2, base + 16, size))
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    print(svg(read(sys.argv[1])))
