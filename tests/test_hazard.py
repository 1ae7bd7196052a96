"""The Hypothesis engine's hazard score (properties/hazard.py), written in the property
vocabulary, gives the same value on every state as the formula over raw state offsets it
replaced: Hypothesis's target() sees the same scores, so fixed-seed campaigns are unchanged."""
import random
from collections import Counter

import pytest

from model.catalog import CATALOG
from model.machine import Model
from properties.hazard import hazard_function


def _old_hazard_function(model):
    """The formula as hypothesis_engine had it before (kept here only, as the reference)."""
    o = model.schema.offset
    sc = model.scope
    cells = []
    for b in range(sc.buffers):
        opened = (o[f"uopen[{b}]"], o[f"kopen[{b}]"])
        mapped = [(o[f"att_mapped[{a}]"], o[f"att_buf[{a}]"]) for a in range(sc.attachments)]
        for p in range(sc.pages):
            cells.append((b, o[f"cache[{b}][{p}]"], o[f"cache_ok[{b}][{p}]"], o[f"wclass[{b}][{p}]"],
                          opened, mapped))

    def hazard(s: tuple) -> int:
        h = 0
        for b, c, ok, w, (uo, ko), mapped in cells:
            if s[c] and not s[ok]:
                h += 3 if (s[uo] or s[ko]) else 1
            if s[w] == 2:
                h += 3 if any(s[m] and s[ab] == b for m, ab in mapped) else 1
        return h

    return hazard


def _bfs(model, limit):
    seen = {model.init}
    frontier = [model.init]
    while frontier and len(seen) < limit:
        nxt = []
        for s in frontier:
            for _, t, *_rest in model.successors(s):
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return seen


def _walks(model, rng, walks, steps):
    out = set()
    for _ in range(walks):
        s = model.init
        for _ in range(steps):
            succ = list(dict.fromkeys(t for _, t, *_rest in model.successors(s) if t != s))
            if not succ:
                break
            s = rng.choice(succ)
            out.add(s)
    return out


def _compare(model, states):
    new, old = hazard_function(model), _old_hazard_function(model)
    values = Counter()
    for s in states:
        h = new(s)
        assert type(h) is int and h == old(s), (model.policy.name, model.scope.name, s)
        values[h] += 1
    return values


@pytest.mark.parametrize("policy,revision", [("i915", "v4.11"), ("reference", "v5.12"), ("system-heap", "v5.12")])
def test_hazard_equals_the_old_formula_on_a_tiny_graph(policy, revision):
    m = Model(CATALOG[policy], "tiny", revision)
    values = _compare(m, _bfs(m, 15_000))
    assert len(values) >= 3, values        # the graph reaches hazards of several weights


@pytest.mark.parametrize("policy,revision", [("reference", "v4.11"), ("udmabuf", "v5.12")])
def test_hazard_equals_the_old_formula_on_random_states_of_default(policy, revision):
    """default has two buffers and two attachments: the attachment must be the buffer's."""
    m = Model(CATALOG[policy], "default", revision)
    values = _compare(m, _walks(m, random.Random(11), 150, 60))
    assert len(values) >= 4, values


def test_hazard_equals_the_old_formula_on_arbitrary_states_of_default():
    """Any tuple within the layout's bounds, reachable or not: every combination of stale lines,
    open brackets, handed-off writes and attachments mapped to either buffer."""
    m = Model(CATALOG["reference"], "default", "v5.12")
    rng = random.Random(5)
    states = [tuple(bool(rng.getrandbits(1)) if b else rng.randint(lo, hi)
                    for (lo, hi), b in zip(m.schema.bounds, m.schema.is_bool)) for _ in range(20_000)]
    values = _compare(m, states)
    assert max(values) >= 12, values
