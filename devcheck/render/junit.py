"""JUnit XML: one test case per check, the format GitLab, Jenkins, Buildkite and GitHub's test
reporters read. A failed check is a <failure>, an error an <error>, a skip <skipped/>; a warning
passes and says so in its system-out."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from devcheck.report import Report, Status


def to_junit(report: Report, seconds: float | None = None) -> str:
    counts = {status: sum(c.status is status for c in report.checks) for status in Status}
    suite = ET.Element(
        "testsuite",
        name=f"devcheck {report.command}",
        tests=str(len(report.checks)),
        failures=str(counts[Status.FAIL]),
        errors=str(counts[Status.ERROR]),
        skipped=str(counts[Status.SKIP] + counts[Status.NA]),
        time=f"{seconds or 0:.3f}",
    )
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", classname=f"devcheck.{report.command}", name=check.id)
        text = "\n".join(x for x in (check.summary, check.detail, check.fix and f"fix: {check.fix}") if x)
        if check.status is Status.FAIL:
            ET.SubElement(case, "failure", message=check.summary).text = text
        elif check.status is Status.ERROR:
            ET.SubElement(case, "error", message=check.summary).text = text
        elif check.status in (Status.SKIP, Status.NA):
            ET.SubElement(case, "skipped", message=check.summary)
        else:
            ET.SubElement(case, "system-out").text = f"{check.status}: {text}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(report: Report, path: Path, seconds: float | None = None) -> None:
    """Atomically: a CI reporter never reads half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(to_junit(report, seconds))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
