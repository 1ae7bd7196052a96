"""Coverage of a Hypothesis campaign: the fraction of the reachable states, and of the reachable
transitions, that the campaign's runs visited.

Sampling says what it found, not what it missed. For a scope the explicit engine can enumerate,
the reachable state graph is the denominator: a Hypothesis run collects the states it visited and
the (state, instance) pairs it stepped (``run.states``, ``run.transitions`` of the engine's run;
:func:`properties.engines.hypothesis_engine.run_hypothesis` hands them over through ``on_run``),
and :func:`measure` counts them against the explicit engine's :class:`StateSpace` (explored
without symmetry reduction, so that states are counted as themselves). A visited state missing
from the reachable set would mean the two engines run different models; it is counted apart
(``outside``) and must be 0.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Sequence

from model.machine import Model

from ..engines.explicit import Budget, StateSpace, explore
from ..engines.hypothesis_engine import run_hypothesis
from ..engines.interface import Budget as EngineBudget, EngineResult
from ..property import Property
from ..verdict import Verdict

__all__ = ["Coverage", "measure", "campaign_coverage", "with_coverage", "format_coverage", "COVERAGE_BUDGET",
           "CoverageEngine"]


@dataclass(frozen=True)
class Coverage:
    exporter: str
    scope: str
    states_visited: int
    states_reachable: int
    transitions_visited: int
    transitions_reachable: int
    outside: int = 0                 # visited states the explicit engine did not reach (must be 0)

    @property
    def state_fraction(self) -> float:
        return self.states_visited / self.states_reachable if self.states_reachable else 0.0

    @property
    def transition_fraction(self) -> float:
        return self.transitions_visited / self.transitions_reachable if self.transitions_reachable else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "states_visited": self.states_visited,
                "states_reachable": self.states_reachable, "state_fraction": round(self.state_fraction, 6),
                "transitions_visited": self.transitions_visited,
                "transitions_reachable": self.transitions_reachable,
                "transition_fraction": round(self.transition_fraction, 6), "outside": self.outside}

    def line(self) -> str:
        return (f"{self.exporter}: {self.states_visited} of {self.states_reachable} reachable states "
                f"({100 * self.state_fraction:.2f}%), {self.transitions_visited} of "
                f"{self.transitions_reachable} transitions ({100 * self.transition_fraction:.2f}%)"
                + (f"; {self.outside} visited states NOT REACHABLE" if self.outside else ""))


def measure(space: StateSpace, states: Iterable[Sequence[Any]],
            transitions: Iterable[tuple[Sequence[Any], int]]) -> Coverage:
    """Count visited states and (state, instance) steps against the complete space."""
    if space.symmetry:
        raise ValueError("coverage is counted on a space explored without symmetry reduction")
    if not space.complete:
        raise ValueError("coverage needs the whole reachable set; the exploration was cut short")
    states = list(dict.fromkeys(tuple(s) for s in states))
    ids = space.lookup(states)
    inside = int((ids >= 0).sum())
    steps = {(tuple(s), i) for s, i in transitions}
    return Coverage(space.model.policy.name, space.model.scope.name, inside, space.n_states,
                    len(steps), space.transitions, len(states) - inside)


COVERAGE_BUDGET = Budget(states=20_000_000)   # a scope with more reachable states gets no figure


def campaign_coverage(model: Model, props: Iterable[Property], examples: int, seed: int, steps: int,
                      space: StateSpace | None = None, budget: Budget | None = COVERAGE_BUDGET,
                      progress: Callable[[str], None] | None = None,
                      **hypothesis_args: Any) -> tuple[list[Verdict], Coverage | None]:
    """Run one Hypothesis campaign on ``model`` and measure its coverage; the verdicts carry the
    figures in their evidence (``coverage``). A scope the explicit engine cannot enumerate within
    ``budget`` gets no figure (``None``; the evidence says why)."""
    got: list[Any] = []
    verdicts = run_hypothesis(model, props, examples=examples, seed=seed, steps=steps, progress=progress,
                              on_run=got.append, **hypothesis_args)
    if space is None:
        space = explore(model, (), budget=budget, keep_edges=False, progress=progress)
    if not space.complete:
        note = {"scope": model.scope.name, "unknown": f"the scope has more than {space.n_states} reachable "
                f"states: the explicit engine's budget ran out before it had them all"}
        return [dataclasses.replace(v, evidence={**v.evidence, "coverage": note}) for v in verdicts], None
    cov = measure(space, got[0].states, got[0].transitions)
    return with_coverage(verdicts, cov), cov


def with_coverage(verdicts: Sequence[Verdict], cov: Coverage) -> list[Verdict]:
    """The verdicts with the coverage figures added to their evidence."""
    return [dataclasses.replace(v, evidence={**v.evidence, "coverage": cov.to_json()}) for v in verdicts]


def format_coverage(verdicts: Sequence[Verdict]) -> list[str]:
    """Lines for a campaign table: one per exporter whose verdicts carry coverage figures."""
    out, seen = [], set()
    for v in verdicts:
        c = v.evidence.get("coverage")
        if c and v.exporter not in seen:
            seen.add(v.exporter)
            if "unknown" in c:
                out.append(f"- {v.exporter}: no figure: {c['unknown']}")
                continue
            out.append(f"- {v.exporter}: {c['states_visited']} of {c['states_reachable']} reachable states "
                       f"({100 * c['state_fraction']:.2f}%), {c['transitions_visited']} of "
                       f"{c['transitions_reachable']} transitions ({100 * c['transition_fraction']:.2f}%)")
    if out:
        scope = next(v.evidence["coverage"]["scope"] for v in verdicts if v.evidence.get("coverage"))
        out.insert(0, f"Coverage of the reachable state graph (explicit engine, scope {scope}):")
        out.append("")
    return out


@dataclass(frozen=True)
class CoverageEngine:
    """A Hypothesis run measured against the whole reachable graph, behind the engine interface
    (``properties.engines.interface``): the Hypothesis engine's verdicts, each carrying the figures
    (``evidence["coverage"]``)."""

    seed: int = 1
    name: ClassVar[str] = "hypothesis"

    def check(self, model: Model, props: Sequence[Property], budget: EngineBudget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        started = time.monotonic()
        verdicts, cov = campaign_coverage(model, props, budget.examples or 300, self.seed, budget.steps or 30,
                                          progress=progress)
        ev = verdicts[0].evidence if verdicts else {}
        summary = {k: ev.get(k, 0) for k in ("examples", "rounds", "states", "steps")}
        if cov is not None:
            summary["coverage"] = cov.to_json()
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision, verdicts,
                            time.monotonic() - started, summary)
