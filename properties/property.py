"""Properties: what must hold, which claims it formalises, who is responsible.

docs/design.md, point 6. A property has an ID, the claim IDs of ``spec/claims.md`` it formalises, the
party responsible, a kind, and one predicate written in the model's term vocabulary, so that every
engine checks the same text:

* ``always``: the predicate holds in every reachable state;
* ``step``: the predicate holds on every transition (it sees the pre-state, the post-state, the
  return value, the events and the buffer acted on);
* ``witness``: the predicate is *reachable* (a model that can do nothing fails these);
* ``undefined``: the predicate describes behaviour the documentation calls undefined, or a caller
  breaking its own obligation; reaching it is reported as a finding, not judged.

For ``witness`` and ``undefined`` the predicate is the target; for ``always`` and ``step`` it is the
invariant. ``on`` says whether the predicate reads a state or a step; ``action`` restricts a step
predicate to the steps of one action.

``revisions`` names the documentation revisions a property applies to (docs/design.md, point 9): a
property formalising a sentence the later revision deleted (the FIXME, kmap) is ``("v4.11",)``,
one formalising a later claim (``M-*``) applies from v5.12 on (``since("v5.12")``). ``applies_at`` refines ``applies``
where whether a property applies to a policy depends on the revision.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from model.events import EVENT_BIT
from model.policy import ExporterPolicy, REVISIONS, knob_vars
from model.scope import Scope
from model.state import Schema
from model.step import Knobs
from model.terms import Term, compile_function, digest, lift, select, substitute, var

__all__ = ["Property", "StateView", "StepView", "PARTIES", "KINDS", "CompiledProperty", "compile_properties",
           "policy_terms", "step_var_expr", "properties_digest"]

PARTIES = ("core", "exporter", "importer", "userspace", "undefined", "tension")
KINDS = ("always", "step", "witness", "undefined")


class _Events:
    def __getattr__(self, name: str) -> Term:
        if name not in EVENT_BIT:
            raise AttributeError(f"no event {name!r} (see model/events.py)")
        return var("ev." + name, "bool")


class StateView:
    """What a state predicate reads: ``v.s`` (the state), ``v.k`` (knobs), ``v.scope``."""

    def __init__(self, schema: Schema) -> None:
        self.scope: Scope = schema.scope
        self.s = schema.sym()
        self.k = Knobs(knob_vars())

    def buffers(self) -> range:
        return range(self.scope.buffers)

    def pages(self) -> range:
        return range(self.scope.pages)

    @staticmethod
    def at(arr, index: Any) -> Term:
        """``arr[index]`` for a term index (an ``ite`` chain)."""
        return select(list(arr), index)


class StepView(StateView):
    """What a step predicate reads: ``v.pre``, ``v.post``, ``v.ret``, ``v.ev.<event>``,
    ``v.buf`` (the buffer the step acted on), and ``v.at(array, index)``."""

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema)
        self.pre = self.s
        self.post = schema.sym("post.")
        self.ret = var("ret")
        self.buf = var("buf")
        self.ev = _Events()


@dataclass(frozen=True)
class Property:
    id: str
    claims: tuple[str, ...]
    party: str
    kind: str
    doc: str
    predicate: Callable[[Any], Any] = field(repr=False)
    on: str = "state"
    action: str | None = None
    needs: tuple[tuple[str, int], ...] = ()            # scope minimums, e.g. (("buffers", 2),)
    applies: Callable[[ExporterPolicy], bool] | None = field(default=None, repr=False)
    revisions: tuple[str, ...] = REVISIONS             # documentation revisions it applies to
    applies_at: Callable[[ExporterPolicy, str], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.party not in PARTIES:
            raise ValueError(f"property {self.id}: unknown party {self.party!r}")
        if self.kind not in KINDS:
            raise ValueError(f"property {self.id}: unknown kind {self.kind!r}")
        if self.on not in ("state", "step"):
            raise ValueError(f"property {self.id}: 'on' must be 'state' or 'step'")
        if self.action is not None and self.on != "step":
            raise ValueError(f"property {self.id}: only a step predicate can name an action")
        if not self.claims:
            raise ValueError(f"property {self.id}: cites no claim")
        if not self.revisions or any(r not in REVISIONS for r in self.revisions):
            raise ValueError(f"property {self.id}: revisions must be drawn from {', '.join(REVISIONS)}")

    @property
    def target_is_bad(self) -> bool:
        """Is reaching the predicate's *negation* a violation (always/step), or reaching the
        predicate itself a finding (undefined)?"""
        return self.kind in ("always", "step")

    def fits(self, scope: Scope) -> bool:
        return all(getattr(scope, k) >= v for k, v in self.needs)

    def relevant(self, policy: ExporterPolicy, revision: str | None = None) -> bool:
        """Does the property apply to this policy (at ``revision``, when given)?"""
        if revision is not None and revision not in self.revisions:
            return False
        if revision is not None and self.applies_at is not None and not self.applies_at(policy, revision):
            return False
        return self.applies is None or bool(self.applies(policy))

    def active(self, policy: ExporterPolicy, scope: Scope, revision: str) -> bool:
        """Is the property checked for this policy, scope and documentation revision?"""
        return self.relevant(policy, revision) and self.fits(scope)

    def term(self, schema: Schema) -> Term:
        """The predicate as a term, knobs free."""
        return _term(self, schema)


@lru_cache(maxsize=None)
def _term(prop: Property, schema: Schema) -> Term:
    view = StepView(schema) if prop.on == "step" else StateView(schema)
    t = lift(prop.predicate(view))
    if t.sort != "bool":
        raise TypeError(f"property {prop.id}: the predicate must be a boolean term")
    return t


@dataclass(frozen=True)
class CompiledProperty:
    prop: Property
    fn: Callable[..., bool]      # state: fn(s); step: fn(s, t, r, e, b)
    constant: bool | None        # the predicate folded to a constant for this policy


def step_var_expr(model) -> dict[str, str]:
    """How generated code reads each variable of a step predicate ``f(s, t, r, e, b)``."""
    schema: Schema = model.schema
    var_expr = dict(model.var_expr)
    var_expr.update({"post." + n: f"t[{i}]" for i, n in enumerate(schema.names)})
    var_expr.update({"ev." + n: f"(e & {bit} != 0)" for n, bit in EVENT_BIT.items()})
    var_expr.update({"ret": "r", "buf": "b"})
    return var_expr


def policy_terms(model, props) -> list[Term]:
    """Each property's predicate with the model's knobs substituted (and folded)."""
    return substitute([p.term(model.schema) for p in props], model.knob_env)


def properties_digest(model, props) -> str:
    """A digest of what the properties ``props`` check on ``model`` (in their order): each one's
    ID, kind, what it reads (a state or a step) and the action it is restricted to, and its
    predicate with the model's knobs substituted and folded (``model.terms.digest``: structure
    only, the same in every process)."""
    props = list(props)
    h = hashlib.sha256(repr([(p.id, p.kind, p.on, p.action) for p in props]).encode())
    h.update(digest(policy_terms(model, props)).encode())
    return h.hexdigest()


def compile_properties(model, props) -> list[CompiledProperty]:
    """Compile each property for one model (its scope and policy)."""
    var_expr = step_var_expr(model)
    out = []
    for p, t in zip(props, policy_terms(model, props)):
        params = ["s"] if p.on == "state" else ["s", "t", "r", "e", "b"]
        fn, _ = compile_function("prop_" + p.id.replace("-", "_"), params, var_expr, [t],
                                 result=lambda outs: outs[0])
        out.append(CompiledProperty(p, fn, t.args[0] if t.op == "const" else None))
    return out
