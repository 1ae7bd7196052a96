"""A third interpretation of the term vocabulary: numpy over a whole batch of states.

``docs/design.md``, point 3 (numpy over a batch of states, ``ite`` as ``where``). The
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

import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from model.events import EVENT_BIT
from model.machine import Model
from model.terms import FALSE, Term, fold, not_, postorder, substitute

from ..property import Property

__all__ = ["VecStep", "VecCheck", "VecModel", "VecProperty", "Columns", "columns", "state_predicates"]

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


_MAX_NESTING = 24     # operations nested in one generated expression before a local holds one


def _emit(roots: Sequence[Term], var_expr: dict[str, str], lines: list[str],
          shared: set[int] | frozenset[int] = frozenset(), prologue: bool = True) -> list[str]:
    """Append numpy code computing the term graph ``roots`` to ``lines``; return the roots'
    expressions (:func:`model.terms.fold` of the table ``_NP``). An operation used once is nested
    in its user's expression, one used more often (or nested too deep) is computed once into a
    local. An operation in ``shared`` (one that other generated functions compute too) is read
    from the block's memo instead, ``T[uid]`` (:class:`Memo`), which computes it when it does not
    hold it: its arguments are not walked here. ``prologue``: the function gets ``T`` from ``C``
    itself."""
    order = postorder(roots, shared)
    uses: Counter[int] = Counter(r.uid for r in roots)
    for t in order:
        if t.op not in ("const", "var") and t.uid not in shared:
            uses.update(a.uid for a in t.args)
    depth: dict[int, int] = {}          # operations nested in a term's expression (leaves: 0)
    memo = False

    def leaf(t: Term) -> str:
        try:
            return var_expr[t.args[0]]
        except KeyError:
            raise KeyError(f"vectorised code has no input for model variable {t.args[0]!r}") from None

    def share(t: Term, e: str) -> str:
        nonlocal memo
        if t.uid in shared:
            d = 0
            memo = True
        else:
            d = 1 + max(depth.get(a.uid, 0) for a in t.args)
        if uses[t.uid] > 1 or d > _MAX_NESTING:
            lines.append(f"    t{t.uid} = {e}")
            e, d = f"t{t.uid}", 0
        depth[t.uid] = d
        return e

    reads = shared if isinstance(shared, _MemoReads) else _MemoReads(shared)
    out = fold(roots, _NP, _repr, leaf, order=order, cut=reads, share=share)
    if prologue and memo:
        lines.insert(0, "    T = C.memo(_F)")
    return out


def _repr(t: Term) -> str:
    return repr(t.args[0])


class _MemoReads(frozenset):
    """The shared operations, each read from the block's memo: ``reads[uid] == "T[uid]"``."""

    def __getitem__(self, uid: int) -> str:
        return f"T[{uid}]"


class Columns:
    """The columns of a block of states (``block`` is ``width x n``, one row per field), or of the
    states ``idx`` of it, each converted when first read (``C[k]``): a guard or an update reads a
    few fields, so most are never gathered or converted. The generated functions keep the
    operations they share in the block's memo (:meth:`memo`), of up to ``memo_bytes``."""

    __slots__ = ("block", "idx", "is_bool", "cache", "memo_bytes", "_memo", "__weakref__")

    def __init__(self, block: np.ndarray, is_bool: Sequence[bool], idx: np.ndarray | None = None,
                 memo_bytes: int = 0) -> None:
        self.block = block
        self.idx = idx
        self.is_bool = is_bool
        self.cache: list[Any] = [None] * len(is_bool)
        self.memo_bytes = memo_bytes
        self._memo: Memo | None = None

    def __getitem__(self, k: int) -> np.ndarray:
        c = self.cache[k]
        if c is None:
            row = self.block[k] if self.idx is None else self.block[k, self.idx]
            c = self.cache[k] = row.view(np.bool_) if self.is_bool[k] else row.astype(np.int16)
        return c

    def memo(self, fns: dict[int, Callable[..., Any]]) -> "Memo":
        """The memo of shared operations over this block (``fns``: how to compute each)."""
        m = self._memo
        if m is None or m.fns is not fns:
            m = self._memo = Memo(fns, self, self.memo_bytes)
        return m


def columns(model: Model, block: np.ndarray, idx: np.ndarray | None = None, memo_bytes: int = 0) -> Columns:
    """The columns of a block of states (of its states ``idx``), read lazily (:class:`Columns`),
    with a memo of up to ``memo_bytes`` of the operations the generated functions share."""
    return Columns(block, model.schema.is_bool, idx, memo_bytes)


