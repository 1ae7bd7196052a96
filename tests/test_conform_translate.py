"""Model userspace traces -> runner steps and predictions (properties/conform/translate.py).
No QEMU: these check the translation and the predictions against the model itself."""
from __future__ import annotations

import pytest

from model.catalog import CATALOG
from model.machine import Model
from properties.conform.protocol import write_batch
from properties.conform.translate import (ANY_VALUE, POLICY_OF, TranslateError, litmus_traces,
                                          outcome_matches, random_traces, translate, write_value)
from properties.scenarios.litmus import LIBRARY

CREATE = [("dma_buf_export", {"buf": 0}), ("dma_buf_fd", {"buf": 0})]


@pytest.fixture(scope="module")
def models():
    return {e: Model(CATALOG[p], "default", "v5.12") for e, p in POLICY_OF.items()}   # (refused at v4.11)


def run(model, calls, exporter="udmabuf", tid=5):
    return translate(model, calls, trace_id=tid, exporter=exporter)


def test_every_runner_exporter_has_a_catalog_policy():
    assert set(POLICY_OF) == {"udmabuf", "system-heap", "vgem"}
    assert all(p in CATALOG for p in POLICY_OF.values())
    vgem = CATALOG["vgem"]
    assert not vgem.has_begin and not vgem.has_end
    # the v4.11 dma_buf_export() refuses every driver the runner drives (corpus §3.5)
    assert all(CATALOG[p].revisions == ("v5.12", "v6.12") for p in POLICY_OF.values())


def test_basic_trace(models):
    calls = CREATE + [
        ("mmap", {"fd": 0, "pgoff": 0, "npages": 2}),
        ("cpu_read", {"vma": 0, "page": 1}),
        ("cpu_write", {"vma": 0, "page": 1}),
        ("cpu_read", {"vma": 0, "page": 1}),
        ("ioctl_sync", {"fd": 0, "flags": 7}),      # END before any START
        ("ioctl_sync", {"fd": 0, "flags": 3}),
        ("ioctl_sync", {"fd": 0, "flags": 0}),
        ("dup", {"fd": 0}),
        ("close", {"fd": 0}),
        ("close", {"fd": 0}),
        ("mmap", {"fd": 0, "pgoff": 0, "npages": 1}),
        ("mmap", {"fd": 1, "pgoff": 1, "npages": 2}),
        ("munmap", {"vma": 1}),
        ("munmap", {"vma": 0}),
        ("cpu_read", {"vma": 0, "page": 0}),
    ]
    t = run(models["udmabuf"], calls)
    ops = [(s.op, s.args) for s in t.steps]
    v = write_value(5, 3)
    assert ops == [("create", ()), ("mmap", (0, 0, 2)), ("read", (0, 1)), ("write", (0, 1, v)),
                   ("read", (0, 1)), ("sync", (0, 7)), ("sync", (0, 3)), ("sync", (0, 0)), ("dup", (0,)),
                   ("close", (0,)), ("close", (0,)), ("mmap", (0, 0, 1)), ("mmap", (1, 1, 2)),
                   ("munmap", (1,)), ("munmap", (0,)), ("read", (0, 0))]
    assert [s.expect for s in t.steps] == [
        "ok=0", "ok=0", "val=0", "ok", f"val={v}", "EINVAL", "ok", "EINVAL", "ok=1", "ok", "EBADF",
        "EBADF", "EINVAL", "err:nomap", "ok", "err:nomap"]
    assert t.steps[0].model == "dma_buf_export(buf=0); dma_buf_fd(buf=0)"
    assert t.steps[5].model == "ioctl_sync(fd=0, flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_RW)"
    assert t.npages == 2 and t.policy == "udmabuf" and t.notes == ()
    # the system heap has no END-before-START rule: the same trace differs there
    h = run(models["system-heap"], calls, "system-heap")
    assert h.steps[5].expect == "ok"
    g = run(models["vgem"], calls, "vgem")
    assert g.steps[5].expect == "ok" and g.steps[7].expect == "EINVAL"
    write_batch([t.batch(), dict(h.batch(), id=6)])  # the runner accepts them


