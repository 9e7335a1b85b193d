"""What `actstore check` reports: one `Problem` per inconsistency, gathered in a `CheckReport`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One inconsistency: what, where, how many, and whether `--repair` fixes it."""

    kind: str  # duplicate-keys, missing-sentences, unregistered-points, empty-points, point-width,
    #            indices, fragments, old-versions, stale-runs, schema-version
    table: str
    count: int
    message: str
    repairable: bool = True
    fix: str | None = None  # the command that fixes it when `--repair` cannot

    def line(self) -> str:
        return f"{self.kind}: {self.message}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class CheckReport:
    uri: str
    problems: list[Problem] = field(default_factory=list)
    #: what a user should know but that is not an inconsistency (e.g. ids shared by corpora)
    notes: list[Problem] = field(default_factory=list)
    tables: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]
