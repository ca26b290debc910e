"""What `devcheck train` checks before any work starts: that the network fits in memory, that its
output files can be used, and that no other run is writing them (an advisory lock per file)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devcheck.commands.train.config import Config
from devcheck.errors import BadInput

# Bytes per parameter while training, measured: 4 for the float32 weights, times about 10 for the
# gradients, Adam's two moments, the matmul temporaries of backward and the lockstep's second model
# (a 2-4096-4096-2 network, 16.8 M parameters, peaked at 676 MB above the interpreter); 12 for margin.
BYTES_PER_PARAMETER = 4 * 12


def parameters(hidden: int) -> int:
    """2 -> hidden -> hidden -> 2, with biases."""
    return (2 * hidden + hidden) + (hidden * hidden + hidden) + (hidden * 2 + 2)


def check_memory(config: Config, devices: list[Any]) -> None:
    """Refuse a --hidden that cannot fit, as bench refuses a --size: the host's available memory (80%
    of it), and each GPU's free memory (90% of it)."""
    from devcheck.machine.model.facts import facts_for
    from devcheck.machine.probes.cpu import memory_bytes

    need = parameters(config.hidden) * BYTES_PER_PARAMETER + config.samples * config.hidden * 4 * 8
    where = [("the host", memory_bytes()[1], 0.8)]
    where += [(d.name, facts_for(d.name).free_bytes, 0.9) for d in devices if d.name != "cpu"]
    for name, free, share in where:
        if free is not None and need > share * free:
            raise BadInput(
                f"--hidden {config.hidden}: training needs about {_gib(need)}, {name} has {_gib(free)} free; "
                "choose a smaller --hidden"
            )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n < 2**100 else f"{n // 2**30:,} GiB"  # a float cannot hold every int


def check_files(save: Path | None, resume: Path | None, log: Path | None) -> None:
    """--log on the --resume checkpoint would append text to it; --save onto a device or pipe would
    replace it with a file."""
    if log is not None and resume is not None and log.resolve() == resume.resolve():
        raise BadInput(f"--log {log}: the same file as --resume; give each its own file")
    if save is not None and save.exists() and not save.is_file():
        raise BadInput(f"--save {save}: exists and is not a regular file; give a file name")


@contextlib.contextmanager
def locked(files: dict[str, Path | None]) -> Iterator[None]:
    """Hold an advisory lock (flock) on a `.NAME.lock` file beside each output file for the whole run.
    A second run on the same files is refused at once (exit 2) rather than made to wait: waiting
    would look like a hang with no output, and then overwrite the first run's files anyway."""
    with contextlib.ExitStack() as stack:
        for option, path in files.items():
            if path is not None:
                stack.enter_context(_lock(option, path))
        yield


@contextlib.contextmanager
def _lock(option: str, path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        yield
        return
    lock = path.parent / f".{path.name}.lock"
    fd = _acquire(fcntl, option, path, lock)
    try:
        yield
    finally:
        if fd is not None:
            lock.unlink(missing_ok=True)  # removed while still held, so a waiting opener sees it is gone
            os.close(fd)


def _acquire(fcntl: Any, option: str, path: Path, lock: Path) -> int | None:
    """Lock `lock`; a lock file unlinked by its finishing holder after we opened it is opened again."""
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never truncate a planted link's target
        except OSError as e:
            raise BadInput(f"{option} {path}: cannot create its lock file {lock} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BadInput(
                f"{option} {path}: another devcheck run (pid {holder}) is writing this file; "
                "wait for it to end or give another file"
            ) from None
        except OSError:  # a filesystem without locks: go on unlocked, as before
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise BadInput(f"{option} {path}: its lock file {lock} keeps changing; another run is starting on it")
