"""A comparison as a Report: sections of rows with raw numbers (the fleet's baseline per measure, the
outliers, the drift, the nodes with something to report, the inputs skipped), one check per finding,
and a one-line verdict naming the odd nodes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from devcheck.commands.compare.drift import describe
from devcheck.commands.compare.model import Comparison
from devcheck.commands.compare.outliers import MIN_GROUP, RATES, Z_LIMIT, Group, direction, other_shapes
from devcheck.report import Check, Status, snake


def check_id(*parts: str) -> str:
    return ".".join(re.sub(r"[^A-Za-z0-9_.:-]+", "_", p).strip("_") or "_" for p in parts)


def names(items: Iterable[str], limit: int = 5) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def group_rows(groups: list[Group]) -> list[dict]:
    rows = []
    for g in groups:
        rows.append(
            {"model": g.model, "measure": g.measure, "dtype": g.dtype, "shape": g.shape,
             "unit": g.unit, "devices": len(g.values), "nodes": len(set(g.hosts)), "median": g.median, "MAD": g.mad,
             "low": min(g.values), "high": max(g.values), "outliers": len(g.outliers()), "judged": g.judged}
        )  # fmt: skip
    return rows


GRID_ALL_NODES = 64  # a larger fleet's grid shows only the nodes with an outlier


def grid_rows(groups: list[Group]) -> tuple[list[dict], str]:
    """Nodes x rate measures: each cell the node's device farthest from the fleet median (largest |z|),
    in % of that median; `odd` names (by JSON key) the columns where the node has an outlier."""
    rated = [g for g in groups if g.judged and g.unit in RATES]
    models = {g.model for g in rated}
    short = [" ".join(p for p in (g.measure, g.dtype) if p) for g in rated]
    columns = [
        (f"{g.model} " if len(models) > 1 else "") + (s if short.count(s) == 1 else g.label())
        for g, s in zip(rated, short)
    ]
    cells: dict[str, dict] = {}
    odd: dict[str, list[str]] = {}
    for g, column in zip(rated, columns):
        farthest: dict[str, int] = {}
        for i, host in enumerate(g.hosts):
            if host not in farthest or abs(g.z[i]) > abs(g.z[farthest[host]]):
                farthest[host] = i
        for host, i in farthest.items():
            cells.setdefault(host, {})[column] = 100 * g.values[i] / g.median if g.median else None
            if abs(g.z[i]) > Z_LIMIT:
                odd.setdefault(host, []).append(snake(column))  # the column's JSON key
    hosts = sorted(cells) if len(cells) <= GRID_ALL_NODES else sorted(odd)
    rows = [{"host": h, **{c: cells[h].get(c) for c in columns}, "odd": odd.get(h, [])} for h in hosts]
    shown = "" if len(hosts) == len(cells) else f"; {len(hosts)} of {len(cells)} nodes shown: those with an outlier"
    return rows, f"each cell: the node's device farthest from the fleet median, in % of it (100 = the median){shown}"


def outlier_rows(groups: list[Group]) -> list[dict]:
    rows = []
    for g in groups:
        for i in g.outliers():
            value, z = g.values[i], float(g.z[i])
            rows.append(
                {"host": g.hosts[i], "device": g.devices[i], "model": g.model, "measure": g.measure, "dtype": g.dtype,
                 "shape": g.shape, "unit": g.unit, "value": value, "median": g.median,
                 "% of median": 100 * value / g.median if g.median else None, "z": z}
            )  # fmt: skip
    return sorted(rows, key=lambda r: (r["host"], r["device"], r["measure"], r["dtype"], r["shape"]))


def nothing_comparable(c: Comparison) -> bool:
    """A fleet of MIN_GROUP or more nodes in which no group could be judged: "no outlier" would be said
    of nothing (reports of other sizes, commands or versions), which is not "alike"."""
    return len(c.hosts) >= MIN_GROUP and not any(g.judged for g in c.groups)


def _status(category: str, fail_on: tuple[str, ...]) -> Status:
    return Status.FAIL if category in fail_on else Status.WARN


def finding_checks(c: Comparison, outliers: list[dict]) -> list[Check]:
    """One check per outlier, floor breach, drifting fact and failed check of a node's own report."""
    checks = []
    for r in outliers:
        what = " ".join(x for x in (r["measure"], r["dtype"], r["shape"]) if x)
        word = direction(r["unit"], r["z"])
        checks.append(
            Check(
                check_id("compare.outlier", r["host"], r["device"], snake(r["measure"]), r["dtype"], r["shape"]),
                _status("outlier", c.fail_on),
                f"{r['host']} {r['device']} {what}: {r['value']:,.4g} {r['unit']}, {r['% of median']:.0f}% of the "
                f"fleet median {r['median']:,.4g} ({word}, z {r['z']:+.1f})",
                detail=f"{r['model']}; flagged when |z| > {Z_LIMIT} (median and MAD of comparable devices)",
                fix="compare this node with its peers: `devcheck env` on it, then `devcheck check --budget 5m`",
            )
        )
    for r in c.floors:
        checks.append(
            Check(
                check_id("compare.floor", r["host"], r["device"], r["key"]),
                _status("floor", c.fail_on),
                f"{r['host']} {r['device']} {r['key']}: {r['fraction_of_peak']:.0%} of its peak, under the floor "
                f"{r['floor']:.0%} (--thresholds)",
                detail=f"{r['model']}: {r['value']:,.4g} of {r['peak']:,.4g} {r['unit']}",
            )
        )
    for row in c.drift:
        checks.append(
            Check(
                check_id("compare.drift", row["fact"], *([snake(row["model"])] if row["model"] else [])),
                _status("drift", c.fail_on),
                describe(row),
                fix="make the nodes alike (the same driver, packages and GPU settings), or compare them apart",
            )
        )
    for host, node in c.hosts.items():
        for failed, summary in node.failed.items():
            checks.append(
                Check(check_id("compare.failed", host, failed), _status("failed-check", c.fail_on),
                      f"{host}: {failed} failed: {summary}", detail=f"from {node.where}")
            )  # fmt: skip
    return checks


