"""The kernel-side runner: fetch the guest kernel's Debian headers and build the module.

The module (``kmod/dmabuf_check_kmod.c``, ABI in ``kmod/dmabuf_check_kmod.h``) is built out of
tree against the ``linux-headers-<uname -r>`` package of exactly the kernel that boots (the
kernels are built with ``CONFIG_MODVERSIONS``: a module must match their ``Module.symvers``),
fetched through the same private apt as the kernel image (``kernels._PrivateApt``) with the two
packages it depends on (``linux-headers-<version>-common``, ``linux-kbuild-<version>``), and
unpacked, never installed::

    <cache>/<key>/headers/headers.json         what was fetched (packages, version)
    <cache>/<key>/headers/root/usr/src/...      the unpacked packages; the arch Makefile's
                                                 ``include /usr/src/...`` points into root/
    <cache>/<key>/kmod/<hash>/dmabuf_check_kmod.ko   built module, keyed by kernel version and
                                                 the sources' hash

The compiler is the one the kernel's headers name (``CC`` in ``.kernelvariables``: gcc-12,
bookworm's) and its ``--version`` is checked against the kernel's ``CONFIG_CC_VERSION_TEXT``.
Modules get no BTF (``CONFIG_DEBUG_INFO_BTF_MODULES=`` on the make line: pahole is not needed).
Every failure is a GuestError whose message names the step that failed.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import kernels as _kernels
from .kernels import FetchedKernel, _locked, _PrivateApt, _spec, default_cache_dir
from .protocol import GuestError

__all__ = ["KMOD_DIR", "MODULE_NAME", "source_hash", "fetch_headers", "build_module"]

KMOD_DIR = Path(__file__).resolve().parent / "kmod"
MODULE_NAME = "dmabuf_check_kmod"
#: bump when the layout of the unpacked headers changes
HEADERS_FORMAT = 1

Progress = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def source_hash() -> str:
    """Hash of the module's sources (what a cached build is keyed by, with the kernel)."""
    h = hashlib.sha256()
    for p in sorted(KMOD_DIR.iterdir()):
        if p.is_file() and p.suffix in (".c", ".h", "") and not p.name.startswith("."):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _headers_dir(fk: FetchedKernel, cache: Path) -> Path:
    return cache / fk.key / "headers"


def _build_tree(fk: FetchedKernel, hdir: Path) -> Path:
    return hdir / "root" / "usr" / "src" / f"linux-headers-{fk.uname}"


def _cached_headers(fk: FetchedKernel, hdir: Path) -> Path | None:
    try:
        meta = json.loads((hdir / "headers.json").read_text())
    except (OSError, ValueError):
        return None
    tree = _build_tree(fk, hdir)
    if (meta.get("format") != HEADERS_FORMAT or meta.get("version") != fk.version
            or meta.get("uname") != fk.uname or not (tree / "Module.symvers").exists()):
        return None
    return tree


