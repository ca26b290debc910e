"""Report -> what people and machines see. The only layer that writes to stdout/stderr.

stdout carries data (json, markdown, github annotations); people-facing tables go to stderr, so
`devcheck env --json | jq` and `devcheck env > report.md` work while a person still sees the table.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcheck.report import Report


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"


def emit(
    report: Report,
    fmt: Format,
    *,
    quiet: bool = False,
    summary: Path | None = None,
    junit: Path | None = None,
    json_file: Path | None = None,
    details: bool = False,
) -> None:
    """`details`: the table shows every GPU's fields, not only those of GPUs with a problem."""
    from devcheck.files import write_atomic
    from devcheck.render.text import to_github, to_json, to_markdown

    if fmt is Format.table:
        if not quiet:
            from devcheck.render.console import print_report

            print_report(report, details)
        elif not report.ok and report.verdict:  # quiet, but a failure says why in one line
            write(sys.stderr, report.verdict + "\n")
    else:
        text = {Format.json: to_json, Format.markdown: to_markdown, Format.github: to_github}[fmt](report)
        write(sys.stdout, text)
    if summary is not None:
        # GitHub's $GITHUB_STEP_SUMMARY is appended to, one step after another.
        with open(summary, "a", encoding="utf-8") as f:
            f.write(to_markdown(report))
    if junit is not None:
        from devcheck.render.junit import to_junit

        write_atomic(junit, to_junit(report, report.data.get("elapsed_s")))
    if json_file is not None:
        write_atomic(json_file, to_json(report))


ASCII = {"✅": "ok", "⚠️": "warn", "❌": "FAIL", "💥": "ERROR", "➖": "-", "—": "-", "→": "->", "±": "+-", "…": "..."}


def write(stream, text: str) -> None:
    """Text in the stream's own encoding: on an ASCII terminal (LC_ALL=C) marks become words."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        for symbol, word in ASCII.items():
            text = text.replace(symbol, word)
        encoding = stream.encoding or "ascii"
        stream.write(text.encode(encoding, errors="replace").decode(encoding))
    stream.flush()


def error_line(message: str) -> None:
    """One line on stderr for a bad input or an internal error (never a traceback); on stdout when
    stderr is closed or full."""
    for stream in (sys.stderr, sys.stdout):
        try:
            stream.write(f"devcheck: error: {message}\n")
            stream.flush()
            return
        except (OSError, AttributeError, ValueError):
            continue
