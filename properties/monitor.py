"""The monitor: evaluates a policy's compiled properties on states and steps, for every engine.

``bad_state``/``bad_step`` name the ``always``/``step`` properties a state or step violates;
``hit_state``/``hit_step`` name the ``witness``/``undefined`` targets it reaches.
"""
from __future__ import annotations

from typing import Iterable

from model.machine import Model

from .registry import Property, compile_properties

__all__ = ["Monitor", "fired_along"]


class Monitor:
    def __init__(self, model: Model, props: Iterable[Property]) -> None:
        self.model = model
        self.props = [p for p in props if p.relevant(model.policy) and p.fits(model.scope)]
        compiled = compile_properties(model, self.props)
        self.inv_state = [c for c in compiled if c.prop.target_is_bad and c.prop.on == "state"]
        self.inv_step = [c for c in compiled if c.prop.target_is_bad and c.prop.on == "step"]
        self.tgt_state = [c for c in compiled if not c.prop.target_is_bad and c.prop.on == "state"]
        self.tgt_step = [c for c in compiled if not c.prop.target_is_bad and c.prop.on == "step"]
        names = [i.name for i in model.instances]
        # step predicates restricted to one action are only evaluated on that action's steps
        self._inv_step_by_inst = [[c for c in self.inv_step if c.prop.action in (None, n)] for n in names]
        self._tgt_step_by_inst = [[c for c in self.tgt_step if c.prop.action in (None, n)] for n in names]

    def bad_state(self, s: tuple, only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self.inv_state if (only is None or c.prop.id in only) and not c.fn(s)]

    def bad_step(self, inst: int, s: tuple, t: tuple, r: int, e: int, b: int,
                 only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self._inv_step_by_inst[inst]
                if (only is None or c.prop.id in only) and not c.fn(s, t, r, e, b)]

    def hit_state(self, s: tuple, only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self.tgt_state if (only is None or c.prop.id in only) and c.fn(s)]

    def hit_step(self, inst: int, s: tuple, t: tuple, r: int, e: int, b: int,
                 only: set[str] | None = None) -> list[str]:
        return [c.prop.id for c in self._tgt_step_by_inst[inst]
                if (only is None or c.prop.id in only) and c.fn(s, t, r, e, b)]

    def fires(self, trace, pid: str) -> bool:
        """Does property ``pid`` fire anywhere along the trace (violated, or its target reached)?"""
        return any(pid in f for f in fired_along(self, trace, only={pid})) or pid in self._fires_init(trace, {pid})

    def _fires_init(self, trace, only: set[str]) -> list[str]:
        return self.bad_state(trace.init, only) + self.hit_state(trace.init, only)


def fired_along(mon: Monitor, trace, only: set[str] | None = None) -> list[list[str]]:
    """For each step of the trace, the properties that fire there."""
    out = []
    prev = trace.init
    idx = {(i.name, i.args): i.index for i in mon.model.instances}
    for st in trace.steps:
        inst = idx[(st.action, st.args)]
        f = mon.bad_step(inst, prev, st.state, st.ret, st.events, st.buf, only)
        f += mon.hit_step(inst, prev, st.state, st.ret, st.events, st.buf, only)
        f += mon.bad_state(st.state, only) + mon.hit_state(st.state, only)
        out.append(f)
        prev = st.state
    return out
