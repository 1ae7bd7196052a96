"""What each action instance and each property reads and writes, from the terms; and the
dead-variable reduction of the explicit engine derived from it.

**Access sets** (:func:`accesses`, :func:`observer_reads`). Every instance's guard, return value,
subject buffer, events and next state, with the policy's knobs substituted and folded, are read by
:func:`model.terms.reads` (a fold over the term graph): the guard's reads, the effect's reads (of
everything but the guard) and the fields it writes (those whose next-state term is not the field
itself). A knob that switches a branch off takes that branch's reads with it. The same for each
property's predicate (a step predicate's reads of the post-state are named ``post.<field>``) and
for the stuck-state goals.

**Dead variables** (:func:`analyse`, :class:`Reduction`). A field ``f`` is *dead when* ``g == v``
(``g`` another field, ``v`` one of its values) when, in every state where ``g == v``:

1. nothing observable reads ``f``: no instance's guard, return, subject buffer or events, no
   other field's next value, no state property, no stuck-state goal, and no step property as the
   engine evaluates it: specialised to each instance (the instance's next state, return, events
   and subject buffer substituted, so that it reads the pre-state only; then
   :func:`model.terms.simplify`). Checked on the terms with ``g := v`` substituted and folded
   (:func:`model.terms.substitute`): ``f`` must be gone from what they read (one value ``v`` for
   every value of ``g``: ``f`` is dead in every state);
2. every instance, from such a state, gives ``f`` a value that does not depend on ``f`` unless
   ``f`` is dead again afterwards: the term ``ite(dead_f(next), canon_f, next[f])`` (with
   ``next[f]`` simplified where ``dead_f(next)`` is false, :func:`model.terms.assume`) reads no
   dead field, under each dead pair's substitution: what makes ``f`` dead can end only by a step
   that writes ``f`` first. A bracket's direction is dead while it is closed, and the step that
   opens a bracket writes a new direction.

Condition 2 depends on the set of dead pairs itself (the canonicalised next value of one dead
field may read another), so the pairs are the greatest set that satisfies both: every candidate
that passes 1 is taken, and pairs that fail 2 are dropped until none does. A field that is dead
under some pair is never the condition of another (those pairs are dropped), so whether a field
is dead in a state is decided by fields that are never reset.

The reduction maps every state to its *canonical* state: each dead field reset to its initial
value where one of its conditions holds. The engine searches canonical states only (the initial
states are made canonical, and each instance's next-state terms become
``ite(dead_f(next), canon_f, next[f])`` for the fields it touches, compiled like the rest); a
step property is evaluated, as without the reduction, on the instance's own next state.

**Why every verdict is kept.** Let ``s ~ s'`` when the two have the same canonical state: they
agree on every field except dead ones, and on which fields are dead. By 1, the same instances are
enabled in both, with the same return, events and subject buffer, and every state predicate
(properties and goals) has the same value (a term that does not read ``f`` on the box where the
conditions hold has the same value however the dead fields differ), and so does every step
property specialised to an instance, which is what both searches evaluate on the step from a
state. By 1 and 2, the successors by one instance are again ``~``-related. So ``~`` is a
bisimulation that respects every observation, and the canonical search finds a state or a step
on which a property fires at exactly the depths the unreduced search does:

* ``always``/``step`` violations, ``undefined`` targets and ``witness`` targets are found in the
  same BFS level, so verdicts and shortest trace lengths are the same; a trace is a list of
  instances, replayed on the unreduced model (``Model.step``), where every step is enabled and
  fires the same property (the replayed states are ``~`` the searched ones), and the monitor
  confirms it as before;
* stuck states: goals are predicates the analysis includes, and reachability of a goal state is
  the same from ``~``-related states, so a class is stuck exactly when its members are; the
  engine counts canonical states (classes) where the unreduced search counts states;
* counts of states, transitions and self-loops are of canonical states (as under symmetry).

What the reduction changes is the evidence's counts, and :meth:`StateSpace.lookup` maps a
concrete state to its canonical one before looking it up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from model.machine import Model
from model.events import EVENT_BIT
from model.terms import FALSE, Term, assume, const, eq, facts, ite, or_, reads, simplify, substitute, var

from ..goals import goals_for_scope
from ..index import PROPERTIES
from ..property import Property, StateView

__all__ = ["Access", "accesses", "observer_reads", "Reduction", "analyse", "reduction_for", "MODES"]

MODES = ("dead", "none")
ALWAYS = (-1, 0)   # the condition of a field dead in every state


@dataclass(frozen=True)
class Access:
    """What one action instance reads and writes (field names), its policy's knobs folded."""

    instance: int
    guard_reads: frozenset[str]
    effect_reads: frozenset[str]       # of the return, subject buffer, events and next state
    writes: frozenset[str]             # fields whose next value is not the field itself


