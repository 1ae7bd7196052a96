"""Partial-order reduction of the explicit engine (properties.engines.por): relations derived from
the terms, and the reduced search reporting what the search without it does."""
import pytest

from model.catalog import get_policy
from model.machine import Model
from properties.engines.explicit import check, explore
from properties.engines.por import parse_mode, relations
from properties.engines.reduce import accesses
from properties.index import PROPERTIES, get_property


def _report(model, reduce):
    space, vs = check(model, PROPERTIES, keep_edges=False, reduce=reduce)
    return space, {v.property: (v.verdict, v.evidence.get("trace_length")) for v in vs}, sorted(space.found)


def test_relations_come_from_the_terms():
    m = Model(get_policy("vgem"), "tiny")
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


@pytest.mark.parametrize("policy", ["vgem", "i915"])
def test_the_partial_order_search_reports_what_the_search_without_it_does(policy):
    m = Model(get_policy(policy), "tiny")
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
