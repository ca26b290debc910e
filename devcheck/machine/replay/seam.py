"""The hardware seam: the one place devcheck gets NVML (`pynvml`) and CuPy from.

Live, it imports the real modules. Recording (`devcheck env --record FILE`) wraps them and writes
down every question asked and its answer. Replaying (`DEVCHECK_REPLAY=FILE`, or `replay()` in tests)
answers from a recording instead: NVML from the recorded calls, CuPy from the stand-in
(`machine/replay/standin/`, recorded facts and NumPy arithmetic), which is also put where `import cupy`
finds it, so the engine's CUDA device runs over it unchanged. Nothing else in devcheck imports
`pynvml`; the engine's backend imports `cupy` itself, which is why replay installs the stand-in there.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import queue
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from devcheck.errors import BadInput

if TYPE_CHECKING:
    from devcheck.machine.replay.recording import Recording

NVML_LIBRARY = "libnvidia-ml.so.1"  # what pynvml's nvmlInit loads everywhere but Windows
REPLAY_VARIABLE = "DEVCHECK_REPLAY"
TIMEOUT_VARIABLE = "DEVCHECK_PROBE_TIMEOUT"  # seconds NVML or CuPy may take to answer one question (30)


class Hung(Exception):
    """A foreign library that did not answer in time (a wedged driver, a hung import)."""


def within(what: str, fn: Any, *args: Any) -> Any:
    """Call into NVML or CuPy under a time limit, in a worker thread that is abandoned if it hangs, and
    with SystemExit from the library turned into an error: a foreign library must not take devcheck down."""
    limit = probe_timeout()
    worker = _Worker.of_this_thread()
    box = worker.call(what, fn, args, limit)
    if box is None:
        raise Hung(f"{what} did not answer within {limit:g} s")
    error = box.get("error")
    if isinstance(error, SystemExit | KeyboardInterrupt):
        raise RuntimeError(f"{what} tried to end the process ({type(error).__name__}: {error})")
    if error is not None:
        raise error
    return box["value"]


class _Worker:
    """One daemon thread per calling thread, reused while it answers in time: a thread started per call
    cost more than most NVML reads (an 8-GPU env asks thousands). One that does not answer in time, or
    whose caller was interrupted, is abandoned where it hangs, and the caller's next call gets a new one;
    one whose caller has ended ends too (and a forked child, which has no worker thread, makes its own)."""

    _local = threading.local()

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.owner = threading.current_thread()
        self.thread = threading.Thread(target=self._serve, name="devcheck: NVML and CuPy calls", daemon=True)
        self.thread.start()

    @classmethod
    def of_this_thread(cls) -> _Worker:
        worker = getattr(cls._local, "worker", None)
        if worker is None or not worker.thread.is_alive():
            worker = cls._local.worker = cls()
        return worker

    def _serve(self) -> None:
        while True:
            try:
                fn, args, box, done = self.jobs.get(timeout=1.0)
            except queue.Empty:
                if self.owner.is_alive():
                    continue
                return
            try:
                box["value"] = fn(*args)
            except BaseException as e:  # SystemExit from an import, anything at all from a driver
                box["error"] = e
            done.set()

    def call(self, what: str, fn: Any, args: tuple, limit: float) -> dict[str, Any] | None:
        """The call's outcome ({"value": ...} or {"error": ...}), or None where it did not end in time."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self.thread.name = f"devcheck: {what}"  # what a thread dump of a hung process shows
        answered = False
        try:  # an interrupt once the job is queued, even before the wait, leaves this worker to it
            self.jobs.put((fn, args, box, done))
            answered = done.wait(limit)
        finally:
            if not answered:
                self._local.worker = None
        return box if answered else None


def probe_timeout() -> float:
    """DEVCHECK_PROBE_TIMEOUT in seconds (30 when unset or empty); anything but a positive finite number
    is the user's mistake, refused before any work, by every command alike."""
    raw = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        limit = float(raw or 30)
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit > 0):
        raise BadInput(f"{TIMEOUT_VARIABLE}={raw!r}: expected a number of seconds > 0 (30 when unset)")
    return limit


class _Seam:
    source = ""
    hung: dict[str, str] = {}  # library -> why it stopped answering
    configured = False
    replaying: Recording | None = None
    recording: Recording | None = None
    nvml: Any = None
    cupy: Any = None


_seam = _Seam()


