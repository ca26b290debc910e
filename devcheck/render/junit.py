"""JUnit XML: one test case per check, the format GitLab, Jenkins, Buildkite and GitHub's test
reporters read. A failed check is a <failure>, an error an <error>, a skip <skipped/>; a warning
passes and says so in its system-out. The class is `devcheck.HOST.COMMAND` (dots in the host name
become `_`, as a tool splits the class name at dots), so the files of many nodes gathered in one CI
view keep their cases apart; a case's time is the seconds of the work its check rests on, where the
command measured it (check's steps), else 0."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
        hostname=report.host,
    )
    host = (report.host or "unknown-host").replace(".", "_")
    for check in report.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"devcheck.{host}.{report.command}", name=check.id, time=f"{check.seconds:.3f}"
        )
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
