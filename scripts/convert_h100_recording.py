"""Convert the call-by-call recording of a real H100 (nvml-cupy-h100.json, made with a script before
`devcheck env --record` existed) into devcheck's recording format.

    python scripts/convert_h100_recording.py nvml-cupy-h100.json \
        tests/fixtures/recordings/h100-sxm.json

What changes: the one device handle (printed as a pointer) becomes {"__handle__": "gpu0"}, and the
handle lookup that produced it, nvmlDeviceGetHandleByIndex(0), is added (every call on that handle
implies it); CuPy's facts become calls in the stand-in's names. Every value is the card's own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devcheck.machine.replay.recording import Recording  # noqa: E402


def convert(source: dict) -> Recording:
    handles: dict[str, str] = {}

    def arg(value):
        if isinstance(value, str) and value.startswith("<pynvml.LP_struct_c_nvmlDevice_t"):
            return {"__handle__": handles.setdefault(value, f"gpu{len(handles)}")}
        return value

    nvml = []
    for call in source["nvml"]:
        entry = {"fn": call["fn"], "args": [arg(a) for a in call["args"]]}
        entry.update({k: call[k] for k in ("result", "error") if k in call})
        nvml.append(entry)
    count = next(c["result"] for c in nvml if c["fn"] == "nvmlDeviceGetCount")
    lookups = [
        {"fn": "nvmlDeviceGetHandleByIndex", "args": [i], "result": {"__handle__": f"gpu{i}"}} for i in range(count)
    ]
    position = next(i for i, c in enumerate(nvml) if c["fn"] == "nvmlDeviceGetCount") + 1
    nvml[position:position] = lookups

    facts = source["cupy"]
    cupy = [{"fn": "__version__", "args": [], "result": facts["version"]}]
    for name in ("runtimeGetVersion", "driverGetVersion", "getDeviceCount"):
        cupy.append({"fn": f"cuda.runtime.{name}", "args": [], "result": facts[name]})
    cupy.append({"fn": "is_available", "args": [], "result": facts["is_available"]})
    for i in range(facts["getDeviceCount"]):
        cupy.append({"fn": "cuda.runtime.getDeviceProperties", "args": [i], "result": facts["getDeviceProperties"]})
        for name in ("attributes", "compute_capability", "pci_bus_id"):
            cupy.append({"fn": f"Device.{name}", "args": [i], "result": facts[f"Device.{name}"]})
        cupy.append({"fn": "Device.mem_info", "args": [i], "result": {"__tuple__": facts["Device.mem_info"]}})
    cupy.append({"fn": "cuda.runtime.getDevice", "args": [], "result": 0})

    about = source["about"].split(" Encoding:")[0]
    packages = {"cupy-cuda13x": facts["version"], "nvidia-ml-py": "13.610.43"}
    return Recording(
        about=f"{about} Converted by scripts/convert_h100_recording.py; nvmlDeviceGetHandleByIndex added.",
        packages=packages,
        nvml=nvml,
        cupy=cupy,
    )


def cuda_visible_variants(source: dict) -> dict[str, str]:
    """What CuPy answered with CUDA_VISIBLE_DEVICES set to each value (on the same machine)."""
    out = {}
    for key, text in source["cupy"].items():
        if key.startswith("CUDA_VISIBLE_DEVICES="):
            out[key.split("=", 1)[1].strip("'")] = text.split(" | ", 1)[1].splitlines()[0]
    return out


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    doc = json.loads(src.read_text())
    recording = convert(doc)
    recording.about += " CuPy with CUDA_VISIBLE_DEVICES set, on the same machine: " + json.dumps(
        cuda_visible_variants(doc)
    )
    recording.save(dst)
    print(f"wrote {dst}: {len(recording.nvml)} NVML calls, {len(recording.cupy)} CuPy calls")
