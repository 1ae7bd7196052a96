"""The portfolio: every engine on one policy, sharing one budget, each verdict only strengthened.

The default campaign's engine. Per exporter policy, in this order:

1. **exhaustive** (``properties.engines.explicit``): every reachable state and transition of the
   ``tiny`` scope, when its graph fits the budget's ``states`` and ``memory`` (it does for every
   catalog policy: 62 thousand to 15.5 million states). Every property that fits ``tiny`` is
   decided there: violated with a shortest trace, or holds on every state of ``tiny``.
2. **bounded** (``properties.engines.z3_engine``): Z3's bounded checks on the campaign's scope to
   the budget's ``depth`` (within ``z3_seconds``), for the properties still open, then induction
   for the ``always``/``step`` ones it did not refute (``proved``: every depth of the scope).
3. **sampled** (``properties.engines.hypothesis_engine``): Hypothesis on the campaign's scope for
   what is still open, which reaches deeper than the bounded checks and wider than ``tiny``.

Merging (a verdict is only ever strengthened): a property is ``violated`` (or its target
reached) if any stage showed it; the trace reported is the shortest found, a ``tiny`` trace being
replayed on the campaign's scope (where it shows the same there, which it does unless a call
behaves differently with more pages). A property that was not shown violated is ``proved`` when
induction proved it; else it ``holds`` only with a guarantee that covers it: an ``always``/``step``
property that fits ``tiny`` needs the exhaustive search of ``tiny`` to have completed, otherwise it
is ``unknown`` (a cut search is never a pass), whatever the bounded and sampled stages saw; a
property that needs a larger scope than ``tiny`` holds with what the bounded and sampled stages
cover. A witness that no stage reached is ``unknown``.

Each verdict's evidence states its guarantee (``guarantee``, ``scope`` and the figures:
``exhaustive, tiny, N states``; ``bounded, small, depth k``; ``sampled, small, N steps``) and lists
what every stage covered (``covers``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

from model.machine import Model
from model.scope import get_scope

from ..monitor import Monitor
from ..property import Property
from ..runs.database import database_key, open_database
from ..trace import ReplayError, Trace, replay
from ..verdict import Verdict, make_verdict
from .explicit import check
from .hypothesis_engine import run_hypothesis
from .interface import Budget, EngineResult, covers
from .z3_engine import fresh_context, run_z3

__all__ = ["PortfolioEngine", "DEFAULT_BUDGET"]

# The default campaign's budget: the whole tiny graph of every catalog policy fits (the largest
# has 15.5 million states); Z3 to depth 8 on small takes 4 to 10 s per catalog policy.
DEFAULT_BUDGET = Budget(states=60_000_000, depth=8, timeout=20.0, examples=300, steps=30, rounds=6)

_FOUND = ("always", "step", "undefined")     # kinds whose firing is a violation or a finding


@dataclass(frozen=True)
class PortfolioEngine:
    """``exhaustive_scope``: the scope searched exhaustively (default ``tiny``); ``symmetry``:
    merge its states that differ only in interchangeable slots (off: on ``tiny`` it keeps 75% of
    the states and costs more time than it saves, measured 42.5 s against 30.3 s for a policy of
    3.7 million states); ``reduce``: the dead-variable reduction of the exhaustive stage
    (``properties.engines.reduce``; ``"none"`` to search every state); ``z3_seconds``: the time the
    bounded checks may take (the depth reached is in the evidence); ``induction``: try to prove
    what bounded checking did not refute. ``seed`` and ``database`` are the Hypothesis stage's."""

    seed: int = 1
    database: str | None = None
    exhaustive_scope: str = "tiny"
    symmetry: bool = False
    reduce: str = "dead"
    z3_seconds: float = 60.0
    induction: bool = True
    name: ClassVar[str] = "portfolio"

    def check(self, model: Model, props: Sequence[Property], budget: Budget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        started = time.monotonic()
        say = progress or (lambda msg: None)
        mon = Monitor(model, props)
        mine = mon.props                                  # the properties that apply here
        stages: list[dict[str, Any]] = []
        by_stage: dict[str, dict[str, Verdict]] = {}

        # 1. exhaustive, on the small scope (the campaign's own, if it is that one)

        small = get_scope(self.exhaustive_scope)
        tiny = model if small == model.scope else Model(model.policy, small, model.revision)
        space, vs = check(tiny, mine, symmetry=self.symmetry, keep_edges=False, progress=progress, reduce=self.reduce,
                          budget=Budget(states=budget.states, memory=budget.memory, seconds=budget.seconds))
        exhaustive = {"complete": space.complete, "states": space.n_states, "transitions": space.transitions,
                      "stopped": space.stopped}
        stages.append(covers("exhaustive", small.name, engine="explicit", states=space.n_states,
                             transitions=space.transitions, complete=space.complete,
                             **({"symmetry": True} if self.symmetry else {}),
                             **({"stopped": space.stopped} if space.stopped else {})))
        by_stage["explicit"] = {v.property: v for v in vs}
        say(f"{model.policy.name}: {small.name} {'complete' if space.complete else 'cut'}, "
            f"{space.n_states} states, {sum(v.verdict == 'violated' for v in vs)} fired")
        del space
        open_ = [p for p in mine if not _decided(by_stage.get("explicit", {}).get(p.id))]
        if small == model.scope and exhaustive["complete"]:
            open_ = []          # every reachable state of the campaign's scope: nothing is left open

        # 2. bounded (and induction), on the campaign's scope
        if open_:
            fresh_context()
            vs = run_z3(model, open_, depth=budget.depth if budget.depth is not None else 8,
                        timeout=budget.timeout, induction=self.induction, seconds=self.z3_seconds)
            depth = min((v.evidence.get("depth", 0) for v in vs), default=0)
            by_stage["z3"] = {v.property: v for v in vs}
            stages.append(covers("bounded", model.scope.name, engine="z3", depth=depth))
            say(f"{model.policy.name}: z3 to depth {depth} on {model.scope.name}")
        z3 = by_stage.get("z3", {})
        open_ = [p for p in open_ if not _decided(z3.get(p.id))
                 and (p.id not in z3 or z3[p.id].verdict != "proved")]   # proved: nothing to sample

        # 3. sampled, on the campaign's scope
        if open_:
            db = open_database(self.database) if self.database is not None else None
            key = database_key(model.policy, model.scope, model.revision, "portfolio") if db is not None else None
            # a declared break an earlier stage showed is not looked for again in extra rounds
            shown = [p for p in mine if any(_decided(vs.get(p.id)) for vs in by_stage.values())]
            vs = run_hypothesis(model, open_, examples=budget.examples or 300, seed=self.seed,
                                steps=budget.steps or 30, max_rounds=budget.rounds or 6, database=db,
                                database_key=key, found_elsewhere=shown)
            ev = vs[0].evidence if vs else {}
            by_stage["hypothesis"] = {v.property: v for v in vs}
            stages.append(covers("sampled", model.scope.name, engine="hypothesis", examples=ev.get("examples", 0),
                                 steps=ev.get("steps", 0)))

        verdicts = [self._merge(p, model, mon, by_stage, stages, exhaustive, small) for p in mine]
        summary = {"covers": stages, "seconds": round(time.monotonic() - started, 3)}
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision, verdicts,
                            time.monotonic() - started, summary)

    def _merge(self, p: Property, model: Model, mon: Monitor, by_stage: dict[str, dict[str, Verdict]],
               stages: list[dict[str, Any]], exhaustive: dict[str, Any] | None, small) -> Verdict:
        seen = {name: vs[p.id] for name, vs in by_stage.items() if p.id in vs}
        ev: dict[str, Any] = {"covers": [s for s in stages if s["engine"] in seen]}
        fired = {name: v for name, v in seen.items() if _decided(v)}
        if fired:
            name, trace, scope = self._shortest(p, model, mon, fired)
            ev.update(found_by=name, trace_length=len(trace))
            for k in ("callers_keep_obligations", "shortest_with_caller_fault"):   # (explicit's clean_traces)
                if k in fired[name].evidence:
                    ev[k] = fired[name].evidence[k]
            if scope != model.scope.name:
                ev["trace_scope"] = scope
            verdict = "violated" if p.kind in _FOUND else "holds"
            ev.update(_guarantee_of(fired[name], name, stages))
            return make_verdict(p, model.policy.name, self.name, verdict, None, ev, trace)
        z3 = seen.get("z3")
        if z3 is not None and z3.verdict == "proved":
            ev.update(guarantee="exhaustive", scope=model.scope.name, method=z3.evidence.get("method"))
            return make_verdict(p, model.policy.name, self.name, "proved", None, ev)
        in_tiny = "explicit" in seen
        note = ""
        if p.kind == "witness" and in_tiny and small == model.scope and exhaustive["complete"]:
            verdict = "violated"
            note = f"unreachable: none of the {exhaustive['states']} reachable states or their steps reaches it"
            ev.update(_guarantee_of(seen["explicit"], "explicit", stages))
        elif p.kind == "witness":
            verdict = "unknown"
            if in_tiny and exhaustive and exhaustive["complete"]:
                note = (f"unreachable in {small.name} (every one of its {exhaustive['states']} states); "
                        f"not reached on {model.scope.name}")
            else:
                note = "not reached"
        elif in_tiny and not exhaustive["complete"]:
            verdict = "unknown"
            note = (f"the exhaustive search of {small.name} was cut ({exhaustive['stopped']}): not shown to hold; "
                    f"no violation found by the bounded and sampled stages")
        else:
            held = [n for n in ("explicit", "z3", "hypothesis") if n in seen and seen[n].verdict == "holds"]
            verdict = "holds" if held else "unknown"
            if held:
                ev.update(_guarantee_of(seen[held[0]], held[0], stages))
            else:
                note = "no stage decided it"
        return make_verdict(p, model.policy.name, self.name, verdict, None, ev, None, note)

    def _shortest(self, p: Property, model: Model, mon: Monitor,
                  fired: dict[str, Verdict]) -> tuple[str, Trace, str]:
        """The shortest trace among the stages that fired ``p``, a ``tiny`` one replayed on the
        campaign's scope (kept as it is, with its scope, when it does not fire there)."""
        best: tuple[int, int, str, Trace, str] | None = None
        for rank, name in enumerate(("explicit", "z3", "hypothesis")):
            v = fired.get(name)
            if v is None or v.trace is None:
                continue
            trace, scope = v.trace, model.scope.name
            if name == "explicit":
                try:
                    on_scope = replay(model, trace.calls())
                except ReplayError:
                    on_scope = None
                if on_scope is not None and mon.fires(on_scope, p.id):
                    trace = on_scope
                else:
                    scope = self.exhaustive_scope
            cand = (len(trace), rank, name, trace, scope)
            if best is None or cand[:2] < best[:2]:
                best = cand
        if best is None:  # pragma: no cover - every engine reports a trace with what fired
            raise AssertionError(f"portfolio: {p.id} fired without a trace")
        return best[2], best[3], best[4]


def _decided(v: Verdict | None) -> bool:
    """Did this stage show the property fire (a violation, a finding, a witness reached)?"""
    if v is None:
        return False
    if v.kind == "witness":
        return v.verdict == "holds" and v.trace is not None
    return v.verdict == "violated"


def _guarantee_of(v: Verdict, engine: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    stage = next(s for s in stages if s["engine"] == engine)
    return {k: stage[k] for k in ("guarantee", "scope")} | {
        k: stage[k] for k in ("states", "depth", "examples", "steps") if k in stage}