class Memo(dict):
    """The values of the operations that several generated functions compute, over one block of
    states, by term id: ``T[uid]`` computes a missing one (``fns[uid](C, T)``) and keeps it, the
    oldest dropped beyond ``capacity`` bytes (0: only what costs nothing to keep). Consecutive
    instances, often of one action, share many terms (guard conjuncts, next-state terms, the
    properties' specialised terms), so a small memo saves most operations."""

    __slots__ = ("fns", "columns", "capacity", "used")

    def __init__(self, fns: dict[int, Callable[..., Any]], C: Columns, capacity: int) -> None:
        super().__init__()
        self.fns = fns
        self.columns = weakref.ref(C)                # (no cycle: the block is freed with C)
        self.capacity = capacity
        self.used = 0

    def __missing__(self, uid: int) -> Any:
        v = self.fns[uid](self.columns(), self)
        nbytes = getattr(v, "nbytes", 0)
        if nbytes <= self.capacity:
            self[uid] = v
            self.used += nbytes
            while self.used > self.capacity:
                old = self.pop(next(iter(self)))
                self.used -= getattr(old, "nbytes", 0)
        return v


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
    fields: tuple[int, ...] = ()      # the fields of ``changes``, in its order
    copies: int = 1                   # instances it stands for (itself and the later ones that
                                      # behave the same, see VecModel)


@dataclass(frozen=True)
class VecProperty:
    """A state property's predicate over a batch of states: fires where ``fn(C) == fires_when``."""

    id: str
    fires_when: bool
    fn: Callable[[list], Any]


class VecModel:
    """Every action instance of a model, compiled to numpy, with the step properties ``props``
    (already selected for the model, e.g. by a ``Monitor``) specialised to each instance; the
    state properties among ``props`` are in ``state_props``.

    ``merge``: instances of one action whose terms, once the policy's knobs are folded in, are the
    same (guard, next state, return, events, subject buffer) behave the same in every state: the
    first of them stands for the others (``VecStep.copies``) and the rest are not compiled. Every
    property sees the same step from each (a step property reads the pre- and post-state, the
    return, the events, the buffer and the action's name), so a search gives the same states,
    findings and edges (the first instance connecting two states is kept), and counts each
    transition ``copies`` times. On ``tiny`` a third of the 92 instances go (interrupted calls with
    nothing to interrupt, the mapping directions of dma_buf_map_attachment, the bad SYNC flags).

    ``reduction`` (``properties.engines.reduce.Reduction``): the successors' dead fields are reset
    (each instance's next-state terms through ``reduction.next_terms``)."""

    def __init__(self, model: Model, props: Sequence[Property] = (), merge: bool = True,
                 reduction: Any = None) -> None:
        self.model = model
        schema = model.schema
        names = schema.names
        var_expr = {n: f"C[{i}]" for i, n in enumerate(names)}
        step_props = [(p, p.term(schema)) for p in props if p.on == "step"]
        src = _Source()
        steps: list[tuple] = []
        by_action: dict[str, tuple[list, list[Term]]] = {}
        # the knobs substituted into every instance's terms at once (the instances share most
        # of their terms, and terms are hash-consed: the same as one instance at a time)
        roots = [[t.guard, t.ret, t.subject, *(t.events[n] for n in sorted(t.events)), *t.next]
                 for t in model.terms]
        flat = substitute([r for rs in roots for r in rs], model.knob_env)
        at = 0
        first: dict[tuple, int] = {}          # behaviour -> position in steps of its first instance
        copies: list[int] = []
        for t, rs in zip(model.terms, roots):
            ev_names = sorted(t.events)
            folded = flat[at:at + len(rs)]
            guard, ret, subject, *rest = folded
            at += len(rs)
            if merge:
                key = (t.instance.name, tuple(ev_names), tuple(x.uid for x in folded))
                if key in first:
                    copies[first[key]] += 1
                    continue
                first[key] = len(steps)
            copies.append(1)
            events = dict(zip(ev_names, rest[:len(ev_names)]))
            nxt = rest[len(ev_names):]
            # the successor: under a reduction, dead fields reset (the step checks below still
            # see the step's own next state; properties.engines.reduce says why both agree)
            succ = reduction.next_terms(nxt) if reduction is not None else nxt
            gfn = src.add(f"guard_{t.instance.index}", [guard])
            changed = [(k, x) for k, x in enumerate(succ) if not (x.op == "var" and x.args[0] == names[k])]
            afn = src.add(f"step_{t.instance.index}", [ret, *(x for _, x in changed)],
                          lambda outs, changed=changed: f"({outs[0]}, [" + ", ".join(
                              f"({k}, {o})" for (k, _), o in zip(changed, outs[1:])) + "])")
            env: dict[str, Any] = dict(model.knob_env)
            env.update({"post." + n: x for n, x in zip(names, nxt)})
            env.update({"ev." + n: events.get(n, FALSE) for n in EVENT_BIT})
            env.update({"ret": ret, "buf": subject})
            action = t.instance.name
            if action not in by_action:
                mine = [(p, term) for p, term in step_props if p.action in (None, action)]
                by_action[action] = (mine, postorder([term for _, term in mine]))
            mine, order = by_action[action]
            # one substitution for all of them, in the order of their terms' graph walked once
            # per action: terms are hash-consed, so each property's specialised term is the same
            # as substituted alone
            specialised = substitute([term for _, term in mine], env, order=order)
            checks = []
            for (p, _), c in zip(mine, specialised):
                fires_when = not p.target_is_bad
                if c.op == "const" and c.args[0] != fires_when:
                    continue                       # cannot fire on this instance
                name = f"check_{t.instance.index}_" + p.id.replace("-", "_")
                # the function gives where the property fires (an invariant's negation, whose
                # own negation mostly cancels): one operation less per check
                checks.append((p.id, True, src.add(name, [c if fires_when else not_(c)])))
            steps.append((t.instance.index, gfn, afn, checks, tuple(k for k, _ in changed)))
        state_props = [(p.id, True, _state_fn(p, model, src)) for p in props if p.on == "state"]
        fns = src.compile(var_expr)                # one compilation for every function
        self.steps: list[VecStep] = [
            VecStep(i, fns[g], fns[a], tuple(VecCheck(pid, fw, fns[f]) for pid, fw, f in checks), fields, k)
            for (i, g, a, checks, fields), k in zip(steps, copies)]
        self.state_props = [VecProperty(pid, fw, fns[f]) for pid, fw, f in state_props]


