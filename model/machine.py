"""The model as engines see it: a scope, a policy and a revision give an initial state, a list of
action instances, and a compiled step function per instance.

Transition definitions are traced once per (scope, revision) into terms with the knobs left as
variables (:func:`transition_terms`, what the Z3 engine uses); a :class:`Model` substitutes one
policy's knobs and compiles each instance to straight-line Python (what Hypothesis and the
explicit engine run).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any, Iterable, Sequence

from .actions import ACTIONS, ActionSpec
from .actions.registry import VALUE_RANGES
from .actions.resv import apply_convention
from .constants import DIRECTIONS, errno_name, sync_flags_name
from .events import EVENTS, EVENT_BIT
from .policy import ExporterPolicy, REVISIONS, knob_vars
from .scope import Scope, get_scope
from .state import Schema
from .step import Knobs, Step
from .terms import (FALSE, Term, compile_function, const, digest as terms_digest, evaluate, ite, lift,
                    substitute)

__all__ = ["Instance", "TransitionTerms", "Model", "transition_terms", "instances_for", "format_call"]


def format_call(name: str, args: Sequence[tuple[str, Any]]) -> str:
    """``dma_buf_kmap(buf=0, page=1)``, with kernel constant names for directions and flags (and
    large page offsets and counts in hex)."""
    dirs = {v: k for k, v in DIRECTIONS.items()}
    parts = []
    for k, v in args:
        if k == "direction":
            v = dirs.get(v, v)
        elif k == "flags":
            v = sync_flags_name(v)
        elif k == "interrupted" and v is False:
            continue
        elif k in ("pgoff", "npages") and isinstance(v, int) and v > 0xffff:
            v = hex(v)
        parts.append(f"{k}={v}")
    return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class Instance:
    """One action with all its parameters chosen: ``dma_buf_kmap(buf=0, page=1)``."""

    index: int
    name: str
    args: tuple[tuple[str, Any], ...]
    actor: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def __str__(self) -> str:
        return format_call(self.name, self.args)


@dataclass(frozen=True)
class TransitionTerms:
    """One instance's transition as terms over the pre-state variables and the knob variables."""

    instance: Instance
    guard: Term
    next: tuple[Term, ...]
    ret: Term
    subject: Term
    events: dict[str, Term]
    # the guard's conjuncts, each with why the step cannot be taken when it is false
    requires: tuple[tuple[Term, tuple[tuple[Term, str], ...]], ...] = ()

    def outputs(self) -> list[Term]:
        return [self.guard, *self.next, self.ret, self.subject, *(self.events.get(n, FALSE) for n, _ in EVENTS)]


def instances_for(scope: Scope, revision: str) -> list[Instance]:
    out: list[Instance] = []
    for spec in ACTIONS.values():
        if revision not in spec.revisions:
            continue
        for values in product(*(spec.domain(p, scope) for p in spec.params)):
            out.append(Instance(len(out), spec.name, tuple(zip(spec.params, values)), spec.actor))
    return out


def _trace(schema: Schema, scope: Scope, revision: str, inst: Instance) -> TransitionTerms:
    """One instance's transition definition, traced into terms (knobs left free)."""
    m = Step(scope, schema.sym(), Knobs(knob_vars()), revision)
    ret = lift(ACTIONS[inst.name].fn(m, **inst.kwargs))
    apply_convention(m, inst.name, inst.kwargs)   # v6.12: the reservation lock (actions/resv.py)
    if ret.sort != "int":
        raise TypeError(f"{inst}: a transition must return an int term")
    return TransitionTerms(inst, m.guard, tuple(m.n.flat()), ret, m.subject_buf, dict(m.events),
                           tuple(m.requires))


@lru_cache(maxsize=16)
def transition_terms(scope: Scope, revision: str = "v4.11") -> tuple[Schema, tuple[TransitionTerms, ...]]:
    """Trace every action instance of the scope into terms (knobs left free)."""
    if revision not in REVISIONS:
        raise ValueError(f"unknown revision {revision!r}; known: {', '.join(REVISIONS)}")
    schema = Schema(scope, revision)
    return schema, tuple(_trace(schema, scope, revision, inst) for inst in instances_for(scope, revision))


