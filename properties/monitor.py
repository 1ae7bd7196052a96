"""The monitor: evaluates a policy's compiled properties on states and steps, for every engine.

``bad_state``/``bad_step`` name the ``always``/``step`` properties a state or step violates;
``hit_state``/``hit_step`` name the ``witness``/``undefined`` targets it reaches.
:meth:`Monitor.replayed` is the one computation of what fires along a trace, and :class:`Replayed`
the one record of it, which a litmus run, an ITF file recomputed and a trace opened in a notebook
all extend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from model.machine import Model
from model.terms import compile_function, substitute, var

from .property import Property, compile_properties, policy_terms, step_var_expr

__all__ = ["Monitor", "Replayed", "fired_along"]


@dataclass(frozen=True)
class Replayed:
    """A trace on its model, with the properties that fire in its initial state (``fired_init``)
    and at each step (``fired``)."""

    model: Model = field(repr=False)
    trace: object = field(repr=False)            # a properties.trace.Trace
    fired_init: tuple[str, ...]
    fired: tuple[tuple[str, ...], ...]

    def first(self, pid: str) -> int | None:
        """The first step where ``pid`` fires (0: the initial state), or ``None``."""
        return next((i for i, f in enumerate((self.fired_init, *self.fired)) if pid in f), None)

    def claims(self, props: Iterable[Property]) -> dict[str, tuple[int, str]]:
        """Claim -> (first step where it fires, the property): a violated ``always``/``step``
        property or a reached ``undefined`` one citing it, among ``props`` (witnesses do not
        count)."""
        by_id = {p.id: p for p in props}
        out: dict[str, tuple[int, str]] = {}
        for i, pids in enumerate((self.fired_init, *self.fired)):
            for pid in pids:
                p = by_id.get(pid)
                if p is None or p.kind == "witness":
                    continue
                for c in p.claims:
                    out.setdefault(c, (i, pid))
        return out


class Monitor:
    """``every``: check every property given that fits the scope, whether or not it applies to the
    model's policy (the synthesis queries leave the knobs free)."""

    def __init__(self, model: Model, props: Iterable[Property], every: bool = False) -> None:
        self.model = model
        self.props = [p for p in props if (
            (p.fits(model.scope) and model.revision in p.revisions) if every
            else p.active(model.policy, model.scope, model.revision))]
        compiled = compile_properties(model, self.props)
        self.inv_state = [c for c in compiled if c.prop.target_is_bad and c.prop.on == "state"]
        self.inv_step = [c for c in compiled if c.prop.target_is_bad and c.prop.on == "step"]
        self.tgt_state = [c for c in compiled if not c.prop.target_is_bad and c.prop.on == "state"]
        self.tgt_step = [c for c in compiled if not c.prop.target_is_bad and c.prop.on == "step"]
        names = [i.name for i in model.instances]
        # step predicates restricted to one action are only evaluated on that action's steps
        self._inv_step_by_inst = [[c for c in self.inv_step if c.prop.action in (None, n)] for n in names]
        self._tgt_step_by_inst = [[c for c in self.tgt_step if c.prop.action in (None, n)] for n in names]
        self._n = len(names)
        self._compile_fast()

    def _compile_fast(self) -> None:
        """Per action, one generated function ``f(s, t, r, e, b) -> (bad, hit)`` evaluating every
        step property and every state property (on the post-state ``t``) at once: ``bad`` has bit
        ``j`` set when invariant ``fast_ids[j]`` is violated, ``hit`` when target ``fast_ids[j]``
        is reached. Shared subterms are computed once (docs/design.md: invariants compiled too)."""
        model = self.model
        self.fast_ids = [p.id for p in self.props]
        self.fast_bit = {pid: 1 << j for j, pid in enumerate(self.fast_ids)}
        terms = policy_terms(model, self.props)
        to_post = {n: var("post." + n, s.sort) for n, s in zip(model.schema.names, model.schema.specs)}
        terms = [substitute([t], to_post)[0] if p.on == "state" else t for p, t in zip(self.props, terms)]
        var_expr = step_var_expr(model)
        self.fast: dict[str, object] = {}
        for name in dict.fromkeys(i.name for i in model.instances):
            idx = [j for j, p in enumerate(self.props) if p.action in (None, name)]
            bad = [j for j in idx if self.props[j].target_is_bad]
            hit = [j for j in idx if not self.props[j].target_is_bad]
            outs = [terms[j] for j in bad + hit]

            def result(exprs, nb=len(bad), bad=bad, hit=hit) -> str:
                b = " | ".join(f"(0 if {x} else {1 << j})" for x, j in zip(exprs[:nb], bad)) or "0"
                h = " | ".join(f"({1 << j} if {x} else 0)" for x, j in zip(exprs[nb:], hit)) or "0"
                return f"({b}, {h})"

            fn, _ = compile_function("monitor_" + name, ["s", "t", "r", "e", "b"], var_expr, outs, result=result)
            self.fast[name] = fn

    def mask(self, ids) -> int:
        """The bit mask of a set of property IDs (for ``fast``'s results)."""
        return sum(self.fast_bit[i] for i in ids if i in self.fast_bit)

    def ids(self, mask: int) -> list[str]:
        return [pid for pid, bit in self.fast_bit.items() if mask & bit]

    def bad_state(self, s: tuple, only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self.inv_state if (only is None or c.prop.id in only) and not c.fn(s)]

    def bad_step(self, inst: int, s: tuple, t: tuple, r: int, e: int, b: int,
                 only: set[str] | None = None) -> list[str]:
        props = self._inv_step_by_inst[inst] if inst < self._n else self._of_action(self.inv_step, inst)
        return [c.prop.id for c in props
                if (only is None or c.prop.id in only) and not c.fn(s, t, r, e, b)]

    def hit_state(self, s: tuple, only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self.tgt_state if (only is None or c.prop.id in only) and c.fn(s)]

    def hit_step(self, inst: int, s: tuple, t: tuple, r: int, e: int, b: int,
                 only: set[str] | None = None) -> list[str]:
        props = self._tgt_step_by_inst[inst] if inst < self._n else self._of_action(self.tgt_step, inst)
        return [c.prop.id for c in props
                if (only is None or c.prop.id in only) and c.fn(s, t, r, e, b)]

    def _of_action(self, compiled, inst: int):
        """The step properties of ``compiled`` that apply to instance ``inst``, one that
        ``Model.find`` made for a value outside the scope."""
        name = self.model.transition(inst).instance.name
        return [c for c in compiled if c.prop.action in (None, name)]

    def fires(self, trace, pid: str) -> bool:
        """Does property ``pid`` fire anywhere along the trace (violated, or its target reached)?"""
        return self.replayed(trace, {pid}).first(pid) is not None

    def replayed(self, trace, only: set[str] | None = None) -> Replayed:
        """What fires along ``trace``: in its initial state, and at each step (the step's
        properties, then the properties of the state it leads to)."""
        init = tuple(self.bad_state(trace.init, only) + self.hit_state(trace.init, only))
        return Replayed(self.model, trace, init, tuple(tuple(f) for f in fired_along(self, trace, only)))


def fired_along(mon: Monitor, trace, only: set[str] | None = None) -> list[list[str]]:
    """For each step of the trace, the properties that fire there."""
    out = []
    prev = trace.init
    idx = {(i.name, i.args): i.index for i in mon.model.instances}
    for st in trace.steps:
        inst = idx.get((st.action, st.args))
        if inst is None:    # a value argument outside the scope's representative ones
            inst = mon.model.find(st.action, **dict(st.args)).index
        f = mon.bad_step(inst, prev, st.state, st.ret, st.events, st.buf, only)
        f += mon.hit_step(inst, prev, st.state, st.ret, st.events, st.buf, only)
        f += mon.bad_state(st.state, only) + mon.hit_state(st.state, only)
        out.append(f)
        prev = st.state
    return out
