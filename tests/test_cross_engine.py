"""The three engines agree: the explicit engine (every reachable state), a Hypothesis campaign and
Z3's bounded checks find the same violations and reached targets, none of
them reports what the explicit engine shows cannot happen, Z3 finds exactly the shortest traces
within its depth, and Hypothesis's shrunk traces are never shorter than the shortest.

The fast test runs on a reduced omapdrm in a one-of-everything scope (17,653 states, whole graph)
with a fifth of a campaign's Hypothesis budget;
the catalog on ``tiny`` takes tens of minutes (docs/explicit.md has its table, from
``python -m properties.bench.explicit --cross``) and runs here with ``DMABUF_SLOW_TESTS=1``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

import pytest

from model.catalog import CATALOG
from model.scope import Scope
from properties.bench.explicit import compare_engines, cross_engine

MICRO = Scope("micro", buffers=1, pages=1, fds=1, vmas=1, attachments=1, refs=1)

needs_z3_engine = pytest.mark.skipif(
    importlib.util.find_spec("properties.engines.z3_engine") is None,
    reason="properties/engines/z3_engine.py (run_z3) is not there yet: the Z3 side of the comparison "
           "needs it")


@needs_z3_engine
def test_three_engines_agree_on_a_whole_graph():
    pol = CATALOG["omapdrm"].with_knobs(kmap_returns_null=True)
    # the claims this reduced policy can break in this scope, so the campaign runs one round
    pol = dataclasses.replace(pol, breaks=("BEGIN-ERRORS", "FIXME-NO-USER-PIN", "KCPU-ALWAYS-SUCCEED"))
    r = cross_engine(pol, MICRO, examples=60, steps=20, depth=6)   # (a campaign's budget: 300 x 30)
    assert r["complete"] and r["states"] == 50173
    assert r["disagreements"] == []
    rows = {x["property"]: x for x in r["rows"]}
    assert rows["P-BEGIN-ERRORS"]["shortest"] == 5 and rows["P-BEGIN-ERRORS"]["z3"] == 5
    # never shorter than the shortest; at this reduced budget not always as short (at a campaign's
    # budget every ratio here is 1.0: docs/explicit.md)
    assert all(x["ratio"] >= 1.0 for x in rows.values())
    assert sum(x["ratio"] == 1.0 for x in rows.values()) >= len(rows) // 2


def test_compare_engines_reports_each_kind_of_disagreement():
    from model.machine import Model
    from properties.index import PROPERTIES
    from properties.engines.explicit import Budget, check

    model = Model(CATALOG["omapdrm"], "tiny")
    _, ev = check(model, PROPERTIES, budget=Budget(depth=3))
    by = {v.property: v for v in ev}
    found = by["P-NO-USER-PIN"]                      # violated after 3 steps
    quiet = by["P-RELEASE-ONCE"]                     # nothing within 3 steps
    assert found.trace is not None and quiet.trace is None

    def other(v, **kw):
        return dataclasses.replace(v, engine="hypothesis", **kw)

    missed, _ = compare_engines(ev, [other(found, verdict="holds", trace=None)], bound=3)
    assert missed and "misses it" in missed[0]
    invented, _ = compare_engines(ev, [other(quiet, verdict="violated", trace=found.trace)], bound=3)
    assert invented and "fires after 3 steps" in invented[0]
    ok, rows = compare_engines(ev, [other(found)], bound=3)
    assert ok == [] and rows[0]["ratio"] == 1.0


# What Hypothesis, at the campaign's budget (300 x 30, seed 1), misses on tiny of what the explicit
# engine finds: rare 8-step stale reads (docs/explicit.md, "Three engines agree"). Expected results
# are data, failures included.
HYPOTHESIS_MISSES = {
    "broken-end-keeps-pin": {"P-DIRECTION-UB"},
    "broken-end-no-flush": {"P-DIRECTION-UB"},
    "broken-evict-pinned": {"P-DIRECTION-UB"},
    "broken-kmap-unpinned": {"P-DIRECTION-UB"},
    "broken-zap-anon-file": {"P-DIRECTION-UB", "P-UNBRACKETED-STALE"},
    "broken-zap-without-own-file": {"P-DIRECTION-UB", "P-UNBRACKETED-STALE"},
    "i915": {"P-UNBRACKETED-STALE"},
    "mutant-no-fence-wait": {"P-DIRECTION-UB"},
    "mutant-no-size-check": {"P-DIRECTION-UB"},
    "mutant-sync-stateful": {"P-DIRECTION-UB"},
}   # (udmabuf, system-heap and vgem: the v4.11 dma_buf_export() refuses them, corpus §3.5)


@pytest.mark.skipif(not os.environ.get("DMABUF_SLOW_TESTS"),
                    reason="the whole catalog on tiny takes tens of minutes; set DMABUF_SLOW_TESTS=1")
@needs_z3_engine
@pytest.mark.parametrize("policy", sorted(p for p in CATALOG if CATALOG[p].exportable_at("v4.11")))
def test_three_engines_agree_on_tiny(policy):
    r = cross_engine(policy, "tiny", depth=6)
    assert r["complete"]
    prefix = f"{policy}: "
    missed = {d[len(prefix):].split(" ")[0] for d in r["disagreements"]
              if d.startswith(prefix) and ": hypothesis misses it" in d}
    others = [d for d in r["disagreements"] if ": hypothesis misses it" not in d]
    assert others == []
    assert missed == HYPOTHESIS_MISSES.get(policy, set())


# --- coverage of a Hypothesis campaign (properties.runs.coverage) -----------------------------------

def test_campaign_coverage_counts_against_the_whole_graph(monkeypatch):
    import properties.runs.coverage as coverage
    from model.machine import Model
    from properties.runs.campaign import format_table, run_campaign
    from properties.runs.coverage import measure
    from properties.engines.explicit import explore

    pol = dataclasses.replace(CATALOG["omapdrm"].with_knobs(kmap_returns_null=True),
                              name="omap-lite", breaks=("BEGIN-ERRORS", "FIXME-NO-USER-PIN", "KCPU-ALWAYS-SUCCEED"))
    one_round = coverage.campaign_coverage
    monkeypatch.setattr(coverage, "campaign_coverage", lambda *a, **k: one_round(*a, max_rounds=1, **k))
    result = run_campaign([pol], MICRO, examples=40, steps=20, seed=3, coverage=True)
    cov = result.verdicts[0].evidence["coverage"]
    assert cov["states_reachable"] == 50173 and cov["outside"] == 0
    assert 0 < cov["states_visited"] < 50173 and 0 < cov["transitions_visited"] < cov["transitions_reachable"]
    assert cov["state_fraction"] == round(cov["states_visited"] / 50173, 6)
    assert all(v.evidence["coverage"] == cov for v in result.verdicts)
    table = format_table(result, {"omap-lite": Model(pol, MICRO)})
    assert f"- omap-lite: {cov['states_visited']} of 50173 reachable states" in table
    # what the engine visited is measured as it is, and refused on a graph it cannot count against
    space = explore(Model(pol, MICRO))
    c = measure(space, [space.state(0), space.state(5), space.state(5)], [(space.state(0), 0)])
    assert (c.states_visited, c.transitions_visited, c.outside) == (2, 1, 0)
    with pytest.raises(ValueError, match="without symmetry"):
        measure(dataclasses.replace(space, symmetry=True), [], [])
    with pytest.raises(ValueError, match="cut short"):
        measure(dataclasses.replace(space, complete=False), [], [])


def test_shortest_makes_every_hypothesis_trace_a_shortest_one():
    """campaign --shortest: each trace becomes one of the explicit engine's shortest, replays, and
    still fires its property; omapdrm's headline P-KMAP-PINNED comes down to 5 steps on tiny."""
    from model.catalog import CATALOG
    from model.machine import Model
    from properties.runs.campaign import shorten_verdicts
    from properties.index import PROPERTIES
    from properties.engines.explicit import shortest_trace
    from properties.engines.hypothesis_engine import run_hypothesis
    from properties.index import get_property
    from properties.monitor import Monitor
    from properties.trace import replay

    model = Model(CATALOG["omapdrm"], "tiny")
    vs = run_hypothesis(model, PROPERTIES, examples=150, seed=1, steps=30)
    short = {v.property: v for v in shorten_verdicts(vs, {"omapdrm": model}, 2_000_000)}
    mon = Monitor(model, PROPERTIES)
    with_trace = [v for v in short.values() if v.trace is not None]
    assert with_trace
    for v in with_trace:
        assert v.evidence["shortest"] is True and len(v.trace) <= v.evidence["shrunk_length"]
        assert replay(model, v.trace.calls()).states() == v.trace.states()
        assert mon.fires(v.trace, v.property), v.property
        best = shortest_trace(model, get_property(v.property), len(v.trace))
        assert best is not None and len(best) == len(v.trace), v.property
    assert len(short["P-KMAP-PINNED"].trace) == 5
