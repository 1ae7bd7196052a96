"""properties/report/sources.py: a quoted kernel sentence -> file and line at a revision, derived
from the project's data (the corpus copy and the seed diff's hunk headers); a quote not there
verbatim, or there twice, is refused; text the data gives no line for gets none."""
import pytest

from properties.claims import load_claims
from properties.report.sources import (COMMITS, SEED_DIFF_FILE, SourceError, blocks, claim_sources, locate,
                                       reconstruction, seed_header_base, source_url, starts_at)


def test_the_seed_diff_places_the_corpus_copy_in_the_file():
    assert seed_header_base() == 40            # "/**" of struct dma_buf_ops: the hunk "@@ -39,10 +39,6 @@"
    lines = reconstruction("include/linux/dma-buf.h", "v4.11")
    assert lines[40] == "/**" and "@begin_cpu_access:" in lines[160]
    # the new-side line the third hunk starts at (+156) is the " */" before release, as in the diff
    assert lines[156].strip() == "*/" and lines[157].strip() == "void (*release)(struct dma_buf *);"


def test_every_claim_quote_has_its_place_and_the_line_holds_it():
    numbered = 0
    for c in load_claims().values():
        for s in claim_sources(c):
            assert s.quote in " ".join(c.kernel.split())
            if s.line is None:
                assert (s.file == "drivers/dma-buf/dma-buf.c" or s.revision == "v6.12") and "no" in s.note
                continue
            numbered += 1
            assert starts_at(s.file, s.revision, s.line, s.quote), (c.id, s.label())
            assert not starts_at(s.file, s.revision, s.line + 1, s.quote)
    assert numbered >= 20
    s = locate("Can also return -ERESTARTSYS or -EINTR when the call has been interrupted and needs to be restarted.",
               "v4.11")
    assert (s.file, s.line, s.commit) == ("include/linux/dma-buf.h", 185, "0959a1683d78")   # "... Can also" ends line 185
    assert s.label() == "include/linux/dma-buf.h:185 @ 0959a1683d78"
    assert s.url() == ("https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/linux/"
                       "dma-buf.h?id=0959a1683d78#n185")
    later = locate("undo anything else done in @begin_cpu_access.", "v5.12")
    assert (later.line, later.commit) == (214, COMMITS["v5.12"])     # "+211,7": 4th line of the new side
    c = locate("Note that these calls need to always succeed.", "v4.11")
    assert c.file == "drivers/dma-buf/dma-buf.c" and c.line is None and c.section == "DOC: cpu access"


def test_a_sentence_not_there_or_there_twice_is_refused():
    with pytest.raises(SourceError, match="not found verbatim"):
        locate("A failed begin must leave nothing half-done.", "v4.11")
    with pytest.raises(SourceError, match="not found verbatim"):
        locate("needs to be restarted", "v4.11", member="mmap")               # there, but not in @mmap
    with pytest.raises(SourceError, match="ambiguous: 5 places"):
        locate("This callback is optional.", "v4.11")
    assert locate("This callback is optional.", "v4.11", member="mmap").line == 243
    with pytest.raises(SourceError, match="no kernel text"):
        blocks("v6.12")
    bad = load_claims()["BEGIN-ERRORS"]
    import dataclasses
    with pytest.raises(SourceError, match="BEGIN-ERRORS"):
        claim_sources(dataclasses.replace(bad, text='"the call must be restarted"'))


def test_a_diff_that_does_not_fit_the_copy_gives_no_line(tmp_path):
    moved = tmp_path / "seed.txt"
    moved.write_text(SEED_DIFF_FILE.read_text().replace("@@ -164,13 +156,96 @@", "@@ -164,13 +157,96 @@"))
    with pytest.raises(SourceError, match="0 offsets"):
        seed_header_base(diff=moved)
    assert source_url("f.c", "abc") .endswith("tree/f.c?id=abc")
