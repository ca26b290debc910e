"""What a comparison found, as the output and the Prometheus file read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from devcheck.commands.compare.load import Bad
from devcheck.commands.compare.outliers import Group
from devcheck.commands.compare.summary import Node


@dataclass
class Comparison:
    hosts: dict[str, Node]
    groups: list[Group]
    drift: list[dict]
    floors: list[dict] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)
    superseded: list[Node] = field(default_factory=list)
    noise: int = 0
    fail_on: tuple[str, ...] = ()
