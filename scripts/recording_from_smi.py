"""Turn one public `nvidia-smi -q` dump (text or XML) into a devcheck recording: a stand-in for that card.

Regenerate every stand-in in tests/fixtures/recordings/public/ from the dumps in tests/fixtures/public/
(SOURCES.md there says where each comes from):

    python scripts/recording_from_smi.py tests/fixtures/public

or one dump: `python scripts/recording_from_smi.py DUMP OUT.json`.

A stand-in says only what the dump says. Each NVML call devcheck makes (devcheck/machine/probes/nvml.py) is
answered from the line nvidia-smi prints for it; a call the dump shows nothing for is not in the
recording (a replay answers it "not in the recording"). Read as NVML would answer:
- "N/A", "[N/A]", "Not Supported", "[Not Supported]": NVMLError NotSupported; "Unknown Error":
  NVML_ERROR_UNKNOWN; "Requested functionality has been deprecated" (drivers 570+): that is NVML's own
  error string for NVML_ERROR_DEPRECATED (26), so the call raises NVMLError_Deprecated, as nvidia-ml-py
  does for any nonzero return. "[REDACTED]" (a contributor's sanitising): not shown, so absent.
- W -> mW, MiB -> bytes, "16x" -> 16, Enabled/Disabled -> 1/0, Yes/No -> 1/0; brand and architecture
  text -> nvidia-ml-py's NVML_BRAND_* / NVML_DEVICE_ARCH_* constant of that name; the clock-event bitmask
  from the reasons marked Active, under the call the dump's heading names (Event or Throttle).
- Memory: NVML's v1 memory info counts reserved memory as used, so used = Reserved + Used where the
  dump shows Reserved. Power draw: "Power Draw", or on 570+ drivers "Average Power Draw" (what
  nvmlDeviceGetPowerUsage returns on those cards). Power limit: "Current"/"Enforced Power Limit".
- The ECC count devcheck reads (volatile, uncorrected) is the dump's volatile "Double Bit" total, or
  the sum of its volatile "Uncorrectable" lines.
- The GPU count is the number of GPU blocks in the file (the public files keep the first GPU only).
- UUIDs are masked as the recorder masks them; MIG devices become handles gpuN/migK.
- A MIG device: its GPU and compute instance ids, SMs and copy/media engines (nvmlDeviceGetAttributes)
  and memory as shown; NVML's name for it ("NVIDIA A100-SXM4-40GB MIG 3g.20gb"), which nvidia-smi -q
  does not print, from NVIDIA's MIG profile table by its SMs and share of memory; the GPU's 7 MIG slots
  (nvmlDeviceGetMaxMigDeviceCount) from the MIG user guide, the slots the dump does not list NotFound.
Also recorded, for the deprecated fields: display mode, applications clocks, and PCIe "Device Max".
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pynvml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devcheck.machine.replay.recording import MASKED_UUID, Recording, masked_uuid  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "recordings" / "public"
ERRORS = {
    "n/a": pynvml.NVML_ERROR_NOT_SUPPORTED,
    "[n/a]": pynvml.NVML_ERROR_NOT_SUPPORTED,
    "not supported": pynvml.NVML_ERROR_NOT_SUPPORTED,
    "[not supported]": pynvml.NVML_ERROR_NOT_SUPPORTED,
    "unknown error": pynvml.NVML_ERROR_UNKNOWN,
    "requested functionality has been deprecated": pynvml.NVML_ERROR_DEPRECATED,
}
HIDDEN = {"[redacted]", "redacted"}
ARCH_WORDS = {"ada lovelace": "ADA"}
REASONS = {  # the words nvidia-smi prints (text; XML tag suffix) -> nvidia-ml-py's reason name
    "idle": "GpuIdle",
    "gpu_idle": "GpuIdle",
    "applications clocks setting": "ApplicationsClocksSetting",
    "applications_clocks_setting": "ApplicationsClocksSetting",
    "sw power cap": "SwPowerCap",
    "sw_power_cap": "SwPowerCap",
    "hw slowdown": "HwSlowdown",
    "hw_slowdown": "HwSlowdown",
    "hw thermal slowdown": "HwThermalSlowdown",
    "hw_thermal_slowdown": "HwThermalSlowdown",
    "hw power brake slowdown": "HwPowerBrakeSlowdown",
    "hw_power_brake_slowdown": "HwPowerBrakeSlowdown",
    "sync boost": "SyncBoost",
    "sync_boost": "SyncBoost",
    "sw thermal slowdown": "SwThermalSlowdown",
    "sw_thermal_slowdown": "SwThermalSlowdown",
    "display clock setting": "DisplayClockSetting",
    "display_clocks_setting": "DisplayClockSetting",
}


# --- reading the two formats into one tree --------------------------------------------------------


def _put(node: dict, key: str, value) -> None:
    key = key.strip().lower()
    if key in node:  # repeated entries (MIG devices, processes) become a list
        node[key] = node[key] + [value] if isinstance(node[key], list) else [node[key], value]
    else:
        node[key] = value


def parse_text(text: str) -> dict:
    """`nvidia-smi -q` text: "Key : value" lines and indented sections, keys lower-cased."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        indent = len(line) - len(line.lstrip())
        while stack[-1][0] >= indent:
            stack.pop()
        stripped = line.rstrip()
        if " : " in stripped:
            key, _, value = stripped.partition(" : ")
            _put(stack[-1][1], key, value.strip())
        elif stripped.endswith(" :"):
            _put(stack[-1][1], stripped[:-2], "")
        else:
            key = stripped
            section: dict = {}
            _put(stack[-1][1], key, section)
            stack.append((indent, section))
    return root


