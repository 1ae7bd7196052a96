"""The kernel-side runner: translation of the model's kernel-side actions (no QEMU), and one
boot of the 6.12 cloud kernel with the module built from its Debian headers (marked ``qemu``):
hand-written kernel-side cases with their outcomes, and a few hundred random traces mixing
userspace and kernel-side actions at revision v6.12 (the lock convention kept as a correct
importer keeps it), compared step by step with the model.
"""
from __future__ import annotations

import dataclasses

import pytest

from properties.conform import GuestError, guest, run_batch
from properties.conform.compare import compare_result, load_known, summarise
from properties.conform.protocol import write_batch
from properties.conform.run import build_traces
from properties.conform.translate import KERNEL_ACTIONS, KERNEL_ACTIONS_V6_12, TranslateError, translate
from model.catalog import CATALOG
from model.machine import Model
from model.scope import SCOPES

KERNEL = "6.12-cloud"
REVISION = "v6.12"
N = 2  # pages per buffer (scope default)
RANDOM = 120  # random mixed traces per exporter in the boot


def _model(exporter: str = "udmabuf", revision: str = "v5.12") -> Model:
    return Model(CATALOG[exporter], SCOPES["default"], revision)


CREATE = [("dma_buf_export", {"buf": 0}), ("dma_buf_fd", {"buf": 0})]


# ---------------------------------------------------------------------------- translation


def test_kernel_calls_become_module_steps():
    calls = CREATE + [
        ("dma_buf_get", {"fd": 0}), ("dma_buf_get", {"fd": 0}), ("dma_buf_vmap", {"buf": 0}),
        ("kernel_write", {"buf": 0, "page": 1}), ("mmap", {"fd": 0, "pgoff": 0, "npages": 2}),
        ("cpu_read", {"vma": 0, "page": 1}), ("kernel_read", {"buf": 0, "page": 1}),
        ("dma_buf_attach", {"buf": 0}), ("dma_buf_map_attachment", {"att": 0, "direction": 1}),
        ("dma_buf_unmap_attachment", {"att": 0}), ("dma_buf_detach", {"att": 0}),
        ("dma_buf_attach", {"buf": 0}), ("dma_buf_pin", {"att": 0}), ("dma_buf_unpin", {"att": 0}),
        ("dma_buf_vunmap", {"buf": 0}), ("kernel_read", {"buf": 0, "page": 0}),
        ("dma_buf_put", {"buf": 0}), ("dma_buf_get", {"fd": 1}),
    ]
    t = translate(_model(), calls, trace_id=8, exporter="udmabuf")
    got = [(s.op, s.args[:1], s.expect) for s in t.steps]
    w = t.steps[4].value
    assert got == [
        ("create", (), "ok=0"), ("kget", (0,), "ok=0"), ("kget", (0,), "ok=1"),
        ("kvmap", (1,), "ok=0"), ("kwrite", (0,), "ok"), ("mmap", (0,), "ok=0"),
        ("read", (0,), f"val={w}"), ("kread", (0,), f"val={w}"),
        # the first attachment is static, the pinned one dynamic (dma_buf_pin needs it on 6.12)
        ("kattach", (1,), "ok=0"), ("kmap", (0,), "ok"), ("kunmap", (0,), "ok"), ("kdetach", (0,), "ok"),
        ("kdattach", (1,), "ok=0"), ("kpin", (0,), "ok"), ("kunpin", (0,), "ok"),
        ("kvunmap", (0,), "ok"), ("kread", (-1,), "err:noslot"),
        ("kput", (1,), "ok"), ("kget", (1,), "EBADF"),
    ]
    # map and vmap alternate between the locked and the _unlocked calls
    assert {s.args[2] for s in t.steps if s.op == "kmap"} | {s.args[1] for s in t.steps if s.op == "kvmap"}
    write_batch([t.batch()])  # the runner accepts every step


