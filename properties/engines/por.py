"""Partial-order reduction of the explicit engine: stubborn sets derived from the terms.

**Relations** (:func:`relations`). From :func:`properties.engines.reduce.accesses` (per action
instance, with the policy's knobs folded: the fields its guard reads, the fields its effect --
return, subject buffer, events, next state -- reads, and the fields it writes) and from the
properties checked (the *observers*):

* an instance is *visible* when it writes a field some checked state property (``always``,
  ``undefined`` or ``witness`` over states) reads, or when some checked step property can fire on
  it: the property specialised to the instance (its next state, return, events and subject buffer
  substituted, as :mod:`properties.engines.vectorize` compiles it) does not fold to the constant
  that never fires. A step property specialised to an instance reads pre-state fields only; those
  are added to the instance's reads, and the instance writes a pseudo-field ``fired:<property>``
  (the argument below reads the step property as a state property over that history field);
* two instances are *dependent* when one writes a field the other reads (guard or effect) or
  writes. Return values, events and subject buffers are labels of a transition, not state: an
  instance's label reads fields (its effect reads), so an instance that changes them is dependent
  on it, and that is all a label can share;
* ``b`` *can enable* ``a`` when ``b`` writes a field ``a``'s guard reads (a subset of dependence).

With ``semantic=True`` (:func:`relations`; off in the search, see the figures below) each pair the
fields call dependent is asked of Z3 on the terms: do the two commute in every state within the
schema's bounds where both are enabled (neither disables the other, both orders reach the same
state, each one's return, subject buffer, events and specialised step predicates the same before
and after the other)? And each enabling pair: is there a state where ``a`` is disabled, ``b``
enabled, and ``a`` enabled after ``b``? Pairs proved independent (not enabling) are dropped.

*Visibility changes during the search*: a property that has fired is settled (its verdict and,
after shortening, its trace do not depend on what the search does next), so the engine re-chooses
with the properties not yet found as observers at each level (:meth:`PartialOrder.observe`). The
conditions below only need to hold, at each state, for the observers of every property whose
verdict is still open; a smaller set of observers is a weaker requirement, so the choices made
earlier with more observers satisfy it too. An instance that never changes the state (no field
written after knob folding) is never chosen into a proper set: its step is a self-loop, which the
cycle proviso would expand fully anyway.

**Stubborn sets** (:class:`PartialOrder`). In a state ``s`` with enabled instances ``En(s)``, a set
``T`` is built from a seed by closure: an enabled member brings every instance dependent on it, a
disabled member every instance that can enable it (Valmari's strong stubborn sets with the
necessary enabling set over-approximated by all writers of the guard's fields). The search follows
``T & En(s)`` instead of ``En(s)`` when it is non-empty, a strict subset, and has no visible
member; the seed whose set has the fewest enabled members is taken (ties: the lowest instance);
otherwise the state is *fully expanded*. The choice depends on ``En(s)`` only, so it is made once
per distinct set of enabled instances (a few hundred on ``tiny``) and cached; the search computes
every guard of a block of states, groups the rows by their enabled sets and looks the choices up.

**Cycle proviso for breadth-first search.** A state whose reduced set has a successor that was
already visited in an earlier level (depth at most its own: the frontier included), or a
self-loop, is expanded fully (the conservative breadth-first condition of Bosnacki and Holzmann,
"Improving Spin's partial-order reduction for breadth-first search", SPIN 2005, read as: reduce only
where every successor is new). Then every edge out of a reduced state goes to a state of the next
level; depths along a cycle cannot grow at every edge, so every cycle of the reduced graph has a
fully expanded state (condition C3 of Clarke, Grumberg and Peled, *Model Checking*, ch. 10).

**Why the verdicts are kept** (a reading of the standard theorems; the tests check it on the whole
catalog, ``tests/test_por.py``). Conditions C0 (the set is empty only where nothing is enabled),
C1 (strong stubborn: no path of instances outside ``T`` can enable a disabled member or be
dependent on an enabled one, since every such instance is in ``T``), C2 (a proper set has no
visible instance) and C3 (above) make the reduced graph stutter-equivalent to the full one for
every valuation of the visible fields (Clarke-Grumberg-Peled, theorem 10.6 of the first edition,
read as applying to reachability). So:

* ``always``/``undefined``/``witness`` properties over states: a state where the predicate fires
  is reachable in the full graph iff one with the same visible fields is reachable in the reduced
  graph (the predicate reads visible fields only);
* ``step`` properties and step-level ``undefined``/``witness`` targets: add a history field
  ``fired:p``, set (and never cleared) by an instance when ``p`` fires on its step; an instance
  that can set it is visible and reads the fields ``p`` reads in the pre-state. Then "``p`` fires on
  some reachable transition" is "``fired:p`` becomes true", a state property over a visible field.
  (The search evaluates step properties on every enabled transition of every reached state, which
  is more than the argument needs and only real transitions;)
* verdicts (``violated``/``holds`` for invariants and undefined targets, reached/unreachable for
  witnesses) therefore agree. The reduced graph's shortest path to a firing can be longer: a trace
  found under the reduction is re-searched by a breadth-first search without it, bounded by one
  step less than the trace (:func:`properties.engines.explicit.check`), so reported traces stay
  shortest;
* deadlocks are kept (C0), but "no goal state is reachable from here" -- the stuck states of
  :mod:`properties.engines.stuck` -- is not a stutter-invariant property of single states, and
  the reduced graph has fewer states to count: under this reduction the stuck-state analysis runs
  on a search without it (:class:`properties.engines.explicit.ExplicitEngine`).
* counts of states and edges are of the reduced graph; ``transitions`` counts every enabled
  instance of every reached state, as without it.

**What it gives on this model (2026-12-04).** Nothing yet: on ``tiny`` no state of any catalog
policy has a proper stubborn set (``docs/explicit.md``, "Partial-order reduction"). Sampled
reachable states of ``vgem`` have 10 to 28 enabled instances that change the state, and these form
one connected component of the dependence relation, syntactic or semantic: with one buffer, every
action reads or writes that buffer's reference count, fd table, bracket or write-class fields. A
strong stubborn set is closed under dependence of its enabled members, so it holds them all.

**Combinations.** With the dead-variable reduction (``"dead+por"``): that reduction is a
bisimulation that keeps instance labels and every observation (``reduce``'s docstring), so the
instances' independence and enabling carry over to its quotient, and the stubborn sets computed
from the concrete terms are stubborn there. With symmetry: not implemented (the cycle proviso and
the choice per concrete row would need the argument of Emerson, Jha and Peled for the quotient);
the engine refuses it, as it does searches that avoid steps (``avoid``: cutting a transition out of
a state breaks C1), which then search without partial-order reduction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from model.events import EVENT_BIT
from model.machine import Model
from model.terms import FALSE, reads, substitute, to_z3

from ..property import Property
from .reduce import _env, _folded, accesses

__all__ = ["MODES", "parse_mode", "Relations", "relations", "PartialOrder"]

MODES = ("dead", "none", "por", "dead+por")
DROPS = (None, "write-read", "enable", "visible", "labels", "dependence")


def parse_mode(mode: str) -> tuple[str, bool]:
    """``(dead-variable mode, partial order on?)`` of a ``--reduce`` mode."""
    if mode not in MODES:
        raise ValueError(f"unknown reduction {mode!r}; known: {', '.join(MODES)}")
    return ("dead" if mode in ("dead", "dead+por") else "none"), mode.endswith("por")


@dataclass(frozen=True)
class Relations:
    """Per instance (rows in instance order): ``dependent[a, b]``, ``enables[a, b]`` (``b`` can
    enable ``a``) and ``visible[a]``; ``why_visible[a]``: the properties that make it visible."""

    dependent: np.ndarray
    enables: np.ndarray
    visible: np.ndarray
    why_visible: tuple[tuple[str, ...], ...]


class _Analysis:
    """What the relations are built from, per model, computed once and kept on the model: the
    instances' accesses; per step property, the instances it can fire on and what it reads there;
    per state property, the instances that may change its value (one Z3 query per instance that
    writes a field it reads)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.acc = accesses(model)
        self.names = model.schema.names
        self._folded = None
        self._step: dict[str, dict[int, frozenset]] = {}
        self._state: dict[str, frozenset[int]] = {}
        self._solver = None
        self._spec: dict[int, list] = {}
        self._commute: dict[tuple, bool] = {}
        self._enable: dict[tuple, bool] = {}

    def _folded_term(self, p: Property) -> tuple[Any, Any]:
        """The model's folded terms (computed once) and ``p``'s predicate with the knobs substituted."""
        if self._folded is None:
            self._folded = _folded(self.model)
        (term,) = substitute([p.term(self.model.schema)], _env(self.model))
        return self._folded, term

    def step(self, p: Property) -> dict[int, frozenset]:
        """Instance -> pre-state fields read, for the instances ``p`` can fire on."""
        hit = self._step.get(p.id)
        if hit is not None:
            return hit
        m = self.model
        f, term = self._folded_term(p)
        fires_when = not p.target_is_bad
        out: dict[int, frozenset] = {}
        memo: dict[int, frozenset] = {}
        for i, (t, o, nx) in enumerate(zip(m.terms, f.outs, f.nxt)):
            if p.action not in (None, t.instance.name):
                continue
            env: dict[str, object] = {"post." + n: x for n, x in zip(self.names, nx)}
            ev = dict(zip(sorted(t.events), o[3:]))
            env.update({"ev." + e: ev.get(e, FALSE) for e in EVENT_BIT})
            env.update({"ret": o[1], "buf": o[2]})
            (c,) = substitute([term], env)
            if c.op == "const" and c.args[0] != fires_when:
                continue
            out[i] = reads([c], memo)[0]
            self._spec.setdefault(i, []).append(c)
        self._step[p.id] = out
        return out

    def _z3(self):
        if self._solver is None:
            import z3   # only the semantic checks need it

            m = self.model
            self._zz = z3
            self._z = {n: z3.Bool(n) if b else z3.Int(n) for n, b in zip(self.names, m.schema.is_bool)}
            self._memo: dict[int, object] = {}
            sv = z3.Solver()
            sv.set("timeout", 2000)
            for n, (lo, hi), b in zip(self.names, m.schema.bounds, m.schema.is_bool):
                if not b:
                    sv.add(self._z[n] >= lo, self._z[n] <= hi)
            self._solver = sv
        return self._solver

    def commute(self, a: int, b: int, labels: bool = True) -> bool:
        """Do instances ``a`` and ``b`` commute in every state within the schema's bounds where
        both are enabled: neither disables the other, both orders reach the same state, and each
        one's return, subject buffer, events and specialised step predicates (of the properties
        analysed so far: :meth:`step`) are the same before and after the other (Z3; unknown is
        no). ``labels: False`` leaves out the last condition (the tests' mutation only)."""
        key = (min(a, b), max(a, b), labels)
        hit = self._commute.get(key)
        if hit is not None:
            return hit
        sv = self._z3()
        z3 = self._zz
        if self._folded is None:
            self._folded = _folded(self.model)
        f = self._folded
        names = self.names
        Z = self._z

        def after(i: int) -> dict[str, object]:
            nx = f.nxt[i]
            got = to_z3(list(nx), Z, self._memo)
            return dict(zip(names, got))

        A, B = after(a), after(b)
        conds = []
        ga, gb = f.outs[a][0], f.outs[b][0]
        ga_z, gb_z = to_z3([ga, gb], Z, self._memo)
        lab_a = list(f.outs[a][1:]) + (list(self._spec.get(a, ())) if labels else [])
        lab_b = list(f.outs[b][1:]) + (list(self._spec.get(b, ())) if labels else [])
        if not labels:
            lab_a, lab_b = [], []
        # a after b and b after a
        a_on_B = to_z3([ga, *f.nxt[a], *lab_a], B, {})
        b_on_A = to_z3([gb, *f.nxt[b], *lab_b], A, {})
        conds += [a_on_B[0], b_on_A[0]]
        nb = len(names)
        ab = b_on_A[1:1 + nb]          # b after a
        ba = a_on_B[1:1 + nb]          # a after b
        acc = self.acc
        for k, n in enumerate(names):
            if n in acc[a].writes or n in acc[b].writes:
                conds.append(ab[k] == ba[k])
        if lab_a:
            conds += [x == y for x, y in zip(a_on_B[1 + nb:], to_z3(lab_a, Z, self._memo))]
        if lab_b:
            conds += [x == y for x, y in zip(b_on_A[1 + nb:], to_z3(lab_b, Z, self._memo))]
        sv.push()
        sv.add(ga_z, gb_z, z3.Not(z3.And(*conds)))
        out = sv.check() == z3.unsat
        sv.pop()
        self._commute[key] = out
        return out

    def can_enable(self, a: int, b: int) -> bool:
        """Can ``b`` enable ``a``: a state within bounds where ``a`` is disabled, ``b`` enabled,
        and ``a`` enabled after ``b`` (Z3; unknown is yes)."""
        key = (a, b)
        hit = self._enable.get(key)
        if hit is not None:
            return hit
        sv = self._z3()
        z3 = self._zz
        f = self._folded if self._folded is not None else _folded(self.model)
        self._folded = f
        B = dict(zip(self.names, to_z3(list(f.nxt[b]), self._z, self._memo)))
        ga, gb = to_z3([f.outs[a][0], f.outs[b][0]], self._z, self._memo)
        (ga_b,) = to_z3([f.outs[a][0]], B, {})
        sv.push()
        sv.add(z3.Not(ga), gb, ga_b)
        out = sv.check() != z3.unsat
        sv.pop()
        self._enable[key] = out
        return out

    def state(self, p: Property) -> frozenset[int]:
        """The instances that may change the value of the state predicate of ``p``: they write a
        field it reads, and some state within the schema's bounds where the instance is enabled
        has the predicate's value differ before and after the step (Z3; unknown counts as may)."""
        hit = self._state.get(p.id)
        if hit is not None:
            return hit
        import z3   # only the visibility of state properties needs it

        m = self.model
        f, term = self._folded_term(p)
        rd = reads([term])[0]
        sv = self._z3()
        out = set()
        (pz,) = to_z3([term], self._z, self._memo)
        for a in self.acc:
            if not (a.writes & rd):
                continue
            nx = f.nxt[a.instance]
            (post,) = substitute([term], {n: x for n, x in zip(self.names, nx) if n in rd})
            if post is term:
                continue
            guard, postz = to_z3([f.outs[a.instance][0], post], self._z, self._memo)
            sv.push()
            sv.add(guard, pz != postz)
            if sv.check() != z3.unsat:
                out.add(a.instance)
            sv.pop()
        res = self._state[p.id] = frozenset(out)
        return res


