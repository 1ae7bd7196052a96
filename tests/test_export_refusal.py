"""The v4.11 dma_buf_export() refuses ops without kmap, kmap_atomic or mmap (WARN_ON, -EINVAL,
corpus §3.5); v4.19 made them optional (§6.1), so v5.12 accepts them.

One rule (``model.policy.export_requires``) is read by the export action, by the catalog's
revisions and by the runs, which list a policy the revision cannot export instead of checking it.
Everything here runs on the ``tiny`` scope, where a refused export leaves one reachable state."""
from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from model.catalog import CATALOG
from model.events import EVENT_WORDS, event_names
from model.machine import Model
from model.policy import REVISIONS, export_refusal
from model.scope import SCOPES
from properties.cli import main
from properties.engines.explicit import ExplicitEngine
from properties.engines.hypothesis_engine import HypothesisEngine
from properties.engines.interface import Budget
from properties.engines.z3_engine import Z3Engine
from properties.index import get_property
from properties.runs.campaign import format_table, run_campaign

REFUSED = ("udmabuf", "system-heap", "vgem")
EXPORTED = "W-DMA-BUF-EXPORT"          # the witness: some dma_buf_export succeeds
DRIFT = "P-EXPORT-OPS-DRIFT"


def _export(policy, revision):
    """(return, events, state unchanged?) of dma_buf_export(buf=0) from the initial state."""
    m = Model(policy, "tiny", revision)
    nxt, ret, events, _ = m.step(m.init, m.find("dma_buf_export", buf=0).index)
    return ret, event_names(events), nxt == m.init


def _variant(name, **knobs):
    return dataclasses.replace(CATALOG["reference"].with_knobs(**knobs), name=name, revisions=REVISIONS)


@pytest.mark.parametrize("name", REFUSED)
def test_no_engine_exports_them_at_v4_11(name):
    """Every engine: the witness of a successful export is never reached at v4.11 (the explicit
    engine's whole graph is the initial state), and each one reaches it at v5.12."""
    pol = CATALOG[name]
    props = [get_property(EXPORTED)]
    engines = [(ExplicitEngine(keep_edges=False), Budget(states=10_000)),
               (Z3Engine(induction=False), Budget(depth=2, timeout=20)),
               (HypothesisEngine(seed=1), Budget(examples=5, steps=5, rounds=1))]
    for eng, budget in engines:
        for rev, reached in (("v4.11", False), ("v5.12", True)):
            (v,) = eng.check(Model(pol, "tiny", rev), props, budget).verdicts
            assert (v.verdict == "holds") is reached, (eng.name, rev, v.verdict)
            assert not any(st.action == "dma_buf_export" and st.ret >= 0
                           for st in (v.trace.steps if v.trace is not None and not reached else ()))
    space = ExplicitEngine(keep_edges=False).check(Model(pol, "tiny", "v4.11"), props, Budget(states=10_000))
    assert space.summary["states"] == 1


@pytest.mark.parametrize("name", REFUSED)
def test_the_refused_export_returns_einval_changes_nothing_and_says_why(name):
    ret, events, unchanged = _export(CATALOG[name], "v4.11")
    assert ret == -22 and unchanged and events
    words = [EVENT_WORDS[e] for e in events]
    assert all(w.startswith("dma_buf_export() refused: ops without k") and "(WARN_ON, corpus §3.5)" in w
               for w in words)
    assert _export(CATALOG[name], "v5.12") == (0, [], False)


def test_i915_kmap_stubs_are_exportable_and_stay_quiet():
    """i915's kmap and kmap_atomic exist (they return NULL): v4.11 exports it, no drift."""
    pol = CATALOG["i915"]
    assert pol.exportable_revisions == REVISIONS and pol.revisions == REVISIONS
    assert _export(pol, "v4.11") == (0, [], False)
    (v,) = ExplicitEngine(keep_edges=False).check(Model(pol, "tiny", "v4.11"), [get_property(DRIFT)],
                                                  Budget(states=10**6)).verdicts
    assert v.verdict == "holds" and v.evidence["complete"]