def test_v6_12_calls_become_module_steps():
    """At v6.12 "lock; <locked call>; unlock" is one module step under dma_resv_lock, the
    _unlocked variants are the module's unlocked calls, dynamic attachments are the model's."""
    lock, unlock = ("dma_resv_lock", {"buf": 0}), ("dma_resv_unlock", {"buf": 0})
    calls = CREATE + [
        ("dma_buf_get", {"fd": 0}), ("dma_buf_dynamic_attach", {"buf": 0}),
        lock, ("dma_buf_map_attachment", {"att": 0, "direction": 1}), unlock,
        ("dma_buf_unmap_attachment_unlocked", {"att": 0}),
        lock, ("dma_buf_pin", {"att": 0}), unlock, lock, ("dma_buf_unpin", {"att": 0}), unlock,
        ("dma_buf_vmap_unlocked", {"buf": 0}), lock, ("dma_buf_vunmap", {"buf": 0}), unlock,
        ("dma_buf_attach", {"buf": 0}),
    ]
    t = translate(_model(revision="v6.12"), calls, trace_id=8, exporter="udmabuf")
    assert [(s.op, s.args, s.expect) for s in t.steps] == [
        ("create", (), "ok=0"), ("kget", (0,), "ok=0"), ("kdattach", (0,), "ok=0"),
        ("kmap", (0, 1, 1), "ok"), ("kunmap", (0, 0), "ok"), ("kpin", (0,), "ok"), ("kunpin", (0,), "ok"),
        ("kvmap", (0, 0), "ok=0"), ("kvunmap", (0, 1), "ok"), ("kattach", (0,), "ok=1"),
    ]
    write_batch([t.batch()])
    m = _model(revision="v6.12")
    # the module holds the lock inside one call only; a pin of a static attachment WARNs on 6.12
    with pytest.raises(TranslateError, match="around one call only"):
        translate(m, CREATE + [lock, ("dma_buf_vmap", {"buf": 0}), ("dma_buf_vmap", {"buf": 0}), unlock],
                  trace_id=1, exporter="udmabuf")
    with pytest.raises(TranslateError, match="dma_buf_dynamic_attach"):
        translate(m, CREATE + [("dma_buf_get", {"fd": 0}), ("dma_buf_attach", {"buf": 0}), lock,
                               ("dma_buf_pin", {"att": 0}), unlock], trace_id=1, exporter="udmabuf")


def test_v6_12_random_calls_keep_the_lock_convention():
    """A random walk at v6.12 is a correct importer: replayed on the model, no step breaks the
    locking convention; the same calls with the lock/unlock pairs dropped do (the check can fail)."""
    import random
    from model.events import EVENT_BIT
    from properties.conform.translate import random_calls
    m = _model(revision="v6.12")
    breaks = EVENT_BIT["resv_not_held"] | EVENT_BIT["resv_held_unlocked_call"] | EVENT_BIT["resv_deadlock"]

    def replay(calls):
        st, ev = m.init, 0
        for name, args in calls:
            st, _ret, e, _b = m.step(st, m.find(name, **args).index)
            ev |= e
        return ev

    walks = [random_calls(m, random.Random(k), 30, kernel_side=True) for k in range(20)]
    assert sum(c[0] == "dma_resv_lock" for w in walks for c in w) > 5
    assert not any(replay(w) & breaks for w in walks)
    assert any(replay([c for c in w if not c[0].startswith("dma_resv_")]) & breaks for w in walks)


def test_put_of_the_last_reference_with_an_attachment_is_refused():
    calls = CREATE + [("dma_buf_get", {"fd": 0}), ("dma_buf_attach", {"buf": 0}), ("dma_buf_put", {"buf": 0})]
    t = translate(_model(), calls, trace_id=1, exporter="udmabuf")
    assert t.steps[-1].op == "kput" and t.steps[-1].expect == "err:busy"


def test_interrupted_begin_is_dropped_and_unknown_actions_refused():
    calls = CREATE + [("dma_buf_get", {"fd": 0}),
                      ("dma_buf_begin_cpu_access", {"buf": 0, "direction": 0, "interrupted": True})]
    t = translate(_model(), calls, trace_id=1, exporter="udmabuf")
    assert [s.op for s in t.steps] == ["create", "kget"] and "interrupted" in t.notes[0]
    with pytest.raises(TranslateError, match="reclaim"):
        translate(_model(), CREATE + [("reclaim", {"buf": 0})], trace_id=1, exporter="udmabuf")