def _element(e: ET.Element):
    if len(e) == 0:
        return (e.text or "").strip()
    node: dict = {}
    for child in e:
        _put(node, child.tag, _element(child))
    return node


def read_dump(path: Path) -> tuple[dict, list[dict]]:
    """(header, [one tree per GPU]) for a text or XML dump."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("<?xml") or path.suffix == ".xml":
        root = ET.fromstring(text)
        header = {c.tag: (c.text or "").strip() for c in root if c.tag != "gpu"}
        return header, [_element(g) for g in root.findall("gpu")]
    tree = parse_text(text)
    gpus = [v for k, v in tree.items() if k.startswith("gpu ") and isinstance(v, dict)]
    return {k.replace(" ", "_"): v for k, v in tree.items() if isinstance(v, str)}, gpus


def get(tree: dict, *paths: str):
    """The first path ("pci/bus id") the tree has; None when none is shown."""
    for path in paths:
        node = tree
        for key in path.split("/"):
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


# --- answers ---------------------------------------------------------------------------------------


def _error(text: str) -> dict | None:
    code = ERRORS.get(text.strip().lower())
    if code is None:
        return None
    error = pynvml.NVMLError(code)
    shown = text.strip() if code != pynvml.NVML_ERROR_NOT_SUPPORTED else str(error)
    return {"type": type(error).__name__, "value": code, "str": shown}


def number(text: str) -> float:
    return float(re.match(r"-?[\d.]+", text.strip()).group())


def integer(text: str) -> int:
    return int(number(text))


def on_off(text: str) -> int:
    return {"enabled": 1, "disabled": 0, "yes": 1, "no": 0}[text.strip().lower()]


class Calls:
    def __init__(self):
        self.nvml: list[dict] = []

    def add(self, fn: str, args: list, raw, convert=lambda v: v) -> None:
        """Record fn(*args) answering `raw` as NVML would; nothing when the dump does not show it."""
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in HIDDEN):
            return
        texts = raw if isinstance(raw, list) else [raw]
        errors = [_error(t) for t in texts if isinstance(t, str) and _error(t)]
        if errors:
            self.nvml.append({"fn": fn, "args": args, "error": errors[0]})
        else:
            self.nvml.append({"fn": fn, "args": args, "result": convert(raw)})


def system(calls: Calls, header: dict, count: int) -> None:
    calls.add("nvmlInit", [], "ok", lambda _: None)
    calls.add("nvmlSystemGetDriverVersion", [], header.get("driver_version"))
    cuda = header.get("cuda_version")
    for fn in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        calls.add(fn, [], cuda, lambda v: int(v.split(".")[0]) * 1000 + int(v.split(".")[1]) * 10)
    calls.add("nvmlDeviceGetCount", [], count)


def identity(calls: Calls, g: dict, i: int, h: dict) -> None:
    calls.add("nvmlDeviceGetHandleByIndex", [i], h)
    calls.add("nvmlDeviceGetName", [h], get(g, "product name", "product_name"))
    calls.add("nvmlDeviceGetVbiosVersion", [h], get(g, "vbios version", "vbios_version"))
    calls.add("nvmlDeviceGetUUID", [h], get(g, "gpu uuid", "uuid"), lambda _: MASKED_UUID.format(i))
    pci = {"__struct__": "nvmlPciInfo_t", "busId": get(g, "pci/bus id", "pci/pci_bus_id")}
    for name, paths in {
        "domain": ("pci/domain", "pci/pci_domain"),
        "bus": ("pci/bus", "pci/pci_bus"),
        "device": ("pci/device", "pci/pci_device"),
        "pciDeviceId": ("pci/device id", "pci/pci_device_id"),
        "pciSubSystemId": ("pci/sub system id", "pci/pci_sub_system_id"),
    }.items():
        shown = get(g, *paths)
        if shown and shown.lower() not in HIDDEN:
            pci[name] = int(shown, 16)
    calls.add("nvmlDeviceGetPciInfo", [h], pci if pci["busId"] else None)
    brand = get(g, "product brand", "product_brand")
    calls.add("nvmlDeviceGetBrand", [h], brand, lambda b: getattr(pynvml, "NVML_BRAND_" + b.upper().replace(" ", "_")))
    arch = get(g, "product architecture", "product_architecture")
    calls.add(
        "nvmlDeviceGetArchitecture",
        [h],
        arch,
        lambda a: getattr(pynvml, "NVML_DEVICE_ARCH_" + ARCH_WORDS.get(a.lower(), a.upper())),
    )


def memory_and_load(calls: Calls, g: dict, h: dict) -> None:
    mib = 1024 * 1024
    fb = get(g, "fb memory usage", "fb_memory_usage")
    if isinstance(fb, dict):
        used = integer(fb["used"]) + (integer(fb["reserved"]) if "reserved" in fb else 0)
        memory = {"__struct__": "c_nvmlMemory_t", "total": integer(fb["total"]) * mib}
        calls.add("nvmlDeviceGetMemoryInfo", [h], memory | {"free": integer(fb["free"]) * mib, "used": used * mib})
    util = [get(g, "utilization/gpu", "utilization/gpu_util"), get(g, "utilization/memory", "utilization/memory_util")]
    calls.add(
        "nvmlDeviceGetUtilizationRates",
        [h],
        util if None not in util else None,
        lambda u: {"__struct__": "c_nvmlUtilization_t", "gpu": integer(u[0]), "memory": integer(u[1])},
    )
    calls.add(
        "nvmlDeviceGetTemperature",
        [h, pynvml.NVML_TEMPERATURE_GPU],
        get(g, "temperature/gpu current temp", "temperature/gpu_temp"),
        integer,
    )
    slowdown = get(g, "temperature/gpu slowdown temp", "temperature/gpu_temp_slow_threshold")
    calls.add("nvmlDeviceGetTemperatureThreshold", [h, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN], slowdown, integer)
    power = get(g, "gpu power readings", "power readings", "gpu_power_readings", "power_readings") or {}
    draw = get(power, "power draw", "power_draw", "average power draw", "average_power_draw")
    calls.add("nvmlDeviceGetPowerUsage", [h], draw, lambda w: round(number(w) * 1000))
    limit = get(power, "current power limit", "current_power_limit", "enforced power limit", "enforced_power_limit")
    calls.add("nvmlDeviceGetEnforcedPowerLimit", [h], limit, lambda w: round(number(w) * 1000))
    for clock, key, tag in ((pynvml.NVML_CLOCK_SM, "sm", "sm_clock"), (pynvml.NVML_CLOCK_MEM, "memory", "mem_clock")):
        calls.add("nvmlDeviceGetClockInfo", [h, clock], get(g, f"clocks/{key}", f"clocks/{tag}"), integer)
        calls.add("nvmlDeviceGetMaxClockInfo", [h, clock], get(g, f"max clocks/{key}", f"max_clocks/{tag}"), integer)
    for clock, key, tag in (
        (pynvml.NVML_CLOCK_GRAPHICS, "graphics", "graphics_clock"),
        (pynvml.NVML_CLOCK_MEM, "memory", "mem_clock"),
    ):
        calls.add(
            "nvmlDeviceGetApplicationsClock",
            [h, clock],
            get(g, f"applications clocks/{key}", f"applications_clocks/{tag}"),
            integer,
        )
        calls.add(
            "nvmlDeviceGetDefaultApplicationsClock",
            [h, clock],
            get(g, f"default applications clocks/{key}", f"default_applications_clocks/{tag}"),
            integer,
        )


def pcie(calls: Calls, g: dict, h: dict) -> None:
    gen = get(g, "pci/gpu link info/pcie generation", "pci/pci_gpu_link_info/pcie_gen") or {}
    width = get(g, "pci/gpu link info/link width", "pci/pci_gpu_link_info/link_widths") or {}
    calls.add("nvmlDeviceGetCurrPcieLinkGeneration", [h], get(gen, "current", "current_link_gen"), integer)
    calls.add("nvmlDeviceGetMaxPcieLinkGeneration", [h], get(gen, "max", "max_link_gen"), integer)
    calls.add("nvmlDeviceGetGpuMaxPcieLinkGeneration", [h], get(gen, "device max", "max_device_link_gen"), integer)
    calls.add("nvmlDeviceGetCurrPcieLinkWidth", [h], get(width, "current", "current_link_width"), integer)
    calls.add("nvmlDeviceGetMaxPcieLinkWidth", [h], get(width, "max", "max_link_width"), integer)


def _uncorrected(volatile) -> list[str] | None:
    if not isinstance(volatile, dict):
        return None
    double = get(volatile, "double bit", "double_bit")
    if isinstance(double, dict):
        return [double["total"]]
    return [v for k, v in volatile.items() if "uncorrectable" in k] or None


def memory_health(calls: Calls, g: dict, h: dict) -> None:
    ecc = [get(g, "ecc mode/current", "ecc_mode/current_ecc"), get(g, "ecc mode/pending", "ecc_mode/pending_ecc")]
    calls.add(
        "nvmlDeviceGetEccMode", [h], ecc if None not in ecc else None, lambda m: {"__list__": [on_off(x) for x in m]}
    )
    volatile = get(g, "ecc errors/volatile", "ecc_errors/volatile")
    args = [h, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC]
    calls.add("nvmlDeviceGetTotalEccErrors", args, _uncorrected(volatile), lambda parts: sum(integer(p) for p in parts))
    pending = get(g, "retired pages/pending page blacklist", "retired_pages/pending_blacklist")
    calls.add("nvmlDeviceGetRetiredPagesPendingStatus", [h], pending, on_off)
    rows = get(g, "remapped rows", "remapped_rows")
    if isinstance(rows, dict):
        shown = [
            get(rows, "correctable error", "remapped_row_corr"),
            get(rows, "uncorrectable error", "remapped_row_unc"),
            get(rows, "pending", "remapped_row_pending"),
            get(rows, "remapping failure occurred", "remapped_row_failure"),
        ]
        rows = shown if None not in shown else None
    convert = lambda r: {"__tuple__": [integer(r[0]), integer(r[1]), on_off(r[2]), on_off(r[3])]}  # noqa: E731
    calls.add("nvmlDeviceGetRemappedRows", [h], rows, convert)


def modes(calls: Calls, g: dict, i: int, h: dict) -> None:
    calls.add("nvmlDeviceGetPersistenceMode", [h], get(g, "persistence mode", "persistence_mode"), on_off)
    calls.add("nvmlDeviceGetDisplayMode", [h], get(g, "display mode", "display_mode"), on_off)
    mode = get(g, "compute mode", "compute_mode")
    calls.add("nvmlDeviceGetComputeMode", [h], mode, lambda m: getattr(pynvml, "NVML_COMPUTEMODE_" + m.upper()))
    mig = [get(g, "mig mode/current", "mig_mode/current_mig"), get(g, "mig mode/pending", "mig_mode/pending_mig")]
    calls.add(
        "nvmlDeviceGetMigMode", [h], mig if None not in mig else None, lambda m: {"__list__": [on_off(x) for x in m]}
    )
    calls.add("nvmlDeviceGetComputeRunningProcesses", [h], _processes(get(g, "processes")))


# NVIDIA's MIG user guide: "Supported GPUs" (the most MIG devices a GPU holds: 7 on an A100) and
# "Supported MIG Profiles" (on an A100 a profile takes sevenths of the SMs, 14 SMs each as the guide's
# `nvidia-smi mig -lgip` listing shows, and eighths of the memory; the 80GB card's names double the GB).
MAX_MIG_DEVICES = {"A100": 7}
MIG_PROFILES = {  # (SMs, eighths of the memory) -> profile
    "A100-SXM4-40GB": {(14, 1): "1g.5gb", (14, 2): "1g.10gb", (28, 2): "2g.10gb", (42, 4): "3g.20gb"}
    | {(56, 4): "4g.20gb", (98, 8): "7g.40gb"},
    "A100-SXM4-80GB": {(14, 1): "1g.10gb", (14, 2): "1g.20gb", (28, 2): "2g.20gb", (42, 4): "3g.40gb"}
    | {(56, 4): "4g.40gb", (98, 8): "7g.80gb"},
}


def mig_devices(calls: Calls, g: dict, i: int, h: dict) -> None:
    """Each MIG device the dump lists, as NVML answers for its handle gpuN/migK: its ids, SMs, memory;
    its name from NVIDIA's profile table (nvidia-smi -q does not print it); the empty slots NotFound."""
    devices = get(g, "mig devices/mig device", "mig_devices/mig_device")
    devices = devices if isinstance(devices, list) else [devices] if isinstance(devices, dict) else []
    product = str(get(g, "product name", "product_name"))
    slots = next((n for chip, n in MAX_MIG_DEVICES.items() if chip in product), None)
    if not devices or slots is None:
        return
    calls.add("nvmlDeviceGetMaxMigDeviceCount", [h], slots)
    shown = {integer(d["index"]): d for d in devices}
    for k in range(slots):
        if k not in shown:
            calls.nvml.append({"fn": "nvmlDeviceGetMigDeviceHandleByIndex", "args": [h, k], "error": _not_found()})
            continue
        m = {"__handle__": f"gpu{i}/mig{k}"}
        calls.add("nvmlDeviceGetMigDeviceHandleByIndex", [h, k], m)
        _mig_device(calls, g, shown[k], product, i, k, m)
        if _processes(get(g, "processes")) == {"__list__": []}:  # none on the GPU: none on any of its slices
            calls.add("nvmlDeviceGetComputeRunningProcesses", [m], {"__list__": []})


