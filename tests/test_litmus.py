"""Litmus files: the whole library passes, covers every undefined and tension claim and the
userspace tests of corpus §8; steps are parsed, never evaluated; invalid files exit 2 naming the
file and the step; a file not as expected prints ``No`` with what differed and exits 1."""
from __future__ import annotations

import pytest

from model.catalog import CATALOG
from model.constants import DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_FROM_DEVICE, errno_name
from model.machine import Model
from properties.claims import NOT_MODELLED, load_claims
from properties.cli import main
from properties.scenarios.litmus import LIBRARY, LitmusError, LitmusRunner, collect, load_litmus, parse_step

FILES = collect([LIBRARY])


@pytest.fixture(scope="module")
def runner():
    return LitmusRunner()


@pytest.fixture(scope="module")
def library(runner):
    return {p.name: runner.run(load_litmus(p)) for p in FILES}


def test_the_whole_library_passes(library):
    assert len(library) >= 40
    bad = {name: out.differences for name, out in library.items() if not out.ok}
    assert not bad


def test_litmus_command_runs_the_library_by_default(capsys):
    assert main(["litmus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(1 for line in lines if line.startswith("Ok ")) == len(FILES)
    assert lines[-1] == f"litmus: {len(FILES)} files, {len(FILES)} Ok, 0 No"


def test_every_undefined_and_tension_claim_has_a_file(library):
    wanted = {c.id for c in load_claims().values() if c.who in ("undefined", "tension")}
    assert {"KCPU-KMAP-AFTER-END", "FIXME-NO-USER-PIN", "MMAP-OPTIONAL-DRIFT"} <= wanted
    covered = {c for out in library.values() for c in out.test.claims}
    assert not wanted - covered
    for claim in wanted - set(NOT_MODELLED):
        # a modelled claim is shown firing, not only mentioned
        assert any(claim in out.test.fires for out in library.values()), claim
    for claim in wanted & set(NOT_MODELLED):
        files = [out for out in library.values() if claim in out.test.claims]
        assert all(not out.test.fires and out.test.returns is not None for out in files), claim


def test_the_userspace_tests_of_the_corpus_are_there(library):
    names = set(library)
    for n in ("igt-prime-mmap-errors-closed-fd", "igt-prime-mmap-errors-too-big", "igt-prime-mmap-errors-overlap",
              "igt-prime-mmap-invalid-sync-flags", "igt-prime-mmap-reprime", "igt-prime-mmap-dup",
              "igt-prime-mmap-coherency-read", "igt-prime-mmap-coherency-write",
              "selftest-dmabuf-heap", "selftest-udmabuf-end-before-start"):
        assert n + ".litmus.toml" in names, n
    flags = library["igt-prime-mmap-invalid-sync-flags.litmus.toml"]
    assert [s.ret for s in flags.trace.steps][2:] == [-22] * 4
    assert library["selftest-udmabuf-end-before-start.litmus.toml"].trace.steps[2].ret == -22


def test_the_readme_has_a_paragraph_per_file():
    text = (LIBRARY / "README.md").read_text()
    for p in FILES:
        assert f"**{p.name[:-len('.litmus.toml')]}**" in text, p.name


# --- the step parser -----------------------------------------------------------------------------

def test_parse_step_values():
    assert parse_step("dma_buf_kmap(buf=0, page=1)") == ("dma_buf_kmap", (("buf", 0), ("page", 1)))
    assert parse_step("ioctl_sync(fd=0, flags=DMA_BUF_SYNC_END|DMA_BUF_SYNC_READ)")[1] == \
        (("fd", 0), ("flags", DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ))
    assert parse_step("ioctl_sync(fd=0, flags=0xffffffffffffffff, interrupted=True,)")[1] == \
        (("fd", 0), ("flags", (1 << 64) - 1), ("interrupted", True))
    assert parse_step(" x ( a = -3 | 4 , b=DMA_FROM_DEVICE ) ")[1] == (("a", -3 | 4), ("b", DMA_FROM_DEVICE))
    assert parse_step("dup()") == ("dup", ())


@pytest.mark.parametrize("text, msg", [
    ("dma_buf_kmap(buf=0, page=1", "expected ',' or ')'"),
    ("dma_buf_kmap(buf=0 page=1)", "expected ',' or ')'"),
    ("dma_buf_kmap(buf=0, buf=1)", "parameter 'buf' given twice"),
    ("dma_buf_kmap(buf=DMA_FROM_DEVIC)", "unknown constant 'DMA_FROM_DEVIC' (did you mean DMA_FROM_DEVICE?)"),
    ("dma_buf_kmap(buf=__import__('os').system('true'))", "unexpected character"),
    ("dma_buf_kmap(buf=__import__)", "unknown constant '__import__'"),
    ("dma_buf_kmap(buf=1+1)", "unexpected character '+'"),
    ("dma_buf_kmap(buf=True|1)", "True/False cannot be combined"),
    ("dma_buf_kmap(buf=-DMA_TO_DEVICE)", "'-' must be followed by an integer"),
    ("dma_buf_kmap(buf=007)", "without leading zeros"),
    ("dma_buf_kmap(buf=0) trailing", "expected the end of the step"),
    ("(buf=0)", "expected an action name"),
])
def test_parse_step_rejects(text, msg):
    with pytest.raises(ValueError) as e:
        parse_step(text)
    assert msg in str(e.value) and "column" in str(e.value)


@pytest.mark.parametrize("scope", ["small", "default"])
def test_every_instance_prints_as_a_parsable_step(scope):
    model = Model(CATALOG["reference"], scope)
    for inst in model.instances:
        name, args = parse_step(str(inst))
        assert model.find(name, **dict(args)) == inst


# --- invalid files and mismatches --------------------------------------------------------------

BASE = '''title = "t"
claims = ["KCPU-KMAP-AFTER-END"]
exporter = "omapdrm"
steps = [
  "dma_buf_export(buf=0)",
  "dma_buf_begin_cpu_access(buf=0, direction=DMA_FROM_DEVICE)",
  "dma_buf_end_cpu_access(buf=0, direction=DMA_FROM_DEVICE)",
  "dma_buf_kmap(buf=0, page=0)",
]

[expect]
returns = [0, 0, 0, "*"]
fires = ["KCPU-KMAP-AFTER-END"]
quiet = ["LIFE-RELEASE"]
'''


def _file(tmp_path, text, name="t.litmus.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("old, new, msg", [
    ('"dma_buf_kmap(buf=0, page=0)"', '"dma_buf_kmapp(buf=0, page=0)"',
     "step 4 (line 8): unknown action 'dma_buf_kmapp' (did you mean dma_buf_kmap?)"),
    ('"dma_buf_kmap(buf=0, page=0)"', '"dma_buf_unpi(att=0)"',   # no suggestion absent at v4.11
     "step 4 (line 8): unknown action 'dma_buf_unpi' (dma_buf_unpin exists at revision v5.12, v6.12, not at v4.11)"),
    ('"dma_buf_kmap(buf=0, page=0)"', '"dma_buf_kmap(buf=0, page=5)"',
     "step 4 (line 8): dma_buf_kmap: page=5 is outside the scope small"),
    ('"dma_buf_kmap(buf=0, page=0)"', '"dma_buf_kmap(buf=0, pages=0)"',
     "step 4 (line 8): dma_buf_kmap has no parameter 'pages'"),
    ('"dma_buf_kmap(buf=0, page=0)"', '"dma_buf_kmap(buf=0, page=0"',
     "step 4 (line 8): 'dma_buf_kmap(buf=0, page=0': column 27: expected ',' or ')'"),
    ('  "dma_buf_export(buf=0)",\n', '  "dma_buf_export(buf=0)",\n  "dma_buf_put(buf=0)",\n',
     "expect.returns has 4 entries for 5 steps"),
    ('returns = [0, 0, 0, "*"]', 'returns = [0, 0, 0, "EINVAL"]', "unknown return 'EINVAL' (did you mean '-EINVAL'?)"),
    ('returns = [0, 0, 0, "*"]', 'returns = [0, 0, 0, true]', "true/false is not a return value"),
    ('fires = ["KCPU-KMAP-AFTER-END"]', 'fires = ["KCPU-KMAP-AFTER-ENDS"]', "unknown claim 'KCPU-KMAP-AFTER-ENDS'"),
    ('fires = ["KCPU-KMAP-AFTER-END"]', 'fires = ["KCPU-RANGE-UB"]', "claim KCPU-RANGE-UB is not modelled"),
    ('fires = ["KCPU-KMAP-AFTER-END"]', 'fires = ["MMAP-OWN-FILE"]',
     "no property citing MMAP-OWN-FILE applies here (P-ZAP-OWN-FILE needs buffers >= 2)"),
    ('quiet = ["LIFE-RELEASE"]', 'quiet = ["KCPU-KMAP-AFTER-END"]', "is both in expect.fires and expect.quiet"),
    ('exporter = "omapdrm"', 'exporter = "omapdrn"', "exporter 'omapdrn' is neither a catalog exporter (did you mean 'omapdrm'?)"),
    ('exporter = "omapdrm"', 'exporter = "mine.toml"', "cannot read policy file"),
    ('title = "t"', 'titel = "t"', "unknown key 'titel' (did you mean 'title'?)"),
    ('title = "t"', 'title = "t"\nscope = "huge"', "scope 'huge' is unknown"),
    ('title = "t"', 'title = "t', "not valid TOML"),
])
def test_invalid_files_exit_2_naming_file_and_step(tmp_path, capsys, old, new, msg):
    assert old in BASE
    p = _file(tmp_path, BASE.replace(old, new))
    assert main(["litmus", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{p}: ") and msg in err[0], err


_EXPECT = '[expect]\nreturns = [0, 0, 0, "*"]\nfires = ["KCPU-KMAP-AFTER-END"]\nquiet = ["LIFE-RELEASE"]\n'
_STEPS = BASE[BASE.index("steps = ["):BASE.index("\n]\n") + 3]


@pytest.mark.parametrize("old, new, msg", [
    (_STEPS, 'steps = []\n', "'steps' is empty"),
    (_EXPECT, "", "[expect] checks nothing"),
    (_EXPECT, '[expect]\nreturns = ["*", "*", "*", "*"]\n', "[expect] checks nothing"),
])
def test_a_file_that_could_not_fail_is_invalid(tmp_path, capsys, old, new, msg):
    """No step, or nothing expected: it would print Ok whatever the model does."""
    assert old in BASE
    p = _file(tmp_path, BASE.replace(old, new))
    assert main(["litmus", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{p}: ") and msg in err[0], err


def test_a_step_the_model_cannot_take_is_invalid(tmp_path, capsys):
    text = BASE.replace('  "dma_buf_export(buf=0)",\n', '  "dma_buf_export(buf=0)",\n  "dma_buf_fd(buf=0)",\n') \
        .replace('returns = [0, 0, 0, "*"]', 'returns = [0, 0, 0, 0, "*"]')
    p = _file(tmp_path, text)
    with pytest.raises(LitmusError) as e:
        LitmusRunner().run(load_litmus(p))
    assert "step 3 (line 7): dma_buf_begin_cpu_access(buf=0, direction=DMA_FROM_DEVICE) cannot be taken here: " \
           "the kernel holds no reference to buffer 0" in str(e.value)
    assert main(["litmus", str(p)]) == 2


def test_mismatch_prints_no_and_exits_1(tmp_path, capsys):
    text = BASE.replace('returns = [0, 0, 0, "*"]', 'returns = [0, 0, "-EINVAL", "*"]') \
        .replace('quiet = ["LIFE-RELEASE"]', 'quiet = ["LIFE-RELEASE"]\n').replace(
            'fires = ["KCPU-KMAP-AFTER-END"]', 'fires = ["KCPU-KMAP-AFTER-END", "KCPU-BRACKET"]')
    p = _file(tmp_path, text, "no.litmus.toml")
    ok = _file(tmp_path, BASE, "ok.litmus.toml")
    assert main(["litmus", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("No ") and str(p.name) in out[0]
    assert "step 3 dma_buf_end_cpu_access(buf=0, direction=DMA_FROM_DEVICE) returned 0, expected -EINVAL" in out[0]
    assert "KCPU-BRACKET did not fire" in out[0]
    assert out[1].startswith("Ok ") and ok.name in out[1]
    assert out[-1] == "litmus: 2 files, 1 Ok, 1 No"


def test_quiet_claim_that_fires_is_a_mismatch(tmp_path, capsys):
    p = _file(tmp_path, BASE.replace('fires = ["KCPU-KMAP-AFTER-END"]', 'fires = []')
              .replace('quiet = ["LIFE-RELEASE"]', 'quiet = ["KCPU-KMAP-AFTER-END"]'))
    assert main(["litmus", str(p)]) == 1
    assert "KCPU-KMAP-AFTER-END fired at step 4 (P-KMAP-AFTER-END), expected quiet" in capsys.readouterr().out


def test_witnesses_do_not_fire(runner):
    out = runner.run(load_litmus(LIBRARY / "kmap-in-bracket.litmus.toml"))
    assert any(pid.startswith("W-") for f in out.fired for pid in f)    # witnesses were reached ...
    assert "KCPU-REMAP" not in out.fired_claims                        # ... and cited claims stay quiet


def test_policy_file_relative_to_the_litmus_file(tmp_path, capsys):
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "mine.toml").write_text('name = "mine"\nbased_on = "reference"\n[knobs]\nhas_mmap = false\n')
    text = '''title = "mine"
exporter = "pol/mine.toml"
steps = ["dma_buf_export(buf=0)"]
[expect]
returns = ["-EINVAL"]
fires = ["MMAP-OPTIONAL-DRIFT"]
'''
    p = _file(tmp_path, text)
    assert main(["litmus", "-v", str(p)]) == 0
    out = capsys.readouterr().out
    # the v4.11 dma_buf_export() refuses ops without mmap: the refused export is the drift
    assert "exporter mine" in out and "MMAP-OPTIONAL-DRIFT (step 1, P-EXPORT-OPS-DRIFT)" in out


def test_missing_path_and_empty_folder_exit_2(tmp_path, capsys):
    assert main(["litmus", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["litmus", str(tmp_path)]) == 2
    assert "no *.litmus.toml files" in capsys.readouterr().err


# --- values outside the scope ------------------------------------------------------------------

def test_values_outside_the_scope_get_the_kernels_answer(library):
    """mmap's pgoff and npages and the SYNC flags are taken at any value of their C type; the
    step returns what the kernel returns (the mm core's checks, then the dma-buf core's)."""
    want = {
        "mmap-length-any-value": [0, 0, "-EINVAL", "-EINVAL", "-ENOMEM", "0"],
        "mmap-pgoff-wraps": [0, 0, "-EOVERFLOW", "-EOVERFLOW", "-EINVAL"],
        "mmap-byte-range-past-ulong-max": [0, 0, "-EINVAL"],
        "mmap-pgoff-wraps-v5.12": [0, 0, "-EOVERFLOW", "-EOVERFLOW", "-EOVERFLOW", "-EOVERFLOW", "-EINVAL"],
        "sync-flags-any-u64": [0, 0, "-EINVAL", "-EINVAL", "-EINVAL", "0", "0"],
        "sync-flags-any-u64-v5.12": [0, 0, "-EINVAL", "-EINVAL"],
    }
    for name, rets in want.items():
        out = library[name + ".litmus.toml"]
        assert out.ok and [errno_name(s.ret) for s in out.trace.steps] == [str(r) for r in rets], name
    assert library["mmap-pgoff-wraps-v5.12.litmus.toml"].test.revision == "v5.12"


@pytest.mark.parametrize("step, msg", [
    ("ioctl_sync(fd=0, flags=-1)", "step 3 (line 3): ioctl_sync: flags=-1 is outside the range of __u64"),
    ("mmap(fd=0, pgoff=0x10000000000000000, npages=1)", "pgoff=18446744073709551616 is outside the range of "
                                                        "unsigned long (vma->vm_pgoff): 0 .. 0xffffffffffffffff"),
    ("mmap(fd=3, pgoff=0, npages=100)", "step 3 (line 3): mmap: fd=3 is outside the scope small"),
])
def test_a_value_outside_its_c_type_or_a_handle_outside_the_scope_is_invalid(tmp_path, capsys, step, msg):
    p = _file(tmp_path, f'title = "t"\nexporter = "i915"\nsteps = ["dma_buf_export(buf=0)", "dma_buf_fd(buf=0)", '
                        f'"{step}"]\n[expect]\nreturns = [0, 0, "*"]\nquiet = ["SYNC-FLAGS"]\n')
    assert main(["litmus", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{p}: ") and msg in err[0], err
