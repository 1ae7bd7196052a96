"""Boot a real kernel under QEMU (TCG) with the runner as /init and collect results.

``run_batch(traces)`` is the whole pipeline: fetch the kernel (cached), make sure
QEMU is installed (``setup.sh``), build the static runner and an initramfs holding
the batch in a temporary folder, boot, stream the serial console (progress on
stderr), enforce the timeout, and parse the output into a ``GuestResult``.
"""
from __future__ import annotations

import dataclasses
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import kernels as _kernels
from .kernels import DEFAULT_KERNEL, FetchedKernel, fetch_kernel
from .module import MODULE_NAME, build_module
from .protocol import GuestError, GuestResult, parse_line, parse_output, write_batch

__all__ = [
    "run_batch",
    "boot",
    "ensure_qemu",
    "build_runner",
    "build_initramfs",
    "newc_archive",
    "qemu_argv",
    "RUNNER_SOURCE",
    "SETUP_SCRIPT",
    "KERNEL_APPEND",
]

HERE = Path(__file__).resolve().parent
RUNNER_SOURCE = HERE / "runner.c"
SETUP_SCRIPT = HERE / "setup.sh"
KERNEL_APPEND = "console=ttyS0 panic=-1 quiet"
QEMU = "qemu-system-x86_64"

Progress = Callable[[str], None]


