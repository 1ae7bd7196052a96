"""Output an exporter author reads: traces in kernel words (the raw fields kept in the JSON), the
claim/property bridge (``claims``, ``exporters``), a table whose sections say what its cells
mean, traces labelled by what is known of them, shortest traces in which callers keep their
obligations, and the knobs of a policy file that a finding needs."""
from __future__ import annotations

import re

import pytest

from model.events import EVENTS
from model.machine import Model
from model.policy import ExporterPolicy, load_policy_file
from model.catalog import CATALOG
from model.scope import SCOPES
from model.state import FIELDS, FIELD_WORDS, WORDS_OF
from properties.cli.app import main
from properties.engines.explicit import caller_faults, clean_traces
from properties.index import get_property
from properties.monitor import Monitor, fired_along
from properties.runs.campaign import CampaignResult, format_table, knob_lines, trace_label
from properties.trace import render, replay
from properties.verdict import make_verdict

# an end_flush = false exporter's handoff violation, as the search found it before callers had to
# keep their obligations: it starts with a kmap outside any bracket (the importer's fault)
HANDOFF = [("dma_buf_export", {"buf": 0}), ("dma_buf_kmap", {"buf": 0, "page": 0}),
           ("dma_buf_begin_cpu_access", {"buf": 0, "direction": 0}), ("dma_buf_attach", {"buf": 0}),
           ("dma_buf_map_attachment", {"att": 0, "direction": 0}), ("kernel_write", {"buf": 0, "page": 0}),
           ("dma_buf_end_cpu_access", {"buf": 0, "direction": 0}), ("device_read", {"att": 0, "page": 0})]
# the model's field codes as the old traces printed them: cache[0][0]: 0->2
RAW = re.compile(r"\b[a-z_]+\[\d+\](\[\d+\])?: \w+->\w+")


def _no_flush(scope: str = "small") -> Model:
    return Model(ExporterPolicy(name="a").with_knobs(end_flush=False), SCOPES[scope], "v4.11")


def test_every_field_is_said_by_exactly_one_subject():
    names = [f.name for f in FIELDS]
    said = [f for w in FIELD_WORDS for f in w.fields]
    assert sorted(said) == sorted(names)
    assert set(WORDS_OF) == set(names)


def test_a_trace_speaks_kernel_words():
    m = _no_flush()
    t = replay(m, HANDOFF + [("dma_buf_fd", {"buf": 0}), ("mmap", {"fd": 0, "pgoff": 0, "npages": 1}),
                             ("cpu_read", {"vma": 0, "page": 0}), ("device_write", {"att": 0, "page": 0}),
                             ("munmap", {"vma": 0})])
    text = render(m, t)
    assert not RAW.search(text), text
    for words in ("CPU cache line of page 0 of dma-buf 0: invalid -> dirty",
                  "kernel CPU-access bracket on dma-buf 0: closed -> open, DMA_BIDIRECTIONAL",
                  "memory of page 0 of dma-buf 0: lacks a CPU write made by the kernel inside an open write bracket "
                  "-> lacks a CPU write made inside a write bracket since ended",
                  "vm_area_struct 0: none -> maps page 0 of dma-buf 0 (vm_file: the dma-buf's file)",
                  "PTE of page 0 of vm_area_struct 0: not present -> present",
                  "CPU cache line of page 0 of dma-buf 0: dirty -> dirty and stale",
                  "PTE of page 0 of vm_area_struct 0: present -> zapped",
                  "event: the core called ops->begin_cpu_access"):
        assert words in text, words
    words_lines = [ln for ln in text.splitlines() if not re.match(r"\s*\d+\. ", ln)]
    assert not [e for e, _ in EVENTS for ln in words_lines if re.search(rf"\b{e}\b", ln)], text   # no event codes
    t = replay(m, [("dma_buf_export", {"buf": 0}), ("dma_buf_attach", {"buf": 0}),
                   ("dma_buf_map_attachment", {"att": 0, "direction": 0}), ("dma_buf_fd", {"buf": 0}),
                   ("mmap", {"fd": 0, "pgoff": 0, "npages": 1}), ("cpu_read", {"vma": 0, "page": 0}),
                   ("device_write", {"att": 0, "page": 0})])
    assert render(m, t).splitlines()[-1].strip() == "CPU cache line of page 0 of dma-buf 0: clean -> stale"