class _Source:
    """Generated functions collected into one module, compiled at once; an operation that several
    functions compute goes through the columns' memo (:class:`Memo`)."""

    def __init__(self) -> None:
        self.funcs: list[tuple[str, list[Term], Callable[[list[str]], str]]] = []
        self.names: set[str] = set()

    def add(self, name: str, roots: list[Term], ret: Callable[[list[str]], str] = lambda outs: outs[0]) -> str:
        """Add a function of ``C`` computing ``roots`` and returning ``ret(their expressions)``;
        returns its name (the key of :meth:`compile`'s result)."""
        if name in self.names:
            raise ValueError(f"generated function {name} defined twice")
        self.funcs.append((name, roots, ret))
        self.names.add(name)
        return name

    def compile(self, var_expr: dict[str, str]) -> dict[str, Callable[..., Any]]:
        # an operation is shared when it is an argument of two operations or a result of two
        # functions (or one of each), over the whole graph of every function, walked once
        order = postorder([r for _, roots, _ in self.funcs for r in roots])
        uses: Counter[int] = Counter(r.uid for _, roots, _ in self.funcs for r in roots)
        for t in order:
            if t.op not in ("const", "var"):
                uses.update(a.uid for a in t.args)
        shared = _MemoReads(t.uid for t in order if t.op not in ("const", "var") and uses[t.uid] > 1)
        parts = []
        for name, roots, ret in self.funcs:
            lines: list[str] = []
            outs = _emit(roots, var_expr, lines, shared)
            parts.append(f"def {name}(C):\n" + "".join(line + "\n" for line in lines) + f"    return {ret(outs)}\n")
        # one function per shared operation, of the block and its memo
        for t in order:
            if t.uid in shared:
                lines = []
                args = _emit(t.args, var_expr, lines, shared, prologue=False)
                parts.append(f"def _t{t.uid}(C, T):\n" + "".join(line + "\n" for line in lines)
                             + f"    return {_NP[t.op](*args)}\n")
        ns: dict[str, Any] = {"_where": np.where}
        exec(compile("\n".join(parts), "<vec>", "exec"), ns)  # noqa: S102 - generated from model terms
        ns["_F"] = {uid: ns[f"_t{uid}"] for uid in shared}
        return {name: ns[name] for name, _, _ in self.funcs}


def state_predicates(model: Model, terms: Sequence[Term]) -> list[Callable[[Columns], Any]]:
    """State predicates (terms over the state and the knobs) as numpy functions of a block's
    columns, the policy's knobs folded in: what the stuck-state goals are evaluated with."""
    src = _Source()
    folded = substitute(list(terms), model.knob_env)
    names = [src.add(f"pred_{i}", [t]) for i, t in enumerate(folded)]
    fns = src.compile({n: f"C[{i}]" for i, n in enumerate(model.schema.names)})
    return [fns[n] for n in names]


def _state_fn(p: Property, model: Model, src: _Source) -> str:
    """A function giving where state property ``p`` fires."""
    (t,) = substitute([p.term(model.schema)], model.knob_env)
    return src.add("prop_" + p.id.replace("-", "_"), [not_(t) if p.target_is_bad else t])

