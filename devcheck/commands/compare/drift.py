"""Drift: facts that should be equal across a fleet and are not. A node's facts (driver, CUDA driver and
runtime, CuPy, NumPy, BLAS, GPU count, CUDA_VISIBLE_DEVICES) are compared across nodes; a GPU's facts
(ECC, persistence, MIG and compute modes, PCIe link generation and width at most, VBIOS and
application clocks where reported) across the GPUs of one model. For each fact that differs: the
majority value and who differs from it. A node whose reports do not say a fact is not counted for it
(a `check` report has no NumPy version; feed `env` reports too for those)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from devcheck.commands.compare.summary import Node, model_of


def _row(fact: str, model: str, values: list[tuple[str, str, Any]]) -> dict | None:
    """One drift row, or None when every value is the same. values: (host, device, value)."""
    counts = Counter(v for _, _, v in values)
    if len(counts) < 2:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    majority, agree = ranked[0]
    differing = [
        {"host": host, "device": device, "value": _plain(value)} for host, device, value in values if value != majority
    ]
    return {
        "fact": fact,
        "model": model,
        "majority": _plain(majority),
        "agree": agree,
        "tie": len(ranked) > 1 and ranked[1][1] == agree,
        "differing": differing,
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def drift(hosts: dict[str, Node]) -> list[dict]:
    """Every fact that differs, host facts first, then GPU facts per model, in name order."""
    host_values: dict[str, list] = {}
    gpu_values: dict[tuple[str, str], list] = {}
    for host, node in hosts.items():
        for fact, value in node.facts.items():
            host_values.setdefault(fact, []).append((host, "", value))
        for device, facts in node.gpu_facts.items():
            model = model_of(node, device)
            for fact, value in facts.items():
                gpu_values.setdefault((model, fact), []).append((host, device, value))
    rows = [_row(fact, "", values) for fact, values in sorted(host_values.items())]
    rows += [_row(fact, model, values) for (model, fact), values in sorted(gpu_values.items())]
    return [r for r in rows if r is not None]


def describe(row: dict, limit: int = 5) -> str:
    """`pcie_width (NVIDIA H100 80GB HBM3): 31 have 16; node-07 cuda:3 has 8`."""
    who = [f"{d['host']}{' ' + d['device'] if d['device'] else ''} has {_show(d['value'])}" for d in row["differing"]]
    more = f" and {len(who) - limit} more" if len(who) > limit else ""
    model = f" ({row['model']})" if row["model"] else ""
    tie = " (a tie: no majority)" if row["tie"] else ""
    return f"{row['fact']}{model}: {row['agree']} have {_show(row['majority'])}{tie}; {', '.join(who[:limit])}{more}"


def _show(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
