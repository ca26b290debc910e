"""NumPy and the BLAS it really loaded (threadpoolctl reads the live libraries, not build metadata,
which can claim OpenBLAS while a slow fallback runs: numpy#24200)."""

from __future__ import annotations

from devcheck.report import Check, Field, Findings, Section, Status, na

FAST_BLAS = {"openblas", "mkl", "blis", "accelerate", "flexiblas", "armpl", "nvpl"}
_THREAD_VAR = {"openblas": "OPENBLAS_NUM_THREADS", "mkl": "MKL_NUM_THREADS", "blis": "BLIS_NUM_THREADS"}


def probe(usable_cpus: int, pools: list[dict] | None = None) -> Findings:
    import numpy

    if pools is None:
        from threadpoolctl import threadpool_info

        pools = threadpool_info()
    blas = [p for p in pools if p.get("user_api") == "blas"]
    openmp = sorted({p.get("prefix", "?") for p in pools if p.get("user_api") == "openmp"})
    build = numpy.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})

    fields = {
        "numpy": Field(numpy.__version__, "numpy.__version__"),
        "BLAS built against": Field(f"{build.get('name')} {build.get('version', '')}".strip(), "numpy.show_config")
        if build
        else na("numpy.show_config", "not recorded"),
    }
    checks = []
    if not blas:
        fields["BLAS loaded"] = na("threadpoolctl", "no BLAS library found in the process")
        checks.append(
            Check(
                "blas.library",
                Status.WARN,
                "no optimized BLAS is loaded: matmul runs NumPy's slow fallback",
                fix="pip install --force-reinstall numpy  (PyPI wheels bundle OpenBLAS)",
            )
        )
    for i, lib in enumerate(blas):
        api, suffix = lib.get("internal_api", "?"), f" #{i + 1}" if len(blas) > 1 else ""
        fields[f"BLAS loaded{suffix}"] = Field(f"{api} {lib.get('version') or ''}".strip(), "threadpoolctl")
        fields[f"BLAS kernel{suffix}"] = (
            Field(lib.get("architecture"), "threadpoolctl")
            if lib.get("architecture")
            else na("threadpoolctl", "not reported by this BLAS")
        )
        fields[f"BLAS threads{suffix}"] = Field(lib.get("num_threads"), "threadpoolctl")
        fields[f"BLAS threading{suffix}"] = Field(lib.get("threading_layer"), "threadpoolctl")
        fields[f"BLAS path{suffix}"] = Field(lib.get("filepath"), "threadpoolctl")
        checks.append(_library_check(api))
        checks.append(_threads_check(lib, usable_cpus))
    fields["OpenMP runtimes"] = Field(openmp, "threadpoolctl")
    if len(openmp) > 1:
        checks.append(
            Check(
                "openmp.runtimes",
                Status.WARN,
                f"{len(openmp)} OpenMP runtimes loaded at once: {', '.join(openmp)}",
                detail="two OpenMP runtimes in one process oversubscribe cores and can deadlock or crash",
                fix="install NumPy/SciPy/PyTorch from one source (all pip or all conda-forge), "
                "or set MKL_THREADING_LAYER=GNU",
            )
        )
    return Findings(sections=[Section("numpy", "NumPy and BLAS", fields)], checks=checks)


def _library_check(api: str) -> Check:
    if api in FAST_BLAS:
        return Check("blas.library", Status.OK, f"NumPy uses {api}")
    return Check(
        "blas.library",
        Status.WARN,
        f"NumPy uses {api}, a reference or unknown BLAS: matmul may be 10-100x slow",
        fix="pip install --force-reinstall numpy  (PyPI wheels bundle OpenBLAS)",
    )


def _threads_check(lib: dict, usable_cpus: int) -> Check:
    threads, api = lib.get("num_threads") or 0, lib.get("internal_api", "?")
    if threads <= usable_cpus:
        return Check("blas.threads", Status.OK, f"{api}: {threads} threads on {usable_cpus} usable CPUs")
    var = "OMP_NUM_THREADS" if lib.get("threading_layer") == "openmp" else _THREAD_VAR.get(api, "OMP_NUM_THREADS")
    return Check(
        "blas.threads",
        Status.WARN,
        f"{api} will start {threads} threads on {usable_cpus} usable CPUs",
        detail="more BLAS threads than CPUs this process may use makes matmul slower, not faster",
        fix=f"export {var}={usable_cpus}",
    )