def test_values_follow_buffer_pages_through_every_mapping(models):
    calls = CREATE + [
        ("dma_buf_export", {"buf": 1}), ("dma_buf_fd", {"buf": 1}),
        ("mmap", {"fd": 0, "pgoff": 1, "npages": 1}),    # vma 0 = buffer 0 page 1
        ("mmap", {"fd": 0, "pgoff": 0, "npages": 2}),    # vma 1 = buffer 0 pages 0, 1
        ("mmap", {"fd": 1, "pgoff": 0, "npages": 2}),    # model vma table is full (2): cut here
    ]
    t = run(models["udmabuf"], calls)
    assert [s.op for s in t.steps] == ["create", "create", "mmap", "mmap"]
    assert len(t.notes) == 1 and "-ENOMEM only because the model's mapping table has 2 slots" in t.notes[0]

    calls = CREATE + [
        ("mmap", {"fd": 0, "pgoff": 1, "npages": 1}),
        ("mmap", {"fd": 0, "pgoff": 0, "npages": 2}),
        ("cpu_write", {"vma": 0, "page": 0}),            # buffer page 1
        ("cpu_read", {"vma": 1, "page": 1}),             # buffer page 1: sees it
        ("cpu_read", {"vma": 1, "page": 0}),             # buffer page 0: still 0
        ("close", {"fd": 0}),
        ("cpu_write", {"vma": 1, "page": 1}),            # mapping survives close
        ("cpu_read", {"vma": 0, "page": 0}),
        ("cpu_read", {"vma": 0, "page": 1}),             # outside the 1-page vma
    ]
    t = run(models["system-heap"], calls, "system-heap", tid=9)
    w1, w2 = write_value(9, 3), write_value(9, 7)
    assert [s.expect for s in t.steps] == ["ok=0", "ok=0", "ok=1", "ok", f"val={w1}", "val=0", "ok", "ok",
                                           f"val={w2}", "err:range"]
    assert (t.steps[3].buf, t.steps[3].pgoff, t.steps[3].page) == (0, 1, 0)
    assert t.steps[4].pgoff == 0 and not t.steps[4].stale


def test_write_values_are_fresh_and_never_zero():
    vals = {write_value(t, i) for t in (0, 1, 2**40 + 3) for i in range(200)}
    assert len(vals) == 600 and 0 not in vals and all(0 < v < 2**64 for v in vals)


def test_outcome_matches():
    assert outcome_matches(ANY_VALUE, "val=0") and outcome_matches("val=3", "val=3")
    assert not outcome_matches(ANY_VALUE, "ok") and not outcome_matches(ANY_VALUE, "SIGBUS")
    assert not outcome_matches("val=3", "val=4") and not outcome_matches("ok=0", "ok=1")


def test_interrupted_sync_is_dropped_and_said(models):
    calls = CREATE + [("ioctl_sync", {"fd": 0, "flags": 1, "interrupted": True}),
                      ("ioctl_sync", {"fd": 0, "flags": 5})]
    t = run(models["udmabuf"], calls)
    assert [s.op for s in t.steps] == ["create", "sync"]
    # dropped from the model replay too: END without START stays EINVAL on udmabuf
    assert t.steps[1].expect == "EINVAL"
    assert len(t.notes) == 1 and "cannot be interrupted on demand" in t.notes[0]


def test_scope_exhaustion_cuts_the_trace(models):
    m = Model(CATALOG["udmabuf"], "small", "v5.12")  # 2 fd slots
    calls = CREATE + [("dup", {"fd": 0}), ("dup", {"fd": 0}), ("close", {"fd": 0})]
    t = run(m, calls)
    assert [s.expect for s in t.steps] == ["ok=0", "ok=1"]
    assert "step 4: dup(fd=0) returns -EMFILE only because the model's fd table has 2 slots" in t.notes[0]