def configure() -> None:
    """Start replaying DEVCHECK_REPLAY, if set, before anything imports cupy."""
    if _seam.configured:
        return
    probe_timeout()  # a bad value is refused here, not taken for a hung library
    _seam.configured = True
    path = os.environ.get(REPLAY_VARIABLE)
    if path:
        from devcheck.machine.replay.recording import Recording, RecordingError

        try:
            _start_replay(Recording.load(path))
            _seam.source = f"{REPLAY_VARIABLE}={path}"
        except RecordingError as e:
            raise BadInput(f"{REPLAY_VARIABLE}={e}") from None


def replaying() -> Recording | None:
    configure()
    return _seam.replaying


def replay_checks() -> list:
    """Under replay, every report says so: its hardware answers are a recording's, its speeds NumPy's."""
    from devcheck.report import Check, Status

    recording = replaying()
    if recording is None:
        return []
    detail = f"recording: {recording.about}" + (f"; synthetic: {recording.synthetic}" if recording.synthetic else "")
    return [
        Check(
            "machine.replay",
            Status.WARN,
            f"replaying {_seam.source or 'a recording'}: NVML and CuPy answers come from it, not from this "
            "machine; GPU arithmetic runs on NumPy, so speeds are not a GPU's",
            detail=detail,
        )
    ]


def nvml_library_missing() -> str | None:
    """Why NVML's library does not load, asked before `import pynvml` (about 8 ms, a fifth of `devcheck env`'s
    own start-up) so that a machine without a driver never pays for it. None wherever pynvml must answer
    itself: the library loads, Windows, a recording or a replay (they hold nvmlInit's own answer)."""
    configure()
    if _seam.nvml is not None or _seam.replaying is not None or _seam.recording is not None:
        return None
    if sys.platform.startswith("win"):
        return None
    import ctypes

    try:
        within(f"loading {NVML_LIBRARY}", ctypes.CDLL, NVML_LIBRARY)
    except OSError as e:
        return str(e)
    except Hung as e:  # the loader's lock stays held: nvmlInit fails at once, saying so, not after a second wait
        _seam.hung["nvml"] = str(e)
    return None


def nvml() -> ModuleType:
    """nvidia-ml-py's `pynvml` (or its replay), wrapped by the recorder while recording; ImportError as
    `import pynvml` would."""
    configure()
    if _seam.nvml is None:
        if _seam.replaying is not None:
            from devcheck.machine.replay.nvml_replay import nvml_module

            module = nvml_module(_seam.replaying)
        else:
            with warnings.catch_warnings():  # the deprecated `pynvml` package warns on import
                warnings.simplefilter("ignore")
                import pynvml as module
        if _seam.recording is not None:
            from devcheck.machine.replay.recorder import NvmlRecorder

            module = NvmlRecorder(module, _seam.recording.nvml)
        replay = _seam.replaying  # only a replay with a call that never returns needs the time limit
        _seam.nvml = _TimedNvml(module, at_once=replay is not None and not replay.nvml_hangs)
    return _seam.nvml


class _TimedNvml:
    """Every NVML call under the time limit (but a replay's that cannot hang); once one hangs, the rest
    fail at once (the driver is wedged)."""

    def __init__(self, module: Any, at_once: bool = False):
        self._module = module
        self._at_once = at_once

    def __dir__(self) -> list[str]:
        return dir(self._module)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not name.startswith("nvml") or isinstance(value, type) or not callable(value):
            return value

        def call(*args: Any) -> Any:
            if "nvml" in _seam.hung:
                raise _timeout(self._module, _seam.hung["nvml"])
            if self._at_once:
                return value(*args)
            try:
                return within(f"NVML {name}", value, *args)
            except Hung as e:
                _seam.hung["nvml"] = str(e)
                raise _timeout(self._module, str(e)) from None

        return call


def _timeout(module: Any, why: str) -> Exception:
    class NoAnswer(module.NVMLError_Timeout):
        def __str__(self) -> str:
            return why

    return NoAnswer(module.NVML_ERROR_TIMEOUT)


