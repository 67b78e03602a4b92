#!/usr/bin/env python3
"""Checks the Grafana dashboard and its provisioning files (Python 3, standard library only).

    ops/check-dashboard.py [--rules-out FILE] [DASHBOARD_JSON]

The dashboard (default ops/grafana/dashboards/listwire.json) must have the uid, title, schema
version, `instance` variable, rows and panel titles the metrics spec fixes, in that order;
unique panel ids; a gridPos for every panel, inside the 24 columns and overlapping no other;
the Prometheus datasource (uid `prometheus`) on every panel and target; targets with an
expression that filters on `$instance`; percentile panels with p50/p99/p999 legends over
histogram_quantile. The provisioning files must point Grafana at that datasource and at the
directory the compose files mount the dashboard in.

With --rules-out, every panel expression is written, template variables replaced by concrete
values, into a Prometheus recording-rules file, so `promtool check rules FILE` parses every
PromQL expression (ops/check-ops.sh does). Exits 1 listing every problem found.
"""

import json
import re
import sys
from pathlib import Path

OPS = Path(__file__).resolve().parent

UID = "listwire-overview"
TITLE = "listwire — on call"
SCHEMA_VERSION = 39
DATASOURCE_UID = "prometheus"
DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
INSTANCE_QUERY = "label_values(listwire_build_info, instance)"

# The rows and panel titles of the metrics spec, in order.
ROWS = [
    ("Users feel", [
        "Ack latency p50 / p99 / p999 (edge)",
        "Delivery latency p50 / p99 / p999",
        "Ops and votes per second",
        "Error ratio by code",
    ]),
    ("Cluster", [
        "Members by state",
        "Lists per node",
        "Placement changes and handoffs",
        "Handoff duration p99",
        "Stale-owner rejections",
        "Internode latency p99 and failures",
    ]),
    ("Storage", [
        "Storage latency p99 by op",
        "Storage errors by kind",
        "Group commit size and latency (embedded)",
    ]),
    ("Edge", [
        "Connections and subscriptions",
        "Slow-consumer closes",
        "Outbound queue depth p99",
        "Rate-limited by reason",
        "Busy (admission) rejections",
    ]),
    ("Node", [
        "CPU per node",
        "Resident memory per node",
    ]),
]

PANEL_TYPES = {"timeseries", "stat"}
PERCENTILES = [("0.5", "p50"), ("0.99", "p99"), ("0.999", "p999")]

# What the template variables stand for when promtool parses an expression.
SUBSTITUTIONS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "instance": ".*",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
SELECTOR = re.compile(r"\b((?:listwire|process)_[a-z0-9_]+)(\{[^}]*\})?")
RANGE = re.compile(r"\[([^\]]*)\]")


class Problems:
    def __init__(self):
        self.found = []

    def add(self, where, message):
        self.found.append(f"{where}: {message}")


def substitute(expr, where, problems):
    def replace(match):
        name = match.group(1) or match.group(2)
        if name not in SUBSTITUTIONS:
            problems.add(where, f"unknown template variable ${name}")
            return match.group(0)
        return SUBSTITUTIONS[name]

    return VARIABLE.sub(replace, expr)


def flatten(panels):
    """Panels in order, with the panels of collapsed rows after their row."""
    for panel in panels:
        yield panel
        if panel.get("type") == "row":
            yield from panel.get("panels") or []


def check_grid(panel, where, problems):
    grid = panel.get("gridPos")
    if not isinstance(grid, dict):
        problems.add(where, "no gridPos")
        return None
    values = {}
    for key in ("h", "w", "x", "y"):
        value = grid.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.add(where, f"gridPos.{key} must be a non-negative integer, not {value!r}")
            return None
        values[key] = value
    if values["w"] < 1 or values["h"] < 1 or values["x"] + values["w"] > 24:
        problems.add(where, f"gridPos {grid} does not fit the 24 columns")
        return None
    return values


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_datasource(thing, where, problems):
    source = thing.get("datasource")
    if not isinstance(source, dict) or source.get("uid") != DATASOURCE_UID:
        problems.add(where, f"datasource must be {{\"uid\": \"{DATASOURCE_UID}\"}}, not {source!r}")


def check_expr(expr, where, problems):
    """The expression's own rules: every listwire selector filters on $instance, every range
    is $__rate_interval, histogram_quantile goes over buckets summed by le."""
    selectors = SELECTOR.findall(expr)
    if not selectors:
        problems.add(where, "uses no listwire_ or process_ metric")
    for metric, matchers in selectors:
        if 'instance=~"$instance"' not in matchers:
            problems.add(where, f'{metric} is not filtered by instance=~"$instance"')
    for window in RANGE.findall(expr):
        if window != "$__rate_interval":
            problems.add(where, f"range [{window}] instead of [$__rate_interval]")
    if "histogram_quantile" in expr:
        if "_bucket{" not in expr:
            problems.add(where, "histogram_quantile over no _bucket series")
        for by in re.findall(r"by \(([^)]*)\)", expr):
            if "le" not in [label.strip() for label in by.split(",")]:
                problems.add(where, f"histogram_quantile summed by ({by}) without le")


