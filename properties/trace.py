"""One trace type for every engine (docs/design.md, point 8): the actions with their arguments and
returns, and the states between them; replayed on the concrete model, shrunk, and rendered as
kernel calls with the fields that changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from model.constants import errno_name
from model.events import EVENT_WORDS, event_names
from model.machine import Model, format_call
from model.state import describe_changes

__all__ = ["TraceStep", "Trace", "replay", "ReplayError", "shrink", "render", "trace_model"]


class ReplayError(ValueError):
    """A trace names a step the model cannot take; the message names the step."""


@dataclass(frozen=True)
class TraceStep:
    action: str
    args: tuple[tuple[str, Any], ...]
    ret: int
    events: int
    buf: int
    state: tuple = field(repr=False)        # the state after the step

    def call(self) -> str:
        return format_call(self.action, self.args)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "args": dict(self.args), "ret": self.ret,
                "events": event_names(self.events)}


@dataclass(frozen=True)
class Trace:
    init: tuple = field(repr=False)
    steps: tuple[TraceStep, ...] = ()
    # the names of the states' fields (``Schema.names``): the JSON report gives each step's changed
    # fields raw and in words (``None``: a trace built without its model; the JSON has neither)
    fields: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.steps)

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(s.action, dict(s.args)) for s in self.steps]

    def states(self) -> list[tuple]:
        return [self.init, *(s.state for s in self.steps)]

    def to_json(self) -> list[dict[str, Any]]:
        """Each step's call and return, and, when the field names are known, what it changed: the
        raw fields (``{"cache[0][0]": [0, 2]}``) and the same in words (``model.state.FIELD_WORDS``)."""
        out = []
        prev = self.init
        for st in self.steps:
            d = st.to_json()
            if self.fields is not None:
                d["fields"] = {n: [_raw(a), _raw(b)] for n, a, b in zip(self.fields, prev, st.state) if a != b}
                d["changes"] = describe_changes(self.fields, prev, st.state)
            out.append(d)
            prev = st.state
        return out


def replay(model: Model, calls: Iterable[tuple[str, dict[str, Any]]], init: tuple | None = None,
           why: Callable[[tuple, Any], str] | None = None, where: Callable[[int], str] | None = None) -> Trace:
    """Run ``calls`` on the model from ``init`` (default: the initial state). In the error for a
    step that cannot be taken, ``why(state, instance)`` explains why, and ``where(n)`` names the
    n-th step (default ``step n``)."""
    state = model.init if init is None else init
    steps = []
    for n, (name, args) in enumerate(calls, 1):
        at = where(n) if where is not None else f"step {n}"
        try:
            inst = model.find(name, **args)
        except KeyError as e:
            raise ReplayError(f"{at}: {e.args[0]}") from None
        r = model.step(state, inst.index)
        if r is None:
            if why is not None:
                raise ReplayError(f"{at}: {inst} cannot be taken here: {why(state, inst)}")
            raise ReplayError(f"{at}: {inst} is not enabled in this state")
        state, ret, ev, buf = r
        if inst.index >= len(model.instances):
            # a value outside the scope's representative ones: refused if the state would keep it
            kept = model.outside_bounds(state)
            if kept is not None:
                raise ReplayError(f"{at}: {inst} would keep {kept} in the state, outside the scope "
                                  f"{model.scope.name}")
        steps.append(TraceStep(inst.name, inst.args, ret, ev, buf, state))
    return Trace(model.init if init is None else init, tuple(steps), tuple(model.schema.names))


def shrink(model: Model, trace: Trace, still_fails: Callable[[Trace], bool]) -> Trace:
    """Delta-debug a trace: drop steps while it still fails (and still replays)."""
    calls = trace.calls()
    best = trace

    def attempt(candidate: list) -> Trace | None:
        try:
            t = replay(model, candidate, trace.init)
        except ReplayError:
            return None
        return t if still_fails(t) else None

    chunk = max(1, len(calls) // 2)
    while chunk >= 1:
        i = 0
        changed = False
        while i < len(calls):
            cand = calls[:i] + calls[i + chunk:]
            t = attempt(cand)
            if t is not None:
                calls, best, changed = cand, t, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return best


def render(model: Model, trace: Trace, fired: Sequence[Sequence[str]] | None = None) -> str:
    """The trace as kernel calls with their returns, what changed in words (one line per kernel
    object, ``model.state.FIELD_WORDS``), and the events (and, if given, the properties that
    fired at each step), the events in words (``model.events.EVENT_WORDS``; the JSON keeps their names)."""
    lines = []
    prev = trace.init
    for i, st in enumerate(trace.steps, 1):
        lines.append(f"{i:3d}. {st.call()} = {errno_name(st.ret)}")
        lines += ["       " + w for w in model.schema.describe(prev, st.state)]
        evs = [e for e in event_names(st.events) if e not in ("from_user",)]
        lines += [f"       event: {EVENT_WORDS[e]}" for e in evs]
        if fired and i - 1 < len(fired) and fired[i - 1]:
            lines.append("       fires: " + ", ".join(fired[i - 1]))
        prev = st.state
    return "\n".join(lines) if lines else "    (the initial state)"


def _raw(x: Any) -> int:
    """A field's value as the JSON report gives it: booleans as 0 and 1, like the integers."""
    return int(x)


_SCOPED: dict[tuple[int, str], Model] = {}


def trace_model(model: Model, evidence: dict[str, Any]) -> Model:
    """The model a verdict's trace runs on: the verdict's model, or, for a trace the portfolio
    kept from its exhaustive scope because it shows nothing on the larger one (``evidence
    ["trace_scope"]``), the same policy and revision at that scope."""
    scope = evidence.get("trace_scope")
    if scope is None or scope == model.scope.name:
        return model
    key = (id(model), scope)
    if key not in _SCOPED:
        _SCOPED[key] = Model(model.policy, scope, model.revision)
    return _SCOPED[key]
