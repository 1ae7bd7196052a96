"""The review says who is at fault, by the rules of properties/attribution.py: the interrupted
fence wait after the hook pinned is the core's defect (omapdrm breaks nothing there that it could
keep; a policy whose own hook leaks is the exporter's); KCPU-REMAP is not broken because
P-KMAP-SUCCEEDS cites it; BEGIN-AVAILABLE is permissive; the undefined-behaviour finding does not
claim what is not modelled; the bit-precise floor result is a finding; a declared break only two
buffers can show is checked there or reported, never passed. Kept fast: the explicit engine on
tiny within a small state budget."""
import dataclasses
import json
import re
import subprocess

import pytest

from model.catalog import CATALOG
from model.policy import REVISIONS
from model.scope import SCOPES
from properties.attribution import classify, counts_against, rule
from properties.report.review import (ReviewConfig, ReviewData, WIDE_ENGINE, _wide_checks, claim_status, collect,
                                      findings, unchecked_breaks)
from properties.cli.app import main as cli_main
from properties.report.doc_patch import corpus_files
from properties.report.review_render import build, to_html, to_markdown, write_review

NAMES = ("omapdrm", "vgem", "broken-pin-leak-on-interrupt")
# vgem with kmap stubs that return NULL (as i915's): exportable at v4.11, where vgem itself is
# not (dma_buf_export() refuses ops without kmap and kmap_atomic, corpus §3.5)
VGEM_STUBS = dataclasses.replace(CATALOG["vgem"].with_knobs(has_kmap=True, has_kmap_atomic=True, kmap_returns_null=True),
                                 name="vgem-kmap-stubs", revisions=REVISIONS)


@pytest.fixture(scope="module")
def data():
    return collect(ReviewConfig(revisions=("v4.11", "v5.12"), scope=SCOPES["tiny"], seed=1, states=20000, timeout=20, engines=("explicit", "arith"),
                                exporters=(*(CATALOG[n] for n in NAMES), VGEM_STUBS), jobs=1))


def test_the_rules():
    assert classify("P-BEGIN-ERRORS", CATALOG["omapdrm"])[0] == "core"
    assert classify("P-BEGIN-ERRORS", CATALOG["broken-pin-leak-on-interrupt"])[0] == "exporter"
    assert counts_against("P-KMAP-SUCCEEDS") == ("KCPU-ALWAYS-SUCCEED",)
    assert counts_against("P-MAPPING-IN-BOUNDS") == ("MMAP-SIZE-CHECK",)
    assert rule("P-BEGIN-AVAILABLE").cls == "none" and rule("I-BRACKET-AVAILABLE").cls == "none"
    assert rule("P-EXPORT-OPS-DRIFT").cls == "documentation"
    assert rule("P-USER-BRACKET").cls == "caller" and rule("P-ZAP-ALL").cls == "exporter"


def test_the_interrupted_fence_wait_is_a_core_defect(data):
    fs = {f.id: f for f in findings(data)}
    assert all(f.cls in ("documentation", "core", "exporter", "caller") and f.action for f in fs.values())
    core = fs["F6"]
    assert core.cls == "core" and "-ERESTARTSYS" in core.summary
    users = {(r.exporter, r.property) for e in core.evidence for r in e.refs}
    assert ("omapdrm", "P-BEGIN-ERRORS") in users
    assert not any(x == "broken-pin-leak-on-interrupt" for x, _ in users)   # its own hook leaks: not the core's
    omap = dict(fs["F4"].detail)["omapdrm"].text
    own = omap.split("also reached", 1)[0]
    assert "P-BEGIN-ERRORS" not in own and "core defect, not the driver's" in omap
    assert "BEGIN-ERRORS" not in fs["F4"].claims


def test_cited_for_context_or_permissive_is_not_broken(data):
    assert data.verdict("v4.11", "explicit", "vgem-kmap-stubs", "P-KMAP-SUCCEEDS").verdict == "violated"
    assert claim_status(data, "KCPU-REMAP", "v4.11").state != "violated"
    assert claim_status(data, "KCPU-ALWAYS-SUCCEED", "v4.11").state == "violated"
    assert data.verdict("v4.11", "explicit", "vgem-kmap-stubs", "P-BEGIN-AVAILABLE").verdict == "violated"
    assert claim_status(data, "BEGIN-AVAILABLE", "v4.11").state == "permissive"
    assert classify("P-BEGIN-AVAILABLE", VGEM_STUBS)[0] == "none"
    assert "BEGIN-AVAILABLE" not in next(f for f in findings(data) if f.id == "F4").claims


def test_what_v4_11_cannot_export_is_listed_never_checked(data):
    """vgem has no kmap callbacks: the v4.11 dma_buf_export() refuses it. The review runs it at
    v5.12 only, says why in F4, F3 (its refused export, one step) and the summary, and states
    nothing it does at v4.11."""
    assert [p.name for p in data.exporters("v4.11")] == ["omapdrm", "broken-pin-leak-on-interrupt", "vgem-kmap-stubs"]
    assert all(v.exporter != "vgem" for r in data.runs if r.revision == "v4.11" for v in r.verdicts)
    assert any(v.exporter == "vgem" for r in data.runs if r.revision == "v5.12" for v in r.verdicts)
    why = "not exportable (dma_buf_export() refuses ops without kmap and kmap_atomic, corpus §3.5)"
    fs = {f.id: f for f in findings(data)}
    vgem = dict(fs["F4"].detail)["vgem"].text
    assert f"v4.11: {why}, so not checked at v4.11" in vgem and "| v5.12: " in vgem
    drift = " ".join(e.text for e in fs["F3"].evidence)
    assert ("`vgem`: `dma_buf_export(buf=0) = -EINVAL` (dma_buf_export() refused: ops without kmap (WARN_ON, "
            "corpus §3.5); dma_buf_export() refused: ops without kmap_atomic (WARN_ON, corpus §3.5))") in drift
    md = to_markdown(build(data))
    summary = md.split('<a id="summary"></a>', 1)[1].split("\n## ", 1)[0]
    assert ("vgem: not exportable at v4.11 (dma_buf_export() refuses ops without kmap and kmap_atomic, "
            "corpus §3.5); checked at v5.12 only") in summary
    assert "traces/v4.11/explicit/vgem__" not in md
    assert not any(": vgem: " in m or m.startswith("vgem: ") for m in data.mismatches())


