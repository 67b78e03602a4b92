#!/usr/bin/env python3
"""Checks what promtool does not about the alerts (Python 3, standard library only).

    ops/check-alerts.py

ops/prometheus/alerts.yml must hold exactly the metrics spec's alerts, in group `listwire`,
each with a `severity` label (critical or warning) and `summary`, `description` and
`runbook_url` annotations, the URL naming a section of ops/RUNBOOK.md. The unit tests in
ops/prometheus/alerts_test.yml must make each alert fire at least once and check it quiet at
least once. `promtool check rules` and `promtool test rules` (ops/check-ops.sh) check the rest.

With no YAML parser in the standard library, both files are read line by line in the layout
they have (one `- alert:` per rule; `exp_alerts: []` for a quiet check, `exp_alerts:` and a
list for a firing one). Exits 1 listing every problem found.
"""

import re
import sys
from pathlib import Path

PROMETHEUS = Path(__file__).resolve().parent / "prometheus"

ALERTS = [
    "ListwireNodeDown",
    "ListwireAckLatencyHigh",
    "ListwireErrorRatioHigh",
    "ListwireMemberDead",
    "ListwireNoMajority",
    "ListwireStorageErrors",
    "ListwireStaleOwnerRejectionsRising",
    "ListwireSlowConsumerCloses",
    "ListwireDeliveryLatencyHigh",
]
RUNBOOK_SECTIONS = {
    "losing-a-node",
    "losing-storage-availability",
    "a-hot-list",
    "a-flood-of-connections",
    "scale-out",
    "scale-in-drain",
    "rolling-restart-and-upgrade",
}
SEVERITIES = {"critical", "warning"}


def value(line):
    return line.split(":", 1)[1].strip().strip('"').strip("'")


def check_rules(text, problems):
    groups = re.findall(r"^\s+- name: (\S+)$", text, re.MULTILINE)
    if groups != ["listwire"]:
        problems.append(f"alerts.yml: want one group `listwire`, got {groups}")
    blocks = re.split(r"^\s+- alert: ", text, flags=re.MULTILINE)[1:]
    names = [block.split("\n", 1)[0].strip() for block in blocks]
    if sorted(names) != sorted(ALERTS) or len(set(names)) != len(names):
        problems.append(f"alerts.yml: want exactly {ALERTS}, got {names}")
    for name, block in zip(names, blocks):
        lines = block.split("\n")
        keys = {}
        for line in lines:
            match = re.match(r"^\s+(expr|for|severity|summary|description|runbook_url):", line)
            if match:
                keys[match.group(1)] = value(line)
        for key in ("expr", "severity", "summary", "description", "runbook_url"):
            if key not in keys:
                problems.append(f"alerts.yml: {name} has no {key}")
        if keys.get("severity", "critical") not in SEVERITIES:
            problems.append(f"alerts.yml: {name}: severity {keys['severity']!r} is none of {sorted(SEVERITIES)}")
        url = keys.get("runbook_url")
        if url is not None:
            match = re.fullmatch(r"ops/RUNBOOK\.md#([a-z0-9-]+)", url)
            if not match or match.group(1) not in RUNBOOK_SECTIONS:
                problems.append(f"alerts.yml: {name}: runbook_url {url!r} is no section of ops/RUNBOOK.md "
                                f"({', '.join(sorted(RUNBOOK_SECTIONS))})")


def check_tests(text, problems):
    if not re.search(r"^rule_files:\n\s+- alerts\.yml$", text, re.MULTILINE):
        problems.append("alerts_test.yml: rule_files must be [alerts.yml]")
    firing = {name: 0 for name in ALERTS}
    quiet = {name: 0 for name in ALERTS}
    lines = text.split("\n")
    for index, line in enumerate(lines):
        match = re.match(r"^\s+alertname: (\S+)$", line)
        if not match:
            continue
        name = match.group(1)
        if name not in firing:
            problems.append(f"alerts_test.yml:{index + 1}: tests {name}, which alerts.yml does not have")
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        after = lines[index + 2].strip() if index + 2 < len(lines) else ""
        if following == "exp_alerts: []":
            quiet[name] += 1
        elif following == "exp_alerts:" and after.startswith("- exp_labels:"):
            firing[name] += 1
        else:
            problems.append(f"alerts_test.yml:{index + 2}: want `exp_alerts: []` or `exp_alerts:` "
                            "with a list after the alertname")
    for name in ALERTS:
        if not firing[name]:
            problems.append(f"alerts_test.yml: no test makes {name} fire")
        if not quiet[name]:
            problems.append(f"alerts_test.yml: no test checks {name} quiet")
    return sum(firing.values()), sum(quiet.values())


def main():
    problems = []
    try:
        rules = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
        tests = (PROMETHEUS / "alerts_test.yml").read_text(encoding="utf-8")
    except OSError as error:
        print(f"check-alerts: {error}", file=sys.stderr)
        return 1
    check_rules(rules, problems)
    fired, quiet = check_tests(tests, problems)
    if problems:
        for problem in problems:
            print(f"check-alerts: {problem}", file=sys.stderr)
        return 1
    print(f"  SUCCESS: {len(ALERTS)} alerts, each with severity, summary, description and runbook_url; "
          f"{fired} firing and {quiet} quiet checks in alerts_test.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