@pytest.mark.parametrize("knob,member", [("has_kmap_atomic", "kmap_atomic"), ("has_mmap", "mmap")])
def test_a_near_variant_is_refused_at_v4_11_and_accepted_at_v5_12(knob, member):
    pol = _variant(f"reference-without-{member}", **{knob: False})
    assert _export(pol, "v4.11") == (-22, [f"export_without_{member}"], True)
    assert _export(pol, "v5.12") == (0, [], False)
    assert pol.exportable_revisions == ("v5.12", "v6.12")
    assert export_refusal(pol, "v4.11") == f"dma_buf_export() refuses ops without {member}, corpus §3.5"
    # the refused export is the drift: one step, the whole graph one state
    res = ExplicitEngine(keep_edges=False).check(Model(pol, "tiny", "v4.11"),
                                                 [get_property(DRIFT), get_property(EXPORTED)], Budget(states=100))
    got = {v.property: v for v in res.verdicts}
    assert got[DRIFT].verdict == "violated"
    assert [(s.action, s.ret) for s in got[DRIFT].trace.steps] == [("dma_buf_export", -22)]
    assert got[EXPORTED].verdict != "holds"


def test_the_action_and_the_catalog_read_one_rule():
    """For every combination of the three knobs at both revisions, the export action refuses
    exactly what ``export_missing`` (the catalog's revisions) says it refuses."""
    for values in itertools.product((True, False), repeat=3):
        pol = _variant("v", **dict(zip(("has_kmap", "has_kmap_atomic", "has_mmap"), values)))
        for rev in REVISIONS:
            ret, _, _ = _export(pol, rev)
            assert (ret == 0) is pol.exportable_at(rev), (values, rev)
    for p in CATALOG.values():
        assert p.revisions == p.exportable_revisions, p.name
    assert {p.name for p in CATALOG.values() if not p.exportable_at("v4.11")} == set(REFUSED)


def test_the_campaign_lists_them_and_checks_nothing_of_them():
    r = run_campaign([CATALOG[n] for n in REFUSED], SCOPES["tiny"], "v4.11", engine="explicit")
    assert r.verdicts == [] and r.mismatches == [] and r.exporters == []
    text = format_table(r)
    assert ("udmabuf: not exportable at v4.11 (dma_buf_export() refuses ops without kmap_atomic, corpus §3.5)"
            in text)
    assert "vgem: not exportable at v4.11 (dma_buf_export() refuses ops without kmap and kmap_atomic" in text
    assert [n["exporter"] for n in r.to_json()["not_exportable"]] == list(REFUSED)


def test_a_user_policy_that_cannot_be_exported_is_not_passed(tmp_path, capsys):
    f = tmp_path / "mine.toml"
    f.write_text('name = "mine"\nbased_on = "udmabuf"\n')
    out = tmp_path / "r.json"
    assert main(["campaign", "--exporter", str(f), "--engine", "explicit", "--scope", "tiny", "--jobs", "1",
                 "--json", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    line = [x for x in err if "not exportable" in x]
    assert len(line) == 1 and line[0].startswith("mine: not exportable at v4.11") and "--revision v5.12" in line[0]
    report = json.loads(out.read_text())
    assert report["results"] == [] and report["not_exportable"][0]["as_expected"] is False
    assert any("mine: not exportable at v4.11" in m for m in report["mismatches"])
    # a policy whose revisions leave v4.11 out, as the catalog's do, is listed and passes
    f.write_text('name = "mine"\nbased_on = "udmabuf"\nrevisions = ["v5.12"]\n')
    assert main(["campaign", "--exporter", str(f), "--engine", "explicit", "--scope", "tiny", "--jobs", "1"]) == 0
    assert "mine: not exportable at v4.11" in capsys.readouterr().out


def test_explore_lists_them_and_conform_refuses_v4_11(capsys):
    assert main(["explore", "--exporter", "vgem"]) == 0
    out = capsys.readouterr().out
    assert "vgem: not exportable at v4.11 (dma_buf_export() refuses ops without kmap and kmap_atomic" in out
    assert "0 verdicts" in out
    # conform drives udmabuf, the system heap and vgem on 6.x kernels: v4.11 exports none of them
    assert main(["conform", "--revision", "v4.11", "--exporter", "udmabuf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("conform: --revision v4.11: not exportable there") and "kmap_atomic" in err[-1]
