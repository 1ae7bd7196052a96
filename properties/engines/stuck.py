"""Stuck states: reachable states from which an obligation can never be discharged, whatever the
actors do next; found on the explicit engine's state graph.

No single state need be wrong for a resource to leak: a pin taken by a ``begin_cpu_access`` that
then failed, a buffer released while its storage is still pinned. Such leaks show as states from
which no path leads back to a clean one. For each *goal* (a predicate on states: the buffer is
released, its pins are all dropped, no attachment holds a ``dma_buf_pin``: ``properties.goals``,
written in the property vocabulary and citing their claims), a state is **stuck**
when its obligation is *pending* (the buffer is live; a pin is held) and no path from it reaches a
state where the goal holds. Computed by backward reachability from the goal states over the graph's
edges (numpy, linear in the edges; :func:`stuck_states`), and, for graphs small enough for
networkx, by the condensation of the graph into strongly connected components
(:func:`stuck_states_networkx`, which the tests use to cross-check).

Each finding gives the number of stuck states and a shortest trace to one of them (states are
numbered in BFS order, so the first stuck state is a shallowest one).

Under symmetry reduction, a goal must be invariant under the permutations the reduction applies:
goals that name one buffer are, when the scope has one buffer (slot permutations leave buffer
fields alone); with several buffers the analysis needs a search without the reduction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TYPE_CHECKING

import numpy as np

from .. import interrupt
from ..goals import goals_for_scope
from ..property import StateView
from ..trace import Trace
from .vectorize import columns, state_predicates

if TYPE_CHECKING:  # annotations only: the explicit engine imports this module
    from .explicit import StateSpace

__all__ = ["Goal", "StuckFinding", "goals_for", "stuck_states", "stuck_states_networkx", "find_stuck",
           "can_reach"]


@dataclass(frozen=True)
class Goal:
    """A goal of ``properties.goals`` evaluated on a state graph: ``pending(states)`` and
    ``done(states)`` give a mask over the ``N x width`` state matrix."""

    name: str
    doc: str
    pending: Callable[[np.ndarray], np.ndarray]
    done: Callable[[np.ndarray], np.ndarray]
    claims: tuple[str, ...] = ()


@dataclass(frozen=True)
class StuckFinding:
    goal: str
    doc: str
    stuck: int                 # how many reachable states are stuck for this goal
    pending: int               # how many reachable states have the obligation pending
    first: int                 # a shallowest stuck state
    trace: Trace               # a shortest trace to it
    claims: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"goal": self.goal, "claims": list(self.claims), "doc": self.doc, "stuck_states": self.stuck,
                "pending_states": self.pending, "trace_length": len(self.trace),
                "trace": self.trace.to_json()}


def goals_for(space: StateSpace) -> list[Goal]:
    """The goals of ``properties.goals`` for the space's scope and revision, their predicates
    compiled to numpy (``properties.engines.vectorize.state_predicates``)."""
    model = space.model
    view = StateView(model.schema)
    goals = goals_for_scope(model.scope.buffers, model.revision)
    fns = state_predicates(model, [t for g in goals for t in (g.pending(view), g.done(view))])

    def mask(fn):
        def on(S: np.ndarray) -> np.ndarray:
            r = fn(columns(model, S.T))
            return np.broadcast_to(np.asarray(r, dtype=bool), (S.shape[0],))
        return on

    return [Goal(g.name, g.doc, mask(fns[2 * i]), mask(fns[2 * i + 1]), g.claims) for i, g in enumerate(goals)]


def can_reach(space: StateSpace, targets: np.ndarray) -> np.ndarray:
    """Which states have a path (of zero or more steps) to a state in ``targets`` (a mask)."""
    reach = np.asarray(targets, bool).copy()
    indptr, rsrc = space.predecessors
    frontier = np.flatnonzero(reach)
    while len(frontier):
        starts, ends = indptr[frontier], indptr[frontier + 1]
        lens = ends - starts
        total = int(lens.sum())
        if not total:
            break
        offsets = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
        preds = rsrc[offsets]
        preds = np.unique(preds[~reach[preds]])
        reach[preds] = True
        frontier = preds
    return reach


def _check_symmetry(space: StateSpace) -> None:
    if not space.complete:
        raise ValueError("stuck-state analysis needs the whole graph; the search was cut short")
    if space.symmetry and space.model.scope.buffers > 1:
        raise ValueError("stuck-state goals name one buffer: with several buffers, explore without "
                         "symmetry reduction for this analysis")


def stuck_states(space: StateSpace, goal: Goal) -> np.ndarray:
    """The ids of the stuck states for ``goal`` (ascending, so shallowest first in BFS order)."""
    _check_symmetry(space)
    pending = goal.pending(space.states)
    return np.flatnonzero(pending & ~can_reach(space, goal.done(space.states)))


def stuck_states_networkx(space: StateSpace, goal: Goal, graph=None) -> np.ndarray:
    """The same set as :func:`stuck_states`, by networkx: condense the graph into its strongly
    connected components; a component can reach the goal if it holds a goal state or one of its
    successors can (in reverse topological order)."""
    import networkx as nx  # heavy (0.13 s to import): only this cross-check of stuck_states uses it

    _check_symmetry(space)
    g = graph if graph is not None else space.to_networkx()
    done = goal.done(space.states)
    cond = nx.condensation(g)
    members = nx.get_node_attributes(cond, "members")
    ok: dict[int, bool] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        ok[c] = any(done[v] for v in members[c]) or any(ok[d] for d in cond.successors(c))
    reach = np.zeros(space.n_states, bool)
    for c, good in ok.items():
        if good:
            reach[list(members[c])] = True
    return np.flatnonzero(goal.pending(space.states) & ~reach)


@interrupt.raising()   # long Z3 queries or graph searches: a signal stops them at once
def find_stuck(space: StateSpace) -> list[StuckFinding]:
    """One finding per goal that has stuck states."""
    out = []
    for goal in goals_for(space):
        ids = stuck_states(space, goal)
        if len(ids):
            first = int(ids[0])
            out.append(StuckFinding(goal.name, goal.doc, len(ids), int(goal.pending(space.states).sum()),
                                    first, space.trace_to(first), goal.claims))
    return out
