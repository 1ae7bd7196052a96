"""The explicit-state engine behind the engine interface (``properties.engines.interface``):
every reachable state of the model's scope (``properties.engines.explicit``), and, on a complete
graph, the stuck states (``properties.engines.stuck``)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

from model.machine import Model

from ..registry import Property
from .explicit import check
from .interface import Budget, EngineResult

__all__ = ["ExplicitEngine"]


@dataclass(frozen=True)
class ExplicitEngine:
    """``symmetry``: merge states that differ only in interchangeable slots; ``keep_edges``:
    keep the graph's edges (graph export, stuck states); ``stuck``: look for stuck states once the
    graph is complete (``extras["stuck"]``). The budget's ``states``, ``seconds``, ``depth`` and
    ``memory`` bound the search; a cut search says ``unknown`` for what it did not find."""

    symmetry: bool = False
    keep_edges: bool = True
    stuck: bool = False
    name: ClassVar[str] = "explicit"

    def check(self, model: Model, props: Sequence[Property], budget: Budget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        started = time.monotonic()
        space, verdicts = check(model, props, symmetry=self.symmetry, budget=budget, progress=progress,
                                keep_edges=self.keep_edges or self.stuck)
        extras = {}
        if self.stuck and space.complete and not (space.symmetry and model.scope.buffers > 1):
            from .stuck import find_stuck
            extras["stuck"] = find_stuck(space)
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision, verdicts,
                            time.monotonic() - started, space.summary(), extras, space)
