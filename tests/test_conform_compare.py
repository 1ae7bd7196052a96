"""The comparison of kernel results with model predictions, known differences, and the
``conform`` command's handling of bad input and of guests that misbehave. No QEMU: kernel
output is written here in the runner's format (protocol.format_line) or by a stand-in process."""
from __future__ import annotations

import shutil
import sys
import textwrap
import time

import pytest

from model.catalog import CATALOG
from model.machine import Model
from properties.cli import main
from properties.conform.run import conform_kernel, format_table
from properties.conform.compare import (KNOWN_FILE, SEMANTICS, Known, KnownError, compare_result,
                                        compare_trace, load_known, summarise)
from properties.conform.protocol import format_line, parse_output
from properties.conform.translate import random_traces, translate, write_value

UNAME = "6.12.95+deb12-amd64"
CREATE = [("dma_buf_export", {"buf": 0}), ("dma_buf_fd", {"buf": 0})]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed (the runner is built)")


def step_line(tid: int, s: int, op: str, outcome: str) -> dict:
    """The runner's JSON for one step whose outcome is ``outcome`` (StepResult.outcome format)."""
    base = {"t": tid, "s": s, "op": op}
    if outcome.startswith("err:"):
        return {**base, "err": outcome[4:]}
    if outcome in ("SIGBUS", "SIGSEGV"):
        return {**base, "ret": -1, "errno": 0, "sig": outcome}
    if outcome.startswith("val="):
        v = outcome[4:]
        return {**base, "ret": 0, "errno": 0, "val": 0 if v == "*" else int(v)}
    if outcome.startswith("ok"):
        return {**base, "ret": int(outcome[3:]) if "=" in outcome else 0, "errno": 0}
    import errno
    return {**base, "ret": -1, "errno": getattr(errno, outcome)}


def console(traces, override=None, uname=UNAME, drop=None, end="ok") -> str:
    """Console output of a kernel that does what the model predicts, except ``override``:
    {(trace id, step): outcome}. ``drop``: (trace id, step) whose line is lost."""
    override = override or {}
    lines = [{"hello": 1, "uname": uname, "exporters": {"udmabuf": True, "system-heap": True, "vgem": True},
              "modules": {}, "ntraces": len(traces)}]
    for t in traces:
        lines.append({"t": t.id, "begin": 1, "exporter": t.exporter, "npages": t.npages, "steps": len(t.steps)})
        for i, s in enumerate(t.steps):
            if drop == (t.id, i):
                continue
            lines.append(step_line(t.id, i, s.op, override.get((t.id, i), s.expect)))
        lines.append({"t": t.id, "end": 1, "status": end})
    lines.append({"done": len(traces)})
    return "\n".join(["[    0.1] Linux version ..."] + [format_line(o) for o in lines]) + "\n"


@pytest.fixture(scope="module")
def vgem():
    return Model(CATALOG["vgem"], "default", "v5.12")


@pytest.fixture(scope="module")
def known():
    return load_known()


def offset_trace(model, exporter="vgem", tid=1):
    """write through a mapping at pgoff 1, read the buffer through a mapping at pgoff 0"""
    calls = CREATE + [("mmap", {"fd": 0, "pgoff": 1, "npages": 1}), ("mmap", {"fd": 0, "pgoff": 0, "npages": 2}),
                      ("cpu_write", {"vma": 0, "page": 0}), ("cpu_read", {"vma": 1, "page": 0}),
                      ("cpu_read", {"vma": 1, "page": 1}), ("cpu_read", {"vma": 0, "page": 0})]
    return translate(model, calls, trace_id=tid, exporter=exporter)


