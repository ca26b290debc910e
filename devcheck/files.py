"""Files devcheck writes (reports, recordings) are whole or absent, never half written, and readable
as any file the user makes (mkstemp alone would leave them private). The engine keeps its own copy
of this for checkpoints, since it imports nothing of the rest of devcheck."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/null, a FIFO): written to, never replaced
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    import tempfile  # only when a file is written: its import (random, hashlib) is a cost every run would pay

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