def _analysis(model: Model) -> _Analysis:
    a = model.__dict__.get("_por_analysis")
    if a is None:
        a = model.__dict__["_por_analysis"] = _Analysis(model)
    return a


def relations(model: Model, observers: Sequence[Property], drop: str | None = None,
              semantic: bool = False) -> Relations:
    """The static relations of ``model``'s instances for the checked properties ``observers``
    (those that apply to the model). ``drop`` switches one condition off (only the tests do, to see
    that the agreement test notices): ``"write-read"`` leaves out dependence through a field one
    writes and the other only reads; ``"enable"`` leaves out the enabling relation (a disabled
    member then brings nothing); ``"visible"`` makes no instance visible."""
    if drop not in DROPS:
        raise ValueError(f"unknown condition {drop!r}")
    an = _analysis(model)
    acc = an.acc
    n = len(acc)
    extra_reads: list[set[str]] = [set() for _ in range(n)]
    fired: list[set[str]] = [set() for _ in range(n)]
    why: list[set[str]] = [set() for _ in range(n)]
    for p in observers:
        if p.on == "step":
            for i, r in an.step(p).items():
                extra_reads[i] |= r
                fired[i].add("fired:" + p.id)
                why[i].add(p.id)
        else:
            for i in an.state(p):
                why[i].add(p.id)
    fields = sorted({f for a in acc for f in (*a.guard_reads, *a.effect_reads, *a.writes)}
                    | {f for r in extra_reads for f in r} | {f for w in fired for f in w})
    col = {f: i for i, f in enumerate(fields)}
    R = np.zeros((n, len(fields)), np.int32)
    W = np.zeros((n, len(fields)), np.int32)
    Gd = np.zeros((n, len(fields)), np.int32)
    for a in acc:
        i = a.instance
        Gd[i, [col[f] for f in a.guard_reads]] = 1
        R[i, [col[f] for f in (*a.guard_reads, *a.effect_reads, *extra_reads[i])]] = 1
        W[i, [col[f] for f in (*a.writes, *fired[i])]] = 1
    ww = (W @ W.T) > 0
    wr = (W @ R.T) > 0                        # [a, b]: a writes what b reads
    dep = ww if drop == "write-read" else ww | wr | wr.T
    if drop == "dependence":
        dep[:] = False
    np.fill_diagonal(dep, False)
    en = (Gd @ W.T) > 0                       # [a, b]: b writes what a's guard reads
    if drop == "enable":
        en[:] = False
    np.fill_diagonal(en, False)
    if semantic:
        # the fields say who may interfere; Z3 on the terms says who does
        for x, y in zip(*np.nonzero(np.triu(dep))):
            if an.commute(int(x), int(y), labels=drop != "labels"):
                dep[x, y] = dep[y, x] = False
        for x, y in zip(*np.nonzero(en)):
            if not an.can_enable(int(x), int(y)):
                en[x, y] = False
    vis = np.array([bool(w) for w in why]) if drop != "visible" else np.zeros(n, bool)
    return Relations(dep, en, vis, tuple(tuple(sorted(w)) for w in why))


