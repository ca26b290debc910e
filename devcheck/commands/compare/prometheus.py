"""`--prometheus FILE`: the comparison in Prometheus' text exposition format (version 0.0.4), for
node-exporter's textfile collector (write it into its --collector.textfile.directory as *.prom; it is
written atomically, so the collector never reads half a file). Every family has its HELP and TYPE
lines and all its samples together; label values are escaped (backslash, double quote, newline)."""

from __future__ import annotations

import math

from devcheck.commands.compare.model import Comparison
from devcheck.commands.compare.outliers import RATES


def escape(value: object) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: object) -> str:
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in pairs.items()) + "}"


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _family(name: str, help_text: str, samples: list[str]) -> list[str]:
    """A family's HELP and TYPE lines and its samples (each a label set and value, or " value")."""
    if not samples:
        return []
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *(name + s for s in samples)]


def text(c: Comparison) -> str:
    rates, numbers, outliers, medians = [], [], [], []
    for g in c.groups:
        flagged = set(g.outliers())
        target = rates if g.unit in RATES else numbers
        group_labels = dict(model=g.model, case=g.measure, dtype=g.dtype, shape=g.shape, unit=g.unit)
        medians.append(labels(**group_labels) + " " + number(g.median))
        for i, (host, device, value) in enumerate(zip(g.hosts, g.devices, g.values)):
            sample = labels(host=host, device=device, **group_labels)
            target.append(sample + " " + number(value))
            if g.judged:
                outliers.append(sample + (" 1" if i in flagged else " 0"))
    drift = [
        labels(fact=row["fact"], model=row["model"], host=d["host"], device=d["device"], value=d["value"],
               majority=row["majority"]) + " 1"
        for row in c.drift
        for d in row["differing"]
    ]  # fmt: skip
    failed = [labels(host=host, check=check) + " 1" for host, node in c.hosts.items() for check in node.failed]
    families = [
        ("devcheck_rate", "A measured rate from a devcheck report (its unit in a label).", rates),
        ("devcheck_gpu_number", "A GPU's number from its report (power limit, clocks, memory).", numbers),
        ("devcheck_outlier", "1 when the value is an outlier among comparable devices (median/MAD).", outliers),
        ("devcheck_fleet_median", "The fleet's median of a measure: the baseline.", medians),
        ("devcheck_drift", "1 for a node (or GPU) whose fact differs from the fleet's majority.", drift),
        ("devcheck_check_failed", "1 for each failed check in a node's own report.", failed),
        ("devcheck_compare_nodes", "Nodes compared.", [f" {len(c.hosts)}"]),
        (
            "devcheck_compare_groups_judged",
            "Measure groups of 3 or more devices, judged for outliers (0: nothing comparable).",
            [f" {sum(g.judged for g in c.groups)}"],
        ),
        ("devcheck_compare_inputs_skipped", "Inputs that were not devcheck reports.", [f" {len(c.bad)}"]),
    ]
    lines = [line for name, help_text, samples in families for line in _family(name, help_text, samples)]
    return "\n".join(lines) + "\n"
