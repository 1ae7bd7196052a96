"""Stuck states: numpy backward reachability against networkx's condensation, and the leaked pin
a reduced omapdrm shows (export, begin_cpu_access pins, the last reference goes)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model.catalog import CATALOG
from model.machine import Model
from model.scope import Scope
from model.state import LIFE_RELEASED
from properties.engines.explicit import Budget, explore
from properties.engines.stuck import can_reach, find_stuck, goals_for, stuck_states, stuck_states_networkx

MICRO = Scope("micro", buffers=1, pages=1, fds=1, vmas=1, attachments=1, refs=1)
MICRO2 = Scope("micro2", buffers=1, pages=1, fds=2, vmas=1, attachments=1, refs=1)


def _space(policy: str = "omapdrm", scope: Scope = MICRO, symmetry: bool = False):
    pol = CATALOG[policy].with_knobs(kmap_returns_null=True)   # (the v4.11 export refuses ops without kmap)
    return explore(Model(pol, scope), symmetry=symmetry)


@pytest.fixture(scope="module")
def omap():
    return _space()


def test_numpy_and_networkx_agree(omap):
    g = omap.to_networkx()
    for goal in goals_for(omap):
        assert np.array_equal(stuck_states(omap, goal), stuck_states_networkx(omap, goal, g)), goal.name


def test_a_released_buffer_keeps_the_pin_begin_took(omap):
    (f,) = find_stuck(omap)
    assert f.goal == "unpin[0]"
    assert f.stuck == 8019 and f.pending > f.stuck
    assert [s.action for s in f.trace.steps] == ["dma_buf_export", "dma_buf_begin_cpu_access", "dma_buf_put"]
    last = f.trace.steps[-1].state
    off = omap.model.schema.offset
    assert last[off["life[0]"]] == LIFE_RELEASED and last[off["pins[0]"]] == 1
    # no state reachable from it has the pin dropped
    start = omap.index(last)
    assert start is not None and not can_reach(omap, omap.states[:, off["pins[0]"]] == 0)[start]


def test_an_exporter_that_never_pins_has_no_stuck_states():
    space = _space("i915")
    assert space.complete and find_stuck(space) == []


def test_can_reach_is_reflexive_and_follows_edges(omap):
    target = np.zeros(omap.n_states, bool)
    target[5] = True
    reach = can_reach(omap, target)
    assert reach[5] and reach[0]                         # the initial state reaches every state
    preds = omap.edge_src[omap.edge_dst == 5]
    assert reach[preds].all()


def test_symmetry_keeps_the_findings():
    plain = _space(scope=MICRO2)
    reduced = _space(scope=MICRO2, symmetry=True)
    a, b = find_stuck(plain), find_stuck(reduced)
    assert [(f.goal, len(f.trace)) for f in a] == [(f.goal, len(f.trace)) for f in b]
    assert b[0].stuck <= a[0].stuck and reduced.n_states < plain.n_states


def test_refuses_what_it_cannot_judge():
    model = Model(CATALOG["reference"], "default")
    cut = explore(model, symmetry=True, budget=Budget(depth=2))
    goal = goals_for(cut)[0]
    with pytest.raises(ValueError, match="cut short"):
        stuck_states(cut, goal)
    with pytest.raises(ValueError, match="several buffers"):
        stuck_states(dataclasses.replace(cut, complete=True), goal)