def check_dashboard(path, problems):
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.add(str(path), f"not readable JSON: {error}")
        return []
    where = path.name
    for key, want in (("uid", UID), ("title", TITLE), ("schemaVersion", SCHEMA_VERSION)):
        if dashboard.get(key) != want:
            problems.add(where, f"{key} must be {want!r}, not {dashboard.get(key)!r}")

    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    instance = variables.get("instance")
    if instance is None:
        problems.add(where, "no template variable `instance`")
    else:
        check_datasource(instance, f"{where}: variable instance", problems)
        query = instance.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if instance.get("type") != "query" or query != INSTANCE_QUERY:
            problems.add(where, f"variable instance must be the query {INSTANCE_QUERY!r}")

    panels = list(flatten(dashboard.get("panels") or []))
    if not panels:
        problems.add(where, "no panels")
        return []

    ids = {}
    grids = []
    layout = []  # (row title, [panel titles]) in the order of the file
    exprs = []  # (panel id, refId, title, expr) for the rules file
    for panel in panels:
        title = panel.get("title", "")
        pid = panel.get("id")
        label = f"{where}: panel {pid} {title!r}"
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.add(label, "id must be an integer")
        elif pid in ids:
            problems.add(label, f"id {pid} is also panel {ids[pid]!r}")
        else:
            ids[pid] = title
        grid = check_grid(panel, label, problems)
        if grid is not None:
            for other_label, other in grids:
                if overlaps(grid, other):
                    problems.add(label, f"overlaps {other_label}")
            # The file's order is the order on the screen: top to bottom, left to right.
            if grids and (grids[-1][1]["y"], grids[-1][1]["x"]) > (grid["y"], grid["x"]):
                problems.add(label, "comes before the previous panel on the screen")
            grids.append((label, grid))

        if panel.get("type") == "row":
            layout.append((title, []))
            if grid is not None and (grid["w"] != 24 or grid["x"] != 0):
                problems.add(label, "a row spans the 24 columns")
            continue
        if not layout:
            problems.add(label, "is above the first row")
            layout.append(("", []))
        layout[-1][1].append(title)
        if panel.get("type") not in PANEL_TYPES:
            problems.add(label, f"type {panel.get('type')!r} is none of {sorted(PANEL_TYPES)}")
        check_datasource(panel, label, problems)
        targets = panel.get("targets") or []
        if not targets:
            problems.add(label, "no targets")
        refs = set()
        for target in targets:
            ref = target.get("refId")
            tlabel = f"{label} target {ref}"
            if not isinstance(ref, str) or not re.fullmatch(r"[A-Za-z0-9_]+", ref) or ref in refs:
                problems.add(tlabel, "refId must be unique in the panel, letters and digits")
            refs.add(ref)
            check_datasource(target, tlabel, problems)
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.add(tlabel, "no expr")
                continue
            check_expr(expr, tlabel, problems)
            exprs.append((pid, ref, title, substitute(expr, tlabel, problems)))
        if "p50 / p99 / p999" in title:
            got = [(t.get("expr", ""), t.get("legendFormat")) for t in targets]
            for index, (quantile, legend) in enumerate(PERCENTILES):
                if index >= len(got) or got[index][1] != legend or \
                        not got[index][0].startswith(f"histogram_quantile({quantile},"):
                    problems.add(label, f"target {index + 1} must be histogram_quantile({quantile}, …) "
                                 f"with legend {legend}")

    if layout != ROWS:
        problems.add(where, "rows and panel titles differ from the spec:\n  want "
                     + json.dumps(ROWS, ensure_ascii=False) + "\n  got  "
                     + json.dumps(layout, ensure_ascii=False))
    return exprs


def check_provisioning(problems):
    """The provisioning files are YAML; with no YAML parser in the standard library they are
    checked for the lines that matter."""
    checks = [
        (OPS / "grafana/provisioning/datasources/prometheus.yml",
         [r"^apiVersion: 1$", r"^\s+type: prometheus$", rf"^\s+uid: {DATASOURCE_UID}$",
          r"^\s+url: http://prometheus:9090$"]),
        (OPS / "grafana/provisioning/dashboards/listwire.yml",
         [r"^apiVersion: 1$", r"^\s+type: file$", rf"^\s+path: {re.escape(DASHBOARDS_DIR)}$"]),
    ]
    for path, patterns in checks:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            problems.add(str(path), f"not readable: {error}")
            continue
        if "\t" in text:
            problems.add(path.name, "has a tab (YAML indents with spaces)")
        for pattern in patterns:
            if not re.search(pattern, text, re.MULTILINE):
                problems.add(str(path.relative_to(OPS.parent)), f"has no line matching {pattern}")


def write_rules(exprs, path):
    lines = [
        "# Written by ops/check-dashboard.py: every expression of the dashboard, for",
        "# `promtool check rules`. Not for loading into Prometheus.",
        "groups:",
        "  - name: dashboard-expressions",
        "    rules:",
    ]
    for pid, ref, title, expr in exprs:
        lines.append(f"      # panel {pid}: {title}")
        lines.append(f"      - record: dashboard:panel_{pid}_{ref}:expr")
        # A JSON string is a YAML double-quoted scalar.
        lines.append(f"        expr: {json.dumps(expr)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv):
    args = list(argv)
    rules_out = None
    if args[:1] == ["--rules-out"] and len(args) >= 2:
        rules_out = Path(args[1])
        args = args[2:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    dashboard = Path(args[0]) if args else OPS / "grafana/dashboards/listwire.json"

    problems = Problems()
    exprs = check_dashboard(dashboard, problems)
    check_provisioning(problems)
    if problems.found:
        for problem in problems.found:
            print(f"check-dashboard: {problem}", file=sys.stderr)
        return 1
    if rules_out is not None:
        write_rules(exprs, rules_out)
    panels = sum(len(titles) for _, titles in ROWS)
    print(f"  SUCCESS: {dashboard.name}: {len(ROWS)} rows, {panels} panels, {len(exprs)} expressions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
