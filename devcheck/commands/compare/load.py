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
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devcheck.errors import BadInput
from devcheck.report import SCHEMA_VERSION

GLOB_CHARS = set("*?[")
FOLDER_PATTERNS = ("*.json", "*.jsonl")
CHUNK = 1 << 20
MAX_FILE = 4 << 30  # one file of reports; 1,000 nodes' check reports are 150 MB
NEXT_REPORT = re.compile(r'\{\s*"schema_version"')  # how every devcheck report begins (--json, jq -c)


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
    """Each input as paths to read (folders, with the folders inside them, and globs opened up, in name
    order), `-` as itself; a path that cannot be read is a Bad entry. The same file named twice is read once."""
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


def refuse_overwriting(inputs: Iterable[str], outputs: dict[str, Path | None]) -> None:
    """An output that is also a report being read (a file, one in a folder or glob, or stdin
    redirected from it; hard links too: files are compared by device and inode) would be replaced by,
    or appended with, the comparison it is read into: refused before anything is read or written.
    An earlier compare report in a compared folder may be replaced: it is never read as a node's."""
    read = {_identity(item) for item in expand(inputs) if isinstance(item, str) and item != "-"}
    if "-" in inputs:
        try:
            if stat.S_ISREG(os.fstat(0).st_mode):  # `< file`
                read.add(_identity(0))
        except OSError:  # no stdin at all: compare says so when it reads it
            pass
    for option, path in outputs.items():
        if path is None or not path.is_file() or _identity(path) not in read or _compare_report(path):
            continue
        raise BadInput(f"{option} {path}: it is one of the reports being compared; write the result elsewhere")


def _identity(file: str | Path | int) -> tuple[int, int]:
    info = os.fstat(file) if isinstance(file, int) else os.stat(file)
    return info.st_dev, info.st_ino


