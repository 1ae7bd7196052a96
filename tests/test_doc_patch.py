"""review.patch: the proposed documentation fixes apply to the corpus copy of the v4.11 comments."""
import dataclasses
import re
import shutil
import subprocess

import pytest

from properties.claims import load_claims
from properties.report.doc_patch import DOC_EDITS, build_patch, corpus_files, edits_for


def _tree(tmp_path):
    for path, text in corpus_files().items():
        f = tmp_path / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_corpus_copies_are_the_v4_11_comments():
    files = corpus_files()
    assert files["drivers/dma-buf/dma-buf.c"].startswith("/**\n * DOC: cpu access\n")
    assert "struct dma_buf_ops {" in files["include/linux/dma-buf.h"]
    assert "FIXME: This is both called through the DMA_BUF_IOCTL_SYNC" in files["include/linux/dma-buf.h"]


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_the_patch_applies_cleanly_and_says_what_it_proposes(tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    root = _tree(tmp_path / "tree")
    (tmp_path / "review.patch").write_text(build_patch())
    cmd = (["git", "apply", "--verbose"] if tool == "git" else ["patch", "-p1", "--fuzz=0", "--no-backup-if-mismatch"])
    r = subprocess.run(cmd + [str(tmp_path / "review.patch")] if tool == "git"
                       else cmd + ["-i", str(tmp_path / "review.patch")],
                       cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "offset" not in r.stdout and "fuzz" not in r.stdout.lower(), r.stdout
    for e in DOC_EDITS:
        text = (root / e.file).read_text()
        assert e.new in text and e.old not in text, e.finding


def test_every_hunk_names_its_finding_and_known_claims():
    claims = load_claims()
    heads = re.findall(r"^@@ -\d+,\d+ \+\d+,\d+ @@ (.*)$", build_patch(), re.M)
    assert len(heads) == len(DOC_EDITS)
    for head, e in zip(sorted(heads), sorted(f"{e.finding} ({', '.join(e.claims)})" for e in DOC_EDITS)):
        assert head == e
    assert all(c in claims for e in DOC_EDITS for c in e.claims)
    assert edits_for(["MMAP-OPTIONAL-DRIFT"]) == tuple(e for e in DOC_EDITS if "MMAP-OPTIONAL-DRIFT" in e.claims)
    assert edits_for(["DEV-SEQUENCE"]) == ()


def test_an_edit_whose_text_is_not_unique_or_absent_is_refused():
    optional = dataclasses.replace(DOC_EDITS[-1], old="\t * This callback is optional.\n")
    with pytest.raises(ValueError, match="occurs 5 times"):
        build_patch([optional])
    gone = dataclasses.replace(DOC_EDITS[0], old=" * no such sentence\n")
    with pytest.raises(ValueError, match="occurs 0 times"):
        build_patch([gone])