def _event_mask(events: dict[str, Term]) -> Term:
    mask = const(0)
    for name, _ in EVENTS:
        e = events.get(name)
        if e is not None:
            mask = mask + ite(e, EVENT_BIT[name], 0)
    return mask


class Model:
    """A scope, an exporter policy and a revision, compiled.

    ``step(state, i)`` applies instance ``i`` and returns ``(next_state, ret, events, buf)`` or
    ``None`` when the instance is not enabled; ``events`` is a bit mask (see ``model.events``).
    """

    def __init__(self, policy: ExporterPolicy, scope: Scope | str = "small", revision: str = "v4.11") -> None:
        self.scope = get_scope(scope) if isinstance(scope, str) else scope
        self.policy = policy
        self.revision = revision
        self.schema, self.terms = transition_terms(self.scope, revision)
        self.instances: list[Instance] = [t.instance for t in self.terms]
        self.init: tuple = self.schema.init
        self.knob_env = {"k." + name: v for name, v in policy.knob_values().items()}
        self.var_expr = {n: f"s[{i}]" for i, n in enumerate(self.schema.names)}
        self._steps = []
        self._guards = []
        self.sources: list[str] = []
        for t in self.terms:
            self._compile(t)
        self.by_name: dict[str, list[int]] = {}
        for inst in self.instances:
            self.by_name.setdefault(inst.name, []).append(inst.index)
        # instances whose value arguments lie outside the scope's representative values, made on
        # demand by find() for a litmus step or a replayed call; never enumerated by engines
        self.extra: dict[tuple, TransitionTerms] = {}

    def _compile(self, t: TransitionTerms) -> None:
        guard, ret, subject, mask, *nxt = substitute(
            [t.guard, t.ret, t.subject, _event_mask(t.events), *t.next], self.knob_env)
        fn, src = compile_function(
            f"step_{t.instance.index}", ["s"], self.var_expr, [*nxt, ret, mask, subject], guard=guard,
            result=lambda outs: "((" + "".join(o + ", " for o in outs[:-3]) + ")," + ", ".join(outs[-3:]) + ")")
        g, _ = compile_function(f"guard_{t.instance.index}", ["s"], self.var_expr, [guard],
                                result=lambda outs: outs[0])
        self._steps.append(fn)
        self._guards.append(g)
        self.sources.append(src)

    def digest(self) -> str:
        """A digest of what this model does, for caches keyed by behaviour: every instance's
        guard, next state, return value, subject and events with the policy's knobs substituted
        and folded (``model.terms.digest``: structure only, the same in every process), the
        instances' calls, and the schema's field names, bounds, sorts and initial values. Two
        policies whose knob values fold to the same terms get the same digest; the policy's
        name, description and declared breaks do not enter it."""
        if getattr(self, "_digest", None) is None:
            folded = substitute([o for t in self.terms for o in t.outputs()], self.knob_env)
            h = hashlib.sha256(repr((
                [str(i) for i in self.instances],
                list(zip(self.schema.names, self.schema.bounds, self.schema.is_bool, self.schema.init)),
            )).encode())
            h.update(terms_digest(folded).encode())
            self._digest = h.hexdigest()
        return self._digest

    # --- running ------------------------------------------------------------------------------
    def step(self, state: tuple, index: int):
        return self._steps[index](state)

    def enabled(self, state: tuple, index: int) -> bool:
        return bool(self._guards[index](state))

    def enabled_instances(self, state: tuple, indices: Iterable[int] | None = None) -> list[int]:
        g = self._guards
        return [i for i in (range(len(self.instances)) if indices is None else indices) if g[i](state)]

    def successors(self, state: tuple):
        """``(instance index, next state, ret, events, buf)`` for every enabled instance of the
        scope (not the instances ``find`` made for values outside it)."""
        for i, fn in zip(range(len(self.instances)), self._steps):
            r = fn(state)
            if r is not None:
                yield (i, *r)

    def find(self, name: str, **args: Any) -> Instance:
        """The instance of ``name`` with these arguments (missing optional ones default False).

        Handles of model objects (``buf``, ``fd``, ``vma``, ``att``, ``page``) and the other
        enumerated arguments must lie in the scope. A value argument (``VALUE_RANGES``: SYNC
        ``flags``, ``mmap``'s ``pgoff`` and ``npages``) may be any value of its C type: outside
        the scope's representative values, the instance is traced and compiled here, once, with
        an index after the scope's instances (engines never enumerate it)."""
        if name not in ACTIONS:
            raise KeyError(f"unknown action {name!r}")
        spec: ActionSpec = ACTIONS[name]
        if self.revision not in spec.revisions:
            raise KeyError(f"action {name} does not exist at revision {self.revision}")
        full = {p: args.get(p, False) if p in spec.optional else args.get(p) for p in spec.params}
        unknown = set(args) - set(spec.params)
        if unknown:
            raise KeyError(f"{name} has no parameter {sorted(unknown)[0]!r} (it takes {', '.join(spec.params)})")
        missing = [p for p, v in full.items() if v is None]
        if missing:
            raise KeyError(f"{name} needs the parameter {missing[0]!r}")
        outside = False
        for p, v in full.items():
            if p in VALUE_RANGES and not isinstance(v, bool) and isinstance(v, int):
                lo, hi, ctype = VALUE_RANGES[p]
                if not lo <= v <= hi:
                    raise KeyError(f"{name}: {p}={v!r} is outside the range of {ctype}: "
                                   f"{lo} .. {hi:#x}")
                outside = outside or v not in spec.domain(p, self.scope)
            elif v not in spec.domain(p, self.scope):
                raise KeyError(f"{name}: {p}={v!r} is outside the scope {self.scope.name}")
        key = tuple(full.items())
        if outside:
            return self._extra_instance(name, key)
        for i in self.by_name.get(name, ()):
            if self.instances[i].args == key:
                return self.instances[i]
        raise KeyError(f"no instance {format_call(name, key)}")  # pragma: no cover

    def _extra_instance(self, name: str, key: tuple[tuple[str, Any], ...]) -> Instance:
        t = self.extra.get((name, key))
        if t is None:
            inst = Instance(len(self._steps), name, key, ACTIONS[name].actor)
            t = _trace(self.schema, self.scope, self.revision, inst)
            self._compile(t)
            self.extra[(name, key)] = t
        return t.instance

    def transition(self, index: int) -> TransitionTerms:
        """The terms of instance ``index``: one of the scope's, or one ``find`` made."""
        if index < len(self.terms):
            return self.terms[index]
        return next(t for t in self.extra.values() if t.instance.index == index)

    def outside_bounds(self, state: tuple) -> str | None:
        """The first field of ``state`` outside the bounds the scope gives it (``vma_npages[0]=100``),
        or None: an instance ``find`` made can store a value no state of the scope holds (a
        mutant core's mmap of 100 pages)."""
        for name, (lo, hi), value in zip(self.schema.names, self.schema.bounds, state):
            if not lo <= int(value) <= hi:
                return f"{name}={int(value)}"
        return None

    def describe_ret(self, ret: int) -> str:
        return errno_name(ret)

    def why_disabled(self, state: tuple, index: int) -> str:
        """Why instance ``index`` cannot be taken in ``state``: the reason the model gives for the
        first conjunct of its guard that is false there (``Step.require``)."""
        t = self.transition(index)
        env = {**dict(zip(self.schema.names, state)), **self.knob_env}
        for cond, reasons in t.requires:
            if not evaluate([cond], env)[0]:
                for when, why in reasons:
                    if evaluate([when], env)[0]:
                        return why.format(scope=self.scope.name, **t.instance.kwargs)
        return "its guard is false in this state"