def test_pins_are_said_as_pinned_by_begin_cpu_access():
    m = Model(CATALOG["omapdrm"], SCOPES["tiny"], "v4.11")
    t = replay(m, [("dma_buf_export", {"buf": 0}), ("dma_buf_begin_cpu_access", {"buf": 0, "direction": 2})])
    assert "storage of dma-buf 0: not pinned -> pinned by begin_cpu_access" in render(m, t)


def test_the_json_trace_keeps_the_raw_fields_beside_the_words():
    m = _no_flush()
    step = replay(m, HANDOFF).to_json()[5]      # kernel_write
    assert step["action"] == "kernel_write"
    assert step["fields"]["cache[0][0]"] == [0, 2]
    assert step["fields"]["wclass[0][0]"] == [0, 4]
    assert "CPU cache line of page 0 of dma-buf 0: invalid -> dirty" in step["changes"]


def test_claims_lists_a_claim_with_its_properties_and_revisions(capsys):
    assert main(["claims", "P-DEVICE-HANDOFF"]) == 0     # a property ID gives its claims
    out = capsys.readouterr().out
    assert "DEV-COHERENT-HANDOFF (v4.11, v5.12, v6.12; exporter): P-BEGIN-COHERENT, P-DEVICE-HANDOFF" in out
    assert "Reading: data written by the device" in out      # the project's words, marked as such


