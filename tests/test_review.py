"""The spec-review report: it covers every claim, its HTML is valid HTML5 with no external
reference, every finding's evidence resolves to a trace that replays, and the same seed gives the
same findings. Kept fast: the tiny scope, a few exporters, a small Hypothesis budget."""
import json
import re

import html5lib
import pytest

from model.catalog import CATALOG
from model.scope import SCOPES
from properties.claims import NOT_MODELLED, load_claims
from properties.cli import main
from properties.itf import read_itf
from properties.replay_cmd import replay_itf
from properties.review import ReviewConfig, TraceRef, collect, findings
from properties.review_render import anchor, build, to_html, to_markdown, write_review

EXPORTERS = ("omapdrm", "i915", "broken-kmap-unpinned", "reference")


def config(names=EXPORTERS, engines=("hypothesis", "arith"), seed=1):
    return ReviewConfig(scope=SCOPES["tiny"], seed=seed, examples=12, steps=12, depth=2, timeout=20,
                        engines=engines, exporters=tuple(CATALOG[n] for n in names), jobs=1)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    data = collect(config())
    out = tmp_path_factory.mktemp("review")
    paths = write_review(data, out)
    return data, out, paths


def test_both_files_written_and_every_claim_covered(written):
    data, out, paths = written
    md = paths["markdown"].read_text(encoding="utf-8")
    page = paths["html"].read_text(encoding="utf-8")
    for cid, claim in load_claims().items():
        a = anchor("claim", cid)
        assert f'id="{a}"' in page and f'<a id="{a}"></a>' in md, cid
        section = md.split(f'<a id="{a}"></a>', 1)[1].split("\n#", 1)[0]
        assert claim.text.split('"')[0][:30] in section
        assert "Verdict: v4.11:" in section and "v5.12:" in section
        if cid in NOT_MODELLED:
            assert "Not modelled as a property" in section
        else:
            assert "Formalised by:" in section, cid
    # the revision comparison has a row per claim
    comparison = md.split('<a id="revisions"></a>', 1)[1].split('<a id="switches"></a>', 1)[0]
    assert all(f"(#{anchor('claim', c)})" in comparison for c in load_claims())


def test_html_is_valid_html5_and_self_contained(written):
    _, _, paths = written
    page = paths["html"].read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)  # raises on any error
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert {h[1:] for h in hrefs} <= ids          # every link lands inside the file
    assert len(ids) == len(re.findall(r'\sid="', page))   # anchors are unique


def test_findings_lead_to_traces_that_replay(written):
    data, out, paths = written
    fs = findings(data)
    assert [f.id for f in fs] == ["F1", "F2", "F3", "F4", "F5"]
    doc = build(data, fs)
    refs = [r for f in fs for e in f.evidence for r in e.refs]
    assert refs
    for r in refs:
        assert r.key() in doc.traces
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    # the FIXME finding rests on omapdrm pinning for userspace at v4.11
    fixme = TraceRef("v4.11", "hypothesis", "omapdrm", "P-NO-USER-PIN")
    assert fixme in [r for e in fs[0].evidence for r in e.refs]
    itf = next(t["itf"] for t in report["traces"].values() if fixme.key() in t["users"])
    outcome = replay_itf(read_itf(out / itf))
    assert outcome.prop == "P-NO-USER-PIN" and outcome.prop_fires_at is not None and outcome.ok
    # drift: the bit-precise engine ran and answered the vm_pgoff question
    drift = next(f for f in fs if f.id == "F3")
    assert any("internal-failure-leaves-pgoff" in json.dumps(e.to_json()) or "vm_pgoff" in e.text
               for e in drift.evidence)
    assert report["engines"]["arith"] == "ran" and report["engines"]["z3"] == "not requested"