def _stderr_progress(msg: str) -> None:
    print(f"conform: {msg}", file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    pass


# --------------------------------------------------------------------------------------
# tools


def ensure_qemu(progress: Progress = _stderr_progress) -> str:
    """Path of qemu-system-x86_64, installing it (and cpio, gcc, libc6-dev) with setup.sh
    if missing. Raises GuestError when that is not possible."""
    found = shutil.which(QEMU)
    if found and shutil.which("gcc"):
        return found
    progress(f"{QEMU} or gcc missing: running {SETUP_SCRIPT.name}")
    try:
        proc = subprocess.run(["sh", str(SETUP_SCRIPT)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise GuestError(f"{SETUP_SCRIPT.name} did not finish within 900 s") from None
    found = shutil.which(QEMU)
    if proc.returncode != 0 or not found:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise GuestError(f"cannot install QEMU: {SETUP_SCRIPT.name} failed "
                         f"({lines[-1] if lines else f'exit status {proc.returncode}'})")
    return found


def build_runner(out_dir: Path | str, source: Path | str = RUNNER_SOURCE) -> Path:
    """Compile runner.c statically; returns the binary's path."""
    out = Path(out_dir) / "init"
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise GuestError("no C compiler (gcc) to build the runner; run properties/conform/setup.sh")
    proc = subprocess.run([cc, "-static", "-O2", "-Wall", "-o", str(out), str(source)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        errs = [l for l in proc.stderr.splitlines() if "error" in l] or proc.stderr.splitlines() or ["?"]
        raise GuestError(f"building the runner failed: {errs[0].strip()}")
    return out


# --------------------------------------------------------------------------------------
# initramfs (cpio "newc", written directly so no root is needed for /dev/console)

S_IFDIR, S_IFREG, S_IFCHR = 0o040000, 0o100000, 0o020000


def newc_archive(entries: Iterable[tuple[str, int, bytes, int, int]]) -> bytes:
    """A cpio archive in the "newc" format (what ``cpio -H newc`` writes).

    Each entry is ``(name, mode, data, rdev_major, rdev_minor)`` where mode includes
    the file type bits. The TRAILER!!! entry is appended.
    """
    out = bytearray()

    def pad4() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    ino = 1
    for name, mode, data, rmaj, rmin in list(entries) + [("TRAILER!!!", 0, b"", 0, 0)]:
        nameb = name.encode() + b"\0"
        nlink = 2 if mode & S_IFDIR else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(nameb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(nameb)
        pad4()
        out.extend(data)
        pad4()
        ino += 1
    return bytes(out)


def build_initramfs(
    path: Path | str,
    runner: Path | str,
    batch: str,
    modules: Sequence[Path] = (),
    decompress_modules: bool = False,
) -> Path:
    """Write the initramfs: /init (runner), /batch, /dev/console, /proc, /modules."""
    entries: list[tuple[str, int, bytes, int, int]] = [
        ("dev", S_IFDIR | 0o755, b"", 0, 0),
        ("dev/console", S_IFCHR | 0o600, b"", 5, 1),
        ("proc", S_IFDIR | 0o755, b"", 0, 0),
        ("init", S_IFREG | 0o755, Path(runner).read_bytes(), 0, 0),
        ("batch", S_IFREG | 0o644, batch.encode(), 0, 0),
    ]
    if modules:
        entries.append(("modules", S_IFDIR | 0o755, b"", 0, 0))
        names = []
        for m in modules:
            if decompress_modules and m.name.endswith((".xz", ".zst", ".gz")):
                name, data = m.name.rsplit(".", 1)[0], _kernels._module_bytes(m)
            else:
                name, data = m.name, m.read_bytes()
            names.append(name)
            entries.append((f"modules/{name}", S_IFREG | 0o644, data, 0, 0))
        entries.append(("modules/order", S_IFREG | 0o644, ("\n".join(names) + "\n").encode(), 0, 0))
    path = Path(path)
    path.write_bytes(newc_archive(entries))
    return path


def qemu_argv(kernel_image: Path | str, initrd: Path | str, *, append: str = KERNEL_APPEND,
              memory: str = "512M", qemu: str = QEMU) -> list[str]:
    # cx16=off: QEMU 7.2's TCG corrupts EFLAGS in a gs-prefixed CMPXCHG16B now and then (SLUB's
    # this_cpu_cmpxchg128 in kmem_cache_alloc -> double fault; about half the 6.12 boots died);
    # without CX16 the kernel's SLUB takes its locked path instead
    return [
        qemu, "-accel", "tcg", "-cpu", "max,cx16=off", "-m", memory, "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(kernel_image), "-initrd", str(initrd), "-append", append,
    ]


# --------------------------------------------------------------------------------------
# boot


def boot(
    argv: Sequence[str],
    timeout: float,
    progress: Progress = _stderr_progress,
    n_traces: int | None = None,
) -> tuple[str, float]:
    """Run `argv` (QEMU, or a stand-in), stream its console, return (output, seconds).

    The process gets `timeout` seconds to exit by itself (the guest powers off);
    otherwise it is killed with its process group and GuestError is raised.
    """
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        raise GuestError(f"cannot start {argv[0]}: {e.strerror}") from None
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    chunks: list[bytes] = []
    partial = b""
    ended = 0
    last_report = t0
    deadline = t0 + timeout
    eof = False
    try:
        while not eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for _key, _ in sel.select(timeout=min(left, 1.0)):
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    eof = True
                    break
                chunks.append(data)
                partial += data
                *lines, partial = partial.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    try:
                        obj = parse_line(line)
                    except ValueError:
                        continue
                    if not obj:
                        continue
                    if "hello" in obj:
                        exp = ", ".join(k for k, v in (obj.get("exporters") or {}).items() if v) or "none"
                        progress(f"guest up after {time.monotonic() - t0:.1f} s: uname {obj.get('uname')}, "
                                 f"exporters: {exp}")
                    elif "end" in obj:
                        ended += 1
                        now = time.monotonic()
                        if now - last_report >= 5 or ended == n_traces:
                            progress(f"traces done: {ended}/{n_traces if n_traces is not None else '?'}")
                            last_report = now
        if not eof:
            _kill(proc)
            raise GuestError(f"guest did not power off within {timeout:g} s",
                             b"".join(chunks).decode("utf-8", "replace"))
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise GuestError(f"guest did not power off within {timeout:g} s",
                             b"".join(chunks).decode("utf-8", "replace")) from None
    except BaseException:
        if proc.poll() is None:
            _kill(proc)
        raise
    finally:
        sel.close()
        proc.stdout.close()
    seconds = time.monotonic() - t0
    text = b"".join(chunks).decode("utf-8", "replace")
    if proc.returncode != 0 and "@@DMABUF@@" not in text:
        tail = [l for l in text.strip().splitlines() if l.strip()][-1:] or [""]
        raise GuestError(f"{Path(argv[0]).name} exited with status {proc.returncode}: {tail[0][:160]}", text)
    return text, seconds


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run_batch(
    traces: Sequence[Mapping[str, Any]],
    kernel: str = DEFAULT_KERNEL,
    timeout: float = 300,
    cache_dir: Path | str | None = None,
    *,
    strict: bool = True,
    progress: Progress | None = _stderr_progress,
    command: Sequence[str] | None = None,
    kmod: bool = False,
) -> GuestResult:
    """Run `traces` (see ``write_batch``) in catalog kernel `kernel` and return the results.

    `timeout` bounds the boot (seconds from QEMU start to power-off); fetching the
    kernel is not counted. `strict`: see ``parse_output``. `progress` receives one-line
    status messages (default: stderr; None: silent).

    `command` is a test seam: when given, it is run instead of QEMU (no kernel is
    fetched, QEMU is not installed); ``{kernel}`` and ``{initrd}`` in it are replaced
    by the paths QEMU would get (the kernel path is empty).

    `kmod`: build the kernel-side runner module for this kernel (``module.build_module``:
    fetches the kernel's headers the first time) and load it in the guest after the
    kernel's own modules; a module that does not load is a GuestError.
    """
    say = progress or _quiet
    traces = list(traces)
    batch = write_batch(traces)
    n_steps = sum(len(t["steps"]) for t in traces)
    fk: FetchedKernel | None = None
    if command is None:
        spec = _kernels._spec(kernel)
        missing = sorted({t["exporter"] for t in traces} - spec.exporters)
        if missing:
            offer = ", ".join(sorted(spec.exporters)) or "none"
            better = [k for k, s in _kernels.CATALOG.items() if set(missing) <= s.exporters]
            raise GuestError(f"kernel {kernel} has no {', '.join(missing)} exporter (it offers: {offer})"
                             + (f"; use kernel {better[0]!r}" if better else ""))
        qemu = ensure_qemu(say)
        fk = fetch_kernel(kernel, cache_dir, progress=progress)
    modules: list[Path] = list(fk.modules) if fk else []
    if kmod and fk is not None:
        modules.append(build_module(fk, cache_dir, progress=say))
    with tempfile.TemporaryDirectory(prefix="dmabuf-conform-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.monotonic()
        runner = build_runner(tmp)
        initrd = build_initramfs(
            tmp / "initramfs.cpio", runner, batch,
            modules=modules,
            decompress_modules=bool(fk) and not fk.module_decompress,
        )
        say(f"built runner and initramfs ({initrd.stat().st_size / 1e6:.1f} MB) in "
            f"{time.monotonic() - t0:.1f} s")
        if command is None:
            assert fk is not None
            argv = qemu_argv(fk.vmlinuz, initrd, qemu=qemu)
            say(f"booting {fk.key} ({fk.uname}) with {len(traces)} traces, {n_steps} steps, "
                f"timeout {timeout:g} s")
        else:
            argv = [a.replace("{initrd}", str(initrd)).replace("{kernel}", "") for a in command]
        text, seconds = boot(argv, timeout, say, n_traces=len(traces))
    say(f"guest powered off after {seconds:.1f} s")
    result = parse_output(text, strict=strict, expect=traces)
    if fk is not None and result.uname != fk.uname:
        raise GuestError(f"guest reports uname {result.uname!r}, expected {fk.uname!r}", text)
    if kmod and fk is not None:
        err = result.modules.get(f"{MODULE_NAME}.ko")
        if err != 0:
            raise GuestError(f"loading {MODULE_NAME}.ko in the guest failed: "
                             + (f"errno {err} ({os.strerror(err)})" if err else "it was not loaded"), text)
    return dataclasses.replace(result, kernel=fk, boot_seconds=seconds)
