"""Three-valued verdicts with evidence (docs/design.md, point 7): holds, violated, unknown, proved.

``unknown`` is never a pass: a verdict matches its expectation only when it is exactly what was
expected (``proved`` also satisfies an expected ``holds``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .property import Property
from .trace import Trace

__all__ = ["Verdict", "VERDICTS", "make_verdict"]

VERDICTS = ("holds", "violated", "unknown", "proved")


@dataclass(frozen=True)
class Verdict:
    property: str
    claims: tuple[str, ...]
    party: str
    kind: str
    exporter: str
    engine: str
    verdict: str
    expected: str | None
    evidence: dict[str, Any] = field(default_factory=dict)
    trace: Trace | None = field(default=None, repr=False)
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    @property
    def as_expected(self) -> bool:
        if self.expected is None:
            return True
        if self.expected == "holds":
            return self.verdict in ("holds", "proved")
        return self.verdict == self.expected

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.property, "claims": list(self.claims), "party": self.party,
            "kind": self.kind, "exporter": self.exporter, "engine": self.engine,
            "verdict": self.verdict, "expected": self.expected, "evidence": self.evidence,
            "trace": self.trace.to_json() if self.trace is not None else None,
            **({"note": self.note} if self.note else {}),
        }


def make_verdict(prop: Property, exporter: str, engine: str, verdict: str, expected: str | None,
                 evidence: dict[str, Any], trace: Trace | None = None, note: str = "") -> Verdict:
    return Verdict(prop.id, prop.claims, prop.party, prop.kind, exporter, engine, verdict, expected,
                   evidence, trace, note)