def test_revision_comparison_in_the_data(written):
    data, _, paths = written
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    claims = report["claims"]
    assert claims["FIXME-NO-USER-PIN"]["v4.11"]["state"] == "violated"
    assert "omapdrm" in claims["FIXME-NO-USER-PIN"]["v4.11"]["violators"]
    assert claims["FIXME-NO-USER-PIN"]["v5.12"]["state"] == "absent"
    assert claims["M-PIN-NOT-USER"]["v4.11"]["state"] == "absent"
    assert claims["M-PIN-NOT-USER"]["v5.12"]["violators"] == ["omapdrm"]
    assert claims["KCPU-RANGE-UB"]["v4.11"]["state"] == "not-modelled"


def test_same_seed_same_findings(tmp_path):
    small = ("omapdrm", "broken-kmap-unpinned")
    runs = []
    for i in range(2):
        data = collect(config(small, engines=("hypothesis", "arith"), seed=7))
        write_review(data, tmp_path / str(i))
        runs.append(json.loads((tmp_path / str(i) / "findings.json").read_text(encoding="utf-8")))
    assert runs[0]["findings"] == runs[1]["findings"]
    assert runs[0]["claims"] == runs[1]["claims"]
    assert runs[0]["traces"] == runs[1]["traces"]


def test_an_engine_not_present_is_reported(monkeypatch, tmp_path):
    from properties import review

    monkeypatch.setitem(review._MODULES, "z3", "properties.engines.no_such_engine")
    data = collect(config(("reference",), engines=("hypothesis", "z3")))
    assert data.engine_status["z3"].startswith("not available")
    md = to_markdown(build(data))
    assert "z3 not available" in md
    assert "html" in to_html(build(data))


def test_cli_review(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["review", "--out", str(out), "--scope", "tiny", "--examples", "5", "--steps", "8",
               "--engine", "hypothesis", "--exporter", "omapdrm", "--jobs", "1", "--seed", "3"])
    assert rc in (0, 1)
    assert (out / "review.md").is_file() and (out / "review.html").is_file()
    printed = capsys.readouterr().out
    assert "F1. The FIXME" in printed
    (tmp_path / "file").write_text("x")
    assert main(["review", "--out", str(tmp_path / "file"), "--scope", "tiny"]) == 2
    assert main(["review", "--scope", "huge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("--scope: unknown scope 'huge'") and len(err) == 2


def test_explicit_engine_under_a_state_budget():
    data = collect(ReviewConfig(scope=SCOPES["tiny"], seed=1, states=3000, engines=("explicit",),
                                exporters=(CATALOG["omapdrm"],)))
    assert [(r.engine, r.status) for r in data.runs] == [("explicit", "ran"), ("explicit", "ran")]
    v = data.verdict("v4.11", "explicit", "omapdrm", "P-NO-USER-PIN")
    assert v is not None and v.verdict == "violated" and len(v.trace) == 3   # shortest, by BFS
    cut_short = [x for x in data.runs[0].verdicts if x.verdict == "unknown"]
    assert cut_short  # a search cut short by its budget says unknown, never holds
    md = to_markdown(build(data))
    assert "cut short by the state budget" in md


def test_a_bounded_miss_is_beyond_the_bound_only_below_another_engines_trace():
    """Z3's `holds` to depth k is not a mismatch when another engine's shortest trace is longer
    than k; it is when that trace is within k (Z3 should have found it), or when Z3 proved it."""
    from properties.catalog import get_property
    from properties.review import _beyond_bound
    from properties.verdict import make_verdict

    p = get_property("P-BEGIN-COHERENT")
    bounded = make_verdict(p, "broken-begin-ignores-direction", "z3", "holds", "violated",
                           {"depth": 6, "method": "bmc"}, None)
    assert "depth 6" in _beyond_bound(bounded, [9, 11]) and "9 steps" in _beyond_bound(bounded, [9, 11])
    assert _beyond_bound(bounded, [6]) == ""          # within the bound: a real disagreement
    assert _beyond_bound(bounded, [None]) == ""       # nobody found it: a mismatch as before
    proved = make_verdict(p, "broken-begin-ignores-direction", "z3", "proved", "violated",
                          {"depth": 6, "method": "1-induction"}, None)
    assert _beyond_bound(proved, [9]) == ""