def fetch_headers(fk: FetchedKernel, cache_dir: Path | str | None = None,
                  progress: Progress | None = None) -> Path:
    """The unpacked kbuild tree (``/usr/src/linux-headers-<uname>``) of kernel `fk`,
    fetched through the private apt the first time."""
    say = progress or _quiet
    cache = Path(cache_dir or default_cache_dir())
    hdir = _headers_dir(fk, cache)
    hit = _cached_headers(fk, hdir)
    if hit is not None:
        return hit
    spec = _spec(fk.key)
    (cache / fk.key).mkdir(parents=True, exist_ok=True)
    with _locked(cache / f".{fk.key}.headers.lock"):
        hit = _cached_headers(fk, hdir)
        if hit is not None:
            return hit
        t0 = time.monotonic()
        apt_root = cache / "apt" / re.sub(r"[^A-Za-z0-9._-]", "_", "+".join(s for _, s in spec.sources))
        apt = _PrivateApt(apt_root, spec.sources)
        main = f"linux-headers-{fk.uname}"
        try:
            depends = apt.field(main, "Depends")
        except GuestError:
            say(f"headers {fk.key}: apt-get update (private lists)")
            try:
                apt.update()
                depends = apt.field(main, "Depends")
            except GuestError as e:
                raise GuestError(f"fetching the headers: {e}") from None
        names = [main]
        for alt in depends.split(","):
            name = alt.split("|")[0].strip().split(" ")[0]
            if name.startswith(("linux-headers-", "linux-kbuild-")) and name not in names:
                names.append(name)
        say(f"headers {fk.key}: downloading {', '.join(names)} {fk.version}")
        if hdir.exists():
            shutil.rmtree(hdir)
        hdir.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="headers-", dir=cache) as tmp_s:
            tmp = Path(tmp_s)
            try:
                apt.run("apt-get", "download", *(f"{n}={fk.version}" for n in names), cwd=tmp)
            except GuestError as e:
                raise GuestError(f"fetching the headers: {e}") from None
            debs = sorted(tmp.glob("*.deb"))
            if len(debs) != len(names):
                raise GuestError(f"fetching the headers: apt-get download gave {len(debs)} packages "
                                 f"for {len(names)}")
            for deb in debs:
                proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(hdir / "root")],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise GuestError(f"unpacking the headers: dpkg-deb -x {deb.name} failed: "
                                     f"{proc.stderr.strip()}")
            size = sum(d.stat().st_size for d in debs)
        tree = _build_tree(fk, hdir)
        _redirect(tree, hdir / "root")
        (hdir / "headers.json").write_text(json.dumps({
            "format": HEADERS_FORMAT, "uname": fk.uname, "version": fk.version, "packages": names,
            "deb_bytes": size, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2) + "\n")
        say(f"headers {fk.key}: {len(names)} packages ({size / 1e6:.1f} MB) unpacked in "
            f"{time.monotonic() - t0:.1f} s")
        return tree


def _redirect(tree: Path, root: Path) -> None:
    """Point the absolute ``/usr/src/...`` and ``/usr/lib/linux-kbuild-...`` paths of the
    unpacked headers (the arch Makefile's ``include``, absolute symlinks) into `root`."""
    makefile = tree / "Makefile"
    if not makefile.exists():
        raise GuestError(f"unpacking the headers: no Makefile in {tree}")
    text = makefile.read_text()
    fixed = re.sub(r"(?<![\w/])/usr/(src|lib)/", f"{root}/usr/\\1/", text)
    if fixed != text:
        makefile.write_text(fixed)
    for link in root.rglob("*"):
        if link.is_symlink():
            target = str(Path(link).readlink())
            if target.startswith(("/usr/src/", "/usr/lib/linux-kbuild")):
                link.unlink()
                link.symlink_to(str(root) + target)


def _compiler(tree: Path, fk: FetchedKernel) -> str:
    """The kernel's compiler (CC of .kernelvariables), checked against CONFIG_CC_VERSION_TEXT."""
    cc = "gcc"
    kv = tree / ".kernelvariables"
    if kv.exists():
        text = kv.read_text()
        m = re.search(r"^CC = .*?(\S*gcc\S*)\s*$", text, re.M)
        cross = re.search(r"^override CROSS_COMPILE = (\S+)", text, re.M)
        if m:
            cc = m.group(1).replace("$(CROSS_COMPILE)", cross.group(1) if cross else "")
    path = shutil.which(cc)
    if not path:
        raise GuestError(f"building the module: compiler {cc} (the one {fk.package} was built with) "
                         f"is not installed (apt-get install gcc-12)")
    want = fk.config.get("CONFIG_CC_VERSION_TEXT", "").strip('"')
    got = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    if want and got and got[0].strip() != want:
        # the same major version builds a loadable module; a different one may not
        if re.search(r"\) (\d+)\.", want) and re.search(r"\) (\d+)\.", got[0]) and \
                re.search(r"\) (\d+)\.", want).group(1) != re.search(r"\) (\d+)\.", got[0]).group(1):
            raise GuestError(f"building the module: {cc} is {got[0]!r}, the kernel was built with {want!r}")
    return cc


def build_module(fk: FetchedKernel, cache_dir: Path | str | None = None,
                 progress: Progress | None = None) -> Path:
    """The kernel-side runner module built for kernel `fk` (cached by kernel version and
    source hash); fetches the headers first if needed."""
    say = progress or _quiet
    cache = Path(cache_dir or default_cache_dir())
    key = hashlib.sha256(f"{fk.package} {fk.version} {fk.uname} {source_hash()}".encode()).hexdigest()[:16]
    out_dir = cache / fk.key / "kmod" / key
    ko = out_dir / f"{MODULE_NAME}.ko"
    if ko.exists():
        return ko
    tree = fetch_headers(fk, cache, progress)
    cc = _compiler(tree, fk)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kmod-", dir=cache) as tmp_s:
        tmp = Path(tmp_s)
        for p in KMOD_DIR.iterdir():
            if p.is_file():
                shutil.copy2(p, tmp / p.name)
        try:
            proc = subprocess.run(
                ["make", "-C", str(tree), f"M={tmp}", "CONFIG_DEBUG_INFO_BTF_MODULES=", "modules"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        except FileNotFoundError:
            raise GuestError("building the module: make is not installed") from None
        except subprocess.TimeoutExpired:
            raise GuestError("building the module: make did not finish within 600 s") from None
        built = tmp / f"{MODULE_NAME}.ko"
        if proc.returncode != 0 or not built.exists():
            lines = (proc.stderr + proc.stdout).splitlines()
            errs = [l for l in lines if "error" in l.lower()] or lines[-1:] or ["?"]
            raise GuestError(f"building the module: make failed: {errs[0].strip()[:200]}")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, ko)
    say(f"module {MODULE_NAME}.ko built for {fk.uname} with {cc} in {time.monotonic() - t0:.1f} s")
    return ko
