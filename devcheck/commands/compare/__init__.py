"""`devcheck compare REPORT...`: many nodes' reports side by side, and which node is not like the others.

Reports of `devcheck env|bench|check --json` (files, folders, globs, `-` for stdin) are reduced one at a
time (load, summary), comparable measures are judged against the fleet's own median (outliers), facts
that should be equal are compared (drift), and every node's own failed checks are collected. devcheck
does not run anything on the nodes: the cluster's own tools do (docs/fleet.md).

`--fail-on` picks what fails the run (exit 1); by default a node's own failed check and a floor set with
`--thresholds`: those are judgements already made, while an outlier or a drift is a finding for a
person (a rolling driver upgrade drifts on purpose), shown as a warning unless asked for."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcheck.commands.compare import load, output, summary
from devcheck.commands.compare.drift import drift
from devcheck.commands.compare.model import Comparison
from devcheck.commands.compare.outliers import (
    MAD_FLOOR,
    MAD_SCALE,
    MIN_GROUP,
    RULE,
    Z_LIMIT,
    below_floors,
    groups,
    other_shapes,
)
from devcheck.errors import BadInput
from devcheck.report import Progress, Report, Section, no_progress

CATEGORIES = ("outlier", "drift", "failed-check", "floor")
DEFAULT_FAIL_ON = ("failed-check", "floor")


@dataclass(frozen=True)
class Settings:
    inputs: tuple[str, ...]
    fail_on: tuple[str, ...] = DEFAULT_FAIL_ON
    thresholds: Any = None  # check's Thresholds, or None
    prometheus: Path | None = None
    strict: bool = False


def gather(inputs: tuple[str, ...]) -> tuple[list[summary.Node], list[load.Bad], int]:
    """Every report of every input, reduced as it is read; what is not a report, named."""
    nodes, bad, noise = [], [], load.Noise()
    for source in load.expand(inputs):
        if isinstance(source, load.Bad):
            bad.append(source)
            continue
        for item in load.documents(source, noise):
            if isinstance(item, load.Bad):
                bad.append(item)
                continue
            where, doc = item
            try:
                nodes.append(summary.read(where, doc))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:  # int(1e400) too
                bad.append(load.Bad(where, f"its data is not as devcheck writes it ({type(e).__name__}: {e})"))
    return nodes, bad, noise.lines


def compare(settings: Settings, progress: Progress = no_progress) -> Comparison:
    if "-" in settings.inputs and (sys.stdin is None or sys.stdin.isatty()):
        raise BadInput("compare -: stdin is " + ("closed" if sys.stdin is None else "a terminal") + "; pipe reports in")
    progress("reading reports")
    nodes, bad, noise = gather(settings.inputs)
    if bad and settings.strict:
        raise BadInput(f"{bad[0].where}: {bad[0].why} (--strict: every input must be a devcheck report)")
    if not nodes:
        first = f" ({bad[0].where}: {bad[0].why})" if bad else ""
        raise BadInput(f"no devcheck report to compare: {len(bad)} input(s) skipped{first}")
    hosts, superseded = summary.merge(nodes)
    progress("comparing")
    found = groups(hosts)
    floors = below_floors(found, settings.thresholds) if settings.thresholds is not None else []
    return Comparison(hosts, found, drift(hosts), floors, bad, superseded, noise, settings.fail_on)


def run(settings: Settings, progress: Progress = no_progress) -> Report:
    c = compare(settings, progress)
    report = build(c)
    if settings.prometheus is not None:
        from devcheck.commands.compare.prometheus import text
        from devcheck.files import write_atomic

        write_atomic(settings.prometheus, text(c))
    return report


def build(c: Comparison) -> Report:
    outliers = output.outlier_rows(c.groups)
    report = Report("compare")
    report.checks = [*output.input_checks(c), *output.finding_checks(c, outliers), *output.quiet_checks(c, outliers)]
    nodes = _node_rows(c, outliers)
    grid, grid_caption = output.grid_rows(c.groups)
    sections = [
        Section("grid", "Nodes x measures, % of the fleet median (odd: an outlier there)", rows=grid,
                caption=grid_caption),
        Section("groups", "Fleet baseline per measure (median of comparable devices)", rows=output.group_rows(c.groups),
                caption=RULE),
        Section("outliers", "Outliers", rows=outliers),
        Section("below_floor", "Under a --thresholds floor", rows=c.floors),
        Section("drift", "Drift: facts that differ between nodes", rows=c.drift),
        Section("nodes", "Nodes with something to report", rows=nodes,
                caption=f"{len(c.hosts) - len(nodes)} of {len(c.hosts)} nodes have nothing to report"),
        Section("skipped", "Inputs skipped", rows=[{"input": b.where, "why": b.why} for b in c.bad]),
    ]  # fmt: skip
    report.sections = sections
    report.data.update(
        nodes_compared=len(c.hosts),
        gpus_compared=sum(len(n.gpu_facts) for n in c.hosts.values()),
        inputs_skipped=len(c.bad),
        fail_on=list(c.fail_on),
        rule={"statistic": "median and MAD", "mad_scale": MAD_SCALE, "mad_floor_of_median": MAD_FLOOR,
              "z_limit": Z_LIMIT, "min_group": MIN_GROUP, "text": RULE},
    )  # fmt: skip
    report.verdict = _verdict(c, outliers, report.data["gpus_compared"])
    return report


def _node_rows(c: Comparison, outliers: list[dict]) -> list[dict]:
    per_host: dict[str, dict] = {}

    def row(host: str) -> dict:
        node = c.hosts[host]
        gpus = node.facts.get("gpu_count", len(node.gpu_facts))
        return per_host.setdefault(
            host, {"host": host, "reports": node.commands, "gpus": gpus, "outliers": 0, "below floor": 0,
                   "drift": [], "failed checks": list(node.failed)}
        )  # fmt: skip

    for r in outliers:
        row(r["host"])["outliers"] += 1
    for r in c.floors:
        row(r["host"])["below floor"] += 1
    for d in c.drift:
        for who in d["differing"]:
            facts = row(who["host"])["drift"]
            if d["fact"] not in facts:
                facts.append(d["fact"])
    for host, node in c.hosts.items():
        if node.failed:
            row(host)
    return [per_host[h] for h in sorted(per_host)]


def _verdict(c: Comparison, outliers: list[dict], gpus: int) -> str:
    fleet = f"{len(c.hosts)} node(s), {gpus} GPU(s)"
    said = []
    if outliers:
        said.append(f"{len(outliers)} outlier(s) on {output.names(r['host'] for r in outliers)}")
    if c.floors:
        said.append(f"under a floor on {output.names(r['host'] for r in c.floors)}")
    if c.drift:
        who = output.names(d["host"] for row in c.drift for d in row["differing"])
        said.append(f"drift in {output.names(row['fact'] for row in c.drift)} ({who})")
    failed = [h for h, n in c.hosts.items() if n.failed]
    if failed:
        said.append(f"failed checks on {output.names(failed)}")
    skipped = f"; {len(c.bad)} input(s) skipped" if c.bad else ""
    if output.nothing_comparable(c):
        said.insert(0, "nothing comparable: no measure judged")
    other = [r["host"] for r in other_shapes(c.groups)]
    if other:
        said.append(f"measured at another shape than their peers, not judged: {output.names(other)}")
    if not said:
        return f"compare: {fleet} alike: no outlier, no drift, no failed check{skipped}"
    return f"compare: {fleet}: " + "; ".join(said) + skipped