class PartialOrder:
    """The stubborn-set choice for the steps of a vectorised model (``steps``: the instance index
    of each compiled step, in order; merged copies behave the same and go with their first), for
    the properties still observed (:meth:`observe`: a property the search has seen fire needs no
    more observing, its verdict is settled)."""

    mode = "por"

    def __init__(self, model: Model, observers: Iterable[Property], steps: Sequence[int],
                 drop: str | None = None, noop: Sequence[bool] | None = None, semantic: bool = False) -> None:
        self.model, self.drop, self.semantic = model, drop, semantic
        # steps that never change the state: a set with one enabled is a self-loop, which the
        # cycle proviso expands fully anyway, so such sets are not chosen
        self.noop = np.zeros(len(steps), bool) if noop is None else np.asarray(noop, bool)
        self.idx = np.asarray(steps, np.int64)
        self.n = len(self.idx)
        self.reduced_sets = 0                      # distinct enabled sets with a proper choice
        self.rows_reduced = 0                      # states expanded by a proper stubborn set
        self.rows_proviso = 0                      # states the cycle proviso expanded fully
        self.observed: frozenset[str] = frozenset()
        self.observe(observers)

    def observe(self, observers: Iterable[Property]) -> None:
        """Choose for these observers from now on."""
        observers = list(observers)
        ids = frozenset(p.id for p in observers)
        if ids == self.observed and hasattr(self, "_dep"):
            return
        self.observed = ids
        rel = relations(self.model, observers, self.drop, self.semantic)
        idx = self.idx
        self.visible = rel.visible[idx]
        dep = rel.dependent[np.ix_(idx, idx)]
        en = rel.enables[np.ix_(idx, idx)]
        self._dep = [tuple(np.flatnonzero(r).tolist()) for r in dep]
        self._en = [tuple(np.flatnonzero(r).tolist()) for r in en]
        self._cache: dict[bytes, np.ndarray | None] = {}

    def ample(self, enabled: np.ndarray) -> np.ndarray | None:
        """The steps to follow where ``enabled`` (a mask over the steps) are the enabled ones, or
        ``None``: all of them."""
        key = np.packbits(enabled).tobytes()
        if key in self._cache:
            return self._cache[key]
        out = self._choose(enabled)
        self._cache[key] = out
        if out is not None:
            self.reduced_sets += 1
        return out

    def _choose(self, enabled: np.ndarray) -> np.ndarray | None:
        en = np.flatnonzero(enabled).tolist()
        if len(en) < 2:
            return None
        on = set(en)
        vis = self.visible | self.noop
        best: list[int] | None = None
        for seed in en:
            if vis[seed]:
                continue
            T = {seed}
            work = [seed]
            amp = [seed]
            ok = True
            while work and ok:
                a = work.pop()
                for b in (self._dep[a] if a in on else self._en[a]):
                    if b in T:
                        continue
                    if b in on:
                        if vis[b]:
                            ok = False
                            break
                        amp.append(b)
                        if best is not None and len(amp) >= len(best):
                            ok = False
                            break
                    T.add(b)
                    work.append(b)
            if ok and len(amp) < len(en) and (best is None or len(amp) < len(best)):
                best = amp
                if len(best) == 1:
                    break
        if best is None:
            return None
        out = np.zeros(self.n, bool)
        out[best] = True
        return out

    def select(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a block's guards ``G`` (steps x rows): the steps to follow per row (a mask of the
        same shape) and the rows reduced (a proper subset chosen)."""
        keys = np.packbits(G, axis=0).T          # one row of bytes per state
        keys = np.ascontiguousarray(keys)
        v = keys.view(np.dtype((np.void, keys.shape[1]))).ravel()
        _, first, inv = np.unique(v, return_index=True, return_inverse=True)
        table = np.ones((len(first), self.n), bool)
        reduced = np.zeros(len(first), bool)
        for j, r in enumerate(first.tolist()):
            a = self.ample(G[:, r])
            if a is not None:
                table[j] = a
                reduced[j] = True
        inv = inv.ravel()
        return table[inv].T & G, reduced[inv]


def partial_order(model: Model, observers: Iterable[Property], steps: Sequence[int],
                  drop: str | None = None, noop: Sequence[bool] | None = None) -> PartialOrder:
    """The stubborn-set choice for ``model`` checked against ``observers``, for the compiled steps
    ``steps`` (instance indices; ``noop``: those that never change the state)."""
    return PartialOrder(model, observers, steps, drop, noop)