def _not_found() -> dict:
    error = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
    return {"type": type(error).__name__, "value": pynvml.NVML_ERROR_NOT_FOUND, "str": str(error)}


def _mig_device(calls: Calls, g: dict, d: dict, product: str, i: int, k: int, m: dict) -> None:
    mib = 1024 * 1024
    calls.add("nvmlDeviceGetUUID", [m], "masked", lambda _: masked_uuid(f"gpu{i}/mig{k}"))
    calls.add("nvmlDeviceGetGpuInstanceId", [m], get(d, "gpu instance id", "gpu_instance_id"), integer)
    calls.add("nvmlDeviceGetComputeInstanceId", [m], get(d, "compute instance id", "compute_instance_id"), integer)
    shared = get(d, "device attributes/shared", "device_attributes/shared") or {}
    names = {"multiprocessorCount": "multiprocessor_count", "sharedCopyEngineCount": "copy_engine_count"}
    names |= {"sharedDecoderCount": "decoder_count", "sharedEncoderCount": "encoder_count"}
    names |= {"sharedJpegCount": "jpg_count", "sharedOfaCount": "ofa_count"}
    attributes = {name: integer(shared[key]) for name, key in names.items() if key in shared}
    struct = {"__struct__": "c_nvmlDeviceAttributes"}
    calls.add("nvmlDeviceGetAttributes", [m], attributes or None, lambda a: struct | a)
    fb, whole = get(d, "fb memory usage", "fb_memory_usage"), get(g, "fb memory usage", "fb_memory_usage")
    if not isinstance(fb, dict):
        return
    used = integer(fb["used"]) + (integer(fb["reserved"]) if "reserved" in fb else 0)
    memory = {"__struct__": "c_nvmlMemory_t", "total": integer(fb["total"]) * mib}
    calls.add("nvmlDeviceGetMemoryInfo", [m], memory | {"free": integer(fb["free"]) * mib, "used": used * mib})
    eighths = round(8 * integer(fb["total"]) / integer(whole["total"])) if isinstance(whole, dict) else None
    table = next((t for card, t in MIG_PROFILES.items() if card in product), {})
    profile = table.get((attributes.get("multiprocessorCount"), eighths))
    calls.add("nvmlDeviceGetName", [m], f"{product} MIG {profile}" if profile else None)