@dataclass(frozen=True)
class _Folded:
    """A model's terms with its knobs folded: per instance ``[guard, ret, subject, *events]`` and
    the next state; the observers' terms (state predicates over the state, step predicates over
    the state, ``post.*``, ``ret``, ``ev.*`` and ``buf``)."""

    outs: list[list[Term]]
    nxt: list[list[Term]]
    state_obs: list[Term]
    step_obs: list[Term]


def _env(model: Model) -> dict[str, object]:
    """The policy's knobs, and the fields with one value in the scope (a buffer number when the
    scope has one buffer): what every state has."""
    env: dict[str, object] = dict(model.knob_env)
    for n, (lo, hi), b in zip(model.schema.names, model.schema.bounds, model.schema.is_bool):
        if lo == hi:
            env[n] = bool(lo) if b else lo
    return env


def _folded(model: Model, observers: Sequence[Property] = ()) -> _Folded:
    roots = [[t.guard, t.ret, t.subject, *(t.events[n] for n in sorted(t.events))] for t in model.terms]
    sizes = [len(r) for r in roots]
    view = StateView(model.schema)
    goals = goals_for_scope(model.scope.buffers, model.revision)
    state_obs = [p.term(model.schema) for p in observers if p.on == "state"]
    state_obs += [t for g in goals for t in (g.pending(view), g.done(view))]
    flat = substitute([r for rs in roots for r in rs] + [x for t in model.terms for x in t.next]
                      + state_obs, _env(model))
    outs, at = [], 0
    for n in sizes:
        outs.append(flat[at:at + n])
        at += n
    w = model.schema.width
    env = _env(model)
    fixed = [var(n, "bool" if b else "int") if n in env else None
             for n, b in zip(model.schema.names, model.schema.is_bool)]
    # (a field of one value keeps it: its next term, the constant, is the field itself)
    nxt = [[fx if fx is not None else x for x, fx in zip(flat[at + i * w: at + (i + 1) * w], fixed)]
           for i in range(len(model.terms))]
    at += w * len(model.terms)
    return _Folded(outs, nxt, flat[at:], _specialised(model, observers, outs, nxt))


def _specialised(model: Model, observers: Sequence[Property], outs: list[list[Term]],
                 nxt: list[list[Term]]) -> list[Term]:
    """Every step predicate specialised to every instance it can fire on: the instance's next
    state, return, events and subject buffer substituted, so that it reads the pre-state only
    (what the explicit engine evaluates, ``properties.engines.vectorize``), then simplified."""
    step_props = [p for p in observers if p.on == "step"]
    if not step_props:
        return []
    terms = substitute([p.term(model.schema) for p in step_props], _env(model))
    names = model.schema.names
    out: dict[int, Term] = {}
    for t, o, nx in zip(model.terms, outs, nxt):
        mine = [x for p, x in zip(step_props, terms) if p.action in (None, t.instance.name)]
        if not mine:
            continue
        env: dict[str, Term] = {"post." + n: x for n, x in zip(names, nx)}
        ev = dict(zip(sorted(t.events), o[3:]))
        env.update({"ev." + n: ev.get(n, FALSE) for n in EVENT_BIT})
        env.update({"ret": o[1], "buf": o[2]})
        for c in substitute(mine, env):
            if c.op != "const":
                c = simplify(c)
                out[c.uid] = c
    return list(out.values())


def accesses(model: Model) -> list[Access]:
    """Per instance, the fields its guard reads, its effect reads and it writes."""
    f = _folded(model)
    names = model.schema.names
    memo: dict[int, frozenset] = {}
    out = []
    for i, (o, nx) in enumerate(zip(f.outs, f.nxt)):
        g, *rest = reads(o, memo)
        nr = reads(nx, memo)
        writes = frozenset(n for n, x in zip(names, nx) if not (x.op == "var" and x.args[0] == n))
        eff = frozenset().union(*rest, *(r for n, r in zip(names, nr) if n in writes))
        out.append(Access(i, g, eff, writes))
    return out


def observer_reads(model: Model, props: Iterable[Property]) -> dict[str, frozenset[str]]:
    """Per property, the fields its predicate reads with the policy's knobs folded (a step
    predicate's post-state reads as ``post.<field>``; also ``ret``, ``buf``, ``ev.<event>``)."""
    props = list(props)
    terms = substitute([p.term(model.schema) for p in props], _env(model))
    return {p.id: r for p, r in zip(props, reads(terms))}


