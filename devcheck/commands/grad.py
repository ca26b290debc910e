"""`devcheck grad`: does autograd give the right gradients on every device?

First the classic tutorial example, then every differentiable op gradient-checked on every device
(float64 against central differences; on GPUs also float32 against the CPU's float32, with a
tolerance that grows with the reduction length), then one small network's gradients compared
across devices.
"""

from __future__ import annotations

import math

import numpy

from devcheck.commands.grad_cases import INPUT_SHAPE, USES_MATMUL, cases, input_for
from devcheck.interrupt import Interruption
from devcheck.machine.model.devices import Selection, selection_checks
from devcheck.numerics import UNIT_ROUNDOFF, tf32_on
from devcheck.report import FAILING, Check, Progress, Report, Section, Status, no_progress

EPS32 = 2 * UNIT_ROUNDOFF["float32"]  # machine epsilon: twice the unit roundoff
EPS_TF32 = 2 * UNIT_ROUNDOFF["tf32"]  # TF32 keeps 10 mantissa bits: float32 matmuls with TF32 on


def float32_tolerance(reduction_length: int, tf32: bool = False) -> float:
    """Two correct float32 results differ by rounding that grows like sqrt(terms summed)."""
    return 16 * (EPS_TF32 if tf32 else EPS32) * math.sqrt(reduction_length)


def op_names() -> tuple[str, ...]:
    return tuple(sorted(cases("cpu")))


def run(
    selection: Selection,
    ops: tuple[str, ...],
    *,
    fast: bool = False,
    require_gpu: bool = False,
    progress: Progress = no_progress,
) -> Report:
    sel, chosen = selection.to_run(require_gpu), list(ops)
    report = Report("grad")
    report.checks += selection_checks(selection, require_gpu)
    progress("gradcheck", total=len(sel.names) * (len(chosen) + 2))
    classic_rows: list[dict] = []
    op_rows: list[dict] = []
    stop = Interruption()  # Ctrl-C or a signal: the checks made so far still make a report
    for name in sel.names:
        first = len(op_rows)
        with stop:
            row, check = classic(name)
            classic_rows.append(row)
            report.checks.append(check)
            progress(f"{name}: classic example", advance=1)
            for op in chosen:
                op_rows += check_op(op, name, fast)
                progress(f"{name}: {op}", advance=1)
        if op_rows[first:]:  # judged even when cut short: a wrong gradient found must not be lost
            report.checks.append(summary_check(f"grad.ops.{name}", name, op_rows[first:]))
        if name != "cpu" and not stop:
            with stop:
                report.checks.append(network_check(name))
        if stop:
            break
        progress(f"{name}: network", advance=1)
    report.sections.append(Section("classic", "y = a**2*x + b*x + c at a=1, b=2, c=3, x=1", rows=classic_rows))
    report.sections.append(Section("ops", "Every op, gradient-checked", rows=op_rows))
    report.verdict = verdict(report, sel.names, len(chosen))
    return stop.hand_over(report)


def verdict(report: Report, names: list[str], ops: int) -> str:
    """WRONG only for a wrong gradient: a GPU that could not be used (`--device all` with none) is a
    failure of the run, not of autograd on the devices that ran."""
    wrong = next((c for c in report.checks if c.status in FAILING and c.id.startswith("grad.")), None)
    if wrong:
        return f"autograd: WRONG — {wrong.summary}"
    correct = f"autograd: correct on {', '.join(names)} ({ops} ops)" if names else "autograd: not checked"
    failure = report.first_failure
    return f"{correct}; FAILED — {failure.summary}" if failure else correct


def classic(device: str) -> tuple[dict, Check]:
    """The tutorial's example: gradients are None before backward and exactly 2, 1, 1 after."""
    from devcheck.engine import tensor

    a, b, c = (tensor(v, requires_grad=True, device=device) for v in (1.0, 2.0, 3.0))
    x = tensor(1.0, device=device)
    before = [t.grad for t in (a, b, c)]
    y = a**2 * x + b * x + c
    y.backward()
    after = tuple(t.grad.item() for t in (a, b, c))
    ok = before == [None, None, None] and y.item() == 6.0 and after == (2.0, 1.0, 1.0)
    row = {
        "device": device,
        "y": y.item(),
        "grads before": "None, None, None",
        "a.grad": after[0],
        "b.grad": after[1],
        "c.grad": after[2],
        "verdict": "ok" if ok else "WRONG",
    }
    if ok:
        return row, Check(f"grad.classic.{device}", Status.OK, f"{device}: dy/da, dy/db, dy/dc = 2, 1, 1 exactly")
    return row, Check(
        f"grad.classic.{device}",
        Status.FAIL,
        f"{device}: the classic example gave y={y.item()}, grads {after} instead of 6 and (2, 1, 1)",
    )


