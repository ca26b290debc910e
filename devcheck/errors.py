"""The one exception commands raise on purpose: bad input from the user (exit 2, one line)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class BadInput(ValueError):
    """A value the user gave that devcheck cannot use; the message names it and what is allowed."""


def check_writable(option: str, path: Path) -> None:
    """A file option's path must be writable, checked for real before any work starts: a probe file is
    created in its folder and removed at once, and an existing file is opened for appending (nothing
    written, so it stays as it was), so `/proc/x`, a read-only folder or `/dev/full` fail here, not
    after the whole run."""
    if path.is_dir():
        raise BadInput(f"{option} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise BadInput(f"{option} {path}: the folder {path.parent} does not exist")
    if path.exists():
        _check_existing(option, path)
        return
    import tempfile  # only when a file option is given: its import costs every run a millisecond

    try:
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".devcheck-probe-")
    except OSError as e:
        raise BadInput(f"{option} {path}: cannot create a file in {path.parent} ({e.strerror})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def _check_existing(option: str, path: Path) -> None:
    """An existing file must open for appending; a device (`/dev/full`) must also accept an empty write."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    except OSError as e:
        raise BadInput(f"{option} {path}: cannot write to it ({e.strerror})") from None
    try:
        if stat.S_ISCHR(os.fstat(fd).st_mode):
            os.write(fd, b"")
    except OSError as e:
        raise BadInput(f"{option} {path}: cannot write to it ({e.strerror})") from None
    finally:
        os.close(fd)
