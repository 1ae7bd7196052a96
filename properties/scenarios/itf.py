"""ITF traces: counterexamples and witnesses in the Informal Trace Format of Apalache and Quint.

docs/design.md, point 8 and docs/interface.md ("Traces are also written as ITF JSON files"). The format is
Apalache's ADR-015 (https://apalache-mc.org/docs/adr/015adr-trace.html): a JSON object with
``#meta``, ``vars`` and ``states``; each state is a record of the variables with its own
``#meta`` (its index). Values are encoded as ITF prescribes: integers as ``{"#bigint": "..."}``,
booleans and strings as JSON, sequences as JSON arrays, tuples as ``{"#tup": [...]}``, sets as
``{"#set": [...]}``, maps as ``{"#map": [[key, value], ...]}``, records as JSON objects and
variants as ``{"tag": ..., "value": ...}``.

How a model trace maps onto it:

* every field group of the state (``life``, ``pins``, ``cache``, ...) is one variable, a sequence
  indexed like the kernel object it models (``cache`` is a sequence of sequences: buffer, page);
* ``mbt::actionTaken`` (the action name; ``"init"`` for the initial state) and
  ``mbt::nondetPicks`` (a record of every action parameter, ``Some(value)`` for the ones the step
  used and ``None`` for the others) follow Quint's model-based-testing convention;
* ``dmabuf::ret``, ``dmabuf::buf`` and ``dmabuf::events`` carry the return value, the buffer
  acted on and the set of events of the step that led to the state;
* ``#meta`` records the exporter policy (its name and every knob, so a user's own policy
  replays without its file), the documentation revision, the scope, the property, the verdict,
  the engine and the seed, and ``dmabuf-check-format`` (this file's version).

Writing is deterministic: the same trace gives the same bytes (no timestamps; keys in a fixed
order; one variable per line, so two traces diff well).
"""
from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from model.actions import DOMAINS
from model.catalog import CATALOG
from model.events import EVENT_BIT, event_names
from model.files import FileProblem, parse_json, read_text
from model.machine import Model
from model.policy import ExporterPolicy, KNOBS, PolicyError, REVISIONS, check_knob
from model.scope import SCOPES, Scope
from model.state import FIELDS

from ..report.atomic import write_text_atomic
from ..trace import Trace, trace_model

__all__ = [
    "FORMAT", "FORMAT_DESCRIPTION", "ACTION_TAKEN", "NONDET_PICKS", "RET", "BUF", "EVENTS",
    "ItfError", "Variant", "ItfStep", "ItfTrace", "encode", "decode", "to_itf", "dumps",
    "write_itf", "loads", "read_itf", "policy_from_meta", "scope_from_meta", "revision_from_meta",
    "trace_filename",
    "write_verdict_traces",
]

FORMAT = "dmabuf-check.itf/1"
FORMAT_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ACTION_TAKEN = "mbt::actionTaken"
NONDET_PICKS = "mbt::nondetPicks"
RET = "dmabuf::ret"
BUF = "dmabuf::buf"
EVENTS = "dmabuf::events"
_STEP_VARS = (ACTION_TAKEN, NONDET_PICKS, RET, BUF, EVENTS)
_PARAMS = tuple(sorted(DOMAINS))
_BIGINT = re.compile(r"-?[0-9]+\Z")
_MAX_DIGITS = 40      # 2**64 has 20


class ItfError(ValueError):
    """A file that is not a trace this model can read; the message names the file and the place."""


@dataclass(frozen=True)
class Variant:
    """An ITF variant value ``{"tag": ..., "value": ...}`` (Quint's sum types, e.g. ``Some(3)``)."""

    tag: str
    value: Any


_NONE = Variant("None", ())


# --- values ------------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """A Python value as an ITF value: ints as ``#bigint``, lists as sequences, tuples as
    ``#tup``, sets as ``#set`` (in a canonical order), dicts with string keys as records, other
    dicts as ``#map``, :class:`Variant` as a variant."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return {"#bigint": str(value)}
    if isinstance(value, list):
        return [encode(x) for x in value]
    if isinstance(value, tuple):
        return {"#tup": [encode(x) for x in value]}
    if isinstance(value, (set, frozenset)):
        return {"#set": sorted((encode(x) for x in value), key=_canonical)}
    if isinstance(value, Variant):
        return {"tag": value.tag, "value": encode(value.value)}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("#") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"#map": sorted(([encode(k), encode(v)] for k, v in value.items()), key=_canonical)}
    raise TypeError(f"no ITF encoding for {type(value).__name__} {value!r}")