def test_random_mixed_traces_reach_every_kernel_action():
    traces, _ = build_traces(["udmabuf", "system-heap"], RANDOM, 1, "default", REVISION, kernel_side=True)
    calls = {c.split("(")[0] for t in traces for s in t.steps for c in s.model.split("; ")}
    # (dma_resv_lock/unlock are folded into the locked call's step: "lock; call; unlock")
    assert set(KERNEL_ACTIONS) | set(KERNEL_ACTIONS_V6_12) <= calls
    assert all(s.model.startswith("dma_resv_lock") for t in traces for s in t.steps
               if s.op in ("kpin", "kunpin") or (s.op == "kmap" and s.args[2]))
    ops = {s.op for t in traces for s in t.steps}
    assert {"kattach", "kdattach", "kread", "kwrite"} <= ops
    # same seed, same traces
    again, _ = build_traces(["udmabuf", "system-heap"], RANDOM, 1, "default", REVISION, kernel_side=True)
    assert [t.steps for t in again] == [t.steps for t in traces]


# ---------------------------------------------------------------------------- one boot

# hand-written kernel-side steps and the outcomes the 6.12 module reports (udmabuf, system heap)
CASE = [
    ("create", (), "ok=0"), ("kget", (0,), "ok=0"), ("kvmap", (0, 0), "ok=0"),
    ("kwrite", (0, 1, 77), "ok"), ("kread", (0, 1), "val=77"), ("mmap", (0, 0, N), "ok=0"),
    ("read", (0, 1), "val=77"), ("write", (0, 0, 5), "ok"), ("kread", (0, 0), "val=5"),
    ("kattach", (0,), "ok=0"), ("kmap", (0, 0, 1), "ok"), ("kmap", (0, 0, 0), "err:mapped"),
    ("kdetach", (0,), "err:mapped"), ("kunmap", (0, 1), "ok"), ("kpin", (0,), "err:static"),
    ("kdetach", (0,), "ok"), ("kdattach", (0,), "ok=0"), ("kpin", (0,), "ok"), ("kdetach", (0,), "err:busy"),
    ("kmap", (0, 2, 0), "ok"), ("kunmap", (0, 0), "ok"), ("kunpin", (0,), "ok"), ("kmoves", (0,), "val=0"),
    ("kbegin", (0, 0), "ok"), ("kend", (0, 0), "ok"), ("kbegin", (0, 3), "err:range"),
    ("kput", (0,), "err:busy"), ("kvunmap", (0, 1), "ok"), ("kvunmap", (0, 1), "err:noslot"),
    ("kread", (0, 0), "err:noslot"), ("close", (0,), "ok"), ("kget", (0,), "EBADF"),
    ("kvmap", (0, 1), "ok=0"), ("kread", (0, 1), "val=77"), ("kvunmap", (0, 0), "ok"),
    ("kput", (5,), "err:noslot"),
    # left attached, mapped and referenced: the trace's exit must clean up without a kernel splat
    ("kattach", (0,), "ok=1"), ("kmap", (1, 1, 1), "ok"), ("kvmap", (0, 0), "ok=0"),
]
CASE_IDS = {"udmabuf": 900_001, "system-heap": 900_002}


@pytest.fixture(scope="module")
def boot():
    try:
        guest.ensure_qemu()
    except GuestError as e:
        pytest.skip(f"QEMU cannot be installed on this machine: {e}")
    traces, _ = build_traces(["udmabuf", "system-heap"], RANDOM, 1, "default", REVISION, kernel_side=True)
    batch = [t.batch() for t in traces]
    batch += [{"id": i, "exporter": e, "npages": N, "steps": [(op, a) for op, a, _ in CASE]}
              for e, i in CASE_IDS.items()]
    res = run_batch(batch, kernel=KERNEL, timeout=600, kmod=True, strict=False)
    return traces, res


@pytest.mark.qemu
def test_module_loads_and_the_kernel_stays_quiet(boot):
    _traces, res = boot
    assert res.done and res.complete, [t.reason for t in res.traces if not t.complete]
    assert res.modules.get("dmabuf_check_kmod.ko") == 0
    assert res.trouble == (), res.trouble   # no oops, BUG or WARN from any step or clean-up


@pytest.mark.qemu
@pytest.mark.parametrize("exporter", list(CASE_IDS))
def test_kernel_side_case(boot, exporter):
    _traces, res = boot
    t = res.trace(CASE_IDS[exporter])
    assert t.complete, t.reason
    assert [s.outcome for s in t.steps] == [want for _op, _a, want in CASE]


