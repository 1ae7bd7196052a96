"""Partial-order reduction of the explicit engine (properties.engines.por): relations derived from
the terms, and the reduced search reporting what the search without it does."""
import os

import numpy as np
import pytest

from model.catalog import CATALOG, get_policy
from model.machine import Model
from model.scope import Scope
from properties.bench.explicit import por_agreement
from properties.engines.explicit import Budget, check, explore
from properties.cli import main
from properties.engines.por import PartialOrder, Relations, parse_mode, relations
from properties.engines.reduce import accesses
from properties.index import PROPERTIES, get_property

SLOW = pytest.mark.skipif(not os.environ.get("DMABUF_SLOW_TESTS"),
                          reason="the whole catalog with and without partial-order reduction; set DMABUF_SLOW_TESTS=1")
MICRO = Scope("micro", buffers=1, pages=1, fds=1, vmas=1, attachments=1, refs=1)


def _report(model, reduce):
    space, vs = check(model, PROPERTIES, keep_edges=False, reduce=reduce)
    return space, {v.property: (v.verdict, v.evidence.get("trace_length")) for v in vs}, sorted(space.found)


def test_relations_come_from_the_terms():
    m = Model(get_policy("vgem"), "tiny", "v5.12")   # v4.11's dma_buf_export() refuses vgem
    rel = relations(m, [get_property("P-FD-LIVE")])
    vmap = m.find("dma_buf_vmap", buf=0).index
    vunmap = m.find("dma_buf_vunmap", buf=0).index
    assert rel.dependent[vmap, vunmap] and rel.dependent[vunmap, vmap]     # both write the vmap count
    # vunmap writes the count, which vmap's guard reads (its bound): it can enable vmap
    acc = accesses(m)
    assert "vmapping_counter[0]" in acc[vunmap].writes & acc[vmap].guard_reads
    assert rel.enables[vmap, vunmap]
    assert not rel.dependent.diagonal().any()
    # visibility follows the observers: P-FD-LIVE is changed only by what opens or closes an fd
    assert 0 < rel.visible.sum() < len(rel.visible)
    assert not rel.visible[vmap]
    assert rel.visible.sum() < relations(m, [p for p in PROPERTIES if p.active(m.policy, m.scope, m.revision)]).visible.sum()


def _udmabuf_without_end_flush():
    # a near variant, not in the catalog: udmabuf whose end_cpu_access does not write back
    return get_policy("udmabuf").with_knobs(end_flush=False)


@pytest.mark.parametrize("policy,scope", [("vgem", "tiny"), ("i915", MICRO), ("udmabuf-no-flush", MICRO)])
def test_the_partial_order_search_reports_what_the_search_without_it_does(policy, scope):
    pol = _udmabuf_without_end_flush() if policy == "udmabuf-no-flush" else get_policy(policy)
    m = Model(pol, scope, pol.exportable_revisions[0])   # vgem, udmabuf: v5.12 (v4.11 refuses them)
    a, va, fa = _report(m, "dead")
    b, vb, fb = _report(m, "dead+por")
    assert b.mode == "dead+por" and a.mode == "dead"
    assert va == vb and fa == fb
    assert any(v[0] == "violated" for v in va.values())


def test_unsound_combinations_are_refused():
    m = Model(get_policy("vgem"), "tiny")
    with pytest.raises(ValueError, match="symmetry"):
        explore(m, [], symmetry=True, reduce="dead+por")
    with pytest.raises(ValueError, match="unknown reduction"):
        parse_mode("por+dead")


def _failures(m, pairs):
    """How often a pair said to commute does not, on the states within three steps (both
    enabled: both orders enabled, the same state, each step's return, events and buffer the same
    in either order), and on how many (state, pair) it was tried."""
    space = explore(m, [], keep_edges=False, budget=Budget(depth=3))
    bad = tried = 0
    for i in range(space.n_states):
        s = space.state(i)
        for a, b in pairs:
            ra, rb = m.step(s, a), m.step(s, b)
            if ra is None or rb is None:
                continue
            tried += 1
            ab, ba = m.step(ra[0], b), m.step(rb[0], a)
            bad += ab is None or ba is None or ab[0] != ba[0] or ab[1:] != rb[1:] or ba[1:] != ra[1:]
    return bad, tried


def _freed(a, b):
    return [(int(x), int(y)) for x, y in zip(*np.nonzero(a.dependent & ~b.dependent)) if x < y]


