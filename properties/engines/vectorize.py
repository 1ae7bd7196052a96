"""A third interpretation of the term vocabulary: numpy over a whole batch of states.

DESIGN.md point 3 ("numpy arrays over a whole batch of states, ``ite`` as ``where``"). The
explicit engine expands a breadth-first frontier of tens of thousands of states at once: each
action instance's guard, next state, return value, event mask and subject buffer, and each
property's predicate, are generated once as straight-line numpy code over the columns of the
frontier (one array per state field), exactly as :func:`model.terms.compile_function` generates
straight-line Python for one state. A step property is specialised to each instance before it is
compiled: the instance's next state, return value, events and subject buffer are substituted into
the predicate, so it reads the pre-state only, and folds to a constant on the many instances it
cannot fire on (``P-SYNC-FLAGS`` on anything but a SYNC with bad flags), which are then skipped.

Columns are ``C[k]`` for field ``k`` of the layout: ``numpy.bool_`` arrays for boolean fields,
``int16`` arrays for integer ones (return values reach ``-ERESTARTSYS`` = -512, which ``int8``
cannot hold). A term that does not depend on the state folds to a Python constant, which numpy
broadcasts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from model.events import EVENT_BIT
from model.machine import Model
from model.terms import FALSE, Term, postorder, substitute

from ..registry import Property

__all__ = ["VecStep", "VecCheck", "VecModel", "VecProperty", "Columns", "columns"]

_NP: dict[str, Callable[..., str]] = {
    "not": lambda a: f"(~{a})",
    "and": lambda *xs: "(" + " & ".join(xs) + ")",
    "or": lambda *xs: "(" + " | ".join(xs) + ")",
    "ite": lambda c, a, b: f"_where({c}, {a}, {b})",
    "eq": lambda a, b: f"({a} == {b})",
    "lt": lambda a, b: f"({a} < {b})",
    "le": lambda a, b: f"({a} <= {b})",
    "add": lambda a, b: f"({a} + {b})",
    "sub": lambda a, b: f"({a} - {b})",
}


def _emit(roots: Sequence[Term], var_expr: dict[str, str], lines: list[str]) -> list[str]:
    """Append one numpy assignment per operation of the term graph; return the roots' names."""
    expr: dict[int, str] = {}
    for t in postorder(roots):
        if t.op == "const":
            expr[t.uid] = repr(t.args[0])
        elif t.op == "var":
            try:
                expr[t.uid] = var_expr[t.args[0]]
            except KeyError:
                raise KeyError(f"vectorised code has no input for model variable {t.args[0]!r}") from None
        else:
            lines.append(f"    t{t.uid} = {_NP[t.op](*(expr[a.uid] for a in t.args))}")
            expr[t.uid] = f"t{t.uid}"
    return [expr[r.uid] for r in roots]


def _compile(name: str, params: str, lines: list[str], ret: str) -> Callable[..., Any]:
    src = f"def {name}({params}):\n" + "\n".join(lines) + ("\n" if lines else "") + f"    return {ret}\n"
    ns: dict[str, Any] = {"_where": np.where}
    exec(compile(src, f"<vec:{name}>", "exec"), ns)  # noqa: S102 - generated from model terms
    return ns[name]


class Columns:
    """The columns of a block of states (``block`` is ``width x n``, one row per field), or of the
    states ``idx`` of it, each converted when first read (``C[k]``): a guard or an update reads a
    few fields, so most are never gathered or converted."""

    __slots__ = ("block", "idx", "is_bool", "cache")

    def __init__(self, block: np.ndarray, is_bool: Sequence[bool], idx: np.ndarray | None = None) -> None:
        self.block = block
        self.idx = idx
        self.is_bool = is_bool
        self.cache: list[Any] = [None] * len(is_bool)

    def __getitem__(self, k: int) -> np.ndarray:
        c = self.cache[k]
        if c is None:
            row = self.block[k] if self.idx is None else self.block[k, self.idx]
            c = self.cache[k] = row.view(np.bool_) if self.is_bool[k] else row.astype(np.int16)
        return c


def columns(model: Model, block: np.ndarray, idx: np.ndarray | None = None) -> Columns:
    """The columns of a block of states (of its states ``idx``), read lazily (:class:`Columns`)."""
    return Columns(block, model.schema.is_bool, idx)


@dataclass(frozen=True)
class VecCheck:
    """A step property specialised to one instance: ``fn(C)`` over the pre-state columns fires
    where it equals ``fires_when`` (the instance's next state, return, events and subject buffer
    are substituted into the predicate, which then mostly folds to a constant)."""

    id: str
    fires_when: bool
    fn: Callable[[list], Any]


@dataclass(frozen=True)
class VecStep:
    """One instance, vectorised: ``guard(C)`` and ``apply(C) -> (ret, changes)`` where
    ``changes`` lists ``(field index, new column)`` for the fields the step may change, and the
    step properties that can fire on it (``checks``)."""

    index: int
    guard: Callable[[list], Any]
    apply: Callable[[list], tuple]
    checks: tuple[VecCheck, ...]