@dataclass(frozen=True)
class Reduction:
    """Dead fields of one model (for one set of observers): ``dead[f]`` lists the conditions
    ``(g, v)`` (field indices and values) under which field ``f`` is reset to ``canon[f]``."""

    model: Model
    dead: dict[int, tuple[tuple[int, int], ...]]
    canon: dict[int, int]

    @property
    def mode(self) -> str:
        return "dead"

    def describe(self) -> list[str]:
        names = self.model.schema.names
        return [f"{names[f]} " + ("always" if ALWAYS in conds else "when " + " or ".join(
                f"{names[g]} == {v}" for g, v in conds)) for f, conds in sorted(self.dead.items())]

    def restricted(self, names: Iterable[str]) -> "Reduction":
        """The same reduction for the fields named only (a subset of dead fields is sound)."""
        keep = {self.model.schema.offset[n] for n in names}
        return Reduction(self.model, {f: c for f, c in self.dead.items() if f in keep},
                         {f: v for f, v in self.canon.items() if f in keep})

    def next_terms(self, nxt: Sequence[Term]) -> list[Term]:
        """One instance's next-state terms (knobs folded), each dead field reset where it is dead
        after the step. A field the instance touches neither nor any of whose conditions is left
        as it is: the search's states are canonical already."""
        out = list(nxt)
        names = self.model.schema.names
        for f, conds in self.dead.items():
            if all(_same(nxt, names, k) for k in (f, *(g for g, _ in conds if g >= 0))):
                continue
            out[f] = _canon_term(nxt, f, conds, self.canon[f])
        return out

    def canonical(self, block: np.ndarray) -> np.ndarray:
        """The canonical states of a block (``width x n``, one row per field), in place."""
        for f, conds in self.dead.items():
            if ALWAYS in conds:
                block[f] = self.canon[f]
                continue
            mask = np.zeros(block.shape[1], bool)
            for g, v in conds:
                mask |= block[g] == v
            block[f][mask] = self.canon[f]
        return block

    def canonical_state(self, state: Sequence) -> tuple:
        s = list(state)
        for f, conds in self.dead.items():
            if ALWAYS in conds or any(int(s[g]) == v for g, v in conds):
                s[f] = type(s[f])(self.canon[f])
        return tuple(s)


def _same(nxt: Sequence[Term], names: Sequence[str], k: int) -> bool:
    x = nxt[k]
    return x.op == "var" and x.args[0] == names[k]


def _canon_term(nxt: Sequence[Term], f: int, conds: Sequence[tuple[int, int]], canon: int) -> Term:
    if ALWAYS in conds:
        return _value(nxt[f], canon)
    dead = or_(*(eq(nxt[g], _value(nxt[g], v)) for g, v in conds))
    keep = assume([nxt[f]], facts(dead, False))[0]
    return ite(dead, _value(nxt[f], canon), keep)


def _value(like: Term, v: int) -> Term:
    return const(bool(v)) if like.sort == "bool" else const(int(v))


def analyse(model: Model, observers: Sequence[Property] = (), *, check_next: bool = True) -> Reduction:
    """The dead fields of ``model`` for the observers ``observers`` (the properties checked;
    the stuck-state goals are always observers): see the module docstring. ``check_next: False``
    switches condition 2 off (only the tests do, to see that the agreement test notices)."""
    schema = model.schema
    names = schema.names
    f = _folded(model, observers)
    width = schema.width
    values = {k: ([0, 1] if schema.is_bool[k] else list(range(lo, hi + 1)))
              for k, (lo, hi) in enumerate(schema.bounds)}
    written = set()
    for nx in f.nxt:
        written.update(k for k in range(width) if not _same(nx, names, k))
    # candidates: fields some instance writes, with more than one value
    cand_f = [k for k in range(width) if k in written and len(values[k]) > 1]
    n_out = sum(len(o) for o in f.outs)
    dead: dict[int, list[tuple[int, int]]] = {}
    base = [x for o in f.outs for x in o] + [x for nx in f.nxt for x in nx] + f.state_obs + f.step_obs
    n_base = n_out + width * len(f.nxt)
    rd0 = reads(base)
    for g in range(width):
        # only the roots that read g change under g := v
        at = [j for j, r in enumerate(rd0) if names[g] in r]
        for v in values[g]:
            val = bool(v) if schema.is_bool[g] else v
            rd = list(rd0)
            for j, r in zip(at, reads(substitute([base[j] for j in at], {names[g]: val}))):
                rd[j] = r
            # condition 1: nothing but f's own next value reads f where g == v
            blocked = set().union(*rd[:n_out], *rd[n_base:])
            by_next: dict[str, set[int]] = {}
            for i in range(len(f.nxt)):
                row = rd[n_out + i * width: n_out + (i + 1) * width]
                for k, r in enumerate(row):
                    for name in r:
                        by_next.setdefault(name, set()).add(k)
            for k in cand_f:
                if k == g or names[k] in blocked or by_next.get(names[k], set()) - {k}:
                    continue
                dead.setdefault(k, []).append((g, v))
    # a dead field is never a condition
    changed = True
    while changed:
        changed = False
        for k in list(dead):
            kept = [(g, v) for g, v in dead[k] if g not in dead]
            if len(kept) < len(dead[k]):
                changed = True
                if kept:
                    dead[k] = kept
                else:
                    del dead[k]
    # a field dead whatever value some field has is dead in every state
    for k, conds in dead.items():
        by_g: dict[int, int] = {}
        for g, _ in conds:
            by_g[g] = by_g.get(g, 0) + 1
        if any(n == len(values[g]) for g, n in by_g.items()):
            dead[k] = [ALWAYS]
    canon = {k: int(schema.init[k]) for k in range(width)}
    if check_next:
        dead = _fixpoint(f, names, schema.is_bool, dead, canon)
    return Reduction(model, {k: tuple(c) for k, c in dead.items()}, {k: canon[k] for k in dead})


