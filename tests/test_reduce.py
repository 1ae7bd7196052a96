"""The read/write analysis of action instances and properties, and the explicit engine's
dead-variable reduction derived from it: the reduced search reports what the unreduced one does."""
import os
import re

import pytest

from model.catalog import CATALOG, get_policy
from model.machine import Model
from model.scope import Scope
from model.terms import assume, const, eq, facts, ite, or_, reads, simplify, substitute, var
from properties.bench.explicit import reduction_agreement
from properties.engines.explicit import check, explore
from properties.engines.reduce import Reduction, accesses, analyse, observer_reads, reduction_for
from properties.index import PROPERTIES, get_property

SLOW = pytest.mark.skipif(not os.environ.get("DMABUF_SLOW_TESTS"),
                          reason="the whole catalog with and without the reduction; set DMABUF_SLOW_TESTS=1")
# one of everything (a mapping, an attachment, an fd) and counters up to 1: whole graphs with
# edges in seconds, with the stuck states of the pinning policies
MICRO = Scope("micro", buffers=1, pages=1, fds=1, vmas=1, attachments=1, refs=1)


def _props(model):
    return [p for p in PROPERTIES if p.active(model.policy, model.scope, model.revision)]


# --- the term-level analysis -----------------------------------------------------------------------

def test_reads_is_what_a_term_reads_where_the_substituted_values_hold():
    c, x, y = var("c", "bool"), var("x"), var("y")
    t = ite(c, x + 1, y)
    assert reads([t]) == [frozenset({"c", "x", "y"})]
    (on,) = substitute([t], {"c": True})
    assert reads([on]) == [frozenset({"x"})]


def test_assume_and_simplify_rewrite_what_the_context_decides():
    o, d, x = var("o", "bool"), var("d"), var("x")
    inner = ite(o, d, x)
    assert assume([inner], facts(o, True)) == [d]
    assert assume([inner], facts(or_(~o, eq(d, 1)), False)) == [d]   # or(..) false: each item false
    # an implication whose conclusion reads x only where its premise is false reads no x
    assert "x" not in reads([simplify(or_(~o, eq(inner, 2)))])[0]
    assert "x" in reads([or_(~o, eq(inner, 2))])[0]
    assert simplify(or_(~o, eq(inner, const(2)))) is or_(~o, eq(d, 2))


def test_accesses_name_what_an_action_obviously_reads_and_writes():
    m = Model(get_policy("i915"), "tiny")
    acc = accesses(m)
    vmap = acc[m.find("dma_buf_vmap", buf=0).index]
    assert "vmapping_counter[0]" in vmap.writes and "kref[0]" in vmap.guard_reads
    assert "vmapping_counter[0]" in vmap.guard_reads
    mmap = acc[m.find("mmap", fd=0, pgoff=0, npages=1).index]
    assert {"vma_live[0]", "pte[0][0]"} <= mmap.writes and "fd_open[0]" in mmap.effect_reads
    assert "cache[0][0]" not in mmap.writes and "life[0]" not in mmap.writes
    # a field of one value in the scope (the buffer number of tiny's one buffer) is never written
    assert "fd_buf[0]" not in mmap.writes


def test_knob_folding_removes_the_reads_of_a_folded_away_branch():
    def access(policy, name, **args):
        m = Model(get_policy(policy), "tiny")
        return accesses(m)[m.find(name, **args).index]

    # end_cpu_access fails before any begin only where the exporter says so (udmabuf)
    assert "prepared[0]" in access("udmabuf", "dma_buf_end_cpu_access", buf=0, direction=0).effect_reads
    assert "prepared[0]" not in access("i915", "dma_buf_end_cpu_access", buf=0, direction=0).effect_reads
    # a CPU store goes to the cache line only on non-coherent memory
    assert "cache[0][0]" in access("i915", "cpu_write", vma=0, page=0).writes
    assert "cache[0][0]" not in access("coherent", "cpu_write", vma=0, page=0).writes


def test_observer_reads_follow_the_predicates():
    m = Model(get_policy("i915"), "tiny")
    r = observer_reads(m, [get_property("P-FENCE-WAIT")])["P-FENCE-WAIT"]
    assert {"post.fence[0]", "post.udir[0]", "ev.begin_ok"} <= r
    assert not any(n.startswith("cache") for n in r)


# --- the dead fields --------------------------------------------------------------------------------

