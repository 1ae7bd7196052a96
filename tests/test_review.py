"""The spec-review report: it covers every claim, its HTML is valid HTML5 with no external
reference, every finding's evidence resolves to a trace that replays, and the same seed gives the
same findings; the portfolio, its default engine, states what each verdict covers and which stage
found each trace, and finds the 8-step break that Hypothesis and Z3 at depth 6 miss. Kept fast: the
tiny scope or two policies on small (i915, and vgem, which the v4.11 dma_buf_export() refuses),
a few exporters, small budgets."""
import json
import re

import html5lib
import pytest

from model.catalog import CATALOG
from model.scope import SCOPES
from properties.claims import NOT_MODELLED, load_claims
from properties.cli import main
from properties.scenarios.itf import read_itf
from properties.scenarios.replay import replay_itf
from properties.engines.interface import GUARANTEES
from properties.report.review import DEFAULT_ENGINES, ReviewConfig, TraceRef, collect, findings
from properties.report.review_render import anchor, build, to_html, to_markdown, write_review

KERNEL_TREE = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/"
EXPORTERS = ("omapdrm", "i915", "broken-kmap-unpinned", "reference")


# the report covers every revision; these tests run the two whose findings they check (the
# v6.12 column: tests/test_v612.py)
TWO = ("v4.11", "v5.12")