@dataclass(frozen=True)
class VecProperty:
    """A state property's predicate over a batch of states: fires where ``fn(C) == fires_when``."""

    id: str
    fires_when: bool
    fn: Callable[[list], Any]


class VecModel:
    """Every action instance of a model, compiled to numpy, with the step properties ``props``
    (already selected for the model, e.g. by a ``Monitor``) specialised to each instance; the
    state properties among ``props`` are in ``state_props``."""

    def __init__(self, model: Model, props: Sequence[Property] = ()) -> None:
        self.model = model
        schema = model.schema
        names = schema.names
        var_expr = {n: f"C[{i}]" for i, n in enumerate(names)}
        step_props = [(p, p.term(schema)) for p in props if p.on == "step"]
        src = _Source()
        steps = []
        # the knobs substituted into every instance's terms at once (the instances share most
        # of their terms, and terms are hash-consed: the same as one instance at a time)
        roots = [[t.guard, t.ret, t.subject, *(t.events[n] for n in sorted(t.events)), *t.next]
                 for t in model.terms]
        flat = substitute([r for rs in roots for r in rs], model.knob_env)
        at = 0
        for t, rs in zip(model.terms, roots):
            ev_names = sorted(t.events)
            guard, ret, subject, *rest = flat[at:at + len(rs)]
            at += len(rs)
            events = dict(zip(ev_names, rest[:len(ev_names)]))
            nxt = rest[len(ev_names):]
            lines: list[str] = []
            (g,) = _emit([guard], var_expr, lines)
            gfn = src.add(f"guard_{t.instance.index}", "C", lines, g)
            changed = [(k, x) for k, x in enumerate(nxt) if not (x.op == "var" and x.args[0] == names[k])]
            lines = []
            outs = _emit([ret, *(x for _, x in changed)], var_expr, lines)
            afn = src.add(f"step_{t.instance.index}", "C", lines,
                          f"({outs[0]}, [" + ", ".join(f"({k}, {o})" for (k, _), o in zip(changed, outs[1:])) + "])")
            env: dict[str, Any] = dict(model.knob_env)
            env.update({"post." + n: x for n, x in zip(names, nxt)})
            env.update({"ev." + n: events.get(n, FALSE) for n in EVENT_BIT})
            env.update({"ret": ret, "buf": subject})
            mine = [(p, term) for p, term in step_props if p.action in (None, t.instance.name)]
            # one substitution for all of them: the terms are shared (hash-consed), so each
            # property's specialised term is the same as substituted alone
            specialised = substitute([term for _, term in mine], env) if mine else []
            checks = []
            for (p, _), c in zip(mine, specialised):
                fires_when = not p.target_is_bad
                if c.op == "const" and c.args[0] != fires_when:
                    continue                       # cannot fire on this instance
                lines = []
                (r,) = _emit([c], var_expr, lines)
                name = f"check_{t.instance.index}_" + p.id.replace("-", "_")
                checks.append((p.id, fires_when, src.add(name, "C", lines, r)))
            steps.append((t.instance.index, gfn, afn, checks))
        state_props = [(p.id, not p.target_is_bad, _state_fn(p, model, var_expr, src)) for p in props if p.on == "state"]
        fns = src.compile()                        # one compilation for every function
        self.steps: list[VecStep] = [
            VecStep(i, fns[g], fns[a], tuple(VecCheck(pid, fw, fns[f]) for pid, fw, f in checks))
            for i, g, a, checks in steps]
        self.state_props = [VecProperty(pid, fw, fns[f]) for pid, fw, f in state_props]


class _Source:
    """Generated functions collected into one module, compiled at once."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.names: list[str] = []

    def add(self, name: str, params: str, lines: list[str], ret: str) -> str:
        """Add a function; returns its name (the key of :meth:`compile`'s result)."""
        if name in self.names:
            raise ValueError(f"generated function {name} defined twice")
        self.parts.append(f"def {name}({params}):\n" + "\n".join(lines) + ("\n" if lines else "")
                          + f"    return {ret}\n")
        self.names.append(name)
        return name

    def compile(self) -> dict[str, Callable[..., Any]]:
        ns: dict[str, Any] = {"_where": np.where}
        exec(compile("\n".join(self.parts), "<vec>", "exec"), ns)  # noqa: S102 - generated from model terms
        return {n: ns[n] for n in self.names}


def _state_fn(p: Property, model: Model, var_expr: dict[str, str], src: _Source) -> str:
    (t,) = substitute([p.term(model.schema)], model.knob_env)
    lines: list[str] = []
    (r,) = _emit([t], var_expr, lines)
    return src.add("prop_" + p.id.replace("-", "_"), "C", lines, r)
