"""Re-run a saved ITF trace on the model, step by step (``replay_itf``); the command is
``dmabuf-check replay TRACE`` (``properties.cli.replay``).

docs/interface.md ("replay re-runs a saved trace step by step and says which properties fire").
The trace's actions are recomputed on the model the file names (exporter policy with its
recorded knobs, revision, scope); each step prints as a kernel call with its return, the state
fields that changed and the properties that fire there. Where the file records states, returns
or events, they are checked against the model's. Exit 0 when everything agrees (and the
property the file was written for fires), 1 when a recorded value disagrees or that property
does not fire, 2 when the file is malformed or names an action, a parameter or a handle the
model does not have (with the step number).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.constants import errno_name
from model.events import event_names
from model.machine import Model
from model.policy import ExporterPolicy
from model.scope import Scope

from ..index import PROPERTIES, get_property
from ..monitor import Monitor, Replayed
from ..trace import ReplayError, render, replay
from .itf import ItfError, ItfTrace, policy_from_meta, revision_from_meta, scope_from_meta
from .litmus import display_fires

__all__ = ["ReplayOutcome", "replay_itf", "format_outcome", "to_json"]


@dataclass(frozen=True)
class ReplayOutcome(Replayed):
    """A trace file recomputed on the model: its trace with what fires (``Replayed``), and what
    the file recorded that the model does not reproduce."""

    itf: ItfTrace = None                          # type: ignore[assignment]
    disagreements: tuple[str, ...] = ()           # recorded values the model does not reproduce
    notes: tuple[str, ...] = ()
    prop: str | None = None
    prop_fires_at: int | None = None          # first step (0: initial state) where it fires
    checked_states: int = 0
    checked: bool = True                          # were recorded values compared at all

    @property
    def ok(self) -> bool:
        return not self.disagreements


def _model(policy: ExporterPolicy, scope: Scope, revision: str) -> tuple[Model, Monitor]:
    """A compiled model and its monitor (cached: replaying many traces of one exporter)."""
    model = Model(policy, scope, revision)
    return model, Monitor(model, PROPERTIES)


def replay_itf(itf: ItfTrace, policy: ExporterPolicy | None = None) -> ReplayOutcome:
    """Recompute ``itf`` on its model (or on ``policy`` instead of the recorded one, in which case
    recorded values are not compared). ``ItfError`` for a file the model cannot run."""
    where = itf.path
    meta = itf.meta
    notes: list[str] = []
    checked = policy is None
    if policy is None:
        policy, notes = policy_from_meta(meta, where)
    else:
        notes.append(f"replaying on exporter {policy.name} instead of the recorded "
                     f"{meta.get('exporter')!r}: recorded states are not compared")
    scope = scope_from_meta(meta, where)
    revision = revision_from_meta(meta, where)
    model, mon = _model(policy, scope, revision)
    init = model.init
    try:
        trace = replay(model, itf.calls(), init)
    except ReplayError as e:
        raise ItfError(f"{where}: {e}") from None
    pid = meta.get("property")
    if pid is not None:
        if not isinstance(pid, str):
            raise ItfError(f"{where}: #meta.property must be a property ID or null")
        try:
            get_property(pid)
        except KeyError:
            raise ItfError(f"{where}: #meta.property: unknown property {pid!r}") from None
    run = mon.replayed(trace)
    dis: list[str] = []
    n_states = 0
    _check_fields(model, itf)
    if checked:
        if itf.init_fields:
            n_states += 1
            dis += _compare(model, 0, itf.init_fields, init)
        for st, got in zip(itf.steps, trace.steps):
            if st.fields:
                n_states += 1
                dis += _compare(model, st.number, st.fields, got.state)
            if st.ret is not None and st.ret != got.ret:
                dis.append(f"step {st.number}: recorded return {errno_name(st.ret)}, the model returns "
                           f"{errno_name(got.ret)}")
            if st.events is not None and st.events != frozenset(event_names(got.events)):
                extra = sorted(st.events - set(event_names(got.events)))
                missing = sorted(set(event_names(got.events)) - st.events)
                dis.append(f"step {st.number}: recorded events differ from the model's"
                           + (f"; recorded only: {', '.join(extra)}" if extra else "")
                           + (f"; model only: {', '.join(missing)}" if missing else ""))
            if st.buf is not None and st.buf != got.buf:
                dis.append(f"step {st.number}: recorded buffer {st.buf}, the model acted on {got.buf}")
    at = None
    if pid is not None:
        at = run.first(pid)
        if at is None and checked:
            dis.append(f"{pid} (recorded as {meta.get('verdict') or 'found'}) does not fire on the replay")
    return ReplayOutcome(model, trace, run.fired_init, run.fired, itf=itf, disagreements=tuple(dis),
                         notes=tuple(notes), prop=pid, prop_fires_at=at, checked_states=n_states, checked=checked)


def _check_fields(model: Model, itf: ItfTrace) -> None:
    """Recorded field groups must be states of the scope: the right shape, sort and range."""
    schema = model.schema
    for number, fields in [(0, itf.init_fields), *((s.number, s.fields) for s in itf.steps)]:
        for group, value in fields.items():
            spec = schema.spec_by_group[group]
            shape = schema.groups[group]
            where = f"{itf.path}: states[{number}].{group}"

            def walk(v: Any, dims: list[int], name: str) -> None:
                if dims:
                    if not isinstance(v, list) or len(v) != dims[0]:
                        raise ItfError(f"{where}: {name} must be a sequence of {dims[0]} (the scope "
                                       f"{model.scope.name} has shape {'x'.join(map(str, shape))})")
                    for i, x in enumerate(v):
                        walk(x, dims[1:], f"{name}[{i}]")
                    return
                if spec.sort == "bool":
                    if not isinstance(v, bool):
                        raise ItfError(f"{where}: {name} must be a boolean, got {v!r}")
                elif isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= spec.hi(model.scope):
                    raise ItfError(f"{where}: {name} must be an integer in [0, {spec.hi(model.scope)}], got {v!r}")

            walk(value, list(shape), group)


def _compare(model: Model, number: int, recorded: dict[str, Any], state: tuple) -> list[str]:
    """Recorded field groups against the model's state: one line per step naming the fields."""
    mine = model.schema.as_dict(state)
    diffs: list[str] = []
    for group, value in recorded.items():
        _walk(group, value, mine[group], diffs)
    if not diffs:
        return []
    shown = ", ".join(diffs[:6]) + (f", and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    label = "the initial state" if number == 0 else f"step {number}"
    return [f"{label}: recorded state differs from the model's: {shown}"]


def _walk(name: str, rec: Any, mine: Any, out: list[str]) -> None:
    if isinstance(mine, list):
        if not isinstance(rec, list) or len(rec) != len(mine):
            out.append(f"{name} recorded with shape {_shape(rec)}, the scope has {_shape(mine)}")
            return
        for i, (a, b) in enumerate(zip(rec, mine)):
            _walk(f"{name}[{i}]", a, b, out)
        return
    if isinstance(mine, bool):
        same = rec is mine or (not isinstance(rec, bool) and isinstance(rec, int) and rec == int(mine))
    else:
        same = not isinstance(rec, bool) and rec == mine
    if not same:
        out.append(f"{name} recorded {_v(rec)}, model {_v(mine)}")


def _shape(x: Any) -> str:
    dims = []
    while isinstance(x, list):
        dims.append(str(len(x)))
        x = x[0] if x else None
    return "x".join(dims) or "scalar"


def _v(x: Any) -> str:
    return {True: "1", False: "0"}.get(x, str(x)) if isinstance(x, bool) else str(x)


# --- output ------------------------------------------------------------------------------------

def format_outcome(out: ReplayOutcome) -> str:
    meta = out.itf.meta
    m = out.model
    head = (f"replay {out.itf.path}: exporter {m.policy.name}, revision {m.revision}, scope {m.scope.name}, "
            f"{len(out.trace)} steps")
    extra = [f"{k} {meta[k]}" for k in ("property", "engine", "seed") if meta.get(k) is not None]
    lines = [head + (f" ({', '.join(extra)})" if extra else "")]
    init, fired = display_fires(out.fired_init, out.fired, out.prop)
    lines.append("  0. (initial state)" + (f"\n       fires: {', '.join(init)}" if init else ""))
    if out.trace.steps:
        lines.append(render(m, out.trace, fired))
    if out.prop is not None:
        if out.prop_fires_at is None:
            lines.append(f"{out.prop} does not fire on this trace")
        else:
            where = "in the initial state" if out.prop_fires_at == 0 else f"at step {out.prop_fires_at}"
            lines.append(f"{out.prop} fires {where}")
    if out.checked:
        if out.disagreements:
            lines.append("Disagrees with the file:")
            lines += ["- " + d for d in out.disagreements]
        else:
            lines.append(f"agrees with the file ({out.checked_states} recorded states, returns and events checked)")
    return "\n".join(lines)


def to_json(out: ReplayOutcome) -> dict[str, Any]:
    return {
        "schema": "dmabuf-check.replay/1", "command": "replay", "trace": out.itf.path,
        "exporter": out.model.policy.name, "revision": out.model.revision,
        "scope": {"name": out.model.scope.name}, "property": out.prop,
        "property_fires_at": out.prop_fires_at,
        "fires_initially": list(out.fired_init),
        "steps": [{**s.to_json(), "fires": list(f)} for s, f in zip(out.trace.steps, out.fired)],
        "disagreements": list(out.disagreements), "notes": list(out.notes),
    }
