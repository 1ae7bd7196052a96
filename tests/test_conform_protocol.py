"""Fast tests of the conformance harness: batch format, console parsing, timeouts,
initramfs writing, and the runner's C code on the host. No QEMU, no network."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from properties.conform import guest, kernels
from properties.conform.protocol import (
    MARKER,
    GuestError,
    fnv1a32,
    format_line,
    parse_line,
    parse_output,
    write_batch,
)

HAVE_GCC = shutil.which("gcc") is not None
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc not installed (run properties/conform/setup.sh)")

TRACES = [
    {"id": 7, "exporter": "udmabuf", "npages": 4,
     "steps": [("create", ()), ("mmap", (0, 0, 4)), ("write", (0, 1, 42)), ("read", (0, 1)),
               ("sync", (0, 18446744073709551615)), ("close", 0)]},
    {"id": 8, "exporter": "system-heap", "npages": 1,
     "steps": [("create", ()), ("sync", (0, -1)), ("dup", (0,)), ("munmap", (3,))]},
    {"id": 9, "exporter": "vgem", "npages": 2, "steps": []},
]


# --------------------------------------------------------------------------------------
# write_batch


def test_write_batch_format():
    text = write_batch(TRACES)
    assert text == textwrap.dedent("""\
        B 3
        T 7 udmabuf 4
        S create
        S mmap 0 0 4
        S write 0 1 42
        S read 0 1
        S sync 0 18446744073709551615
        S close 0
        E
        T 8 system-heap 1
        S create
        S sync 0 18446744073709551615
        S dup 0
        S munmap 3
        E
        T 9 vgem 2
        E
        """)


def test_write_batch_empty():
    assert write_batch([]) == "B 0\n"


@pytest.mark.parametrize("bad, msg", [
    ({"id": 1, "exporter": "ion", "npages": 1, "steps": []}, "unknown exporter"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": [("kfrob", ())]}, "unknown op"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": [("mmap", (0, 0))]}, "takes 3 args"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": [("sync", (0, 2**64))]}, "64 bits"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": [("read", (0, "1"))]}, "must be an int"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": [("close", (True,))]}, "must be an int"),
    ({"id": 1, "exporter": "udmabuf", "npages": -1, "steps": []}, "npages"),
    ({"id": 1, "exporter": "udmabuf", "steps": []}, "needs keys"),
    ({"id": 1, "exporter": "udmabuf", "npages": 1, "steps": ["create"]}, "expected (op, args)"),
])
def test_write_batch_rejects(bad, msg):
    with pytest.raises(GuestError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        write_batch([bad])


def test_write_batch_duplicate_id():
    t = {"id": 1, "exporter": "udmabuf", "npages": 1, "steps": []}
    with pytest.raises(GuestError, match="duplicate trace id 1"):
        write_batch([t, dict(t)])


# --------------------------------------------------------------------------------------
# parse_output

HELLO = {"hello": 1, "uname": "6.12.95+deb12-cloud-amd64",
         "exporters": {"udmabuf": True, "system-heap": True, "vgem": False}, "modules": {}, "ntraces": 2}


def good_lines() -> list[str]:
    objs = [
        HELLO,
        {"t": 7, "begin": 1, "exporter": "udmabuf", "npages": 4, "steps": 4},
        {"t": 7, "s": 0, "op": "create", "ret": 0, "errno": 0},
        {"t": 7, "s": 1, "op": "mmap", "ret": 0, "errno": 0},
        {"t": 7, "s": 2, "op": "read", "ret": 0, "errno": 0, "val": 18446744073709551615},
        {"t": 7, "s": 3, "op": "sync", "ret": -1, "errno": 22},
        {"t": 7, "end": 1, "status": "ok"},
        {"t": 8, "begin": 1, "exporter": "system-heap", "npages": 1, "steps": 3},
        {"t": 8, "s": 0, "op": "create", "ret": 0, "errno": 0},
        {"t": 8, "s": 1, "op": "read", "err": "nomap"},
        {"t": 8, "s": 2, "op": "read", "ret": -1, "errno": 0, "sig": "SIGBUS"},
        {"t": 8, "end": 1, "status": "ok"},
        {"done": 2},
    ]
    return [format_line(o) for o in objs]


def test_parse_good_output():
    r = parse_output("\n".join(good_lines()) + "\n")
    assert r.uname == "6.12.95+deb12-cloud-amd64"
    assert dict(r.exporters) == {"udmabuf": True, "system-heap": True, "vgem": False}
    assert r.done and r.complete and not r.garbled
    assert [t.id for t in r.traces] == [7, 8]
    s = r.results[7]
    assert [x.outcome for x in s] == ["ok=0", "ok=0", "val=18446744073709551615", "EINVAL"]
    assert s[3].errno_name == "EINVAL" and not s[3].ok and s[0].ok
    t8 = r.trace(8)
    assert t8.exporter == "system-heap" and t8.complete
    assert t8.steps[1].err == "nomap" and t8.steps[1].ret is None
    assert t8.steps[2].sig == "SIGBUS" and t8.steps[2].outcome == "SIGBUS"
    # frozen
    with pytest.raises(Exception):
        s[0].ret = 5  # type: ignore[misc]


def test_parse_interleaved_kernel_log():
    lines = good_lines()
    noisy = [
        "SeaBIOS (version 1.16.2-debian-1.16.2-1)",
        "[    0.000000] Linux version 6.12.95 ...",
    ]
    for i, l in enumerate(lines):
        noisy.append(l + "\r")  # serial console line ends
        if i % 3 == 0:
            noisy.append(f"[    1.{i:06d}] random: crng init done {{\"t\": 7}}")
    # a kernel message without newline right before a runner line
    noisy[5] = "[    2.000000] udmabuf: something" + noisy[5]
    r = parse_output("\n".join(noisy))
    assert r.complete and [len(t.steps) for t in r.traces] == [4, 3]


def test_parse_without_checksums():
    text = "\n".join(MARKER + l[len(MARKER):].rsplit(" ~", 1)[0] for l in good_lines())
    assert parse_output(text).complete


def test_parse_garbled_json_strict_and_lenient():
    lines = good_lines()
    lines[3] = MARKER + '{"t":7,"s":1,"op":"mm[   3.1] kernel says hi'
    with pytest.raises(GuestError, match="garbled runner line") as ei:
        parse_output("\n".join(lines))
    assert "\n" not in str(ei.value)
    r = parse_output("\n".join(lines), strict=False)
    assert len(r.garbled) == 2 and not r.complete  # the garbled line, then the out-of-sequence one
    # the lost step is a placeholder; the later results are kept
    t = r.trace(7)
    assert t.status == "garbled" and not t.complete
    assert [x.outcome for x in t.steps] == ["ok=0", "err:lost", "val=18446744073709551615", "EINVAL"]


def test_parse_checksum_mismatch():
    lines = good_lines()
    lines[2] = lines[2].replace('"ret":0', '"ret":5')  # corrupted digit, checksum now wrong
    with pytest.raises(GuestError, match="checksum mismatch"):
        parse_output("\n".join(lines))


def test_parse_missing_done():
    lines = good_lines()[:-1]
    with pytest.raises(GuestError, match="before the done line"):
        parse_output("\n".join(lines))
    r = parse_output("\n".join(lines), strict=False)
    assert not r.done and all(t.complete for t in r.traces)


def test_parse_trace_cut_short():
    lines = good_lines()[:4] + ["[    5.1] Kernel panic - not syncing: Attempted to kill init!"]
    with pytest.raises(GuestError, match="before the done line.*Kernel panic") as ei:
        parse_output("\n".join(lines))
    assert "\n" not in str(ei.value)
    r = parse_output("\n".join(lines), strict=False)
    t = r.trace(7)
    assert t.status == "cut" and len(t.steps) == 2 and t.expected_steps == 4 and not t.complete


def test_parse_trace_end_with_missing_steps():
    lines = good_lines()
    del lines[4]  # step 2 of trace 7 vanished, step 3 then arrives out of order
    with pytest.raises(GuestError):
        parse_output("\n".join(lines))


def test_parse_killed_trace_is_a_result():
    objs = [HELLO,
            {"t": 1, "begin": 1, "exporter": "system-heap", "npages": 999999, "steps": 2},
            {"t": 1, "end": 1, "status": "killed", "sig": "SIGKILL", "signo": 9},
            {"done": 1}]
    r = parse_output("\n".join(format_line(o) for o in objs))
    t = r.trace(1)
    assert t.status == "killed" and "SIGKILL" in t.reason and not t.complete and r.done


def test_parse_missing_trace_with_expect():
    text = "\n".join(good_lines())
    extra = {"id": 99, "exporter": "udmabuf", "npages": 1, "steps": [("create", ())]}
    with pytest.raises(GuestError, match="trace 99 cut short"):
        parse_output(text, expect=TRACES[:0] + [extra])
    r = parse_output(text, strict=False, expect=[extra])
    assert r.trace(99).status == "missing"


def test_parse_no_hello():
    with pytest.raises(GuestError, match="no hello line"):
        parse_output("[ 0.0] Linux version\n[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root\n")


def test_parse_fatal():
    text = format_line(HELLO) + "\n" + format_line({"fatal": "batch line 3: unknown op", "errno": 0})
    with pytest.raises(GuestError, match="runner failed in the guest: batch line 3: unknown op"):
        parse_output(text)


def test_parse_line_helpers():
    assert parse_line("[ 1.0] nothing") is None
    assert parse_line(format_line({"done": 0})) == {"done": 0}
    assert fnv1a32(b"") == 0x811C9DC5 and fnv1a32(b"a") == 0xE40C292C
    with pytest.raises(ValueError):
        parse_line(MARKER + "[1,2]")


# --------------------------------------------------------------------------------------
# boot seam: a "guest" that never powers off, and a fake guest printing canned output


def test_boot_timeout_never_powers_off():
    t0 = time.monotonic()
    argv = [sys.executable, "-c", "import time; print('[ 0.0] booting', flush=True); time.sleep(600)"]
    with pytest.raises(GuestError, match=r"^guest did not power off within 1.5 s$") as ei:
        guest.boot(argv, timeout=1.5, progress=lambda m: None)
    assert time.monotonic() - t0 < 15
    assert "booting" in ei.value.log


def test_boot_child_holding_pipe_is_killed():
    # the stand-in forks a grandchild that keeps stdout open: the process group is killed
    code = "import os,time\nif os.fork()==0: time.sleep(600)\ntime.sleep(600)"
    t0 = time.monotonic()
    with pytest.raises(GuestError, match="did not power off"):
        guest.boot([sys.executable, "-c", code], timeout=1, progress=lambda m: None)
    assert time.monotonic() - t0 < 15


def test_boot_command_not_found():
    with pytest.raises(GuestError, match="cannot start"):
        guest.boot(["/nonexistent/qemu"], timeout=5, progress=lambda m: None)


@needs_gcc
def test_run_batch_timeout_via_command_seam():
    t0 = time.monotonic()
    with pytest.raises(GuestError, match="guest did not power off within 2 s"):
        guest.run_batch(TRACES[:1], timeout=2, progress=None,
                        command=[sys.executable, "-c", "import time; time.sleep(600)"])
    assert time.monotonic() - t0 < 20


@needs_gcc
def test_run_batch_with_fake_guest(tmp_path):
    out = tmp_path / "console.txt"
    out.write_text("\n".join(["[ 0.1] kernel noise"] + good_lines()[:7] + [
        format_line({"t": 8, "begin": 1, "exporter": "system-heap", "npages": 1, "steps": 4}),
        *[format_line({"t": 8, "s": i, "op": op, "ret": 0, "errno": 0})
          for i, op in enumerate(["create", "sync", "dup", "munmap"])],
        format_line({"t": 8, "end": 1, "status": "ok"}),
        format_line({"done": 2}),
    ]) + "\n")
    # the fake guest checks it was handed a real initramfs holding the batch, then "boots"
    script = textwrap.dedent(f"""
        import sys
        data = open(sys.argv[1], 'rb').read()
        assert data.startswith(b'070701') and b'TRAILER!!!' in data and b'T 7 udmabuf 4' in data
        sys.stdout.write(open({str(out)!r}).read())
    """)
    seen = []
    r = guest.run_batch(TRACES[:2], timeout=30, progress=seen.append,
                        command=[sys.executable, "-c", script, "{initrd}"])
    assert r.complete and r.boot_seconds is not None and r.kernel is None
    assert [s.outcome for s in r.results[7]] == ["ok=0", "ok=0", "val=18446744073709551615", "EINVAL"]
    assert any("traces done: 2/2" in m for m in seen)


def test_run_batch_refuses_missing_exporter_before_booting():
    t = {"id": 1, "exporter": "vgem", "npages": 1, "steps": [("create", ())]}
    with pytest.raises(GuestError, match=r"kernel 6.12-cloud has no vgem exporter.*use kernel '6.12'"):
        guest.run_batch([t], kernel="6.12-cloud", progress=None)


def test_unknown_kernel():
    with pytest.raises(GuestError, match="unknown kernel '5.4'"):
        guest.run_batch([], kernel="5.4", progress=None)


# --------------------------------------------------------------------------------------
# initramfs, catalog


def test_newc_archive_roundtrip(tmp_path):
    runner = tmp_path / "init"
    runner.write_bytes(b"\x7fELF fake")
    mod = tmp_path / "vgem.ko"
    mod.write_bytes(b"module")
    img = guest.build_initramfs(tmp_path / "i.cpio", runner, "B 0\n", modules=[mod])
    data = img.read_bytes()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    # walk the archive
    entries, off = {}, 0
    while True:
        hdr = data[off:off + 110]
        assert hdr[:6] == b"070701"
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        body = data[off:off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            break
        entries[name] = (mode, body, rmaj, rmin)
    assert entries["dev/console"][0] == 0o020600 and entries["dev/console"][2:] == (5, 1)
    assert entries["init"][0] == 0o100755 and entries["init"][1] == b"\x7fELF fake"
    assert entries["batch"][1] == b"B 0\n"
    assert entries["modules/order"][1] == b"vgem.ko\n"
    if shutil.which("cpio"):
        listing = subprocess.run(["cpio", "-itv"], input=data, capture_output=True).stdout.decode()
        assert "dev/console" in listing and listing.count("\n") == len(entries)


def test_catalog():
    assert {"6.12-cloud", "6.12", "6.1"} <= set(kernels.CATALOG)
    assert kernels.CATALOG["6.12-cloud"].exporters == {"udmabuf", "system-heap"}
    assert kernels.CATALOG["6.12"].modules == ("vgem",)
    assert "vgem" in kernels.CATALOG["6.1"].exporters
    assert kernels.DEFAULT_KERNEL == "6.12-cloud"


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DMABUF_CHECK_CACHE", str(tmp_path))
    assert kernels.default_cache_dir() == tmp_path
    assert kernels.cached_kernel("6.12-cloud") is None
    monkeypatch.delenv("DMABUF_CHECK_CACHE")
    assert kernels.default_cache_dir().parts[-2:] == (".cache", "kernels")


def test_qemu_argv_uses_tcg():
    argv = guest.qemu_argv("/k", "/i")
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-accel") + 1] == "tcg" and argv[argv.index("-cpu") + 1].startswith("max")
    assert "-no-reboot" in argv and "console=ttyS0" in argv[argv.index("-append") + 1]


# --------------------------------------------------------------------------------------
# the runner's C code, exercised on the host (reboot() is replaced, nothing is mounted)

HARNESS = r"""
#define main runner_main
#define reboot fake_reboot
#include RUNNER
#undef main
int fake_reboot(int how) { (void)how; _exit(3); }
int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "fault")) {
		struct sigaction fa;
		memset(&fa, 0, sizeof fa);
		fa.sa_handler = on_fault;
		sigaction(SIGBUS, &fa, NULL);
		sigaction(SIGSEGV, &fa, NULL);
		uint64_t v = 0;
		void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int segv = guarded_access(none, 0, 0, &v);
		int fd = memfd_create("t", 0);
		ftruncate(fd, 4096);
		char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		int ok_w = guarded_access((volatile uint64_t *)two, 1, 77, &v);
		int ok_r = guarded_access((volatile uint64_t *)two, 0, 0, &v);
		int bus = guarded_access((volatile uint64_t *)(two + 4096), 0, 0, &v);
		int again = guarded_access((volatile uint64_t *)two, 0, 0, &v);
		printf("%d %d %d %d %d %llu\n", segv, ok_w, ok_r, bus, again, (unsigned long long)v);
		return 0;
	}
	size_t len;
	char *b = read_file(argv[2], &len);
	parse_batch(b);
	printf("%zu\n", ntraces);
	for (size_t i = 0; i < ntraces; i++) {
		printf("T %lld %s %llu\n", traces[i].id, exp_names[traces[i].exporter],
		       (unsigned long long)traces[i].npages);
		for (size_t s = 0; s < traces[i].nsteps; s++) {
			printf("S %s", op_names[traces[i].steps[s].op]);
			for (int a = 0; a < op_nargs[traces[i].steps[s].op]; a++)
				printf(" %llu", (unsigned long long)traces[i].steps[s].a[a]);
			printf("\n");
		}
	}
	return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if not HAVE_GCC:
        pytest.skip("gcc not installed (run properties/conform/setup.sh)")
    d = tmp_path_factory.mktemp("runner")
    src = d / "harness.c"
    src.write_text(HARNESS)
    exe = d / "harness"
    proc = subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
         f"-DRUNNER=\"{guest.RUNNER_SOURCE}\"", "-o", str(exe), str(src)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


