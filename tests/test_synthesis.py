"""The FIXME as a synthesis query, both ways, and the same query for other pairs of claims."""
import json

import pytest

from model.machine import Model
from properties.index import get_property
from properties.cli import main
from properties.engines.synthesis import (EXCLUDED_KNOBS, KMAP_USERS, _fired, fixme_query, synthesize,
                                          synthesize_claims)
from properties.trace import replay

DEPTH = 5


@pytest.fixture(scope="module")
def with_kmap():
    return fixme_query(True, "tiny", DEPTH)


@pytest.fixture(scope="module")
def without_kmap():
    return fixme_query(False, "tiny", DEPTH)


def _check_failing_classes(r):
    assert r.failing
    for c in r.failing:
        assert all(getattr(c.example, k) is False for k in EXCLUDED_KNOBS)
        for k, v in c.knobs:
            assert getattr(c.example, k) == v
        if c.unreached:
            continue
        model = Model(c.example, r.scope)
        trace = replay(model, c.trace.calls())           # it replays on a policy of its class
        assert set(c.violates) <= set(_fired(model, trace, [get_property(p) for p in r.safety]))
        assert c.violates


def test_with_kmap_users_no_swappable_policy_keeps_both(with_kmap):
    r = with_kmap
    assert r.status == "sat" and r.proved
    assert r.partitions == {"swappable=true": "none", "swappable=false": "some policies"}
    assert r.satisfying and all(dict(c.knobs).get("swappable") is False for c in r.satisfying)
    assert all(dict(c.knobs).get("has_kmap") and dict(c.knobs).get("has_kmap_atomic") for c in r.satisfying)
    assert r.catalog["omapdrm"] == "fails" and r.catalog["reference"] == "keeps both"
    assert r.catalog["broken-evict-pinned"] == "outside the search space"
    assert 0 < r.count < r.space
    assert "degenerate" in r.explanation
    _check_failing_classes(r)
    violated = {p for c in r.failing for p in c.violates}
    assert {"P-NO-USER-PIN", "P-KMAP-PINNED"} <= violated


def test_without_kmap_users_swappable_policies_keep_both(without_kmap):
    r = without_kmap
    assert r.status == "sat" and r.proved
    assert r.excluded_actions == KMAP_USERS
    assert r.partitions["swappable=true"] == "some policies"
    assert r.catalog["omapdrm"] == "fails"          # it still pins for userspace
    assert r.catalog["i915"] == "keeps both" and r.catalog["coherent"] == "keeps both"
    assert r.catalog["vgem"] == "not exportable at v4.11"    # dma_buf_export() refuses it (corpus §3.5)
    assert r.count > 0
    _check_failing_classes(r)
    assert {p for c in r.failing for p in c.violates} == {"P-NO-USER-PIN"}


def test_a_class_of_satisfying_policies_really_keeps_both(with_kmap):
    """A policy drawn from each satisfying class is checked alone, concretely bounded."""
    from properties.engines.z3_engine import bmc

    for c in with_kmap.satisfying:
        model = Model(c.example, "tiny")
        res = bmc(model, [get_property(p) for p in with_kmap.safety], depth=DEPTH)
        assert all(x.status == "unreached" for x in res.values()), c.describe()


def test_no_policy_when_storage_must_be_swappable():
    r = synthesize([get_property(p) for p in ("P-NO-USER-PIN", "P-KMAP-PINNED", "P-KMAP-SUCCEEDS")],
                   [get_property("W-KMAP-IN-BRACKET")], "tiny", DEPTH, fixed={"swappable": True},
                   title="swappable only")
    assert r.status == "unsat" and r.count == 0 and not r.satisfying
    _check_failing_classes(r)


def test_any_pair_of_claims():
    r = synthesize_claims(["END-FLUSH-UNPIN"], ["FIXME-NO-USER-PIN"], "tiny", 4, prove=False)
    assert set(r.safety) == {"P-END-UNPINS", "P-NO-USER-PIN"}
    assert r.status == "sat" and r.catalog["broken-end-keeps-pin"] == "fails"
    with pytest.raises(KeyError):
        synthesize_claims(["NO-SUCH-CLAIM"], ["FIXME-NO-USER-PIN"], "tiny", 2)


def test_cli_prove_synthesis_pair(tmp_path, capsys):
    out = tmp_path / "s.json"
    rc = main(["prove", "--only", "synthesis", "--scope", "tiny", "--depth", "3", "--pair",
               "END-FLUSH-UNPIN", "FIXME-NO-USER-PIN", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    answers = [s["answer"] for s in data["synthesis"]]
    assert answers == ["sat", "sat", "sat"]
    assert data["synthesis"][0]["partitions"]["swappable=true"] == "none"
    assert "degenerate answer" in capsys.readouterr().out