def _canonical(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def decode(value: Any, where: str) -> Any:
    """An ITF value as a Python value (the inverse of :func:`encode`); ``ItfError`` naming
    ``where`` if it is not an ITF value."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value                      # ITF allows plain JSON numbers for small integers
    if isinstance(value, list):
        return [decode(x, f"{where}[{i}]") for i, x in enumerate(value)]
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"#bigint"}:
            text = value["#bigint"]
            if not isinstance(text, str) or not _BIGINT.match(text):
                raise ItfError(f"{where}: #bigint must be a string of decimal digits, got {text!r}")
            if len(text) > _MAX_DIGITS:
                raise ItfError(f"{where}: #bigint of {len(text)} digits; a value of this model has at most "
                               f"{_MAX_DIGITS}")
            return int(text)
        if keys == {"#tup"}:
            return tuple(decode(x, f"{where}.#tup[{i}]") for i, x in enumerate(_list(value["#tup"], where)))
        if keys == {"#set"}:
            return frozenset(_hashable(decode(x, f"{where}.#set[{i}]"), where)
                             for i, x in enumerate(_list(value["#set"], where)))
        if keys == {"#map"}:
            out = {}
            for i, pair in enumerate(_list(value["#map"], where)):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ItfError(f"{where}.#map[{i}]: a map entry must be a [key, value] pair")
                out[_hashable(decode(pair[0], f"{where}.#map[{i}]"), where)] = decode(pair[1], f"{where}.#map[{i}]")
            return out
        if keys == {"#unserializable"}:
            raise ItfError(f"{where}: an #unserializable value cannot be replayed")
        if keys == {"tag", "value"} and isinstance(value["tag"], str):
            return Variant(value["tag"], decode(value["value"], f"{where}.value"))
        odd = sorted(k for k in keys if k.startswith("#"))
        if odd:
            raise ItfError(f"{where}: unknown ITF value tag {odd[0]!r}")
        return {k: decode(v, f"{where}.{k}") for k, v in value.items()}
    raise ItfError(f"{where}: {type(value).__name__} is not an ITF value")


def _list(x: Any, where: str) -> list:
    if not isinstance(x, list):
        raise ItfError(f"{where}: expected a JSON array")
    return x


def _hashable(x: Any, where: str) -> Any:
    if isinstance(x, list):
        return tuple(_hashable(y, where) for y in x)
    if isinstance(x, dict):
        raise ItfError(f"{where}: a record cannot be a set member or map key here")
    return x


# --- writing -----------------------------------------------------------------------------------

def _meta(model: Model, prop: str | None, verdict: str | None, engine: str | None,
          seed: int | None, claims: Sequence[str] = (), description: str | None = None) -> dict[str, Any]:
    sc = model.scope
    pol = model.policy
    desc = description or (f"{pol.name}: {prop} ({verdict}) found by {engine}" if prop
                           else f"a trace of exporter {pol.name}")
    return {
        "format": "ITF",
        "format-description": FORMAT_DESCRIPTION,
        "source": "dmabuf-check",
        "description": desc,
        "dmabuf-check-format": FORMAT,
        "exporter": pol.name,
        "knobs": {k: getattr(pol, k) for k in KNOBS},
        "revision": model.revision,
        "scope": {"name": sc.name, "buffers": sc.buffers, "pages": sc.pages, "fds": sc.fds,
                  "vmas": sc.vmas, "attachments": sc.attachments, "refs": sc.refs},
        "property": prop,
        "claims": list(claims),
        "verdict": verdict,
        "engine": engine,
        "seed": seed,
    }


def _state_record(model: Model, index: int, state: tuple, action: str,
                  args: Sequence[tuple[str, Any]], ret: int, buf: int, events: int) -> dict[str, Any]:
    given = dict(args)
    picks = {p: (Variant("Some", given[p]) if p in given else _NONE) for p in _PARAMS}
    rec: dict[str, Any] = {
        "#meta": {"index": index},
        ACTION_TAKEN: action,
        NONDET_PICKS: encode(picks),
        RET: encode(ret),
        BUF: encode(buf),
        EVENTS: encode(frozenset(event_names(events))),
    }
    for group, value in model.schema.as_dict(state).items():
        rec[group] = encode(value)
    return rec


def to_itf(model: Model, trace: Trace, *, prop: str | None = None, verdict: str | None = None,
           engine: str | None = None, seed: int | None = None, claims: Sequence[str] = (),
           description: str | None = None) -> dict[str, Any]:
    """The trace as an ITF document (a JSON-ready dict), states included."""
    states = [_state_record(model, 0, trace.init, "init", (), 0, 0, 0)]
    for i, st in enumerate(trace.steps, 1):
        states.append(_state_record(model, i, st.state, st.action, st.args, st.ret, st.buf, st.events))
    return {
        "#meta": _meta(model, prop, verdict, engine, seed, claims, description),
        "vars": [*_STEP_VARS, *model.schema.groups],
        "states": states,
    }


def _compact(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False, separators=(", ", ": "))


def dumps(doc: Mapping[str, Any]) -> str:
    """An ITF document as text in a stable layout: one ``#meta`` key per line, one variable of a
    state per line, keys in the order they were built (vars order for states)."""
    out = ["{"]
    top = list(doc.items())
    for ti, (key, value) in enumerate(top):
        comma = "," if ti < len(top) - 1 else ""
        if key == "states":
            out.append('  "states": [')
            for si, st in enumerate(value):
                out.append("    {")
                items = list(st.items())
                for vi, (k, v) in enumerate(items):
                    out.append(f"      {_compact(k)}: {_compact(v)}" + ("," if vi < len(items) - 1 else ""))
                out.append("    }" + ("," if si < len(value) - 1 else ""))
            out.append("  ]" + comma)
        elif key == "#meta" and isinstance(value, dict):
            out.append('  "#meta": {')
            items = list(value.items())
            for mi, (k, v) in enumerate(items):
                out.append(f"    {_compact(k)}: {_compact(v)}" + ("," if mi < len(items) - 1 else ""))
            out.append("  }" + comma)
        else:
            out.append(f"  {_compact(key)}: {_compact(value)}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


def write_itf(path: str | os.PathLike, model: Model, trace: Trace, **meta: Any) -> Path:
    """Write the trace as an ITF file, atomically (a temporary file, then rename)."""
    return write_text_atomic(path, dumps(to_itf(model, trace, **meta)))


def trace_filename(exporter: str, prop: str) -> str:
    """``<exporter>__<property>.itf.json``, with characters unsafe in file names replaced."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]", "_", s)  # noqa: E731
    return f"{safe(exporter)}__{safe(prop)}.itf.json"


