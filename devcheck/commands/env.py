"""`devcheck env`: what is installed and what is wrong with it, each fact with its source.

Probes never raise to this function: a probe that crashes becomes an `error` check naming it, and
the rest of the report is still collected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from devcheck.commands import gpu_health
from devcheck.machine.model.devices import gpu_required_check
from devcheck.machine.probes import (
    blas,
    cpu,
    cupy_probe,
    envvars,
    gpu_reading,
    mig,
    nvml,
    packages,
    python,
    toolkit,
    topology,
    visible,
)
from devcheck.report import Check, Field, Findings, Report, Status


def guarded(name: str, probe: Callable[[], Findings]) -> Findings:
    try:
        return probe()
    except Exception as e:  # a probe bug must not hide the rest of the report
        fix = "please report this at devcheck's issue tracker, with `devcheck env --format markdown`"
        return Findings(checks=[Check.crashed(f"{name}.probe", Status.ERROR, f"the {name} probe crashed:", e, fix)])


def collect(
    *, require_gpu: bool = False, environ: Mapping[str, str] | None = None, gate: gpu_health.Gate | None = None
) -> Report:
    """The whole report; `gate`: the GPUs judged for a node gate (`devcheck check`)."""
    from devcheck.machine.replay import seam

    environ = os.environ if environ is None else environ
    dists = seam.packages(packages.installed())
    toolkit_probe = toolkit.start(environ)
    report = Report("env")
    report.checks += seam.replay_checks()
    report.add(guarded("python", python.probe))
    report.add(guarded("cpu", cpu.probe))
    report.add(guarded("numpy", lambda: blas.probe(cpu.usable_cpus())))
    report.add(guarded("packages", lambda: packages.probe(dists)))

    driver = nvml.read_driver()
    module = seam.nvml() if driver.loaded else None
    report.add(Findings([nvml.system_section(driver, module)], [driver.check]))
    cupy_findings, state = cupy_probe.probe(dists, driver)
    report.add(cupy_findings)
    if driver.loaded:
        slices = _slices(report, module, driver.gpus)
        selection = visible.resolve(environ, driver.gpus, slices)
        report.add(visible.findings(environ, driver.gpus, selection, state.bus_ids))
        for gpu in driver.gpus:
            index = visible.cuda_index_of(gpu.nvml_index, driver.gpus, selection, state.bus_ids)
            report.add(guarded(f"gpu{gpu.nvml_index}", lambda g=gpu, i=index: _gpu(module, g, i, gate)))
            for s in (s for s in slices if s.parent_index == gpu.nvml_index):
                report.add(mig.findings(s, _slice_index(s, selection, index)))
        report.add(guarded("topology", lambda: topology.findings(module, driver.gpus)))
    report.add(guarded("toolkit", lambda: toolkit_probe(state.runtime_major)))
    report.add(guarded("envvars", lambda: envvars.probe(environ, gpus_known=driver.loaded)))

    report.verdict = verdict(report, state)
    if require_gpu and not state.ready:
        report.checks.append(gpu_required_check(report.verdict))
    return report


def _gpu(module, gpu: nvml.Gpu, cuda_index: Field, gate: gpu_health.Gate | None) -> Findings:
    reading = gpu_reading.read(module, gpu, cuda_index)
    found = gpu_reading.findings(reading)
    if reading.state is None:  # a lost GPU: the probe that lost it said so
        found.checks += gpu_health.judge(reading, gate)
    return found


def _slices(report: Report, module, gpus: list[nvml.Gpu]) -> list[mig.Slice]:
    """The MIG slices of every GPU in MIG mode; a probe that crashes is reported, and env goes on."""
    found: list[mig.Slice] = []

    def probe() -> Findings:
        found.extend(mig.slices(module, gpus))
        return Findings()

    report.add(guarded("mig", probe))
    return found


def _slice_index(s: mig.Slice, selection: visible.CudaOrder, parent: Field) -> Field:
    """The slice's CUDA index: its parent's, when CUDA computes on this slice."""
    if s == selection.mig and parent.value is not None:
        return Field(parent.value, parent.source, parent.status)
    why = "CUDA computes on one MIG device per process" if selection.mig else "not visible to CUDA"
    return Field(None, "CUDA_VISIBLE_DEVICES", Status.NA, why)


def verdict(report: Report, state: cupy_probe.CupyState) -> str:
    """One line: ready on which GPUs, or the first broken step of the GPU chain and its fix."""
    if state.ready:
        return f"GPU compute: ready on {len(state.ready)} GPU(s): {', '.join(state.ready)}"
    for check_id in cupy_probe.CHAIN:
        check = report.check(check_id)
        if check and check.status is not Status.OK:
            return " — ".join(x for x in ("GPU compute: not available", check.summary, check.fix) if x)
    return "GPU compute: not available — no CUDA device is visible"