def _processes(shown) -> dict | None:
    """The processes with a compute context (type C or C+G), as nvidia-ml-py's friendly objects."""
    if shown in ("None", ""):
        return {"__list__": []}
    if not isinstance(shown, dict):
        return None
    entries = get(shown, "process_info")
    entries = entries if isinstance(entries, list) else [entries] if isinstance(entries, dict) else []
    out = []
    for p in entries:
        if "C" in p.get("type", "").split("+"):
            used = p.get("used_memory", "N/A")
            memory = None if used.strip().lower() in ERRORS else integer(used) * 1024 * 1024
            out.append({"__struct__": "nvmlFriendlyObject", "pid": integer(p["pid"]), "usedGpuMemory": memory})
    return {"__list__": out} if entries else None


def clock_reasons(calls: Calls, g: dict, h: dict) -> None:
    for kind, text, tag in (
        ("Event", "clocks event reasons", "clocks_event_reasons"),
        ("Throttle", "clocks throttle reasons", "clocks_throttle_reasons"),
    ):
        shown = get(g, text, tag)
        if shown is None:
            continue
        if isinstance(shown, dict):
            mask = 0
            for key, state in shown.items():
                name = REASONS[key.removeprefix(f"clocks_{kind.lower()}_reason_")]
                mask |= getattr(pynvml, f"nvmlClocks{kind}Reason{name}") if state.lower() == "active" else 0
            shown = mask
        calls.add(f"nvmlDeviceGetCurrentClocks{kind}Reasons", [h], shown)


