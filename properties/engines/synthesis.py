"""Policy synthesis: is there an exporter policy that keeps two claims at once?

The FIXME of the ``@begin_cpu_access`` kerneldoc (spec/claims.md, FIXME-NO-USER-PIN,
FIXME-KMAP-PINNED, FIXME-NO-KMAP-USERS) says two things the exporter cannot both do: storage
reached through ``DMA_BUF_IOCTL_SYNC`` "shouldn't be pinned to avoid handing de-factor mlock
rights to userspace", while for kernel kmap users "the backing storage must be pinned to
guarantee that the atomic kmap calls can succeed". This module asks that as a query over the
space of exporter policies: the knobs of ``model.policy.KNOBS`` are free Z3 variables (switches
as ``Bool``, choices as ``Int`` indices), the transitions are the same terms as for every
engine, and the answer is the *set* of policies that keep both claims, or a proof that it is
empty, with a trace for every class of policy that fails.

The query is ``exists policy . forall traces of at most k steps . no property of either claim
is violated``, plus non-vacuity: the claims' witnesses (a kmap inside a bracket returns a
page; a kernel bracket can be opened) must be reachable, so that a policy whose every
``begin_cpu_access`` fails does not keep the kmap claims by never opening a bracket. It is
solved by counterexample-guided refinement: a bounded check with the knobs free finds a policy
and a trace that violates a property; the trace, run symbolically with the knobs free (term
substitution: the states become terms over the knobs alone), gives the condition under which
*that trace* refutes a policy, and its negation is added to the constraint on the knobs.
Witnesses are handled dually (a trace reaching the witness, run symbolically, gives the
condition under which it does). When no further counterexample exists up to depth ``k``, the
conjunction is a quantifier-free formula over the knobs that describes the satisfying set
*exactly*, up to depth ``k``: every policy outside it is refuted by a concrete trace (replayed on
the concrete model before it is used), and no policy inside it has a violation within ``k``
steps. "Up to depth k" is the only caveat: a policy in the set might still fail after more than
``k`` steps (the set can only shrink with the depth); an empty set is final, since every policy
is refuted by a real trace.

The knobs searched exclude the ``mutant_*`` knobs (they change the core, not the exporter) and
the two deliberately broken exporter knobs ``evict_pinned`` and ``begin_leaks_pin_on_error``:
all are fixed False.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import z3

from model.catalog import CATALOG
from model.events import EVENTS
from model.machine import Model, transition_terms
from model.policy import ExporterPolicy, KNOBS, knobs_at, later_knobs_fixed
from model.scope import Scope, get_scope
from model.terms import FALSE, TRUE, Term, and_, lift, not_, or_, substitute, to_z3

from .. import interrupt
from ..index import PROPERTIES, by_claim, get_property
from ..monitor import Monitor
from ..property import Property
from ..trace import ReplayError, Trace, replay
from .z3_engine import (Encoding, EngineError, houdini, knob_ranges, knob_z3_vars, prove_step, simplify_trace,
                        smt2_of)

__all__ = [
    "EXCLUDED_KNOBS", "KMAP_USERS", "FIXME_A", "FIXME_B", "FIXME_WITNESSES", "PolicyClass",
    "SynthesisResult", "synthesize", "synthesize_claims", "fixme_query", "props_for_claims",
    "prove_for_every_policy",
]

EXCLUDED_KNOBS: tuple[str, ...] = tuple(k for k in KNOBS if k.startswith("mutant_")) + (
    "evict_pinned", "begin_leaks_pin_on_error")
"""Knobs fixed False in the search: core mutants, and exporter behaviour that is broken by
definition (evicting pinned storage, keeping a pin when begin fails)."""

KMAP_USERS: tuple[str, ...] = ("dma_buf_kmap", "dma_buf_kmap_atomic")
"""The kernel kmap users: without these actions there are none (FIXME-NO-KMAP-USERS)."""

FIXME_A: tuple[str, ...] = ("FIXME-NO-USER-PIN",)
FIXME_B: tuple[str, ...] = ("FIXME-KMAP-PINNED", "KCPU-ALWAYS-SUCCEED")
FIXME_WITNESSES: tuple[str, ...] = ("W-DMA-BUF-BEGIN-CPU-ACCESS",)
"""Non-vacuity beyond the claims' own witnesses: a kernel bracket can be opened at all (the
kmap claims speak of kmaps inside brackets)."""


@dataclass(frozen=True)
class PolicyClass:
    """A set of policies given by a few knob values (every other knob is free), and, for a
    failing class, the trace that refutes every policy in it (or the witness none reaches)."""

    knobs: tuple[tuple[str, Any], ...]
    example: ExporterPolicy = field(repr=False)
    trace: Trace | None = field(default=None, repr=False)
    violates: tuple[str, ...] = ()
    unreached: str = ""                  # a witness none of these policies reaches within k steps

    def describe(self) -> str:
        return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={str(v).lower()}" for k, v in self.knobs) \
            or "(every policy)"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"knobs": dict(self.knobs)}
        if self.violates:
            out["violates"] = list(self.violates)
        if self.unreached:
            out["unreached_witness"] = self.unreached
        if self.trace is not None:
            out["trace"] = self.trace.to_json()
        return out


@dataclass
class SynthesisResult:
    """The answer: ``sat`` (the satisfying set is ``formula``, exact up to ``depth``), ``unsat``
    (every policy is refuted by a trace), or ``unknown`` (a solver timeout; what was found so
    far is kept)."""

    title: str
    status: str
    depth: int
    scope: Scope
    safety: tuple[str, ...]
    witnesses: tuple[str, ...]
    excluded_actions: tuple[str, ...]
    free_knobs: tuple[str, ...]
    formula: z3.BoolRef | None = field(default=None, repr=False)
    satisfying: list[PolicyClass] = field(default_factory=list)
    failing: list[PolicyClass] = field(default_factory=list)
    partitions: dict[str, str] = field(default_factory=dict)
    catalog: dict[str, str] = field(default_factory=dict)
    count: int | None = None
    space: int = 0                       # knob assignments in the search space
    refuting_traces: int = 0
    seconds: float = 0.0
    note: str = ""
    truncated: bool = False
    proved: bool = False
    proofs: list[dict[str, Any]] = field(default_factory=list)
    explanation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.title, "answer": self.status, "depth": self.depth, "scope": self.scope.name,
            "safety": list(self.safety), "witnesses": list(self.witnesses),
            "excluded_actions": list(self.excluded_actions), "free_knobs": list(self.free_knobs),
            "fixed_false": list(EXCLUDED_KNOBS),
            "satisfying_policies": self.count, "search_space": self.space,
            "satisfying_classes": [c.to_json() for c in self.satisfying],
            "failing_classes": [c.to_json() for c in self.failing],
            "partitions": self.partitions, "catalog": self.catalog,
            "formula": str(self.formula) if self.formula is not None else None,
            "refuting_traces": self.refuting_traces, "classes_truncated": self.truncated,
            "proved_for_every_depth": self.proved, "proofs": self.proofs,
            "seconds": round(self.seconds, 2), "note": self.note, "explanation": self.explanation,
        }


def props_for_claims(claims: Iterable[str], scope: Scope, revision: str = "v4.11") -> tuple[list[Property], list[Property]]:
    """The safety properties (``always``/``step``) and the witnesses citing any of ``claims``."""
    safety: list[Property] = []
    wit: list[Property] = []
    for c in claims:
        ps = by_claim(c)
        if not ps and not c.startswith("P-") and not c.startswith("W-"):
            raise KeyError(f"no property cites the claim {c!r}")
        if c.startswith(("P-", "W-", "I-")):
            ps = [get_property(c)]
        for p in ps:
            if not p.fits(scope) or revision not in getattr(p, "revisions", (revision,)):
                continue
            if p.id.startswith("I-") and not c.startswith("I-"):
                continue  # strengthening invariants support a claim; they do not formalise it
            if p.kind in ("always", "step") and p not in safety:
                safety.append(p)
            elif p.kind == "witness" and p not in wit:
                wit.append(p)
    return safety, wit


def _policy(values: dict[str, Any], name: str) -> ExporterPolicy:
    full = {k: False for k in EXCLUDED_KNOBS}
    full.update(values)
    return ExporterPolicy(name=name, description="a policy found by the synthesis query", **full)


class _Symbolic:
    """Runs fixed traces with the knobs free: the states become terms over the knob variables."""

    def __init__(self, enc: Encoding) -> None:
        self.enc = enc
        self.names = enc.schema.names

    def condition(self, positions: Sequence[int], props: Sequence[Property]) -> Term:
        """The condition on the knobs under which the trace (instance positions) can be taken
        and some property of ``props`` reaches its target at some step of it."""
        enc = self.enc
        state = [lift(v) for v in enc.schema.init]
        alive: Term = TRUE
        hit: Term = FALSE
        env = dict(zip(self.names, state))
        for p in props:
            if p.on == "state":
                hit = or_(hit, self._target(p, env))
        for p_i in positions:
            (g,) = substitute([enc.guards[p_i]], env)
            alive = and_(alive, g)
            outs = substitute([*enc.nexts[p_i], enc.rets[p_i], enc.subjects[p_i],
                               *enc.events[p_i].values()], env)
            nxt = outs[:len(self.names)]
            ret, subj = outs[len(self.names)], outs[len(self.names) + 1]
            evs = dict(zip(enc.events[p_i].keys(), outs[len(self.names) + 2:]))
            step_env = dict(env)
            step_env.update({"post." + n: t for n, t in zip(self.names, nxt)})
            step_env.update({"ret": ret, "buf": subj})
            inst = enc.instances[p_i]
            for p in props:
                if p.on == "step" and (p.action is None or p.action == inst.name):
                    hit = or_(hit, and_(alive, self._target(p, step_env, evs)))
            env = dict(zip(self.names, nxt))
            for p in props:
                if p.on == "state":
                    hit = or_(hit, and_(alive, self._target(p, env)))
        return hit

    def _target(self, p: Property, env: dict[str, Term], evs: dict[str, Term] | None = None) -> Term:
        t = self.enc.prop_term(p)
        mapping = dict(env)
        if evs is not None:
            mapping.update({"ev." + e: evs.get(e, FALSE) for e, _ in EVENTS})
        (out,) = substitute([t], mapping)
        return out if not p.target_is_bad else _neg(out)


def _on_example(model: Model, trace: Trace, props: Sequence[Property]) -> tuple[Trace, tuple[str, ...]]:
    """The refuting trace run on one policy of its class: its shortest prefix that violates a
    property there, with plain arguments, and what it violates."""
    calls = trace.calls()
    for t in range(len(calls) + 1):
        try:
            tr = replay(model, calls[:t])
        except ReplayError:
            break
        fired = _fired(model, tr, props)
        if fired:
            tr = simplify_trace(model, tr, lambda x: bool(set(_fired(model, x, props)) & set(fired)))
            return tr, tuple(_fired(model, tr, props))
    raise EngineError(f"synthesis: the trace of a failing class does not refute {model.policy.name} "
                      "(a policy of that class)")


def _fired(model: Model, trace: Trace, props: Sequence[Property]) -> list[str]:
    """The properties whose target the trace reaches on the concrete model (whether or not the
    policy's ``applies`` would select them: the knobs were free)."""
    run = Monitor(model, props, every=True).replayed(trace)
    hit = {pid for f in (run.fired_init, *run.fired) for pid in f}
    return [p.id for p in props if p.id in hit]

def _neg(t: Term) -> Term:
    return not_(t)


def _z(enc: Encoding, t: Term) -> z3.BoolRef:
    (out,) = to_z3([t], enc.free, {})
    return out


@interrupt.raising()   # long Z3 queries or graph searches: a signal stops them at once
def synthesize(safety: Sequence[Property], witnesses: Sequence[Property] = (), scope: Scope | str = "tiny",
               depth: int = 8, revision: str = "v4.11", exclude_actions: Sequence[str] = (),
               fixed: dict[str, Any] | None = None, title: str = "", timeout: float | None = 120.0,
               max_classes: int = 24, progress: Callable[[str], None] | None = None,
               smt2: Callable[[str, str], None] | None = None, prove: bool = True) -> SynthesisResult:
    """The set of exporter policies (over the free knobs) under which no property of ``safety``
    is violated within ``depth`` steps and every witness of ``witnesses`` is reached within
    ``depth`` steps, with the actions ``exclude_actions`` removed from the model.

    ``fixed`` fixes more knobs (by name) beyond :data:`EXCLUDED_KNOBS`. With ``prove``, each
    satisfying class is then proved to keep the safety properties at every depth (Houdini over
    the catalog's state invariants with the class's knobs assumed, then every step property
    from the inductive invariants): ``proved`` says whether every class was."""
    started = time.monotonic()
    say = progress or (lambda msg: None)
    sc = get_scope(scope) if isinstance(scope, str) else scope
    schema, terms = transition_terms(sc, revision)
    fixed_vals = {**later_knobs_fixed(revision), **{"k." + k: False for k in EXCLUDED_KNOBS}}
    for k, v in (fixed or {}).items():
        kn = KNOBS[k]
        fixed_vals["k." + k] = kn.choices.index(v) if kn.choices else v
    extra = dict(fixed or {})              # knobs the caller fixed, by name (policy values)
    free_names = [k for k in knobs_at(revision) if "k." + k not in fixed_vals]
    free = knob_z3_vars(free_names)
    include = [t.instance.index for t in terms if t.instance.name not in set(exclude_actions)]
    enc = Encoding(schema, terms, fixed=fixed_vals, free=free, include=include)
    enc.bounded()
    witnesses = [w for w in witnesses if w.action is None or w.action not in set(exclude_actions)]
    sym = _Symbolic(enc)
    ranges = knob_ranges(free)
    res = SynthesisResult(title or "synthesis", "unknown", depth, sc, tuple(p.id for p in safety),
                          tuple(w.id for w in witnesses), tuple(exclude_actions), tuple(free_names))
    res.space = 1
    for k in free_names:
        res.space *= len(KNOBS[k].choices) if KNOBS[k].choices else 2
    models: dict[tuple, Model] = {}

    def concrete(values: dict[str, Any]) -> Model:
        key = tuple(sorted(values.items()))
        if key not in models:
            models[key] = Model(_policy({**extra, **values}, f"synthesized-{len(models) + 1}"), sc, revision)
        return models[key]

    def check_trace(m: z3.ModelRef, d: int, props: Sequence[Property]) -> tuple[dict[str, Any], Trace, list[str]]:
        values = enc.knob_values(m)
        model = concrete(values)
        calls = enc.calls(m, d)
        try:
            trace = replay(model, calls)
        except ReplayError as e:
            raise EngineError(f"synthesis: a Z3 trace does not replay under {values}: {e}") from None
        if trace.states() != enc.states(m, d):
            raise EngineError(f"synthesis: the states of a Z3 trace differ from the concrete ones under {values}")
        fired = _fired(model, trace, props)
        if not fired:
            raise EngineError(f"synthesis: no property fires on the Z3 trace concretely under {values}")
        return values, trace, fired

    def solver() -> z3.Solver:
        """For queries over the unrolled model (finite-domain when the model keeps its bounds)."""
        return enc.solver(timeout)

    def ksolver() -> z3.Solver:
        """For queries over the knobs alone (small formulas)."""
        s = z3.Solver()
        if timeout:
            s.set("timeout", max(1, int(timeout * 1000)))
        return s

    def ask(q: list, name: str, comment: str) -> tuple[z3.Solver, Any]:
        """One query of the search, written as SMT-LIB 2 first when asked."""
        s = solver()
        if smt2 is not None:
            smt2(name, smt2_of(q, comment))
        s.add(*q)
        return s, s.check()

    def positions(m: z3.ModelRef, d: int) -> list[int]:
        """The action instance of each of the first ``d`` steps of the run in ``m``."""
        return [m.eval(enc.sel(i), model_completion=True).as_long() for i in range(d)]

    # --- safety: refine the constraint on the knobs with refuting traces ------------------------
    safe: list[z3.BoolRef] = []
    refuters: list[tuple[z3.BoolRef, Trace, tuple[str, ...], dict[str, Any]]] = []
    base = enc.init()
    steps: list[z3.BoolRef] = []
    status = "sat"
    empty = False
    for d in range(depth + 1):
        if d > 0:
            steps += enc.trans(d - 1)
        targets = [t for t in (enc.target(p, d) for p in safety) if t is not None]
        if not targets:
            continue
        while True:
            s, r = ask([*ranges, *safe, *base, *steps, z3.Or(*targets)], f"synth-safety-depth{d}-{len(safe)}",
                       f"{res.title}: a policy outside the {len(safe)} refuted classes with a violation at "
                       f"depth {d}?")
            if r == z3.unsat:
                break
            if r == z3.unknown:
                status = "unknown"
                res.note = f"solver {s.reason_unknown()} at depth {d} of the safety query"
                break
            m = s.model()
            values, trace, fired = check_trace(m, d, safety)
            cond = _z(enc, sym.condition(positions(m, d), safety))
            if not z3.is_true(m.eval(cond, model_completion=True)):
                raise EngineError("synthesis: the symbolic run of a refuting trace does not refute its own policy")
            safe.append(z3.Not(cond))
            refuters.append((cond, trace, tuple(fired), values))
            say(f"{res.title}: trace {len(refuters)} (depth {d}, {', '.join(fired)}) refutes a class of policies")
            s2 = ksolver()
            s2.add(*ranges, *safe)
            if s2.check() == z3.unsat:
                empty = True
                break
        if empty or status == "unknown":
            break
        say(f"{res.title}: depth {d}: no further refuting trace ({len(refuters)} so far, "
            f"{time.monotonic() - started:.1f} s)")
    res.refuting_traces = len(refuters)

    # --- non-vacuity: the witnesses must be reachable ---------------------------------------------
    live: list[z3.BoolRef] = []
    wit_conds: dict[str, list[z3.BoolRef]] = {}
    if not empty and status == "sat" and witnesses:
        steps_k = list(steps)
        for w in witnesses:
            reach_any = z3.Or(*[t for t in (enc.target(w, d) for d in range(depth + 1)) if t is not None])
            conds: list[z3.BoolRef] = []
            while True:
                s, r = ask([*ranges, *safe, *(z3.Not(c) for c in conds), *base, *steps_k, reach_any],
                           f"synth-witness-{w.id}-{len(conds)}",
                           f"{res.title}: does a policy not yet covered reach {w.id} within {depth} steps?")
                if r == z3.unsat:
                    break
                if r == z3.unknown:
                    status = "unknown"
                    res.note = f"solver {s.reason_unknown()} in the witness query for {w.id}"
                    break
                m = s.model()
                first = next(d for d in range(depth + 1) if enc.target(w, d) is not None
                             and z3.is_true(m.eval(enc.target(w, d), model_completion=True)))
                values, trace, _ = check_trace(m, first, [w])
                cond = _z(enc, sym.condition(positions(m, first), [w]))
                conds.append(cond)
                say(f"{res.title}: {w.id} reached in {first} steps by a class of policies")
            wit_conds[w.id] = conds
            live.append(z3.Or(*conds) if conds else z3.BoolVal(False))
            if status == "unknown":
                break

    formula = z3.And(*safe, *live) if (safe or live) else z3.BoolVal(True)
    res.formula = z3.simplify(formula)
    s = ksolver()
    s.add(*ranges, formula)
    r = s.check()
    if status == "sat":
        status = "sat" if r == z3.sat else ("unsat" if r == z3.unsat else "unknown")
    res.status = status

    # --- the answer as classes of policies ------------------------------------------------------
    knob_vars = list(free.items())

    def lits(m: z3.ModelRef) -> list[tuple[str, z3.BoolRef, Any]]:
        out = []
        for name, v in knob_vars:
            x = m.eval(v, model_completion=True)
            k = KNOBS[name[2:]]
            val = k.choices[x.as_long()] if k.choices else z3.is_true(x)
            out.append((name[2:], v == x, val))
        return out

    def minimise(cube: list, implied: z3.BoolRef) -> list:
        keep = list(cube)
        for lit in list(reversed(cube)):
            trial = [c for c in keep if c is not lit]
            s = ksolver()
            s.add(*ranges, *(c[1] for c in trial), z3.Not(implied))
            if s.check() == z3.unsat:
                keep = trial
        return keep

    def cover(region: z3.BoolRef, label: Callable[[z3.ModelRef], tuple[z3.BoolRef, dict[str, Any]]]):
        classes = []
        blocked: list[z3.BoolRef] = []
        while len(classes) < max_classes:
            s = ksolver()
            s.add(*ranges, region, *blocked)
            if s.check() != z3.sat:
                return classes, False
            m = s.model()
            implied, info = label(m)
            cube = minimise(lits(m), implied)
            blocked.append(z3.Not(z3.And(*(c[1] for c in cube))) if cube else z3.BoolVal(False))
            classes.append((tuple((c[0], c[2]) for c in cube), info))
        s = ksolver()
        s.add(*ranges, region, *blocked)
        return classes, s.check() == z3.sat

    if status in ("sat", "unsat"):
        sat_classes, trunc1 = cover(formula, lambda m: (formula, {}))
        for knobs, _ in sat_classes:
            values = _complete(dict(knobs), free_names)
            res.satisfying.append(PolicyClass(knobs, _policy({**extra, **values}, "example")))

        def why(m: z3.ModelRef):
            for cond, trace, fired, values in refuters:
                if z3.is_true(m.eval(cond, model_completion=True)):
                    return cond, {"trace": trace, "violates": fired}
            for w in witnesses:
                cs = wit_conds.get(w.id, [])
                if not any(z3.is_true(m.eval(c, model_completion=True)) for c in cs):
                    return z3.And(*safe, z3.Not(z3.Or(*cs)) if cs else z3.BoolVal(True)), {"unreached": w.id}
            raise EngineError("synthesis: a policy outside the set has no refuting trace")

        fail_classes, trunc2 = cover(z3.Not(formula), why)
        for knobs, info in fail_classes:
            values = _complete(dict(knobs), free_names)
            example = _policy({**extra, **values}, "example")
            trace, violates = info.get("trace"), tuple(info.get("violates", ()))
            if trace is not None:
                trace, violates = _on_example(concrete(values), trace, safety)
            res.failing.append(PolicyClass(knobs, example, trace, violates, info.get("unreached", "")))
        res.truncated = trunc1 or trunc2
        if prove and status == "sat" and not trunc1:
            res.proofs = _prove_classes(enc, res, safety, sc, revision, ranges, timeout)
            res.proved = bool(res.proofs) and all(x["proved"] for x in res.proofs)
        res.count = _count(formula, ranges, free, ksolver)
        if "k.swappable" in free:
            for v in (True, False):
                s = ksolver()
                s.add(*ranges, formula, free["k.swappable"] == v)
                r = s.check()
                res.partitions[f"swappable={str(v).lower()}"] = _answer(r)
        for name, p in CATALOG.items():
            if any(getattr(p, k) for k in EXCLUDED_KNOBS):
                res.catalog[name] = "outside the search space"
                continue
            if any(getattr(p, k) != v for k, v in (fixed or {}).items()):
                res.catalog[name] = "outside the search space"
                continue
            if not p.exportable_at(revision):   # its witnesses are unreachable: nothing to keep
                res.catalog[name] = f"not exportable at {revision}"
                continue
            vals = p.knob_values()
            sub = [(free["k." + k], z3.BoolVal(vals[k]) if isinstance(vals[k], bool) else z3.IntVal(vals[k]))
                   for k in free_names]
            inside = z3.simplify(z3.substitute(formula, *sub)) if sub else formula
            res.catalog[name] = "keeps both" if z3.is_true(inside) else "fails"
    res.seconds = time.monotonic() - started
    return res


def _prove_classes(enc: Encoding, res: SynthesisResult, safety: Sequence[Property], sc: Scope,
                   revision: str, ranges: list, timeout: float | None) -> list[dict[str, Any]]:
    """Induction for each satisfying class: the safety properties hold at every depth for every
    policy of the class (and of the set)."""
    # every state invariant of the catalog is a candidate, whatever revision it judges (without
    # the kmap actions, M-NO-KMAP's "no page is kmapped" is what the kmap claims need)
    cands = [p for p in PROPERTIES if p.kind == "always" and p.fits(sc)]
    cands += [p for p in safety if p.on == "state" and p not in cands]
    out = []
    for c in res.satisfying:
        cube = [enc.free["k." + k] == (z3.IntVal(KNOBS[k].choices.index(v)) if KNOBS[k].choices else z3.BoolVal(v))
                for k, v in c.knobs]
        assume = [*cube, res.formula]
        inv, why = houdini(None, cands, timeout, encoding=enc, assume=assume)
        ids = {p.id for p in inv}
        entry: dict[str, Any] = {"class": dict(c.knobs), "invariants": sorted(ids), "unproved": {}}
        for p in safety:
            if p.on == "state":
                if p.id not in ids:
                    entry["unproved"][p.id] = why.get(p.id, "not inductive")
            else:
                r = prove_step(None, p, inv, timeout, encoding=enc, assume=assume)
                if not r.proved:
                    entry["unproved"][p.id] = r.reason
        entry["proved"] = not entry["unproved"]
        out.append(entry)
    return out


def _answer(r: z3.CheckSatResult) -> str:
    return "some policies" if r == z3.sat else "none" if r == z3.unsat else "unknown"


def _complete(partial: dict[str, Any], free_names: Sequence[str]) -> dict[str, Any]:
    """A full knob assignment from a class: the class's knobs, defaults elsewhere."""
    out = {k: KNOBS[k].default for k in free_names}
    out.update(partial)
    return out


def _count(formula: z3.BoolRef, ranges: list, free: dict[str, z3.ExprRef], solver) -> int | None:
    """How many knob assignments satisfy the formula: knobs the simplified formula does not
    mention multiply the count of the projected assignments (enumerated, at most 4096)."""
    mentioned = {str(v) for v in _vars(formula)}
    used = {n: v for n, v in free.items() if n in mentioned}
    factor = 1
    for n in free:
        if n not in used:
            k = KNOBS[n[2:]]
            factor *= len(k.choices) if k.choices else 2
    s = solver()
    s.add(*knob_ranges(used), formula)
    n = 0
    while n <= 4096:
        r = s.check()
        if r == z3.unsat:
            return n * factor
        if r != z3.sat:
            return None
        m = s.model()
        s.add(z3.Or(*(v != m.eval(v, model_completion=True) for v in used.values())) if used else z3.BoolVal(False))
        n += 1
    return None


def _vars(e: z3.ExprRef) -> set:
    out, seen, todo = set(), set(), [e]
    while todo:
        x = todo.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(x)
        todo.extend(x.children())
    return out


def synthesize_claims(claims_a: Sequence[str], claims_b: Sequence[str], scope: Scope | str = "tiny",
                      depth: int = 8, revision: str = "v4.11", exclude_actions: Sequence[str] = (),
                      extra_witnesses: Sequence[str] = (), **kw: Any) -> SynthesisResult:
    """The synthesis query for any pair of claims (or property IDs): the policies under which
    every ``always``/``step`` property citing a claim of either side holds, and every witness
    citing one is reached."""
    sc = get_scope(scope) if isinstance(scope, str) else scope
    sa, wa = props_for_claims(claims_a, sc, revision)
    sb, wb = props_for_claims(claims_b, sc, revision)
    safety = list(dict.fromkeys([*sa, *sb]))
    wit = list(dict.fromkeys([*wa, *wb, *(get_property(w) for w in extra_witnesses)]))
    title = f"{' + '.join(claims_a)} and {' + '.join(claims_b)}"
    if exclude_actions:
        title += f" without {', '.join(exclude_actions)}"
    return synthesize(safety, wit, sc, depth, revision, exclude_actions, title=title, **kw)


def fixme_query(kmap_users: bool, scope: Scope | str = "tiny", depth: int = 8, **kw: Any) -> SynthesisResult:
    """The FIXME as a synthesis query: FIXME-NO-USER-PIN against FIXME-KMAP-PINNED and
    KCPU-ALWAYS-SUCCEED, with the kernel kmap users (``kmap_users=True``) or without them
    (FIXME-NO-KMAP-USERS)."""
    res = synthesize_claims(FIXME_A, FIXME_B, scope, depth,
                            exclude_actions=() if kmap_users else KMAP_USERS,
                            extra_witnesses=FIXME_WITNESSES, **kw)
    res.title = ("(a) with kernel kmap users" if kmap_users else "(b) without kernel kmap users "
                 "(FIXME-NO-KMAP-USERS)") + ": " + res.title.split(" without ")[0]
    res.explanation = _explain_fixme(res, kmap_users)
    return res


def _explain_fixme(res: SynthesisResult, kmap_users: bool) -> str:
    """What the answer means for the FIXME, read off the answer (not assumed)."""
    if res.status not in ("sat", "unsat"):
        return ""
    swap = res.partitions.get("swappable=true")
    fixed = res.partitions.get("swappable=false")
    upto = "at every depth" if res.proved else f"up to depth {res.depth}"
    if kmap_users and swap == "none" and fixed == "some policies":
        return ("meaning: with kernel kmap users no policy with swappable storage keeps both claims: "
                "a pin taken in begin_cpu_access serves the SYNC ioctl too (the exporter cannot tell "
                "them apart), and without one memory pressure can evict storage a kmap relies on. "
                f"The policies that keep both ({upto}) are the degenerate answer: storage that is "
                "never swappable is pinned for its whole life, which is its own de-facto mlock, "
                "granted to whoever holds the fd, so the FIXME's worry is not removed but moved.")
    if not kmap_users and swap == "some policies":
        return ("meaning: without kernel kmap users the conflict disappears: swappable storage whose "
                f"begin_cpu_access takes no pin keeps both ({upto}), as FIXME-NO-KMAP-USERS says "
                "('this isn't a real problem').")
    if res.status == "unsat":
        return "meaning: the two claims cannot both be kept by any exporter policy."
    return ""


@interrupt.raising()   # long Z3 queries or graph searches: a signal stops them at once
def prove_for_every_policy(props: Sequence[Property], scope: Scope | str = "small", revision: str = "v4.11",
                           timeout: float | None = 120.0) -> list[dict[str, Any]]:
    """Induction with the knobs free: which of ``props`` (``always`` and ``step``) hold for every
    exporter policy at once (the excluded knobs fixed False), at every depth. State invariants
    are proved together with every state invariant of the catalog (Houdini); step properties
    from the invariants so proved. One entry per property: ``proved`` and, if not, why."""
    sc = get_scope(scope) if isinstance(scope, str) else scope
    schema, terms = transition_terms(sc, revision)
    fixed = {**later_knobs_fixed(revision), **{"k." + k: False for k in EXCLUDED_KNOBS}}
    free = knob_z3_vars([k for k in knobs_at(revision) if "k." + k not in fixed])
    enc = Encoding(schema, terms, fixed=fixed, free=free)
    cands = [p for p in PROPERTIES if p.kind == "always" and p.fits(sc) and revision in p.revisions]
    cands += [p for p in props if p.kind == "always" and p not in cands]
    started = time.monotonic()
    inv, why = houdini(None, cands, timeout, encoding=enc)
    th = time.monotonic() - started
    ids = {p.id for p in inv}
    out = []
    for p in props:
        if p.kind == "always":
            e = {"property": p.id, "claims": list(p.claims), "party": p.party, "kind": p.kind,
                 "proved": p.id in ids, "method": "1-induction (Houdini), knobs free",
                 "lemmas": sorted(ids - {p.id}) if p.id in ids else [], "seconds": round(th, 3)}
            if p.id not in ids:
                e["reason"] = why.get(p.id, "not inductive")
        elif p.kind == "step":
            r = prove_step(None, p, inv, timeout, encoding=enc)
            e = {"property": p.id, "claims": list(p.claims), "party": p.party, "kind": p.kind,
                 "proved": r.proved, "method": "step from the invariants, knobs free",
                 "lemmas": sorted(ids) if r.proved else [], "seconds": round(r.seconds, 3)}
            if not r.proved:
                e["reason"] = ("unknown: " if r.unknown else "") + r.reason
        else:
            continue
        out.append(e)
    return out