@needs_gcc
def test_runner_builds_static(tmp_path):
    exe = guest.build_runner(tmp_path)
    assert exe.read_bytes()[:4] == b"\x7fELF"
    proc = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                           str(guest.RUNNER_SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_runner_catches_faults(harness):
    out = subprocess.run([str(harness), "fault"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    segv, ok_w, ok_r, bus, again, val = map(int, out.stdout.split())
    assert (segv, ok_w, ok_r, bus, again, val) == (11, 0, 0, 7, 0, 77)


def test_runner_parses_write_batch_output(harness, tmp_path):
    f = tmp_path / "batch"
    f.write_text(write_batch(TRACES))
    out = subprocess.run([str(harness), "batch", str(f)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "3"
    # the C parser sees exactly what Python wrote (minus the B/E framing)
    expected = [l for l in write_batch(TRACES).splitlines() if l[0] in "TS"]
    assert lines[1:] == expected


@pytest.mark.parametrize("batch, why", [
    ("B 1\nT 1 udmabuf 1\nS kfrob\nE\n", "unknown op"),
    ("B 1\nT 1 udmabuf 1\nS mmap 0 0\nE\n", "wrong number of arguments"),
    ("B 2\nT 1 udmabuf 1\nE\n", "declares 2 traces but holds 1"),
    ("B 1\nT 1 ion 1\nE\n", "unknown exporter"),
    ("B 1\nT 1 udmabuf 1\nS read 0 x\nE\n", "bad integer"),
    ("B 1\nT 1 udmabuf 1\nS create\n", "no E line"),
])
def test_runner_rejects_bad_batch(harness, tmp_path, batch, why):
    f = tmp_path / "batch"
    f.write_text(batch)
    out = subprocess.run([str(harness), "batch", str(f)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 3  # fatal -> power off (faked)
    obj = parse_line(out.stdout.strip())
    assert obj is not None and why in obj["fatal"]
    with pytest.raises(GuestError, match=why):
        parse_output(format_line({"hello": 1, "uname": "x", "exporters": {}}) + "\n" + out.stdout)