# --- the recording -----------------------------------------------------------------------------------


def sources(folder: Path) -> dict[str, str]:
    """File name -> source URL, from SOURCES.md beside the dumps."""
    found, name = {}, None
    for line in (folder / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        name = line[3:].strip() if line.startswith("## ") else name
        if name and line.startswith("- Source: "):
            found[name] = line.removeprefix("- Source: ").strip()
    return found


def build(path: Path, source: str) -> Recording:
    header, gpus = read_dump(path)
    calls = Calls()
    system(calls, header, len(gpus))
    for i, g in enumerate(gpus):
        h = {"__handle__": f"gpu{i}"}
        identity(calls, g, i, h)
        memory_and_load(calls, g, h)
        pcie(calls, g, h)
        memory_health(calls, g, h)
        modes(calls, g, i, h)
        mig_devices(calls, g, i, h)
        clock_reasons(calls, g, h)
    attached = header.get("attached_gpus")
    names = ", ".join(str(get(g, "product name", "product_name")) for g in gpus)
    note = (
        f"; the dump's header says {attached} GPUs attached but holds {len(gpus)}" if attached != str(len(gpus)) else ""
    )
    return Recording(
        about=f"Stand-in for {names} (driver {header.get('driver_version')}, CUDA {header.get('cuda_version')}), "
        f"written by scripts/recording_from_smi.py from the public nvidia-smi -q dump {path.name}",
        synthetic=f"built from the public dump {path.name} ({source}), values as the dump shows them, "
        f"calls it does not show absent{note}{_mig_note(calls)}",
        packages={"nvidia-ml-py": version("nvidia-ml-py")},
        nvml=calls.nvml,
    )


def _mig_note(calls: Calls) -> str:
    if not any(c["fn"] == "nvmlDeviceGetMaxMigDeviceCount" for c in calls.nvml):
        return ""
    return (
        "; MIG devices: names from NVIDIA's MIG profile table (MIG user guide, Supported MIG Profiles) by their "
        "SMs and share of memory, 7 MIG slots from its Supported GPUs table, UUIDs masked"
    )


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "public"
    if target.is_dir():
        known = sources(target)
        OUT.mkdir(parents=True, exist_ok=True)
        for dump in sorted(p for p in target.iterdir() if p.suffix in (".txt", ".xml")):
            build(dump, known.get(dump.name, "source not listed")).save(OUT / f"{dump.name}.json")
            print(f"{dump.name} -> {OUT / (dump.name + '.json')}")
    else:
        known = sources(target.parent) if (target.parent / "SOURCES.md").exists() else {}
        out = Path(argv[1]) if len(argv) > 1 else OUT / f"{target.name}.json"
        build(target, known.get(target.name, "source not listed")).save(out)


if __name__ == "__main__":
    main(sys.argv[1:])
