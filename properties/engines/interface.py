"""One engine interface: every engine takes a compiled model, the properties and a budget, and
returns one result type.

In the spirit of stateright's ``model.checker().spawn_bfs()``: the model (``model.machine.Model``:
a policy, a scope and a revision, compiled) and the properties are the same for every engine; what
differs is how an engine explores, which an :class:`Engine` says with its own options (a seed,
symmetry reduction, induction) and a :class:`Budget`. Every engine returns an
:class:`EngineResult`: one :class:`~properties.verdict.Verdict` per property that applies to the
model, each with its evidence and, where there is one, its trace; nothing judged yet (the
expectations are ``properties.judge``'s).

Each verdict's evidence states what it covers (``guarantee``, with the scope it covers):

* ``exhaustive``: every reachable state and transition of the scope (the explicit engine on a
  complete graph, or an induction proof, which covers every depth);
* ``bounded``: every run of up to ``depth`` steps (Z3's bounded model checking);
* ``sampled``: the runs an engine drew (Hypothesis: ``examples`` examples, ``steps`` steps in all).

A ``holds`` never claims more than its guarantee, and an engine whose search was cut by its budget
says ``unknown`` for what it did not find.

Engines are small frozen records, so that a worker process, or a machine of a Dask cluster, can be
handed one (``properties.runs.runner``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from model.machine import Model

from ..property import Property
from ..verdict import Verdict

__all__ = ["Budget", "EngineResult", "Engine", "GUARANTEES", "covers"]

GUARANTEES = ("exhaustive", "bounded", "sampled")


@dataclass(frozen=True)
class Budget:
    """What an engine may spend; ``None`` is no bound. Each engine reads the fields that mean
    something to it and ignores the rest."""

    seconds: float | None = None     # wall-clock time of the whole run
    states: int | None = None        # explicit: states enumerated
    memory: int | None = None        # explicit: bytes of resident memory
    depth: int | None = None         # explicit: BFS levels; Z3: steps of the bounded checks
    examples: int | None = None      # Hypothesis: examples per round
    steps: int | None = None         # Hypothesis: steps per example
    rounds: int | None = None        # Hypothesis: rounds at most
    timeout: float | None = None     # Z3: seconds per solver query


@dataclass
class EngineResult:
    """What one engine found on one model: a verdict per property that applies to it.

    ``summary`` says what the run covered, for reports (states, depth, examples, ...);
    ``extras`` holds what a front-end may ask of a particular engine (the explicit engine's
    stuck states); ``space`` is the explicit engine's state graph, kept only in the process that
    ran it (it does not cross to another process)."""

    engine: str
    exporter: str
    scope: str
    revision: str
    verdicts: list[Verdict]
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    space: Any = None

    def __getstate__(self) -> dict[str, Any]:   # the state graph stays in its process
        return {**self.__dict__, "space": None}


@runtime_checkable
class Engine(Protocol):
    """``check(model, props, budget)``: the verdicts of the properties of ``props`` that apply to
    the model's policy, scope and revision."""

    name: str

    def check(self, model: Model, props: Sequence[Property], budget: Budget,
              progress: Callable[[str], None] | None = None) -> EngineResult: ...


def covers(guarantee: str, scope: str, **figures: Any) -> dict[str, Any]:
    """The evidence entry that states a guarantee: ``covers("bounded", "small", depth=6)``."""
    if guarantee not in GUARANTEES:
        raise ValueError(f"unknown guarantee {guarantee!r}; known: {', '.join(GUARANTEES)}")
    return {"guarantee": guarantee, "scope": scope, **figures}