def test_pairs_the_solver_finds_independent_commute_on_reachable_states():
    # the semantic refinement: pairs that touch the same fields but commute (Z3 on the terms),
    # checked against the model itself
    m = Model(get_policy("vgem"), MICRO, "v5.12")
    props = [get_property("P-FD-LIVE")]
    syn = relations(m, props)
    sem = relations(m, props, semantic=True)
    freed = _freed(syn, sem)
    assert freed and not (sem.dependent & ~syn.dependent).any()
    bad, tried = _failures(m, freed)
    assert tried and not bad
    # mutation: the solver not asked whether each step's return, events and buffer stay the same
    # frees more pairs, and the model shows some of them do not commute
    wrong = relations(m, props, semantic=True, drop="labels")
    bad, tried = _failures(m, _freed(sem, wrong))
    assert bad


@SLOW
@pytest.mark.parametrize("policy", list(CATALOG))
def test_the_whole_catalog_agrees_on_tiny(policy):
    pol = get_policy(policy)
    r = por_agreement(Model(pol, "tiny", pol.exportable_revisions[0]), PROPERTIES)
    assert r["differences"] == []


def _choice(dep, en, vis, noop=None):
    rel = Relations(np.array(dep, bool), np.array(en, bool), np.array(vis, bool), ((),) * len(vis))
    po = PartialOrder.__new__(PartialOrder)
    po.n, po.noop = len(vis), np.zeros(len(vis), bool) if noop is None else np.array(noop, bool)
    po.visible = rel.visible
    po._dep = [tuple(np.flatnonzero(r).tolist()) for r in rel.dependent]
    po._en = [tuple(np.flatnonzero(r).tolist()) for r in rel.enables]
    po._cache, po.reduced_sets = {}, 0
    return po


def test_a_stubborn_set_is_closed_under_dependence_and_enabling():
    # steps 0-1 dependent, 2-3 dependent; 4 can enable 1 (4 writes what 1's guard reads)
    dep = np.zeros((5, 5), bool)
    dep[0, 1] = dep[1, 0] = dep[2, 3] = dep[3, 2] = dep[1, 4] = dep[4, 1] = True
    en = np.zeros((5, 5), bool)
    en[1, 4] = True
    po = _choice(dep, en, [False] * 5)
    # everything enabled but 1: {0} brings its dependent 1, disabled, which brings its enabler 4
    # (enabled: {0, 4}); {4} brings 1, disabled, whose only enabler is 4 (enabled: {4}, the least)
    a = po.ample(np.array([True, False, True, True, True]))
    assert np.flatnonzero(a).tolist() == [4]
    # a visible member rules a set out; with every set ruled out the state is expanded fully
    po = _choice(dep, en, [False, False, False, False, True])
    assert np.flatnonzero(po.ample(np.array([True, False, True, True, True]))).tolist() == [2, 3]
    po = _choice(dep, en, [False, False, True, False, True])
    assert po.ample(np.array([True, False, True, True, True])) is None
    # one enabled step: nothing to leave out
    assert po.ample(np.array([True, False, False, False, False])) is None
    # a step that never changes the state is not chosen
    po = _choice(np.zeros((3, 3), bool), np.zeros((3, 3), bool), [False] * 3, noop=[True, False, False])
    assert np.flatnonzero(po.ample(np.ones(3, bool))).tolist() == [1]


@pytest.mark.parametrize("extra", [["--symmetry"], ["--coverage"], ["--cluster", "tcp://127.0.0.1:1"]])
def test_the_command_line_refuses_partial_order_reduction_where_it_is_not_sound(extra, capsys):
    assert main(["explore", "--exporter", "vgem", "--reduce", "dead+por", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "partial-order" in err[0]


def test_stuck_states_under_partial_order_reduction_come_from_a_search_without_it():
    from properties.engines.explicit import ExplicitEngine
    from properties.engines.interface import Budget as EngineBudget

    m = Model(get_policy("broken-end-keeps-pin"), MICRO)
    out = {}
    for mode in ("dead", "dead+por"):
        r = ExplicitEngine(stuck=True, reduce=mode).check(m, PROPERTIES, EngineBudget())
        out[mode] = [(f.goal, f.stuck, f.pending, len(f.trace)) for f in r.extras["stuck"]]
    assert out["dead"] and out["dead"] == out["dead+por"]