def test_claims_refuses_an_unknown_id_in_one_line(capsys):
    assert main(["claims", "DEV-COHERENT"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DEV-COHERENT" in err and "did you mean" in err


def test_exporters_shows_the_properties_of_each_claim_broken(capsys):
    assert main(["exporters", "--exporter", "broken-end-no-flush", "--knobs"]) == 0
    out = capsys.readouterr().out
    assert "    DEV-COHERENT-HANDOFF: P-BEGIN-COHERENT, P-DEVICE-HANDOFF" in out
    # --knobs also lists the claims a breaks may name, with their properties
    assert "  END-FLUSH-UNPIN (v4.11; exporter): P-END-UNPINS" in out


def _result(verdicts, policy=None) -> CampaignResult:
    pol = policy or ExporterPolicy(name="a")
    return CampaignResult("campaign", "v4.11", SCOPES["small"], 1, "portfolio", {"examples": 1, "steps": 1},
                          [pol], verdicts)


def test_the_table_sections_say_what_their_cells_mean():
    w = make_verdict(get_property("W-DMA-BUF-EXPORT"), "a", "portfolio", "holds", "holds", {})
    r = make_verdict(get_property("P-DEVICE-HANDOFF"), "a", "portfolio", "violated", "holds", {})
    i = make_verdict(get_property("I-ATT-MAPPED-LIVE"), "a", "portfolio", "proved", "holds", {})
    lines = format_table(_result([w, r, i])).splitlines()
    head = {h: n for n, h in enumerate(lines) if not h.startswith((" ", "P-", "W-", "I-"))}
    witnesses = next(n for h, n in head.items() if h.startswith("Witnesses"))
    assert ". reached" in lines[witnesses] and "V unreachable" in lines[witnesses]
    assert lines[witnesses + 2].startswith("W-DMA-BUF-EXPORT") and lines[witnesses + 2].split()[1] == "."
    rules = next(n for h, n in head.items() if h.startswith("Rules"))
    assert lines[rules + 2].startswith("P-DEVICE-HANDOFF") and lines[rules + 2].split()[1] == "V!"
    assert any(h.startswith("Strengthening invariants (I-*)") for h in head)


def test_a_trace_is_called_shortest_only_where_a_search_showed_it():
    t = replay(_no_flush(), HANDOFF)
    p = get_property("P-DEVICE-HANDOFF")
    hyp = make_verdict(p, "a", "hypothesis", "violated", None, {"guarantee": "sampled"}, t)
    assert trace_label(hyp, "small") == "8 steps, found by Hypothesis and shrunk; not shown to be shortest"
    bfs = make_verdict(p, "a", "portfolio", "violated", None, {"found_by": "explicit", "scope": "tiny"}, t)
    assert "shortest on scope tiny" in trace_label(bfs, "small")
    z3 = make_verdict(p, "a", "portfolio", "violated", None, {"found_by": "z3"}, t)
    assert "shortest" not in trace_label(z3, "small").replace("not shown to be shortest", "")


def test_the_shortest_trace_kept_is_one_where_callers_keep_their_obligations():
    m = _no_flush("tiny")
    dirty = replay(m, HANDOFF)
    faults = Monitor(m, caller_faults(m))
    assert any(fired_along(faults, dirty)[:-1])          # the kmap outside a bracket
    v = make_verdict(get_property("P-DEVICE-HANDOFF"), "a", "explicit", "violated", None, {}, dirty)
    [clean] = clean_traces(m, [v])
    assert clean.evidence["callers_keep_obligations"] is True
    assert len(clean.trace) == len(dirty)
    assert not any(fired_along(faults, clean.trace)[:-1])
    assert Monitor(m, [get_property("P-DEVICE-HANDOFF")]).fires(clean.trace, "P-DEVICE-HANDOFF")


def test_a_finding_on_a_policy_file_names_the_knob_it_needs(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('name = "a"\n[knobs]\nend_flush = false\nmmap_prefault = true\n')
    m = Model(load_policy_file(f, CATALOG), SCOPES["tiny"], "v4.11")
    v = make_verdict(get_property("P-DEVICE-HANDOFF"), "a", "explicit", "violated", None, {},
                     replay(m, HANDOFF))
    assert knob_lines(v, m) == [
        "knobs the policy file sets (differing from the defaults): end_flush = false, mmap_prefault = true",
        "caused by end_flush = false: with end_flush = true the same calls do not show P-DEVICE-HANDOFF"]
    # based_on: the knobs that differ from that exporter's
    f.write_text('name = "a"\nbased_on = "i915"\n[knobs]\nend_flush = false\n')
    m = Model(load_policy_file(f, CATALOG), SCOPES["tiny"], "v4.11")
    v = make_verdict(get_property("P-DEVICE-HANDOFF"), "a", "explicit", "violated", None, {})
    assert knob_lines(v, m) == ["knobs the policy file sets (differing from exporter i915): end_flush = false"]
    # a catalog exporter sets no knobs of a user's
    assert knob_lines(v, Model(CATALOG["i915"], SCOPES["tiny"], "v4.11")) == []


@pytest.mark.parametrize("cmd", [["claims"], ["exporters", "--knobs"]])
def test_listings_run(cmd, capsys):
    assert main(cmd) == 0
    assert "M-END-UNDO" in capsys.readouterr().out


def test_without_a_clean_shortest_trace_a_slightly_longer_clean_one_is_kept():
    # begin ignores the direction: every 8-step trace starts with an unbracketed kmap and read
    m = Model(ExporterPolicy(name="b").with_knobs(begin_sync="ignore-direction"), SCOPES["tiny"], "v4.11")
    dirty = replay(m, [("dma_buf_export", {"buf": 0}), ("dma_buf_kmap", {"buf": 0, "page": 0}),
                       ("kernel_read", {"buf": 0, "page": 0}), ("dma_buf_attach", {"buf": 0}),
                       ("dma_buf_map_attachment", {"att": 0, "direction": 0}),
                       ("device_write", {"att": 0, "page": 0}),
                       ("dma_buf_begin_cpu_access", {"buf": 0, "direction": 0}),
                       ("kernel_read", {"buf": 0, "page": 0})])
    v = make_verdict(get_property("P-BEGIN-COHERENT"), "b", "explicit", "violated", None,
                     {"scope": "tiny"}, dirty)
    [clean] = clean_traces(m, [v])
    assert clean.evidence["callers_keep_obligations"] is True
    assert clean.evidence["shortest_with_caller_fault"] == 8 and len(clean.trace) == 9
    assert not any(fired_along(Monitor(m, caller_faults(m)), clean.trace)[:-1])
    assert trace_label(clean, "small") == (
        "9 steps, the shortest on scope tiny in which every caller keeps its obligations (breadth-first "
        "search); the shortest of all, 8 steps, has a caller break one first")