def write_verdict_traces(verdicts: Iterable[Any], models: Mapping[str, Model], folder: str | os.PathLike,
                         seed: int | None = None) -> list[Path]:
    """One ITF file per verdict that carries a trace (a violation, an undefined behaviour
    reached, a witness), named :func:`trace_filename`; works for the verdicts of any engine."""
    folder = Path(folder)
    out = []
    for v in verdicts:
        if v.trace is None or v.exporter not in models:
            continue
        model = trace_model(models[v.exporter], v.evidence)
        out.append(write_itf(folder / trace_filename(v.exporter, v.property), model, v.trace,
                             prop=v.property, verdict=v.verdict, engine=v.engine, seed=seed,
                             claims=tuple(v.claims)))
    return out


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItfStep:
    """One step read from a file: the action with its arguments, and what the file recorded of
    the state it led to (``fields``: field group -> nested value; ``ret``/``events`` or None)."""

    number: int
    action: str
    args: tuple[tuple[str, Any], ...]
    ret: int | None = None
    buf: int | None = None
    events: frozenset[str] | None = None
    fields: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ItfTrace:
    """A trace read from an ITF file: its ``#meta``, the initial state's recorded fields and the
    steps. Turn it into a model trace with ``properties.scenarios.replay.replay_itf``."""

    path: str
    meta: dict[str, Any] = field(compare=False)
    init_fields: dict[str, Any] = field(compare=False)
    steps: tuple[ItfStep, ...]

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(s.action, dict(s.args)) for s in self.steps]