def config(names=EXPORTERS, engines=("hypothesis", "arith"), seed=1):
    return ReviewConfig(revisions=TWO, scope=SCOPES["tiny"], seed=seed, examples=12, steps=12, depth=2, timeout=20,
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
    # nothing is loaded from or linked outside the file; the kernel source lines' addresses are text
    # (<code>), never an attribute
    assert "src=" not in page and not re.search(r'=\s*"(?:https?:)?//', page)
    text_urls = re.findall(r"https?://[^\s<\"]*", page)
    assert text_urls and all(u.startswith(KERNEL_TREE) for u in text_urls)
    assert all(f"<code>{u}</code>" in page for u in text_urls)
    assert "<script" not in page and "<link" not in page and "<img" not in page
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert {h[1:] for h in hrefs} <= ids          # every link lands inside the file
    assert len(ids) == len(re.findall(r'\sid="', page))   # anchors are unique


def test_findings_lead_to_traces_that_replay(written):
    data, out, paths = written
    fs = findings(data)
    assert [f.id for f in fs] == ["F1", "F2", "F3", "F4", "F5", "F6", "F7"]
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
    from properties.report import review

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
    data = collect(ReviewConfig(revisions=TWO, scope=SCOPES["tiny"], seed=1, states=3000, engines=("explicit",),
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
    from properties.index import get_property
    from properties.report.review import _beyond_bound
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


# --- the portfolio, the review's default engine ---------------------------------------------------

@pytest.fixture(scope="module")
def portfolio_small(tmp_path_factory):
    """The portfolio on the review's default scope (small) for i915 and vgem, with a small Z3 depth
    and Hypothesis budget: tiny searched exhaustively, Z3 and Hypothesis on small. vgem has no kmap
    callbacks: the v4.11 dma_buf_export() refuses it, so it runs at v5.12 only."""
    cfg = ReviewConfig(revisions=TWO, scope=SCOPES["small"], seed=1, steps=10, timeout=20, portfolio_depth=3, portfolio_examples=5,
                       engines=("portfolio",), exporters=(CATALOG["i915"], CATALOG["vgem"]), jobs=1)
    data = collect(cfg)
    out = tmp_path_factory.mktemp("portfolio")
    return data, out, write_review(data, out)


def test_the_portfolio_is_the_default_engine_and_its_verdicts_say_what_they_cover(portfolio_small):
    from properties.report.review import _main_engine

    assert DEFAULT_ENGINES == ("portfolio", "synthesis", "arith") and ReviewConfig().engines == DEFAULT_ENGINES
    data, out, paths = portfolio_small
    assert [(r.revision, r.engine, r.status) for r in data.runs] == [("v4.11", "portfolio", "ran"),
                                                                      ("v5.12", "portfolio", "ran")]
    assert data.mismatches() == [] and _main_engine(data, "v4.11") == "portfolio"
    for r in data.runs:
        for v in r.verdicts:
            assert v.verdict == "unknown" or v.evidence["guarantee"] in GUARANTEES, (v.property, v.evidence)
            assert {c["engine"] for c in v.evidence["covers"]} <= {"explicit", "z3", "hypothesis"}
    # i915's kmap stubs return NULL: found by the exhaustive search of tiny, the trace replayed on small
    v = data.verdict("v4.11", "portfolio", "i915", "P-KMAP-SUCCEEDS")
    assert v.verdict == "violated" and len(v.trace) == 3 and "trace_scope" not in v.evidence
    assert (v.evidence["found_by"], v.evidence["guarantee"], v.evidence["scope"]) == ("explicit", "exhaustive", "tiny")
    # vgem: nothing at v4.11, whose dma_buf_export() refuses it; checked at v5.12
    assert data.verdict("v4.11", "portfolio", "vgem", "P-RELEASE-ONCE") is None
    assert data.verdict("v5.12", "portfolio", "vgem", "P-RELEASE-ONCE") is not None
    proved = data.verdict("v4.11", "portfolio", "i915", "P-RELEASE-ONCE")
    assert proved.verdict == "proved" and proved.evidence["scope"] == "small"
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "violated (3 steps; explicit: exhaustive, tiny)" in md
    assert f"proved ({proved.evidence['method']}, small)" in md
    assert re.search(r"exhaustive on tiny \(explicit: [\d,]+ states", md) and "bounded on small (z3: depth 3;" in md
    assert ("vgem: not exportable at v4.11 (dma_buf_export() refuses ops without kmap and kmap_atomic, corpus §3.5); "
            "checked at v5.12 only") in md
    # F4 names, for each violation of a real-driver policy, the stage that found it
    f4 = next(f for f in findings(data) if f.id == "F4")
    text = " ".join(e.text for _, e in f4.detail)
    assert "P-KMAP-SUCCEEDS" in text and "3 steps; explicit: exhaustive, tiny" in text
    # the ITF file of that trace runs on small, where it fires
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    key = TraceRef("v4.11", "portfolio", "i915", "P-KMAP-SUCCEEDS").key()
    itf = next(t["itf"] for t in report["traces"].values() if key in t["users"])
    assert itf == "traces/v4.11/portfolio/i915__P-KMAP-SUCCEEDS.itf.json"
    assert "traces/v4.11/portfolio/vgem__" not in md
    outcome = replay_itf(read_itf(out / itf))
    assert outcome.ok and outcome.prop_fires_at is not None
    assert report["budget"]["portfolio"]["z3"]["depth"] == 3
    assert "dmabuf-check campaign --engine portfolio --revision v5.12 --scope small" in md


def test_the_portfolio_finds_the_eight_step_break_hypothesis_and_z3_miss():
    """broken-end-no-flush breaks DEV-COHERENT-HANDOFF with an 8-step trace: the portfolio's
    exhaustive stage finds it at both revisions; Z3 to depth 6 cannot (beyond its bound: reported,
    not counted), and a small Hypothesis budget does not (counted: the old engine set exits 1)."""
    data = collect(ReviewConfig(revisions=TWO, scope=SCOPES["tiny"], seed=1, examples=10, steps=10, depth=6, timeout=20,
                                engines=("portfolio", "hypothesis", "z3"),
                                exporters=(CATALOG["broken-end-no-flush"],), jobs=1))
    for rev in ("v4.11", "v5.12"):
        v = data.verdict(rev, "portfolio", "broken-end-no-flush", "P-DEVICE-HANDOFF")
        assert v.verdict == "violated" and len(v.trace) == 8 and v.evidence["found_by"] == "explicit"
        assert data.verdict(rev, "z3", "broken-end-no-flush", "P-DEVICE-HANDOFF").verdict == "holds"
    # every outcome not as expected is the lone Hypothesis runs' (the portfolio's and Z3's are all
    # as expected or beyond the bound); among them, the missed break at v5.12
    assert all(m.split(":")[0] in ("v4.11 hypothesis", "v5.12 hypothesis") for m in data.mismatches())
    assert ("v5.12 hypothesis: broken-end-no-flush: declares DEV-COHERENT-HANDOFF broken, but no property citing "
            "it was violated") in data.mismatches()
    assert [m.split(":")[0] for m in data.beyond_bound()] == ["v4.11 z3", "v5.12 z3"]
    assert all("the shortest trace another engine found has 8 steps" in m for m in data.beyond_bound())
    md = to_markdown(build(data))
    assert "violated (8 steps; explicit: exhaustive, tiny)" in md
    assert "found by explicit: exhaustive, tiny" in md


def test_cli_review_portfolio_exit_status(tmp_path, capsys, monkeypatch):
    out = tmp_path / "rep"
    assert main(["review", "--out", str(out), "--scope", "tiny", "--engine", "portfolio", "--exporter", "vgem",
                 "--jobs", "1"]) == 0
    assert "portfolio" in json.loads((out / "findings.json").read_text(encoding="utf-8"))["budget"]
    # an engine that fails is an outcome not as expected: exit 1, never a pass
    from properties.report import review

    def fail(*a, **k):
        raise MemoryError("no room")

    monkeypatch.setattr(review, "run_campaign", fail)
    capsys.readouterr()
    assert main(["review", "--out", str(tmp_path / "failed"), "--scope", "tiny", "--engine", "portfolio",
                 "--exporter", "vgem", "--jobs", "1"]) == 1
    md = (tmp_path / "failed" / "review.md").read_text(encoding="utf-8")
    assert "the engine failed: MemoryError: no room" in md


def test_each_finding_links_its_kernel_sentences(written):
    """Every finding whose claims quote the kernel says where each sentence is: file and line at
    the revision (the line holds the sentence in the project's reconstruction), or why the
    project's data has no line; F6's text separates the kernel's words from the project's reading,
    and shows the restart that pins again."""
    from properties.report.sources import locate, starts_at

    data, _, paths = written
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    md = paths["markdown"].read_text(encoding="utf-8")
    claims = load_claims()
    with_lines = 0
    for f in report["findings"]:
        quoted = [q for c in f["claims"] for q in claims[c].quotes]
        assert len(f["sources"]) == len(quoted), f["id"]
        section = md.split(f'<a id="{anchor("finding", f["id"])}"></a>', 1)[1].split("\n### ", 1)[0]
        for s in f["sources"]:
            if s["line"] is None:
                assert s["no_line"] and f"`{s['file']} ({s['section']}) @ {s['commit']}`, no line number" in section
                continue
            with_lines += 1
            label = f"{s['file']}:{s['line']} @ {s['commit']}"
            assert f"[`{label}`]({s['url']})" in section and s["url"].endswith(f"?id={s['commit']}#n{s['line']}")
            assert starts_at(s["file"], s["revision"], s["line"], s["quote"])
    assert with_lines >= 10
    f6 = next(f for f in report["findings"] if f["id"] == "F6")
    assert {(s["file"], s["line"], s["commit"]) for s in f6["sources"]} == {
        ("include/linux/dma-buf.h", 184, "0959a1683d78")}
    assert "rests on the project's reading" in f6["summary"]
    assert ('"0 on success or a negative error code on failure. This can for example fail when the backing storage '
            "can't be allocated. Can also return -ERESTARTSYS or -EINTR when the call has been interrupted and needs "
            'to be restarted."') in f6["summary"]
    assert "Reading (the project's words): a failed begin must leave nothing half-done" in f6["summary"]
    restart = next(e for e in f6["evidence"] if e.get("code"))
    assert "2 pins for one bracket" in restart["text"]
    assert "pinned by begin_cpu_access -> pinned by begin_cpu_access (2 pins)" in restart["code"]
    # the claims section shows the reading apart from the quote
    assert "Reading: a failed begin must leave nothing half-done" in md
    assert locate("This callback is optional.", "v4.11", member="end_cpu_access").line == 200