def test_a_closed_bracket_keeps_no_direction_by_the_analysis():
    # the model keeps a closed bracket's direction and race flag; the analysis finds them dead
    # and the reduced search has the states the hand-written reset had (2026-11-28: 289,261)
    m = Model(get_policy("i915"), "tiny")
    red = reduction_for(m, _props(m))
    found = set(red.describe())
    assert {"kdir[0] when kopen[0] == 0", "krace[0] when kopen[0] == 0", "udir[0] when uopen[0] == 0",
            "urace[0] when uopen[0] == 0", "pte[0][0] when vma_live[0] == 0"} <= found
    assert not any(d.startswith(("kopen", "uopen", "life", "pins")) for d in found)
    # the bracket's fields alone give exactly the states and transitions of the reset the model
    # did by hand until 2026-12-04
    names = m.schema.names
    bracket = {f: c for f, c in red.dead.items() if names[f] in ("kdir[0]", "krace[0]", "udir[0]", "urace[0]")}
    only = Reduction(m, bracket, {f: red.canon[f] for f in bracket})
    space = explore(m, _props(m), keep_edges=False, reduce=only)
    assert space.complete and (space.n_states, space.transitions) == (289_261, 21_916_669)
    # a concrete state is looked up by its canonical one
    s = list(m.init)
    s[m.schema.offset["udir[0]"]] = 2
    assert space.index(tuple(s)) == 0
    assert red.canonical_state(tuple(s)) == tuple(m.init)


def test_the_analysis_depends_on_what_is_observed():
    m = Model(get_policy("i915"), "tiny")
    without = {d.split(" ")[0] for d in analyse(m, []).describe()}
    with_all = {d.split(" ")[0] for d in analyse(m, _props(m)).describe()}
    assert with_all <= without and with_all != without


# --- agreement with the unreduced search ------------------------------------------------------------

def _agree(policy, scope, stuck=True, reduce="dead"):
    pol = get_policy(policy)
    m = Model(pol, scope, pol.revisions[0])    # (vgem: v5.12, the v4.11 dma_buf_export() refuses it)
    return reduction_agreement(m, PROPERTIES, reduce=reduce, stuck=stuck)


@pytest.mark.parametrize("policy,scope", [("vgem", "tiny"), ("omapdrm", MICRO), ("i915", MICRO)])
def test_the_reduced_search_reports_what_the_unreduced_one_does(policy, scope):
    r = _agree(policy, scope)
    assert r["differences"] == []
    assert r["reduced"]["states"] < r["none"]["states"]


def test_the_agreement_test_notices_a_reduction_without_its_next_state_condition():
    # mutation: the dead pairs taken without condition 2 (a dead field's next value may read it)
    m = Model(get_policy("i915"), MICRO)
    wrong = analyse(m, _props(m), check_next=False)
    assert set(wrong.describe()) != set(analyse(m, _props(m)).describe())
    r = reduction_agreement(m, PROPERTIES, reduce=wrong, stuck=True)
    assert r["differences"]


@SLOW
@pytest.mark.parametrize("policy", list(CATALOG))
def test_the_whole_catalog_agrees_on_tiny(policy):
    r = _agree(policy, "tiny", stuck=False)
    assert r["differences"] == []
    r = _agree(policy, MICRO, stuck=True)
    assert r["differences"] == []


def test_with_symmetry_the_reduced_search_reports_the_same():
    # the two reductions together: the dead pairs are the same for every slot of a table, so
    # resetting dead fields commutes with exchanging slots
    m = Model(get_policy("vgem"), "tiny", "v5.12")    # (the v4.11 dma_buf_export() refuses vgem)
    a, va = check(m, PROPERTIES, symmetry=True, keep_edges=False)
    b, vb = check(m, PROPERTIES, symmetry=True, keep_edges=False, reduce="dead")
    assert b.n_states < a.n_states
    assert [(v.property, v.verdict, v.evidence.get("trace_length")) for v in va] == \
           [(v.property, v.verdict, v.evidence.get("trace_length")) for v in vb]


def test_the_dead_pairs_are_the_same_for_every_slot_of_a_table():
    m = Model(get_policy("omapdrm"), "small")           # two mappings
    found = set(reduction_for(m, _props(m)).describe())
    assert "pte[1][0] when vma_live[1] == 0" in found

    def swap(d):      # mapping 0 <-> mapping 1 (the first index of pte and vma_*)
        return re.sub(r"\b(vma_\w+|pte)\[(\d)\]", lambda x: f"{x[1]}[{1 - int(x[2])}]", d)

    assert swap("pte[1][0] when vma_live[1] == 0") == "pte[0][0] when vma_live[0] == 0"

    assert {swap(d) for d in found} == found