def loads(text: str, path: str = "<string>") -> ItfTrace:
    """Parse an ITF document; ``ItfError`` names the file and the place of the first problem."""
    try:
        doc = parse_json(text)
    except FileProblem as e:
        raise ItfError(f"{path}: {e}") from None
    if not isinstance(doc, dict):
        raise ItfError(f"{path}: an ITF trace is a JSON object with #meta, vars and states")
    meta = doc.get("#meta", {})
    if not isinstance(meta, dict):
        raise ItfError(f"{path}: #meta must be an object")
    for key in ("description", "verdict", "engine"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ItfError(f"{path}: #meta.{key} must be a string, got {type(meta[key]).__name__}")
    vars_ = doc.get("vars")
    if not isinstance(vars_, list) or not all(isinstance(v, str) for v in vars_):
        raise ItfError(f"{path}: 'vars' must be a list of variable names")
    if ACTION_TAKEN not in vars_:
        raise ItfError(f"{path}: vars has no {ACTION_TAKEN!r}: the trace does not say which actions were taken "
                       f"(write it with Quint's --mbt convention or with dmabuf-check)")
    if "loop" in doc:
        raise ItfError(f"{path}: a lasso trace ('loop') cannot be replayed as a finite run")
    states = doc.get("states")
    if not isinstance(states, list) or not states:
        raise ItfError(f"{path}: 'states' must be a non-empty list (state 0 is the initial state)")
    groups_known = {f.name for f in FIELDS}
    for v in vars_:
        if v not in _STEP_VARS and v not in groups_known:
            raise ItfError(f"{path}: vars: unknown variable {v!r} (the model's state fields are "
                           f"{', '.join(sorted(groups_known))})")
    init_fields: dict[str, Any] = {}
    steps: list[ItfStep] = []
    for n, st in enumerate(states):
        where = f"{path}: states[{n}]"
        if not isinstance(st, dict):
            raise ItfError(f"{where}: a state must be an object")
        for v in vars_:
            if v not in st:
                raise ItfError(f"{where}: variable {v!r} is missing (ITF states hold every variable of 'vars')")
        extra = sorted(k for k in st if k != "#meta" and k not in vars_)
        if extra:
            raise ItfError(f"{where}: variable {extra[0]!r} is not declared in 'vars'")
        fields_ = {g: decode(st[g], f"{where}.{g}") for g in vars_ if g in groups_known}
        action = st[ACTION_TAKEN]
        if not isinstance(action, str):
            raise ItfError(f"{where}.{ACTION_TAKEN}: must be a string (the action's name)")
        if n == 0:
            init_fields = fields_
            continue
        args = _args(st.get(NONDET_PICKS, {}), f"{where}.{NONDET_PICKS}") if NONDET_PICKS in vars_ else ()
        ret = _int_or_none(st, RET, where)
        buf = _int_or_none(st, BUF, where)
        events = None
        if EVENTS in st:
            ev = decode(st[EVENTS], f"{where}.{EVENTS}")
            if not isinstance(ev, frozenset) or not all(isinstance(e, str) for e in ev):
                raise ItfError(f"{where}.{EVENTS}: must be a set of event names")
            unknown = sorted(e for e in ev if e not in EVENT_BIT)
            if unknown:
                raise ItfError(f"{where}.{EVENTS}: unknown event {unknown[0]!r}")
            events = ev
        steps.append(ItfStep(n, action, args, ret, buf, events, fields_))
    return ItfTrace(path, meta, init_fields, tuple(steps))


def _int_or_none(st: dict, var: str, where: str) -> int | None:
    if var not in st:
        return None
    v = decode(st[var], f"{where}.{var}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ItfError(f"{where}.{var}: must be an integer")
    return v


def _args(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    picks = decode(raw, where)
    if not isinstance(picks, dict):
        raise ItfError(f"{where}: must be a record of the action's parameters")
    out = []
    for name, v in picks.items():
        if isinstance(v, Variant):
            if v.tag == "None":
                continue
            if v.tag != "Some":
                raise ItfError(f"{where}.{name}: a pick is Some(value) or None, got the tag {v.tag!r}")
            v = v.value
        if isinstance(v, (list, tuple, dict, frozenset)):
            raise ItfError(f"{where}.{name}: an argument must be an integer or a boolean")
        out.append((name, v))
    return tuple(out)


def read_itf(path: str | os.PathLike) -> ItfTrace:
    """Read an ITF file; ``ItfError`` names the file and the place of the first problem."""
    p = Path(path)
    try:
        text = read_text(p)
    except FileProblem as e:
        raise ItfError(f"{p}: {e}") from None
    return loads(text, str(p))


# --- the model a trace was recorded on ------------------------------------------------------

def policy_from_meta(meta: Mapping[str, Any], where: str) -> tuple[ExporterPolicy, list[str]]:
    """The exporter policy a trace names: its recorded knobs (so a user's own policy replays
    without its file) on top of the catalog entry of that name, if any. Returns the policy and
    notes (knobs that differ from the catalog entry of the same name)."""
    name = meta.get("exporter")
    if not isinstance(name, str) or not name:
        raise ItfError(f"{where}: #meta.exporter must name the exporter policy the trace was recorded with")
    knobs = meta.get("knobs")
    base = CATALOG.get(name)
    if knobs is None:
        if base is None:
            raise ItfError(f"{where}: #meta.exporter {name!r} is not in the catalog and #meta.knobs "
                           f"does not record its knobs")
        return base, []
    if not isinstance(knobs, dict):
        raise ItfError(f"{where}: #meta.knobs must be an object of knob values")
    start = base if base is not None else ExporterPolicy(name=name)
    try:
        for k, v in knobs.items():
            check_knob(k, v, f"{where}: #meta.knobs")
    except PolicyError as e:
        raise ItfError(str(e)) from None
    pol = start.with_knobs(**knobs)
    notes = []
    if base is not None:
        diff = [k for k in KNOBS if getattr(pol, k) != getattr(base, k)]
        if diff:
            notes.append(f"the recorded knobs of {name!r} differ from the catalog's ("
                         + ", ".join(f"{k}={getattr(pol, k)!r}" for k in diff) + "); replaying with the recorded ones")
    return pol, notes


_DIMENSIONS = ("buffers", "pages", "fds", "vmas", "attachments", "refs")
MAX_DIMENSION = 4     # a model of 4 of everything takes seconds to build; the largest catalog scope has 3


def scope_from_meta(meta: Mapping[str, Any], where: str) -> Scope:
    """The scope a trace names: a catalog scope, or the recorded dimensions (those not recorded
    are the named catalog scope's)."""
    raw = meta.get("scope", "small")
    known = ", ".join(SCOPES)
    if isinstance(raw, str):
        if raw not in SCOPES:
            close = difflib.get_close_matches(raw, list(SCOPES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ItfError(f"{where}: #meta.scope: unknown scope {raw!r}{hint}; known scopes: {known}")
        return SCOPES[raw]
    if not isinstance(raw, dict):
        raise ItfError(f"{where}: #meta.scope must be a scope name ({known}) or an object with its name "
                       f"and dimensions ({', '.join(_DIMENSIONS)})")
    for k in raw:
        if k != "name" and k not in _DIMENSIONS:
            close = difflib.get_close_matches(k, _DIMENSIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ItfError(f"{where}: #meta.scope: unknown key {k!r}{hint}; a scope has name and "
                           f"{', '.join(_DIMENSIONS)}")
    name = raw.get("name", "recorded")
    if not isinstance(name, str):
        raise ItfError(f"{where}: #meta.scope.name must be a string, got {name!r}")
    dims = {}
    for k in _DIMENSIONS:
        if k in raw:
            v = raw[k]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_DIMENSION:
                raise ItfError(f"{where}: #meta.scope.{k} must be a whole number from 1 to {MAX_DIMENSION}, "
                               f"got {v!r}")
            dims[k] = v
    if name in SCOPES:
        base = SCOPES[name]
        if all(getattr(base, k) == v for k, v in dims.items()):
            return base
        dims = {k: dims.get(k, getattr(base, k)) for k in _DIMENSIONS}
        name = f"{name}-recorded"
    missing = [k for k in _DIMENSIONS[:-1] if k not in dims]
    if missing:
        raise ItfError(f"{where}: #meta.scope: {', '.join(missing)} not recorded, and the name {name!r} is not a "
                       f"scope of the catalog ({known}) to take them from")
    return Scope(name, **dims)


def revision_from_meta(meta: Mapping[str, Any], where: str) -> str:
    rev = meta.get("revision", "v4.11")
    if not isinstance(rev, str) or rev not in REVISIONS:
        raise ItfError(f"{where}: #meta.revision: unknown revision {rev!r}; known: {', '.join(REVISIONS)}")
    return rev