@pytest.mark.qemu
def test_mixed_traces_agree_with_the_model(boot):
    traces, res = boot
    known = load_known()
    verdicts = compare_result(traces, res, known)
    bad = [v.render(upto_first_disagreement=True) for v in verdicts if v.status != "agree"
           and v.status != "known"]
    assert not bad, bad[:3]
    summ = summarise(KERNEL, res.uname, verdicts)
    assert sum(s.traces for s in summ) == 2 * RANDOM
    assert sum(s.loads for s in summ) > 50
    kernel_steps = sum(1 for t in traces for s in t.steps if s.op.startswith("k"))
    assert kernel_steps > 1000


@pytest.mark.qemu
def test_a_wrong_prediction_is_caught(boot):
    """The comparison can fail: a model that predicted a different value for a kernel load (or
    success for a refused put) disagrees with this kernel."""
    traces, res = boot
    known = load_known()
    broken = []
    for t in traces:
        steps = list(t.steps)
        for i, s in enumerate(steps):
            if s.op == "kread" and s.expect.startswith("val=") and s.expect != "val=*":
                steps[i] = dataclasses.replace(s, expect=f"val={int(s.expect[4:]) + 1}")
                break
        broken.append(dataclasses.replace(t, steps=tuple(steps)))
    verdicts = compare_result(broken, res, known)
    assert sum(v.status == "disagree" for v in verdicts) >= 10


# ---------------------------------------------------------------------------- build pieces


def test_headers_paths_are_redirected_into_the_unpacked_tree(tmp_path):
    from properties.conform.module import _redirect
    root = tmp_path / "root"
    tree = root / "usr" / "src" / "linux-headers-9.9-cloud"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("include /usr/src/linux-headers-9.9-common/Makefile\n")
    (tree / "scripts").symlink_to("/usr/lib/linux-kbuild-9.9/scripts")
    (tree / "rel").symlink_to("../../lib/linux-kbuild-9.9/tools")
    _redirect(tree, root)
    assert (tree / "Makefile").read_text() == f"include {root}/usr/src/linux-headers-9.9-common/Makefile\n"
    assert str((tree / "scripts").readlink()) == f"{root}/usr/lib/linux-kbuild-9.9/scripts"
    assert str((tree / "rel").readlink()) == "../../lib/linux-kbuild-9.9/tools"   # relative: left alone
    with pytest.raises(GuestError, match="unpacking the headers: no Makefile"):
        _redirect(tmp_path / "nothing", root)


def test_kernel_trouble_lines():
    from properties.conform.protocol import MARKER, kernel_trouble, parse_output, format_line
    log = "\n".join([
        format_line({"hello": 1, "uname": "x", "exporters": {}, "modules": {}, "ntraces": 0}),
        "[    9.1] WARNING: CPU: 0 PID: 41 at drivers/dma-buf/dma-buf.c:1120 dma_buf_pin+0x2a/0x40",
        "[    9.2] dmabuf_check_kmod: loading out-of-tree module taints kernel.",
        format_line({"done": 0}),
    ])
    assert kernel_trouble(log) == ("[    9.1] WARNING: CPU: 0 PID: 41 at drivers/dma-buf/dma-buf.c:1120 "
                                   "dma_buf_pin+0x2a/0x40",)
    assert parse_output(log).trouble == kernel_trouble(log)
    assert kernel_trouble(MARKER + "BUG: in a runner line is data") == ()


@pytest.mark.qemu
def test_a_module_that_does_not_build_names_the_step(tmp_path, monkeypatch):
    """A compile error is one line naming the step (uses the cached kernel and headers)."""
    from properties.conform import kernels, module
    try:
        fk = kernels.fetch_kernel(KERNEL, progress=None)
    except GuestError as e:
        pytest.skip(f"kernel {KERNEL} cannot be fetched here: {e}")
    src = tmp_path / "kmod"
    src.mkdir()
    for p in module.KMOD_DIR.iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    c = src / "dmabuf_check_kmod.c"
    c.write_text(c.read_text().replace("static int __init dck_init(void)\n{", "static int __init dck_init(void)\n{ oops"))
    monkeypatch.setattr(module, "KMOD_DIR", src)
    with pytest.raises(GuestError, match=r"^building the module: make failed: .*error") as e:
        module.build_module(fk, cache_dir=None, progress=None)
    assert "\n" not in str(e.value)