def quiet_checks(c: Comparison, outliers: list[dict]) -> list[Check]:
    """An ok check for each kind of finding there was none of; what was set aside, said."""
    judged = [g for g in c.groups if g.judged]
    checks = []
    if nothing_comparable(c):
        checks.append(
            Check(
                "compare.outliers",
                _status("outlier", c.fail_on),
                f"nothing comparable: no measure of {MIN_GROUP} or more devices alike in model, measure, dtype "
                f"and shape among {len(c.hosts)} nodes, so no outlier could be judged",
                detail=f"{len(c.groups)} group(s), each of fewer than {MIN_GROUP} devices (compare.small_groups)",
                fix="compare reports of one command run alike on every node (`devcheck check` of one version and "
                "--budget), or nodes of one GPU model",
            )
        )
    elif not outliers:
        checks.append(Check("compare.outliers", Status.OK, f"no outlier among {len(judged)} judged measure groups"))
    checks += other_shape_checks(c)
    if not c.drift:
        checks.append(
            Check("compare.drift", Status.OK, f"no drift: the facts compared are equal on {len(c.hosts)} nodes")
        )
    if not any(node.failed for node in c.hosts.values()):
        checks.append(Check("compare.failed_checks", Status.OK, "no node's own report has a failed check"))
    small = [g for g in c.groups if not g.judged]
    if small:
        checks.append(
            Check(
                "compare.small_groups",
                Status.SKIP,
                f"{len(small)} measure group(s) of fewer than {MIN_GROUP} devices shown, not judged",
                detail="; ".join(f"{g.model} {g.label()} ({len(g.values)})" for g in small[:10]),
            )
        )
    return checks


def other_shape_checks(c: Comparison) -> list[Check]:
    """A node whose measures were left out of its peers' judged groups (another shape) is named, not
    passed as alike: as an outlier would be, a failure where --fail-on names `outlier`."""
    per_host: dict[str, list[dict]] = {}
    for r in other_shapes(c.groups):
        per_host.setdefault(r["host"], []).append(r)
    checks = []
    for host, rows in per_host.items():
        first = rows[0]
        what = " ".join(x for x in (first["measure"], first["dtype"]) if x)
        checks.append(
            Check(
                check_id("compare.other_shape", host),
                _status("outlier", c.fail_on),
                f"{host}: {len(rows)} measure(s) at another shape than its peers', not judged ({first['device']} "
                f"{what} {first['shape']}; the fleet's {', '.join(first['judged_shapes'])})",
                detail="; ".join(f"{r['device']} {r['measure']} {r['dtype']} {r['shape']}" for r in rows[:10]),
                fix="run one devcheck version and --budget on every node: check's sizes follow the GPU model and "
                "the budget",
            )
        )
    return checks


def input_checks(c: Comparison) -> list[Check]:
    checks = [
        Check(check_id("compare.input", bad.where), Status.WARN, f"{bad.where}: skipped: {bad.why}",
              fix="run devcheck on that node again (or leave the file out); --strict makes this an error")
        for bad in c.bad
    ]  # fmt: skip
    if c.superseded:
        checks.append(
            Check(
                "compare.superseded",
                Status.SKIP,
                f"{len(c.superseded)} earlier report(s) of a host and command set aside for its latest",
                detail=names((f"{n.host} {n.command} ({n.where})" for n in c.superseded), 10),
            )
        )
    if c.noise:
        checks.append(Check("compare.noise", Status.SKIP, f"{c.noise} line(s) of other text between reports not read"))
    return checks