def check_op(op: str, device: str, fast: bool) -> list[dict]:
    from devcheck.engine import gradcheck

    result = gradcheck(cases(device)[op], [input_for(device)], fast=fast)
    rows = [
        {
            "op": op,
            "device": device,
            "dtype": "float64",
            "against": "finite diff",
            "abs err": result.max_abs_error,
            "rel err": result.max_rel_error,
            "abs tol": 1e-5,
            "rel tol": 1e-3,
            "TF32": False,
            "verdict": "ok" if result.ok else f"FAIL: {result.message}",
        }
    ]
    if device != "cpu":
        rows.append(_float32_against_cpu(op, device))
    return rows


def _grads(op: str, device: str, dtype: str) -> numpy.ndarray:
    from devcheck.engine import grad

    x = input_for(device, dtype)
    return grad(cases(device, dtype)[op](x), [x])[0].numpy().astype(numpy.float64)


def _float32_against_cpu(op: str, device: str) -> dict:
    ours, reference = _grads(op, device, "float32"), _grads(op, "cpu", "float32")
    abs_err = float(numpy.max(numpy.abs(ours - reference)))
    rel_err = abs_err / max(float(numpy.max(numpy.abs(reference))), 1e-30)
    tf32 = tf32_on(device) and op in USES_MATMUL
    tolerance = float32_tolerance(math.prod(INPUT_SHAPE), tf32)
    return {
        "op": op,
        "device": device,
        "dtype": "float32",
        "against": "cpu float32",
        "abs err": abs_err,
        "rel err": rel_err,
        "abs tol": None,
        "rel tol": tolerance,
        "TF32": tf32,
        "verdict": "ok" if rel_err <= tolerance else f"FAIL: {rel_err:.2e} > {tolerance:.1e}",
    }


def summary_check(check_id: str, device: str, rows: list[dict]) -> Check:
    failed = [
        f"{r['op']} ({r['dtype']} vs {r['against']}, rel err {r['rel err']:.2e})" for r in rows if r["verdict"] != "ok"
    ]
    if failed:
        return Check(
            check_id,
            Status.FAIL,
            f"{device}: {len(failed)} op gradient(s) wrong: {', '.join(failed)}",
            fix="a wrong gradient on one device only points at that device's math libraries or driver",
        )
    return Check(check_id, Status.OK, f"{device}: all {len(rows)} gradient checks pass")


def network_check(device: str) -> Check:
    """The same small network, same weights and batch: its gradients on `device` against the CPU's."""
    from devcheck.engine import functional as F
    from devcheck.engine import manual_seed, nn, tensor

    rng = numpy.random.default_rng(0)
    x, y = rng.standard_normal((16, 8)).astype(numpy.float32), rng.integers(0, 3, 16)
    grads = {}
    for name in ("cpu", device):
        manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 32, device=name), nn.Tanh(), nn.Linear(32, 3, device=name))
        F.cross_entropy(model(tensor(x, device=name)), tensor(y, device=name)).backward()
        grads[name] = {n: p.grad.numpy().astype(numpy.float64) for n, p in model.named_parameters()}
    tolerance = float32_tolerance(32, tf32_on(device))
    worst = max(
        (float(numpy.max(numpy.abs(grads[device][n] - g))) / max(float(numpy.max(numpy.abs(g))), 1e-30), n)
        for n, g in grads["cpu"].items()
    )
    if worst[0] <= tolerance:
        return Check(
            f"grad.network.{device}",
            Status.OK,
            f"{device}: a small network's gradients match the CPU's (worst rel err {worst[0]:.1e})",
        )
    return Check(
        f"grad.network.{device}",
        Status.FAIL,
        f"{device}: a small network's gradients differ from the CPU's: {worst[1]} rel err {worst[0]:.2e} "
        f"> {tolerance:.1e}",
        fix="check CUPY_TF32 (TF32 matmuls) and run `devcheck env`",
    )