def _compare_report(path: Path) -> bool:
    """devcheck compare's own JSON names its command near the top."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return '"command": "compare"' in f.read(4096)
    except OSError:
        return False


def _paths(text: str) -> Iterator[Path | str | Bad]:
    if text == "-":
        yield "-"
        return
    path = Path(text)
    try:
        if path.is_dir():
            # and in the folders below: Ansible's `fetch` writes DEST/<host>/<path of the file>
            found = sorted({p for pattern in FOLDER_PATTERNS for p in path.rglob(pattern) if p.is_file()})
            if not found and not os.access(path, os.R_OK | os.X_OK):
                yield Bad(text, "cannot read this folder (permission denied)")
                return
            yield from found or [Bad(text, "a folder with no *.json or *.jsonl file in it")]
            return
        exists = path.exists()
    except OSError as e:  # a path under a folder this user cannot enter
        yield Bad(text, f"cannot read it ({e.strerror or e})")
        return
    if exists:
        yield path
    elif GLOB_CHARS & set(text):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        yield from found or [Bad(text, "matches no file")]
    else:
        yield Bad(text, "no such file or folder")


def documents(source: str, noise: Noise) -> Iterator[tuple[str, dict] | Bad]:
    """(where, report) for each document of one source, or Bad; `-` reads stdin a megabyte at a time."""
    if source == "-":
        yield from _stream("<stdin>", iter(lambda: sys.stdin.read(CHUNK), ""), noise)
        return
    try:
        info = os.stat(source)
        if not stat.S_ISREG(info.st_mode):  # a FIFO with no writer would hang, /dev/zero never ends
            yield Bad(source, "not a regular file (a pipe or a device): use `-` to read a stream")
            return
        if info.st_size > MAX_FILE:
            yield Bad(
                source, f"{info.st_size / 2**20:,.0f} MiB: larger than any devcheck report set ({MAX_FILE >> 20} MiB)"
            )
            return
        text = Path(source).read_text(encoding="utf-8-sig")  # -sig: a BOM, as Windows tools write
    except (OSError, UnicodeDecodeError) as e:
        yield Bad(source, f"cannot read it ({getattr(e, 'strerror', None) or e})")
        return
    try:
        doc = json.loads(text)
    except RecursionError:
        yield Bad(source, "not a devcheck report (JSON nested too deep)")
        return
    except ValueError:
        yield from _stream(source, iter([text]), noise)
        return
    if isinstance(doc, list):  # an array of reports: each named by its place, so two never share a name
        yield from (_checked(f"{source}[{i}]", d) for i, d in enumerate(doc))
    else:
        yield _checked(source, doc)


def _stream(name: str, chunks: Iterator[str], noise: Noise) -> Iterator[tuple[str, dict] | Bad]:
    """The documents of a stream: each runs from a line starting with `{` to the next such line (found
    by the regex engine, not a Python loop over lines); text before the first is counted as noise; a
    stream with no document is Bad, and so is one in a Markdown code block (a README's example)."""
    buffer, line, found, tail = "", 1, 0, ""  # tail: the last line before the next document
    for chunk in _with_end(chunks):
        buffer += chunk or ""
        starts = _starts(buffer)
        cut = starts[0] if starts else len(buffer) if chunk is None else buffer.rfind("\n") + 1
        if cut:  # only before the first document: later text between documents ends the one before
            noise.lines += _lines(buffer[:cut])
            line += buffer.count("\n", 0, cut)
            tail = _last_line(buffer[:cut]) or tail
            buffer, starts = buffer[cut:], [p - cut for p in starts]
        ends = starts[1:] + ([len(buffer)] if chunk is None and starts else [])
        for begin, stop in zip(starts, ends):
            found += 1
            text = buffer[begin:stop]
            if (_last_line(buffer[:begin]) if begin else tail).lstrip().startswith(("```", "~~~")):
                where = f"{name}:{line}" if line > 1 or name == "<stdin>" else name
                yield Bad(where, "a JSON example in a Markdown code block, not a report")
            else:
                yield from _decoded(name, line, text, noise)
            line += text.count("\n")
            tail = _last_line(text)
        if ends:
            buffer = buffer[ends[-1] :]
    if not found:
        yield Bad(name, "no JSON report in it" + (f" ({noise.lines} lines of other text)" if noise.lines else ""))


def _starts(text: str) -> list[int]:
    """Where lines starting with `{` start (str.find: ten times a multiline regex's speed)."""
    found = [0] if text.startswith("{") else []
    at = text.find("\n{")
    while at >= 0:
        found.append(at + 1)
        at = text.find("\n{", at + 2)
    return found


def _with_end(chunks: Iterator[str]) -> Iterator[str | None]:
    yield from chunks
    yield None


def _last_line(text: str) -> str:
    return text.rstrip().rpartition("\n")[2]


def _lines(text: str) -> int:
    return sum(1 for part in text.splitlines() if part.strip())


def _decoded(name: str, line: int, text: str, noise: Noise) -> Iterator[tuple[str, dict] | Bad]:
    """One document (and text after it, counted as noise), or why not. A report cut short with the next
    one on its last line (a node killed mid-write) is split where the next report starts."""
    where = f"{name}:{line}" if line > 1 or name == "<stdin>" else name
    try:
        doc, end = json.JSONDecoder().raw_decode(text)
    except RecursionError:
        yield Bad(where, "not a devcheck report (JSON nested too deep)")
        return
    except ValueError as e:
        nested = NEXT_REPORT.search(text, 1)
        if nested is not None:
            yield Bad(where, "truncated: the next report starts before this one ends")
            yield from _decoded(name, line + text.count("\n", 0, nested.start()), text[nested.start() :], noise)
            return
        # cut short: it ends inside a string (no closing quote anywhere after it) or where more was expected
        at_end = str(e).startswith("Unterminated string") or getattr(e, "pos", 0) >= len(text.rstrip())
        yield Bad(where, "truncated: the JSON ends before the report does" if at_end else f"not JSON ({e})")
        return
    noise.lines += _lines(text[end:])
    yield _checked(where, doc)


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
    if not doc["host"].isprintable():  # terminal escapes or newlines would reach tables and metrics
        return Bad(where, f"its host {doc['host']!r} has control characters: not a host name")
    if not isinstance(doc.get("data"), dict) or not isinstance(doc.get("checks"), list):
        return Bad(where, "no data or checks: not a whole devcheck report")
    return where, doc
