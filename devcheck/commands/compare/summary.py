"""One report reduced to what a fleet comparison reads: its host, the facts that should be equal across
nodes, every measured rate by device and GPU model, and its own failed checks. Reports of one host are
merged (the latest run of each command; the latest value of each fact), so `env` and `check` reports
of the same node add up to one node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Facts of a node that should be equal across a fleet: (name, data section, field).
HOST_FACTS = (
    ("driver", "driver", "driver"),
    ("cuda_driver", "driver", "max_cuda_supported"),
    ("cuda_runtime", "cupy", "cuda_runtime"),
    ("cupy", "cupy", "version"),
    ("numpy", "numpy", "numpy"),
    ("blas", "numpy", "blas_loaded"),
    ("cuda_visible_devices", "visible", "cuda_visible_devices"),
)
# Facts of each GPU that should be equal across GPUs of one model (VBIOS and application clocks when a
# report has them: any field whose name starts with these). The PCIe link at its maximum, not now: an
# idle GPU slows and narrows it to save power (8 of the 15 public text dumps read gen 1 at P8, the L4's
# x8 of x16), so a fleet half busy would show drift; a link short under load is check's failure.
GPU_FACTS = (
    "ecc_mode",
    "persistence_mode",
    "mig_mode",
    "compute_mode",
    "pcie_generation_max",
    "pcie_width_max",
)
GPU_FACT_PREFIXES = ("vbios", "applications_clock", "application_clock")
# Numbers of each GPU compared like measured rates (a power limit lowered on one node is an outlier).
GPU_NUMBERS = {
    "power_limit_w": "W",
    "sm_clock_max_mhz": "MHz",
    "memory_clock_max_mhz": "MHz",
    "memory_total_mib": "MiB",
}


@dataclass
class Node:
    """One host, from one or more of its reports."""

    host: str
    run_id: str
    command: str
    where: str
    facts: dict[str, Any] = field(default_factory=dict)  # host facts, and "gpu_count"
    gpu_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> fact -> value
    models: dict[str, str] = field(default_factory=dict)  # device -> GPU model (or CPU label)
    # (device, measure, dtype, shape, unit) -> (value, peak or None)
    measures: dict[tuple[str, str, str, str, str], tuple[float, float | None]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # check id -> summary
    commands: list[str] = field(default_factory=list)


def _ok(fields: Any, name: str) -> Any:
    """A field's value when it was read (status ok), else None."""
    f = fields.get(name) if isinstance(fields, dict) else None
    return f.get("value") if isinstance(f, dict) and f.get("status") == "ok" else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) != float("inf"):
        return float(value)
    return None


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def read(where: str, doc: dict) -> Node:
    """The node's summary; a report whose data is not shaped as devcheck writes it raises TypeError,
    KeyError, ValueError or AttributeError, which the caller turns into a skipped input."""
    data = doc["data"]
    node = Node(doc["host"], str(doc.get("run_id", "")), str(doc.get("command", "")), where)
    node.commands.append(node.command)
    for name, section, key in HOST_FACTS:
        value = _ok(data.get(section), key)
        if value is not None:
            node.facts[name] = _hashable(value)
    _gpus(node, data)
    _models(node, data)
    _records(node, data)
    for c in doc["checks"]:
        if c.get("status") in ("fail", "error"):
            node.failed[str(c["id"])] = str(c.get("summary", ""))
    if doc.get("interrupted"):
        node.failed["interrupted"] = f"the {node.command} run was interrupted"
    return node


def _device(fields: dict) -> str:
    index = _ok(fields, "cuda_index")
    if isinstance(index, int):
        return f"cuda:{index}"
    f = fields.get("nvml_index", {})
    return f"gpu{f.get('value') if isinstance(f, dict) else '?'}"


def _gpus(node: Node, data: dict) -> None:
    """GPU count (NVML's; 0 when NVML found no driver) and each GPU's facts and numbers."""
    driver = data.get("driver")
    if isinstance(driver, dict):
        count = _ok(driver, "gpus")
        node.facts["gpu_count"] = count if isinstance(count, int) else 0
    for fields in data.get("gpus") or []:
        device = _device(fields)
        name = (fields.get("name") or {}).get("value")
        model = str(name) if name else "unknown GPU"
        node.models[device] = model
        facts = {k: _hashable(_ok(fields, k)) for k in fields if k in GPU_FACTS or k.startswith(GPU_FACT_PREFIXES)}
        node.gpu_facts[device] = {k: v for k, v in facts.items() if v is not None}
        for key, unit in GPU_NUMBERS.items():
            value = _number(_ok(fields, key))
            if value is not None:
                node.measures[(device, key, "", "", unit)] = (value, None)


def _models(node: Node, data: dict) -> None:
    """Device labels from bench's device table and env's CUDA devices, where the GPU list said nothing."""
    for row in data.get("devices") or []:
        node.models.setdefault(str(row["device"]), str(row.get("what") or row["device"]))
    for row in data.get("cuda_devices") or []:
        if isinstance(row.get("cuda_index"), int) and row.get("name"):
            node.models.setdefault(f"cuda:{row['cuda_index']}", str(row["name"]))


def _records(node: Node, data: dict) -> None:
    """Measured rates (bench and check records) and check's sustained stress rate, per device."""
    for r in data.get("records") or []:
        rate = _number(r.get("rate"))
        if rate is None:
            continue
        peak = r.get("peak")
        shape = "x".join(str(int(n)) for n in r["shape"])
        node.measures[(str(r["device"]), str(r["case"]), str(r["dtype"]), shape, str(r["unit"]))] = (
            rate,
            _number(peak.get("value")) if isinstance(peak, dict) else None,
        )
    for s in data.get("stress") or []:
        rate = _number(s.get("sustained_gflops"))
        if rate is not None:
            n = int(s.get("n") or 0)
            node.measures[(str(s["device"]), "stress sustained", "float32", f"{n}x{n}x{n}", "GFLOP/s")] = (rate, None)


def model_of(node: Node, device: str) -> str:
    if device in node.models:
        return node.models[device]
    return "cpu" if device == "cpu" else "unknown GPU"


def merge(nodes: list[Node]) -> tuple[dict[str, Node], list[Node]]:
    """One Node per host: the latest report of each command (by run id, which starts with its UTC time)
    is kept, the earlier ones are returned apart (superseded); kept reports add up, later over earlier."""
    latest: dict[tuple[str, str], Node] = {}
    superseded = []
    for node in sorted(nodes, key=lambda n: n.run_id):
        old = latest.get((node.host, node.command))
        if old is not None:
            superseded.append(old)
        latest[(node.host, node.command)] = node
    hosts: dict[str, Node] = {}
    for node in sorted(latest.values(), key=lambda n: n.run_id):
        into = hosts.get(node.host)
        if into is None:
            hosts[node.host] = node
            continue
        into.facts.update(node.facts)
        for device, facts in node.gpu_facts.items():
            into.gpu_facts.setdefault(device, {}).update(facts)
        into.models.update(node.models)
        into.measures.update(node.measures)
        into.failed.update(node.failed)  # check repeats env's checks: one id is one finding
        into.commands.append(node.command)
        into.where = f"{into.where}, {node.where}"
    return dict(sorted(hosts.items())), superseded