def test_agreeing_kernel():
    traces = random_traces("udmabuf", 20, 1) + random_traces("system-heap", 20, 1, first_id=100)
    res = parse_output(console(traces))
    vs = compare_result(traces, res)
    assert {v.status for v in vs} == {"agree"}
    sums = summarise("6.12", res.uname, vs)
    assert [(s.exporter, s.traces, s.agree, s.passed, s.rate) for s in sums] == [
        ("udmabuf", 20, 20, True, 1.0), ("system-heap", 20, 20, True, 1.0)]
    assert sums[0].steps == sum(len(t.steps) for t in traces[:20]) == sums[0].steps_agree
    assert sums[0].loads == sum(1 for t in traces[:20] for s in t.steps if s.expect.startswith("val="))


def test_a_wrong_value_and_a_wrong_errno_disagree():
    traces = random_traces("udmabuf", 30, 2)
    t = next(t for t in traces if any(s.expect.startswith("val=") for s in t.steps))
    i = next(i for i, s in enumerate(t.steps) if s.expect.startswith("val="))
    j = next(j for j, s in enumerate(t.steps) if s.op == "sync")
    wrong = "val=12345" if t.steps[i].expect != "val=12345" else "val=1"
    res = parse_output(console([t], {(t.id, i): wrong, (t.id, j): "ENOTTY"}))
    v = compare_trace(t, res.trace(t.id), res.uname)
    assert v.status == "disagree"
    bad = [s.index for s in v.steps if s.status == "disagree"]
    assert bad == sorted({i, j})
    assert v.first_difference.index == min(i, j)
    text = v.render(upto_first_disagreement=True)
    assert "X" in text.splitlines()[min(i, j) + 1] and len(text.splitlines()) == min(i, j) + 2


def test_known_vgem_offset_mapping(vgem, known):
    t = offset_trace(vgem)
    w = write_value(1, 3)
    assert [s.expect for s in t.steps[4:]] == ["val=0", f"val={w}", f"val={w}"]
    # what vgem does: the pgoff-1 mapping shows buffer page 0
    kernel_says = {(1, 4): f"val={w}", (1, 5): "val=0"}
    res = parse_output(console([t], kernel_says))
    v = compare_trace(t, res.trace(1), UNAME, known)
    assert v.status == "known"
    assert [(s.index, s.status, s.known) for s in v.steps if s.status != "agree"] == [
        (4, "known", "vgem-shmem-fault-ignores-pgoff"), (5, "known", "vgem-shmem-fault-ignores-pgoff")]
    # not known on another kernel, nor for another exporter, nor for a value neither semantics gives
    assert compare_trace(t, res.trace(1), "5.10.0-30-amd64", known).status == "disagree"
    u = offset_trace(Model(CATALOG["udmabuf"], "default", "v5.12"), "udmabuf")
    ru = parse_output(console([u], kernel_says))
    assert compare_trace(u, ru.trace(1), UNAME, known).status == "disagree"
    rx = parse_output(console([t], {(1, 4): "val=77"}))
    assert compare_trace(t, rx.trace(1), UNAME, known).status == "disagree"


def test_semantics_table():
    assert set(SEMANTICS) >= {"model", "mmap-ignores-pgoff"}


