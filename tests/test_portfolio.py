"""The portfolio (properties.engines.portfolio): tiny searched exhaustively, then Z3 and Hypothesis
on the campaign's scope; verdicts only strengthened, each stating what it covers."""
import json

import pytest

from model.catalog import CATALOG
from model.machine import Model
from model.policy import ExporterPolicy
from properties.index import PROPERTIES, get_property
from properties.cli import main
from properties.engines.interface import Budget
from properties.engines.portfolio import DEFAULT_BUDGET, PortfolioEngine
from properties.monitor import Monitor
from properties.trace import replay

FAST = Budget(states=DEFAULT_BUDGET.states, depth=4, timeout=20, examples=30, steps=15, rounds=1)


def _run(policy, budget=FAST, scope="small", revision="v4.11"):
    res = PortfolioEngine(z3_seconds=30).check(Model(policy, scope, revision), PROPERTIES, budget)
    return {v.property: v for v in res.verdicts}, res


def test_the_issue_s_policy_is_caught_with_its_shortest_trace(tmp_path):
    """The policy a new user wrote (one knob changed from the defaults), which the Hypothesis
    campaign passed with exit 0: the portfolio's exhaustive tiny search shows the violation, with
    a shortest trace, replayed on the campaign's scope."""
    f = tmp_path / "a.toml"
    f.write_text('name = "a"\n[knobs]\nend_flush = false\n')
    out = tmp_path / "a.json"
    rc = main(["campaign", "--exporter", str(f), "--examples", "30", "--depth", "4", "--database", "none",
               "--jobs", "1", "--json", str(out)])
    assert rc == 1
    report = json.loads(out.read_text())
    assert report["engine"] == "portfolio"
    v = next(r for r in report["results"] if r["property"] == "P-DEVICE-HANDOFF")
    assert v["verdict"] == "violated" and v["evidence"]["found_by"] == "explicit"
    assert v["evidence"]["trace_length"] == len(v["trace"]) == 8 and "trace_scope" not in v["evidence"]
    assert "a: P-DEVICE-HANDOFF is violated, expected holds" in report["mismatches"]


def test_every_verdict_states_its_guarantee():
    got, res = _run(CATALOG["i915"])
    kinds = {c["guarantee"] for c in res.summary["covers"]}
    assert kinds == {"exhaustive", "bounded", "sampled"}
    for v in got.values():
        assert v.evidence["guarantee"] in ("exhaustive", "bounded", "sampled"), v
        if v.verdict == "holds" and v.kind in ("always", "step"):
            # a property that fits tiny holds because every state of tiny was checked
            assert v.evidence["guarantee"] == "exhaustive" and v.evidence["scope"] == "tiny"
            assert v.evidence["states"] == 279_253
        if v.verdict == "proved":
            assert v.evidence["scope"] == "small"
    assert got["P-KMAP-SUCCEEDS"].verdict == "violated"      # i915's declared break


def test_a_cut_exhaustive_search_is_unknown_never_holds():
    got, res = _run(CATALOG["i915"], Budget(states=20_000, depth=2, timeout=20, examples=10, steps=10, rounds=1))
    cut = res.summary["covers"][0]
    assert cut["guarantee"] == "exhaustive" and not cut["complete"] and "state budget" in cut["stopped"]
    open_ = [v for v in got.values() if v.kind in ("always", "step") and v.verdict not in ("violated", "proved")]
    assert open_ and all(v.verdict == "unknown" for v in open_)
    assert all("was cut" in v.note for v in open_)


def test_violations_found_on_tiny_are_replayed_on_the_campaign_scope():
    got, _ = _run(CATALOG["omapdrm"])
    model = Model(CATALOG["omapdrm"], "small")
    mon = Monitor(model, PROPERTIES)
    fired = [v for v in got.values() if v.verdict == "violated" and v.evidence["found_by"] == "explicit"]
    assert len(fired) > 5
    for v in fired:
        if "trace_scope" not in v.evidence:
            assert mon.fires(replay(model, v.trace.calls()), v.property), v.property


def test_the_campaign_scope_itself_searched_exhaustively_decides_everything():
    """On tiny the exhaustive search is the whole story: nothing is left to Z3 or Hypothesis, and
    a witness no state reaches is violated (unreachable), as with the explicit engine alone."""
    got, res = _run(CATALOG["vgem"], scope="tiny", revision="v5.12")   # (v4.11 cannot export vgem)
    assert [c["engine"] for c in res.summary["covers"]] == ["explicit"]
    assert got["W-DMA-BUF-EXPORT"].verdict == "holds" and got["W-DMA-BUF-EXPORT"].evidence["states"] > 1000
    w = [v for v in got.values() if v.kind == "witness" and v.verdict != "holds"]
    assert all(v.verdict == "violated" and "unreachable" in v.note for v in w)
    assert all(v.verdict in ("holds", "violated") for v in got.values())


def test_a_witness_unreachable_on_tiny_and_unreached_on_small_is_unknown():
    # begin_cpu_access always fails with -ENOMEM: no begin can succeed, on any scope
    got, _ = _run(CATALOG["i915"].with_knobs(begin_enomem=True))
    v = got["W-DMA-BUF-BEGIN-CPU-ACCESS"]
    assert v.verdict == "unknown" and "unreachable in tiny" in v.note
