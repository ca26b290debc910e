"""Reading a fleet's reports: files, folders, globs and `-` (stdin), each holding one report, JSON Lines
(one report per line, as `srun devcheck check --json | jq -c .` gives) or reports printed one after
another (`kubectl logs` of many pods). A document starts with `{` at the start of a line; other lines
between documents (pip's chatter in a pod's log) are counted, not read. Anything that is not a devcheck
report is a `Bad` entry naming where it came from and why, never an exception.

One document is held at a time: a report is parsed, reduced by `summary.read` and dropped, so memory
grows with the fleet's measures, not with its JSON."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devcheck.report import SCHEMA_VERSION

GLOB_CHARS = set("*?[")
FOLDER_PATTERNS = ("*.json", "*.jsonl")


@dataclass(frozen=True)
class Bad:
    """An input that is not a devcheck report: where it came from and why (one line)."""

    where: str
    why: str


@dataclass
class Noise:
    """Lines that were not JSON between documents, per input (counted, never read)."""

    lines: int = 0


def expand(inputs: Iterable[str]) -> Iterator[str | Bad]:
    """Each input as paths to read (folders and globs opened up, in name order), `-` as itself; a path
    that cannot be read is a Bad entry. The same file named twice is read once."""
    seen: set[Path] = set()
    for text in inputs:
        for item in _paths(text):
            if isinstance(item, Path):
                key = item.resolve()
                if key in seen:
                    continue
                seen.add(key)
                yield str(item)
            else:
                yield item


def _paths(text: str) -> Iterator[Path | str | Bad]:
    if text == "-":
        yield "-"
        return
    path = Path(text)
    if path.is_dir():
        found = sorted({p for pattern in FOLDER_PATTERNS for p in path.glob(pattern) if p.is_file()})
        yield from found or [Bad(text, "a folder with no *.json or *.jsonl file in it")]
    elif path.exists():
        yield path
    elif GLOB_CHARS & set(text):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        yield from found or [Bad(text, "matches no file")]
    else:
        yield Bad(text, "no such file or folder")


def documents(source: str, noise: Noise) -> Iterator[tuple[str, dict] | Bad]:
    """(where, report) for each document of one source, or Bad; `-` reads stdin line by line."""
    if source == "-":
        yield from _stream("<stdin>", sys.stdin, noise)
        return
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        yield Bad(source, f"cannot read it ({getattr(e, 'strerror', None) or e})")
        return
    try:
        doc = json.loads(text)
    except ValueError:
        yield from _stream(source, text.splitlines(keepends=True), noise)
        return
    yield from (_checked(source, d) for d in (doc if isinstance(doc, list) else [doc]))


def _stream(name: str, lines: Iterable[str], noise: Noise) -> Iterator[tuple[str, dict] | Bad]:
    """Documents of a stream, each from a line starting with `{` to the next such line, a line that is
    just `}` (the end of an indented report) or the end; a stream with nothing in it is Bad."""
    buffer: list[str] = []
    start, found = 0, 0
    for number, line in enumerate(lines, 1):
        if line.startswith("{"):
            if buffer:
                found += 1
                yield _decoded(name, start, "".join(buffer))
            buffer, start = [line], number
        elif buffer:
            buffer.append(line)
            if line.rstrip("\r\n") == "}":
                found += 1
                yield _decoded(name, start, "".join(buffer))
                buffer = []
        elif line.strip():
            noise.lines += 1
    if buffer:
        found += 1
        yield _decoded(name, start, "".join(buffer))
    if not found:
        yield Bad(name, "no JSON report in it" + (f" ({noise.lines} lines of other text)" if noise.lines else ""))


def _decoded(name: str, line: int, text: str) -> tuple[str, dict] | Bad:
    where = f"{name}:{line}"
    try:
        doc, end = json.JSONDecoder().raw_decode(text)
    except ValueError as e:
        at_end = getattr(e, "pos", 0) >= len(text.rstrip())
        why = "truncated: the JSON ends before the report does" if at_end else f"not JSON ({e})"
        return Bad(where, why)
    if text[end:].strip():
        return Bad(where, "text after the report on the same document (two reports' lines mixed?)")
    return _checked(where, doc)


def _checked(where: str, doc: object) -> tuple[str, dict] | Bad:
    """A devcheck report this version can read, or why not."""
    if not isinstance(doc, dict) or doc.get("tool") != "devcheck":
        return Bad(where, 'not a devcheck report (no "tool": "devcheck")')
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return Bad(where, "no schema_version number; not a devcheck report")
    if version > SCHEMA_VERSION:
        return Bad(where, f"schema_version {version} is newer than this devcheck reads ({SCHEMA_VERSION}): upgrade it")
    if doc.get("command") == "compare":
        return Bad(where, "a compare report, not one node's report")
    if not isinstance(doc.get("host"), str) or not doc["host"]:
        return Bad(where, "no host in the report (made by an older devcheck): run it again with this one")
    if not isinstance(doc.get("data"), dict) or not isinstance(doc.get("checks"), list):
        return Bad(where, "no data or checks: not a whole devcheck report")
    return where, doc