def test_glob_matcher_from_a_file(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text(textwrap.dedent('''
        [[known]]
        id = "sync-refused"
        kernel = "6.12.*"
        exporter = "*"
        op = "sync"
        expected = "ok"
        got = "E*"
        explanation = "a test entry"
    '''))
    ks = load_known(f)
    assert ks == (Known("sync-refused", ("6.12.*",), "*", "sync", "ok", "E*", "a test entry"),)
    traces = random_traces("system-heap", 30, 3)
    t = next(t for t in traces if any(s.op == "sync" and s.expect == "ok" for s in t.steps))
    j = next(j for j, s in enumerate(t.steps) if s.op == "sync" and s.expect == "ok")
    res = parse_output(console([t], {(t.id, j): "EBUSY"}))
    v = compare_trace(t, res.trace(t.id), UNAME, ks)
    assert v.status == "known" and v.steps[j].known == "sync-refused"
    assert compare_trace(t, res.trace(t.id), "6.1.0-56-amd64", ks).status == "disagree"


def test_incomplete_results_are_unknown_not_agreement():
    traces = random_traces("udmabuf", 3, 4)
    t = traces[0]
    # a lost step line (garbled console): the step is missing, the trace unknown
    text = console(traces, drop=(t.id, 1))
    res = parse_output(text, strict=False, expect=[x.batch() for x in traces])
    vs = compare_result(traces, res)
    assert vs[0].status == "unknown" and vs[0].steps[1].status == "missing"
    assert [v.status for v in vs[1:]] == ["agree", "agree"]
    # a trace killed in the guest
    res = parse_output(console(traces[:1], end="killed"), strict=False)
    v = compare_trace(t, res.trace(t.id), UNAME)
    assert v.status == "unknown" and "killed" in v.reason
    # no results at all
    v = compare_trace(t, None, UNAME)
    assert v.status == "unknown" and {s.status for s in v.steps} == {"missing"}
    sums = summarise("6.12", UNAME, [v])
    assert sums[0].unknown == 1 and not sums[0].passed and sums[0].rate == 0.0


def test_a_wrong_value_in_a_cut_trace_still_disagrees():
    t = offset_trace(Model(CATALOG["udmabuf"], "default", "v5.12"), "udmabuf")
    res = parse_output(console([t], {(1, 5): "val=3"}, drop=(1, 6)), strict=False)
    assert compare_trace(t, res.trace(1), UNAME).status == "disagree"


def test_project_known_file_is_valid(known):
    assert known, "the project records at least the vgem offset difference"
    for k in known:
        assert k.explanation and len(k.explanation) > 80, k.id
        assert k.semantics is None or k.semantics in SEMANTICS
        assert k.exporter in ("*", "udmabuf", "system-heap", "vgem")
    assert KNOWN_FILE.name == "known.toml"
    # every quoted kernel line has its place (tests/test_conform_sources.py checks the places)
    assert all(k.source and k.source_version for k in known if k.kind == "kernel"), \
        [k.id for k in known if not k.source]


@pytest.mark.parametrize("text,msg", [
    ("[[known]]\nid = 'a'\n", r"#1 \(a\): missing key 'kernel'"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='x'\ncolour=1\n",
     "unknown key 'colour'"),
    ("[[known]]\nid='a'\nkernel=[]\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='x'\n",
     "'kernel' must be a pattern"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='x'\n"
     "semantics='psychic'\n", "unknown semantics 'psychic'"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='x'\n"
     "[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='x'\n",
     r"#2 \(a\): id 'a' used twice"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='calls f(x);'\n"
     "source=[{file='f.c', line=3, function='f', code='f(x);'}]\n", "'source' needs 'source_version'"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='calls f(x);'\n"
     "source_version='1'\nsource=[{file='f.c', line=0, function='f', code='f(x);'}]\n",
     "source #1: 'line' must be a positive integer"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='calls f(x);'\n"
     "source_version='1'\nsource=[{file='f.c', line=3, function='f', code='g(y);'}]\n",
     "source #1: the explanation does not quote its code 'g\\(y\\);'"),
    ("[[known]]\nid='a'\nkernel='*'\nexporter='*'\nop='*'\nexpected='*'\ngot='*'\nexplanation='calls f(x);'\n"
     "source_version='1'\nsource=[{file='f.c', line=3, code='f(x);'}]\n",
     "source #1: must be a table with exactly code, file, function, line"),
    ("known = 3\n", "must be an array of tables"),
    ("[[known]\n", "not valid TOML"),
    ("other = 1\n", "unknown top-level key 'other'"),
])
def test_bad_known_files(tmp_path, text, msg):
    f = tmp_path / "k.toml"
    f.write_text(text)
    with pytest.raises(KnownError, match=msg) as ei:
        load_known(f)
    assert str(ei.value).startswith(str(f))


# --------------------------------------------------------------------------------------
# the command: bad input, and guests that misbehave (through run_batch's command seam)


@pytest.mark.parametrize("argv,msg", [
    (["--exporter", "i915"], "'i915' is not an exporter the runner drives"),
    (["--kernel", "6.12-cloud", "--exporter", "vgem"], "kernel 6.12-cloud has no vgem exporter; use --kernel 6.12"),
    (["--kernel", "5.4"], "unknown kernel '5.4'"),
    (["--traces", "0"], "argument --traces: expected a number of traces: a whole number from 1 to 30,000, got '0'"),
    (["--traces", "30001"], "argument --traces: expected a number of traces: a whole number from 1 to 30,000, got '30001'"),
    (["--scope", "huge"], "unknown scope 'huge'"),
    (["--timeout", "-3"], "argument --timeout: expected a number of seconds above 0"),
    (["--timeout", "nan"], "argument --timeout: expected a number of seconds above 0"),
    (["--show", "-1"], "argument --show: expected a number of traces: a whole number from 0 to 10,000"),
])
def test_cli_bad_input(capsys, argv, msg):
    assert main(["conform", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_cli_bad_known_file(capsys, tmp_path):
    f = tmp_path / "k.toml"
    f.write_text("[[known]]\nid = 'x'\n")
    assert main(["conform", "--known", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(str(f)) and "missing key 'kernel'" in err and len(err.splitlines()) == 1


@needs_gcc
def test_guest_that_never_powers_off_is_a_clear_error_not_a_hang(tmp_path):
    traces = random_traces("udmabuf", 3, 1)
    t0 = time.monotonic()
    run = conform_kernel("6.12-cloud", traces, timeout=2, progress=lambda m: None, cache_dir=tmp_path / "k",
                         command=[sys.executable, "-c", "import time; print('booting', flush=True); time.sleep(600)"])
    assert time.monotonic() - t0 < 30
    assert run.error.startswith("6.12-cloud: guest did not power off within 2 s")
    assert "booting" in (tmp_path / "conform" / "6.12-cloud-console.log").read_text()
    assert not run.passed and {v.status for v in run.verdicts} == {"unknown"}
    assert run.summaries[0].unknown == 3
    assert "FAILED" in format_table([run])


@needs_gcc
def test_fake_guest_with_garbled_and_agreeing_output(tmp_path):
    traces = random_traces("udmabuf", 4, 1) + random_traces("system-heap", 4, 1, first_id=10)
    text = console(traces)
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if '"t":1,"s":2,' in line)
    lines[k] = lines[k][:30] + "[   3.1] kernel noise" + lines[k][30:]  # interleaved: checksum breaks
    out = tmp_path / "console.txt"
    out.write_text("\n".join(lines) + "\n")
    run = conform_kernel("6.12-cloud", traces, timeout=30, progress=lambda m: None,
                         cache_dir=tmp_path / "kernels",
                         command=[sys.executable, "-c", f"print(open({str(out)!r}).read(), end='')"])
    assert "runner lines garbled" in run.error and not run.passed
    assert (tmp_path / "conform" / "6.12-cloud-console.log").read_text() == out.read_text()
    st = {v.trace.id: v.status for v in run.verdicts}
    assert st[1] == "unknown" and all(s == "agree" for i, s in st.items() if i != 1)
    assert run.uname == UNAME and run.seconds is not None
    table = format_table([run])
    assert "udmabuf" in table and "system-heap" in table and "75.0%" in table


def test_the_source_fetch_refuses_bad_input(capsys):
    # python -m properties.conform.sources: one line on stderr, exit 2 (no network needed)
    from properties.conform.sources import main, source_package
    from properties.conform.kernels import cached_kernel

    assert main([]) == 2 and "usage:" in capsys.readouterr().err
    assert main(["7.0-nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown kernel '7.0-nope'" in err
    fk = cached_kernel("6.12")
    if fk is not None:
        assert source_package(fk) == "linux-source-6.12"
