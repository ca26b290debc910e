"""Synthetic fleets for `devcheck compare`, built from real reports.

The base is a real `devcheck check --json` (the replayed H100 recording, or this machine): its one GPU
is copied to 8 (own CUDA and NVML index, UUID and bus id, as `tests/recordings.py` two_gpus does),
each node gets its own host name, run id and a small bounded noise on every measured rate (uniform
within +-1%, as runs of one card differ), and a variant changes named values of one node's report:

- slow_gemm: its matmul and stress rates on one GPU at 70% (the 30% slower GEMM of issue 15);
- pcie_x8: one GPU behind a link that carries x8 at most (NVML: width and its maximum 8);
- driver: another driver version (550.127.05: the driver of public dumps in tests/fixtures/recordings/public);
- gpu_missing: its last GPU gone (NVML counts one fewer, no records for it);
- truncated: the report cut in half (a node killed while writing).

No hardware value is invented: each is a real report's value, scaled or copied.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

OTHER_DRIVER = "550.127.05"
NOISE = 0.01


def _value(fields: dict, name: str, value: object) -> None:
    fields[name] = {**fields[name], "value": value}


def spread(base: dict, gpus: int = 8) -> dict:
    """The report with its one GPU (cuda:0) copied to `gpus` GPUs."""
    doc = json.loads(json.dumps(base))
    data = doc["data"]
    first = data["gpus"][0]
    data["gpus"] = []
    for k in range(gpus):
        fields = json.loads(json.dumps(first))
        _value(fields, "cuda_index", k)
        _value(fields, "nvml_index", k)
        _value(fields, "uuid", f"GPU-5e1f0c2a-0000-4000-8000-{k + 1:012d}")
        _value(fields, "pci_bus_id", f"0000:{k:02x}:06.0")
        data["gpus"].append(fields)
    data["driver"]["gpus"]["value"] = gpus
    for key in ("records", "stress") if "records" in data else ():  # a check report's; env has none
        rows = [r for r in data[key] if r["device"] != "cuda:0"]
        for k in range(gpus):
            rows += [{**r, "device": f"cuda:{k}"} for r in data[key] if r["device"] == "cuda:0"]
        data[key] = rows
    return doc


def node(base_text: str, host: str, rng: random.Random) -> dict:
    """One node's report: the base with its own host, run id and +-1% noise on every rate."""
    doc = json.loads(base_text)
    doc["host"] = host
    doc["run_id"] = f"20261128T141502Z-{rng.getrandbits(32):08x}"
    for r in doc["data"]["records"]:
        r["rate"] *= 1 + rng.uniform(-NOISE, NOISE)
    for s in doc["data"]["stress"]:
        s["sustained_gflops"] *= 1 + rng.uniform(-NOISE, NOISE)
    return doc


def slow_gemm(doc: dict, device: str = "cuda:3") -> dict:
    for r in doc["data"]["records"]:
        if r["device"] == device and r["case"] == "matmul":
            r["rate"] *= 0.7
    for s in doc["data"]["stress"]:
        if s["device"] == device:
            s["sustained_gflops"] *= 0.7
    return doc


def pcie_x8(doc: dict, device: str = "cuda:5") -> dict:
    """A GPU behind a riser or in a slot that carries x8 only: NVML's maximum for the link says 8."""
    gpu = next(g for g in doc["data"]["gpus"] if f"cuda:{g['cuda_index']['value']}" == device)
    _value(gpu, "pcie_width", 8)
    _value(gpu, "pcie_width_max", 8)
    return doc


def driver(doc: dict) -> dict:
    _value(doc["data"]["driver"], "driver", OTHER_DRIVER)
    return doc


def gpu_missing(doc: dict) -> dict:
    data = doc["data"]
    gone = f"cuda:{data['gpus'][-1]['cuda_index']['value']}"
    data["gpus"].pop()
    data["driver"]["gpus"]["value"] -= 1
    data["records"] = [r for r in data["records"] if r["device"] != gone]
    data["stress"] = [s for s in data["stress"] if s["device"] != gone]
    return doc


VARIANTS: dict[str, Callable[[dict], dict]] = {
    "slow_gemm": slow_gemm,
    "pcie_x8": pcie_x8,
    "driver": driver,
    "gpu_missing": gpu_missing,
}


KINDS = (*VARIANTS, "truncated")


def fleet(
    base: dict, size: int, kinds: tuple[str, ...] = KINDS, seed: int = 0, indent: int | None = 2
) -> dict[str, str]:
    """host -> report text for `size` nodes of 8 GPUs, `kinds` on as many hosts of a shuffled order
    (which host is which: `odd_hosts`); reports printed as `--json` prints them (indent 2)."""
    rng = random.Random(seed)
    base_text = json.dumps(spread(base))
    chosen = odd_hosts(size, kinds, seed)
    out = {}
    for i in range(size):
        host = f"node-{i:04d}"
        doc = node(base_text, host, rng)
        kind = chosen.get(host)
        if kind in VARIANTS:
            doc = VARIANTS[kind](doc)
        text = json.dumps(doc, indent=indent) + "\n"
        out[host] = text[: len(text) // 2] if kind == "truncated" else text
    return out


def odd_hosts(size: int, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> dict[str, str]:
    """host -> variant for the odd hosts of a fleet."""
    hosts = [f"node-{i:04d}" for i in range(size)]
    random.Random(seed + 1).shuffle(hosts)
    assert len(kinds) <= size
    return dict(zip(hosts, kinds))