def cupy() -> Any:
    """`cupy` (or its recorder, or the stand-in); ImportError as `import cupy` would."""
    configure()
    if _seam.replaying is not None and _seam.replaying.cupy is None:
        raise ImportError("No module named 'cupy' (none on the recorded machine)", name="cupy")
    if _seam.replaying is not None and _import_error(_seam.replaying):
        raise ImportError(_import_error(_seam.replaying))
    if "cupy" in _seam.hung:
        raise ImportError(_seam.hung["cupy"])
    if _seam.cupy is None:
        try:  # under replay: the stand-in, or None in sys.modules (ImportError)
            module = within("import cupy", importlib.import_module, "cupy")
        except Hung as e:
            _seam.hung["cupy"] = str(e)  # the import lock stays held: never import it again
            raise ImportError(str(e)) from None
        except Exception as e:
            if _seam.recording is not None:  # an installed CuPy that fails to import is worth a recording too
                _seam.recording.cupy = [
                    {"fn": "import", "args": [], "error": {"type": type(e).__name__, "str": str(e)}}
                ]
            raise
        _seam.cupy = module
        if _seam.recording is not None:
            from devcheck.machine.replay.recorder import record_cupy

            _seam.cupy = record_cupy(module, _seam.recording)
    return _seam.cupy


def nccl() -> tuple[Any, str]:
    """CuPy's NCCL module (`available` False where NCCL does not load) and what CuPy warned while
    importing it: where NCCL is missing, the line that installs it."""
    cupy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = within("import cupy.cuda.nccl", importlib.import_module, "cupy.cuda.nccl")
    return module, "\n".join(str(w.message).strip() for w in caught)


def packages(installed: dict[str, str]) -> dict[str, str]:
    """Under replay, the CuPy and NVML packages are the recorded machine's, not this one's."""
    recording = replaying()
    if recording is None:
        return installed
    from devcheck.machine.replay.recording import cupy_dists

    own = set(cupy_dists(installed)) | {"nvidia-ml-py", "pynvml", "nvidia-ml-py3"}
    return {k: v for k, v in installed.items() if k not in own} | recording.packages


def _import_error(recording: Recording) -> str:
    """What `import cupy` raised on the recorded machine, if it failed there."""
    failed = [c["error"] for c in recording.cupy or [] if c["fn"] == "import" and "error" in c]
    return f"{failed[0].get('type', 'ImportError')}: {failed[0].get('str', '')}" if failed else ""


def _start_replay(recording: Recording) -> None:
    from devcheck.engine import backend
    from devcheck.machine.replay import standin

    _seam.replaying, _seam.nvml, _seam.cupy = recording, None, None
    if recording.cupy is None or _import_error(recording):
        standin.uninstall()
        for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx")]:
            del sys.modules[name]
        sys.modules["cupy"] = None  # `import cupy` raises ImportError, as on that machine
    else:
        standin.install(recording)
    backend.forget_gpus()


@contextlib.contextmanager
def replay(recording: Recording) -> Iterator[Recording]:
    """Answer every NVML and CuPy question from `recording` inside the block (the tests' stand-ins)."""
    from devcheck.engine import backend
    from devcheck.machine.replay import standin

    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in ("cupy", "cupyx")}
    previous = (_seam.configured, _seam.replaying, _seam.recording, _seam.nvml, _seam.cupy, _seam.source, _seam.hung)
    _seam.configured, _seam.recording, _seam.source, _seam.hung = True, None, "", {}
    try:
        _start_replay(recording)
        yield recording
    finally:
        standin.uninstall()
        for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx")]:
            del sys.modules[name]
        sys.modules.update(saved)
        backend.forget_gpus()
        _seam.configured, _seam.replaying, _seam.recording, _seam.nvml, _seam.cupy, _seam.source, _seam.hung = previous


@contextlib.contextmanager
def record(path: Path, installed: dict[str, str]) -> Iterator[Recording]:
    """Write down every NVML and CuPy question asked inside the block, then save to `path` atomically.
    Under replay it records the replay: that rewrites an old recording in today's format."""
    from devcheck.machine.replay.recording import Recording, cupy_dists

    configure()
    recording = Recording(about=_about(installed))
    recording.packages = {**cupy_dists(installed)} | {
        k: installed[k] for k in ("nvidia-ml-py", "numpy") if k in installed
    }
    _seam.recording, _seam.nvml, _seam.cupy = recording, None, None
    try:
        yield recording
    finally:
        _seam.recording, _seam.nvml, _seam.cupy = None, None, None
    recording.save(path)


def _about(installed: dict[str, str]) -> str:
    import datetime
    import platform

    from devcheck import __version__

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return (
        f"recorded by devcheck {__version__} on {stamp}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; UUIDs and serial numbers masked"
    )