def test_undefined_not_claimed_beyond_the_model_and_the_floor_is_reported(data):
    fs = {f.id: f for f in findings(data)}
    assert "Every outcome" not in fs["F2"].summary and "KCPU-RANGE-UB" in fs["F2"].summary
    assert "MMAP-OPTIONAL-DRIFT" not in fs["F2"].claims          # a tension: documentation (F3), not a caller's
    floor = fs["F7"]
    assert floor.cls == "documentation"
    assert any("partial last page" in c for e in floor.evidence for row in e.table for c in row)


def test_the_summary_comes_first_and_links_back(data):
    doc = build(data)
    md = to_markdown(doc)
    assert md.index('<a id="summary"></a>') < md.index('<a id="findings"></a>') < md.index('<a id="traces"></a>')
    summary = md.split('<a id="summary"></a>', 1)[1].split("\n## ", 1)[0]
    assert "| finding | class | severity | proposed action |" in summary and "core defect" in summary
    page = to_html(doc)
    assert not re.search(r"<a [^>]*>[^<]*`", page)              # no literal backticks in link labels
    assert "<details>" in page
    traces = page.split('id="traces"', 1)[1].split('id="reproducibility"', 1)[0]
    sections = traces.split("<h3 ")[1:]
    assert sections and all('href="#summary"' in s for s in sections)


def test_a_break_only_two_buffers_show_is_checked_or_reported():
    zap = CATALOG["broken-zap-anon-file"]
    todo = unchecked_breaks([zap, CATALOG["omapdrm"]], SCOPES["small"], "v5.12")
    assert [(p.name, c) for p, c, _ in todo] == [("broken-zap-anon-file", "MMAP-OWN-FILE")]
    assert unchecked_breaks([zap], SCOPES["default"], "v5.12") == []
    off = ReviewData(ReviewConfig(scope=SCOPES["small"], wide_states=0, exporters=(zap,)), "test")
    _wide_checks(off.config, off, "v5.12", [zap], lambda m: None)
    assert len(off.mismatches()) == 1 and "cannot" not in off.mismatches()[0]
    assert "MMAP-OWN-FILE" in off.mismatches()[0] and "needs 2 buffers" in off.mismatches()[0]
    on = ReviewData(ReviewConfig(scope=SCOPES["small"], wide_states=30_000, exporters=(zap,)), "test")
    _wide_checks(on.config, on, "v5.12", [zap], lambda m: None)
    assert on.mismatches() == []
    v = on.verdict("v5.12", WIDE_ENGINE, "broken-zap-anon-file", "P-ZAP-OWN-FILE")
    assert v.verdict == "violated" and v.evidence["trace_scope"] == "default"
    assert claim_status(on, "MMAP-OWN-FILE", "v5.12").state == "violated"


def test_review_patch_holds_a_hunk_per_documentation_finding_and_applies(data, tmp_path):
    """review.patch: a hunk for each documentation finding that has proposed wording, named after
    it; the findings say so; the patch applies to the corpus copy (tests/test_doc_patch.py)."""
    paths = write_review(data, tmp_path / "out")
    patch = paths["patch"].read_text()
    js = json.loads(paths["json"].read_text())
    by_id = {f["id"]: f for f in js["findings"]}
    assert by_id["F1"]["patch"] and by_id["F3"]["patch"] and by_id["F7"]["patch"]
    assert by_id["F6"]["patch"] == [] and by_id["F2"]["patch"] == []      # core defect, caller obligations
    for f in js["findings"]:
        for title in f["patch"]:
            assert f"@@ {title} (" in patch
    assert 'Proposed wording: `review.patch`, hunks "stale range sentence"' in paths["markdown"].read_text()
    tree = tmp_path / "tree"
    for path, text in corpus_files().items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    r = subprocess.run(["git", "apply", str(paths["patch"])], cwd=tree, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_each_finding_with_a_trace_has_a_minimal_litmus_that_passes(data, tmp_path):
    """A litmus file per finding that has traces: the shortest trace among its evidence whose
    property cites one of the finding's claims; `dmabuf-check litmus` passes on every one."""
    paths = write_review(data, tmp_path / "out")
    js = json.loads(paths["json"].read_text())
    files = {f["id"]: f["litmus"] for f in js["findings"] if f["litmus"]}
    assert {"F1", "F2", "F6"} <= set(files)          # the FIXME, undefined behaviour, the core defect
    for fid, rel in files.items():
        path = tmp_path / "out" / rel
        text = path.read_text()
        assert f'title = "{fid}. ' in text
        assert cli_main(["litmus", str(path)]) == 0, (fid, text)
    assert "Minimal litmus: `litmus/F6.litmus.toml`" in paths["markdown"].read_text()
