"""The records every command returns and every renderer reads: the contract between the two.

A command never prints: it builds a Report of Checks (judgements, each with its reason and fix)
and Sections (facts, each saying where it came from), and the renderer decides how people or
machines see them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from devcheck import __version__

Progress = Callable[..., None]  # a command's progress callback: step(label) and step(label, advance=1), or total=


def no_progress(*args: Any, **kwargs: Any) -> None:
    """The progress of a command run without a screen (a test, a library call)."""


SCHEMA_VERSION = 1


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"
    NA = "n/a"


FAILING = frozenset({Status.FAIL, Status.ERROR})


@dataclass(frozen=True)
class Check:
    """A judgement: is this aspect of the machine fine? Anything not ok carries why and what to do."""

    id: str
    status: Status
    summary: str
    detail: str = ""
    fix: str = ""
    # seconds of the work the judgement rests on, where the command measured it (check's steps): JUnit's
    # time; 0 where it did not. Not in the JSON report, whose checks are judgements, not timings.
    seconds: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, str]:
        out = {"id": self.id, "status": str(self.status), "summary": self.summary}
        if self.detail:
            out["detail"] = self.detail
        if self.fix:
            out["fix"] = self.fix
        return out

    @classmethod
    def crashed(cls, check_id: str, status: Status, what: str, e: BaseException, fix: str) -> Check:
        """An exception as one check: its type and first line, never a traceback, so every format keeps
        it on one line. `status`: ERROR where devcheck itself broke (a probe, a benchmark case), FAIL where
        a gate must fail closed (a check step)."""
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return cls(check_id, status, f"{what} {type(e).__name__}" + (f": {text}" if text else ""), fix=fix)


V = TypeVar("V")


@dataclass(frozen=True)
class Field(Generic[V]):
    """A fact, with the API it was read from and whether it could be read at all. `Field[int]`: a fact whose
    value is an int where it could be read (None where not: see its status)."""

    value: V
    source: str
    status: Status = Status.OK
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"value": self.value, "source": self.source, "status": str(self.status)}
        if self.note:
            out["note"] = self.note
        return out


def na(source: str, note: str) -> Field:
    return Field(None, source, Status.NA, note)


@dataclass
class Section:
    """A titled group of facts (fields) or a table of records (rows); `group` makes JSON a list.
    Names are labels for people ("memory total MiB"); JSON gets them in snake_case ("memory_total_mib"),
    except where the names are identifiers already (environment variables). A table with no rows is
    still one: [] in JSON (an interrupted run's, say), and nothing to show people."""

    key: str
    title: str
    fields: dict[str, Field] = field(default_factory=dict)
    rows: list[dict[str, Any]] | None = None  # a table, or None: a group of fields
    group: str = ""
    caption: str = ""  # notes on the rows, printed under the table
    names_are_identifiers: bool = False

    @property
    def shown(self) -> bool:
        return self.rows is None or bool(self.rows)

    def data(self) -> dict[str, Any] | list[dict[str, Any]]:
        if self.rows is not None:
            return [{snake(name): value for name, value in row.items()} for row in self.rows]
        key = (lambda name: name) if self.names_are_identifiers else snake
        return {key(name): f.to_dict() for name, f in self.fields.items()}


def snake(label: str) -> str:
    """A label for people as a JSON key: "median ms" -> median_ms, "% peak" -> percent_peak,
    "GFLOP/s" -> gflop_per_s, "± %" -> spread_percent."""
    text = label.replace("%", " percent ").replace("±", " spread ").replace("/", " per ")
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


@dataclass
class Chart:
    """A picture for people (the data is in `data` already): `line` draws one sparkline per
    series, `bar` one bar per series' last value."""

    title: str
    series: dict[str, list[float]]
    kind: str = "line"
    unit: str = ""


@dataclass
class Findings:
    """What one probe contributes to a report."""

    sections: list[Section] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def add(self, other: Findings) -> None:
        self.sections.extend(other.sections)
        self.checks.extend(other.checks)


def _host() -> str:
    """DEVCHECK_HOST when set (a pod's node name, from Kubernetes' downward API), else this machine's."""
    import os

    named = os.environ.get("DEVCHECK_HOST", "").strip()
    return named or (os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", ""))


def _run_id() -> str:
    import os
    import time

    return time.strftime("%Y%m%dT%H%M%SZ-", time.gmtime()) + os.urandom(4).hex()


@dataclass
class Report:
    command: str
    verdict: str = ""
    checks: list[Check] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)
    host: str = field(default_factory=_host)  # which node, when a fleet's reports are compared
    run_id: str = field(default_factory=_run_id)  # UTC start time and a random part: unique per run
    interrupted: str = ""  # why the run ended early (Ctrl-C, a signal): the report holds what it got to

    def add(self, findings: Findings) -> None:
        self.sections.extend(findings.sections)
        self.checks.extend(findings.checks)

    @property
    def ok(self) -> bool:
        return not self.interrupted and not any(c.status in FAILING for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status in FAILING), None)

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for s in self.sections:
            if s.group:
                data.setdefault(s.group, []).append(s.data())
            else:
                data[s.key] = s.data()
        data.update(self.data)
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "devcheck",
            "tool_version": __version__,
            "command": self.command,
            "host": self.host,
            "run_id": self.run_id,
            "ok": self.ok,
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
            "data": data,
        } | ({"interrupted": True} if self.interrupted else {})
