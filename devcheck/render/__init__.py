"""Report -> what people and machines see. The only layer that writes to stdout/stderr.

stdout carries data (json, markdown, github annotations); people-facing tables go to stderr, so
`devcheck env --json | jq` and `devcheck env > report.md` work while a person still sees the table.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcheck.report import Report


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"


def emit(report: Report, fmt: Format, *, quiet: bool = False, details: bool = False) -> None:
    """The report on the terminal (a table on stderr) or as data on stdout. `details`: the table shows
    every GPU's fields, not only those of GPUs with a problem."""
    if fmt is Format.table:
        if not quiet:
            from devcheck.render.console import print_report

            print_report(report, details)
        elif not report.ok and report.verdict:  # quiet, but a failure says why in one line
            write(sys.stderr, report.verdict + "\n")
    else:
        write(sys.stdout, report_text(report, fmt))


def report_text(report: Report, kind: str) -> str:
    """The report as one text: a Format's, or a report file option's (`--json-file`, `--junit`, `--summary`)."""
    from devcheck.render.text import to_github, to_json, to_markdown

    if kind == "--junit":
        from devcheck.render.junit import to_junit

        return to_junit(report, report.data.get("elapsed_s"))
    texts = {"json": to_json, "--json-file": to_json, "markdown": to_markdown, "--summary": to_markdown}
    return {**texts, "github": to_github}[kind](report)


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