@pytest.mark.parametrize("calls,msg", [
    ([("dma_buf_export", {"buf": 0}), ("dup", {"fd": 0})], "step 1: dma_buf_export(buf=0) is not followed by dma_buf_fd"),
    ([("dma_buf_fd", {"buf": 0})], "step 1: dma_buf_fd without the dma_buf_export"),
    (CREATE + [("reclaim", {"buf": 0})], "step 3: reclaim is neither a userspace action nor a kernel-side one"),
    (CREATE + [("mmap", {"fd": 7, "pgoff": 0, "npages": 1})], "step 3: mmap: fd=7 is outside the scope"),
    (CREATE + CREATE, "step 3: dma_buf_export(buf=0) is not enabled"),
])
def test_untranslatable(models, calls, msg):
    with pytest.raises(TranslateError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        run(models["udmabuf"], calls)


def test_unknown_exporter(models):
    with pytest.raises(TranslateError, match="unknown exporter 'ion'"):
        translate(models["udmabuf"], CREATE, trace_id=1, exporter="ion")


def test_random_traces_are_seeded_and_extend():
    a = random_traces("udmabuf", 12, seed=3)
    b = random_traces("udmabuf", 12, seed=3)
    c = random_traces("udmabuf", 30, seed=3)
    d = random_traces("udmabuf", 12, seed=4)
    assert [x.batch() for x in a] == [x.batch() for x in b] == [x.batch() for x in c[:12]]
    assert [x.batch()["steps"] for x in a] != [x.batch()["steps"] for x in d]
    assert [x.id for x in random_traces("vgem", 3, 1, first_id=100)] == [100, 101, 102]


@pytest.mark.parametrize("exporter", list(POLICY_OF))
def test_random_traces_stay_inside_the_runner(exporter):
    traces = random_traces(exporter, 60, seed=1)
    write_batch([t.batch() for t in traces])
    kinds: dict[str, int] = {}
    for t in traces:
        assert t.steps[0].op == "create" and t.notes == ()
        assert 4 <= len(t.steps) <= 24 and t.exporter == exporter and t.npages == 2
        for s in t.steps:
            assert s.expect not in ("EMFILE", "ENOMEM", "EINTR", "ERESTARTSYS"), (t.source, s)
            kinds[s.expect.split("=")[0]] = kinds.get(s.expect.split("=")[0], 0) + 1
    # the walk reaches mappings and loads, and still checks failures
    assert kinds["val"] >= 30 and kinds["ok"] >= 200
    assert kinds.get("EBADF", 0) + kinds.get("EINVAL", 0) >= 30 and kinds["err:nomap"] >= 10


def test_litmus_library_userspace_files_translate():
    assert LIBRARY.is_dir()
    traces, skipped = litmus_traces([LIBRARY], ["udmabuf", "system-heap"], first_id=50)
    assert traces, "no userspace litmus file in the library"
    assert len(traces) % 2 == 0 and traces[0].id == 50
    assert all("not userspace" in s or "without its dma_buf_fd" in s for s in skipped)
    assert any("kmap-after-end" in s for s in skipped)
    write_batch([t.batch() for t in traces])


def test_litmus_interrupted_and_bad_files(tmp_path):
    good = tmp_path / "a.litmus.toml"
    good.write_text('title = "t"\nexporter = "udmabuf"\nsteps = [\n  "dma_buf_export(buf=0)",\n'
                    '  "dma_buf_fd(buf=0)",\n  "ioctl_sync(fd=0, flags=DMA_BUF_SYNC_START|DMA_BUF_SYNC_READ, '
                    'interrupted=True)",\n  "ioctl_sync(fd=0, flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_READ)",\n]\n')
    traces, skipped = litmus_traces([good], ["udmabuf"])
    assert skipped == [] and [s.expect for s in traces[0].steps] == ["ok=0", "EINVAL"]
    assert "dropped" in traces[0].notes[0] and traces[0].source == str(good)
    bad = tmp_path / "b.litmus.toml"
    bad.write_text('title = "t"\nexporter = "udmabuf"\nsteps = ["dup(fd=0"]\n')
    with pytest.raises(TranslateError, match=r"b\.litmus\.toml: step 1"):
        litmus_traces([bad], ["udmabuf"])
    with pytest.raises(TranslateError, match="no such file"):
        litmus_traces([tmp_path / "missing.litmus.toml"], ["udmabuf"])


def test_litmus_values_outside_the_scope_reach_the_runner():
    """mmap offsets and lengths and SYNC flags outside the scope pass through to the runner with
    the model's prediction; an offset the runner cannot pass (its byte offset does not fit an
    off_t) is predicted as the runner's refusal; a kernel -ENOMEM does not cut the trace."""
    files = [LIBRARY / f"{n}.litmus.toml" for n in ("mmap-length-any-value", "mmap-pgoff-wraps",
                                                     "sync-flags-any-u64")]
    traces, skipped = litmus_traces(files, ["udmabuf"])
    assert skipped == [] and all(t.notes == () for t in traces)
    got = {t.source.rsplit("/", 1)[-1]: [(s.runner(), s.expect) for s in t.steps[1:]] for t in traces}
    assert got["mmap-length-any-value.litmus.toml"] == [
        ("mmap 0 0 100", "EINVAL"), ("mmap 0 0 0", "EINVAL"), ("mmap 0 0 34359738368", "ENOMEM"),
        ("mmap 0 1 1", "ok=0")]
    assert got["mmap-pgoff-wraps.litmus.toml"][0] == ("mmap 0 18446744073709551615 1", "err:overflow")
    assert got["sync-flags-any-u64.litmus.toml"][:3] == [
        ("sync 0 9", "EINVAL"), ("sync 0 9223372036854775808", "EINVAL"), ("sync 0 9223372036854775809", "EINVAL")]
    batch = write_batch([t.batch() for t in traces])
    assert "S mmap 0 18446744073709551615 1" in batch and "S sync 0 9223372036854775808" in batch


def test_v5_12_keeps_an_attachment_static_when_the_model_refuses_its_map():
    # 6.12 maps a dynamic attachment of udmabuf DMA_BIDIRECTIONAL at attach time and keeps it, so
    # a map the v5.12 model refuses with -EBUSY (udmabuf's cached mapping) would succeed there:
    # such an attachment is not made dynamic, even when its step index picks it (trace 559)
    from properties.conform.translate import _busy_maps

    traces = random_traces("udmabuf", 560, 1, revision="v5.12", kernel_side=True, min_len=8, max_len=40)
    kept = 0
    for t in traces:
        for att, j in _busy_maps(list(t.steps)).items():
            assert t.steps[att].op == "kattach" and t.steps[j].expect == "EBUSY", t.id
            kept += (t.id + att) % 3 == 0
    assert kept >= 1
