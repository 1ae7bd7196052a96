"""Shards of a Hypothesis campaign: the campaign's work cut into runner
tasks (``properties.runs.runner.Task``) that run anywhere, exporter by property group by seed slot,
and the merge of their verdicts.

A shard is a Hypothesis run of one exporter policy on one group of properties with one seed.
Its verdicts depend only on its own fields (and, for a shard that replays the example database,
on what the database held when the campaign started), never on where or when it ran. The merge
combines the verdicts of the shards in plan order, not in the order they finished, so a report
depends on the seed and the budget, not on the number of workers.

Plan order is slot by slot, and within a slot exporter by exporter, group by group. Slot 0 runs
the campaign's own seed, which makes a one-slot plan the same as one run per exporter; slot
``n`` runs a seed derived from the campaign seed and ``n``. Only slot 0 replays the example
database, and the later slots of an exporter and group (its *lane*, which has one database key)
start only once its slot 0 has finished (the runner sees to it), so no shard of a campaign replays
what another shard of the same campaign stored.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from typing import Callable, Iterable, Iterator, Sequence

from model.policy import ExporterPolicy
from model.scope import Scope

from ..engines.hypothesis_engine import HypothesisEngine
from ..engines.interface import Budget
from ..index import PROPERTIES
from ..property import Property
from ..verdict import Verdict
from .runner import Task

__all__ = ["GROUPINGS", "plan", "slot_seed", "merge", "lanes"]


def _invariant(p: Property) -> bool:
    return p.kind in ("always", "step")


# How the catalog can be cut into property groups. "all" keeps every property in one run per
# exporter (the properties found violated are switched off run by run; the witnesses searched
# for on the side); "kind" runs the invariants (always/step) and the targets (witness/undefined)
# as two shards, which balances the load better but gives each half only its own examples.
GROUPINGS: dict[str, tuple[tuple[str, Callable[[Property], bool]], ...]] = {
    "all": (("all", lambda p: True),),
    "kind": (("invariants", _invariant), ("targets", lambda p: not _invariant(p))),
}


def slot_seed(seed: int, slot: int) -> int:
    """The seed of slot ``slot``: the campaign seed for slot 0, else a 32-bit digest of both
    (apart from the seeds the engine derives for its own rounds, ``seed * 1_000_003 + n``)."""
    if slot == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"dmabuf-check/{seed}/{slot}".encode()).digest()[:4], "big")


def plan(exporters: Sequence[ExporterPolicy], seed: int, examples: int, steps: int, *,
         scope: Scope, revision: str = "v4.11", slots: int | None = 1, grouping: str = "all",
         max_rounds: int = 6, database: str | None = None) -> Iterator[Task]:
    """The shards of a campaign in plan order, as runner tasks; ``slots=None`` plans without end
    (a time budget). ``database``: the example database spec the shards save to (slot 0 replays
    it first)."""
    if grouping not in GROUPINGS:
        raise KeyError(f"unknown property grouping {grouping!r}; known: {', '.join(GROUPINGS)}")
    groups = [(name, tuple(p.id for p in PROPERTIES if keep(p))) for name, keep in GROUPINGS[grouping]]
    budget = Budget(examples=examples, steps=steps, rounds=max_rounds)
    index = itertools.count()
    for slot in (itertools.count() if slots is None else range(slots)):
        for policy in exporters:
            for name, props in groups:
                engine = HypothesisEngine(seed=slot_seed(seed, slot), database=database, group=name,
                                          reuse=slot == 0)
                yield Task(next(index), policy, scope, revision, engine, props, budget, name, slot)


def lanes(exporters: Sequence[ExporterPolicy], grouping: str = "all") -> list[tuple[str, str]]:
    return [(p.name, g) for p in exporters for g, _ in GROUPINGS[grouping]]

_RANK = {"violated": 3, "proved": 2, "holds": 1, "unknown": 0}
_ORDER = {p.id: i for i, p in enumerate(PROPERTIES)}


def merge(exporters: Sequence[ExporterPolicy], results: Iterable) -> list[Verdict]:
    """One verdict per exporter and property, exporters in the given order and properties in
    catalog order, combining every shard that judged it in plan order: violated (a violation or
    a reached target) beats holds beats unknown; the trace kept is the shortest, the earliest
    shard's on a tie. A property judged by one shard keeps that shard's verdict as it is.
    ``results``: anything with an ``index`` (plan order) and ``verdicts``."""
    by: dict[tuple[str, str], list[Verdict]] = {}
    for r in sorted(results, key=lambda r: r.index):
        for v in r.verdicts:
            by.setdefault((v.exporter, v.property), []).append(v)
    out: list[Verdict] = []
    for policy in exporters:
        pids = sorted((pid for name, pid in by if name == policy.name),
                      key=lambda pid: (_ORDER.get(pid, len(_ORDER)), pid))
        for pid in pids:
            out.append(_combine(by[(policy.name, pid)]))
    return out


def _combine(vs: list[Verdict]) -> Verdict:
    if len(vs) == 1:
        return vs[0]
    best_rank = max(_RANK[v.verdict] for v in vs)
    top = [v for v in vs if _RANK[v.verdict] == best_rank]
    traced = [v for v in top if v.trace is not None]
    chosen = min(traced, key=lambda v: len(v.trace)) if traced else top[0]
    ev = dict(chosen.evidence)
    for k in ("examples", "rounds", "steps"):
        ev[k] = sum(v.evidence.get(k, 0) for v in vs)
    ev["seconds"] = round(sum(v.evidence.get("seconds", 0.0) for v in vs), 3)
    ev["states"] = max(v.evidence.get("states", 0) for v in vs)   # the most one shard saw
    ev["shards"] = len(vs)
    ev.pop("found_after", None)
    before = 0  # examples of the shards before, in plan order
    for v in vs:
        if "found_after" in v.evidence:
            ev["found_after"] = before + v.evidence["found_after"]
            break
        before += v.evidence.get("examples", 0)
    if any(v.evidence.get("replayed") for v in vs):
        ev["replayed"] = True
    return replace(chosen, evidence=ev)
