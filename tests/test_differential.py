"""The two interpretations of one transition definition agree (docs/design.md, point 3).

For random states drawn within the schema's bounds (and states reached by random walks from the
initial state), for every action instance, several catalog policies and all three scopes: the
compiled concrete step (``Model.step``, the knobs substituted before compilation) and the
symbolic interpretation (``model.terms.to_z3`` of the knob-free terms, evaluated on Z3 constants
and reduced with ``z3.simplify``) give the same guard, next state, return value, events and
subject buffer."""
import random

import pytest
import z3

from model.catalog import CATALOG
from model.events import EVENT_BIT, EVENTS
from model.machine import Model, transition_terms
from model.scope import SCOPES
from model.terms import FALSE, to_z3

POLICIES = ("omapdrm", "i915", "reference", "coherent", "broken-zap-anon-file", "mutant-vmap-no-refcount")


def _random_state(schema, rng):
    out = []
    for (lo, hi), spec in zip(schema.bounds, schema.specs):
        out.append(rng.random() < 0.5 if spec.sort == "bool" else rng.randint(lo, hi))
    return tuple(out)


def _walk(model, rng, steps):
    s = model.init
    states = [s]
    for _ in range(steps):
        succ = list(model.successors(s))
        if not succ:
            break
        s = rng.choice(succ)[1]
        states.append(s)
    return states


def _const(v):
    return z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(v)


def _py(e):
    e = z3.simplify(e)
    if z3.is_true(e):
        return True
    if z3.is_false(e):
        return False
    assert z3.is_int_value(e), f"not reduced to a value: {e}"
    return e.as_long()


def _symbolic_steps(model, terms, state):
    """Every instance's (guard, next, ret, events mask, subject) by the Z3 interpretation."""
    env = {n: _const(v) for n, v in zip(model.schema.names, state)}
    env.update({k: _const(v) for k, v in model.knob_env.items()})
    memo = {}
    width = model.schema.width
    out = []
    for t in terms:
        roots = [t.guard, *t.next, t.ret, t.subject, *(t.events.get(n, FALSE) for n, _ in EVENTS)]
        vals = [_py(e) for e in to_z3(roots, env, memo)]
        nxt = tuple(vals[1:1 + width])
        ret, subj = vals[1 + width], vals[2 + width]
        mask = sum(EVENT_BIT[n] for (n, _), v in zip(EVENTS, vals[3 + width:]) if v)
        out.append((vals[0], nxt, ret, mask, subj))
    return out


@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("policy", POLICIES)
def test_concrete_and_symbolic_interpretations_agree(scope, policy):
    model = Model(CATALOG[policy], scope)
    _, terms = transition_terms(model.scope, model.revision)
    rng = random.Random(f"{scope}/{policy}")
    states = [_random_state(model.schema, rng) for _ in range(2)] + _walk(model, rng, 25)[-2:]
    enabled = 0
    for state in states:
        model.schema.check(state)
        for i, (guard, nxt, ret, mask, subj) in enumerate(_symbolic_steps(model, terms, state)):
            concrete = model.step(state, i)
            inst = model.instances[i]
            assert (concrete is not None) == guard, f"{inst}: guard differs"
            assert model.enabled(state, i) == guard
            if concrete is None:
                continue
            enabled += 1
            c_next, c_ret, c_mask, c_subj = concrete
            assert c_next == nxt, f"{inst}: next state differs in {model.schema.diff(c_next, nxt)}"
            assert c_ret == ret, f"{inst}: ret {c_ret} vs {ret}"
            assert c_mask == mask, f"{inst}: events {c_mask:#x} vs {mask:#x}"
            assert c_subj == subj, f"{inst}: subject {c_subj} vs {subj}"
    assert enabled > len(model.instances)   # the states enabled a good share of the instances
