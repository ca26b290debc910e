"""Where one command's report goes, decided once at the command line, before any work: the format on
the terminal or stdout, and the report files. Every file the run will write is checked here, once,
with the files it writes itself (a checkpoint, a log, a recording) and the files it reads (a
checkpoint to resume, a baseline): two outputs naming one file, an output naming an input, or stdout
asked for twice would lose a file or mix two texts, so each is refused in one line (exit 2)."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devcheck.errors import BadInput
from devcheck.files import STDOUT, check_output
from devcheck.render import Format

REPORTS = ("--json-file", "--junit", "--summary")  # the report's files, written in this order
APPENDED = ("--summary", "--log")  # appended to or truncated, not replaced: their folder need not take a file
MAY_BE_READ = {("--save", "--resume")}  # a resumed run saves over its checkpoint: read whole before


@dataclass(frozen=True)
class Outputs:
    """`reports`: report option -> path (`-` is stdout); `writes`: the command's own output files;
    `reads`: the files it reads. Options not given are left out (None values are dropped)."""

    command: str
    asked: Format = Format.table
    as_json: bool = False
    quiet: bool = False
    details: bool = False
    reports: dict[str, Path] = field(default_factory=dict)
    writes: dict[str, Path] = field(default_factory=dict)
    reads: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("reports", "writes", "reads"):
            object.__setattr__(self, name, {k: Path(v) for k, v in getattr(self, name).items() if v is not None})

    @property
    def fmt(self) -> Format:
        return Format.json if self.as_json else self.asked

    @property
    def files(self) -> dict[str, Path]:
        """The report's files, without stdout."""
        return {option: path for option, path in self.reports.items() if str(path) != STDOUT}

    @property
    def to_stdout(self) -> list[str]:
        """The report options given `-`: their text goes to stdout."""
        return [option for option, path in self.reports.items() if str(path) == STDOUT]

    def check(self) -> None:
        """Every output, before any work; BadInput names the first problem."""
        if self.as_json and self.asked not in (Format.table, Format.json):
            raise BadInput(f"--json and --format {self.asked}: give one of them")
        self._check_stdout()
        for option, path in {**self.writes, **self.files}.items():
            check_output(option, path, replaced=option not in APPENDED)
        self._check_distinct()

    def _check_stdout(self) -> None:
        claims = ([] if self.fmt is Format.table else ["--json" if self.as_json else f"--format {self.fmt}"]) + [
            f"{option} -" for option in self.to_stdout
        ]
        if len(claims) > 1:
            raise BadInput(f"{claims[1]}: stdout already carries {claims[0]}; give a file name")
        if claims and sys.stdout is None:
            raise BadInput(f"{claims[0]}: stdout is closed: nowhere to write the report (drop `>&-`, or give a file)")

    def _check_distinct(self) -> None:
        """By identity: the same file under two names (a link, `./x`, a hard link) is one file."""
        seen: dict[object, str] = {}
        for option, path in {**self.writes, **self.files}.items():
            key = _identity(path)
            if key is None:
                continue
            if key in seen:
                raise BadInput(f"{option} {path}: the same file as {seen[key]}; give each its own file")
            seen[key] = option
        for source, path in self.reads.items():
            if str(path) == STDOUT:
                continue
            key = _identity(path)
            if key in seen and (seen[key], source) not in MAY_BE_READ:
                raise BadInput(
                    f"{seen[key]} {path}: the same file as {source}, which this run reads; write the result elsewhere"
                )


def _identity(path: Path) -> object:
    """A file's device and inode; a new file's full name; None for /dev/null or a terminal, which
    any number of outputs may share."""
    try:
        info = os.stat(path)
    except OSError:
        return path.resolve()
    return None if stat.S_ISCHR(info.st_mode) else (info.st_dev, info.st_ino)
