"""Plain-text renderers: JSON for machines, Markdown for bug reports, GitHub workflow commands."""

from __future__ import annotations

import json
import math

from devcheck.render.values import field_text, show
from devcheck.report import Report, Status

_MARK = {Status.OK: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.ERROR: "💥", Status.SKIP: "➖", Status.NA: "➖"}


def to_json(report: Report) -> str:
    return json.dumps(_finite(report.to_dict()), indent=2, default=str, allow_nan=False) + "\n"


def _finite(value: object) -> object:
    """Infinity and NaN as null: JSON has neither, and jq or a strict parser refuse Python's spelling
    (a fleet member's absurd rate gives an infinite ratio)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _text(text: str) -> str:
    """Plain text inside Markdown: `a**2*x` must not turn bold."""
    return text.replace("*", "\\*")


def _cell(value: object) -> str:
    return _text(show(value)).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def to_markdown(report: Report) -> str:
    """Meant to be pasted into a bug report as is (like `spacy info --markdown`)."""
    lines = [f"## devcheck {report.command}", ""]
    if report.verdict:
        lines += [f"**{report.verdict}**", ""]
    if report.checks:
        lines += _table(
            ["", "check", "summary", "detail / fix"],
            [
                [_MARK[c.status], c.id, c.summary, " — ".join(x for x in (c.detail, c.fix and f"fix: {c.fix}") if x)]
                for c in report.checks
            ],
        )
    for s in (s for s in report.sections if s.shown):
        lines += [f"### {_text(s.title)}", ""]
        if s.rows:
            header = list(s.rows[0])
            lines += _table(header, [[r.get(h) for h in header] for r in s.rows])
            lines += [f"_{_text(s.caption)}_", ""] if s.caption else []
        else:
            lines += _table(["field", "value", "source"], [[n, field_text(f), f.source] for n, f in s.fields.items()])
    return "\n".join(lines) + "\n"


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def to_github(report: Report) -> str:
    """GitHub Actions workflow commands: one annotation per check that is not fine."""
    level = {Status.FAIL: "error", Status.ERROR: "error", Status.WARN: "warning"}
    lines = []
    for c in report.checks:
        if c.status in level:
            message = " ".join(x for x in (c.summary + ".", c.detail, c.fix and f"Fix: {c.fix}") if x)
            title = _escape(f"devcheck {report.command}: {c.id}", prop=True)
            lines.append(f"::{level[c.status]} title={title}::{_escape(message)}")
    if report.verdict:
        lines.append(f"::notice title=devcheck {report.command}::{_escape(report.verdict)}")
    return "\n".join(lines) + "\n"