def _fixpoint(f: _Folded, names: Sequence[str], is_bool: Sequence[bool],
              dead: dict[int, list[tuple[int, int]]], canon: dict[int, int]) -> dict[int, list[tuple[int, int]]]:
    """Condition 2: drop pairs until, under each pair's condition, no instance's canonicalised
    next state reads the pair's field."""
    width = len(names)
    # (instance, field) pairs to look at: a field an instance leaves alone, with all the fields
    # its deadness depends on, keeps its value and its deadness, so it cannot break condition 2
    touched = [[k for k in range(width) if not _same(nx, names, k)] for nx in f.nxt]
    while True:
        groups: dict[tuple[int, int], list[int]] = {}
        for k, conds in dead.items():
            for g, v in conds:
                groups.setdefault((g, v), []).append(k)
        look = []
        for i, nx in enumerate(f.nxt):
            t = set(touched[i])
            look.append([k for k in range(width)
                         if k in t or (k in dead and any(g in t for g, _ in dead[k] if g >= 0))])
        drop: set[tuple[int, int, int]] = set()
        flat = [x for nx in f.nxt for x in nx]
        for (g, v), fields in groups.items():
            sub = substitute(flat, {} if g < 0 else {names[g]: bool(v) if is_bool[g] else v})
            rd = reads(sub)
            mine = {names[k] for k in fields}
            read: set[str] = set()
            for i in range(len(f.nxt)):
                row = rd[i * width:(i + 1) * width]
                for k in look[i]:
                    # what the canonicalised next value can read: the next value and the
                    # conditions' next values; built only when that meets the group's fields
                    may = row[k] if k not in dead else row[k].union(*(row[c] for c, _ in dead[k] if c >= 0))
                    if not may & mine:
                        continue
                    if k in dead:
                        nx = sub[i * width:(i + 1) * width]
                        read |= reads([_canon_term(nx, k, dead[k], canon[k])])[0] & mine
                    else:
                        read |= may & mine
            drop.update((k, g, v) for k in fields if names[k] in read)
        if not drop:
            return dead
        for k, g, v in drop:
            dead[k] = [c for c in dead[k] if c != (g, v)]
            if not dead[k]:
                del dead[k]


def reduction_for(model: Model, observers: Sequence[Property], mode: str = "dead") -> Reduction | None:
    """The reduction of ``mode`` (``"dead"`` or ``"none"``) for a model checked against the
    properties ``observers``. It is analysed once per model for the catalog's properties that
    apply to it together with ``observers`` (more observers, fewer dead fields: still sound for
    any subset of them), so that searches for one property each reuse it."""
    if mode == "none":
        return None
    if mode not in MODES:
        raise ValueError(f"unknown reduction {mode!r}; known: {', '.join(MODES)}")
    cache: list[tuple[frozenset[str], Reduction]] = model.__dict__.setdefault("_reductions", [])
    want = frozenset(p.id for p in observers)
    for ids, red in cache:
        if want <= ids:
            return red
    catalog = [p for p in PROPERTIES if p.active(model.policy, model.scope, model.revision)]
    every = list({p.id: p for p in (*catalog, *observers)}.values())
    red = analyse(model, every)
    cache.append((frozenset(p.id for p in every), red))
    return red
