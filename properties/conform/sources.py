"""The Debian kernel source of a catalog kernel: the few files the catalog and known.toml cite.

The binary package ``linux-source-<major.minor>`` (e.g. ``linux-source-6.12``: "Linux kernel source
for version 6.12 with Debian patches") of exactly the booted image's version is downloaded through
the same private apt as the kernel (``kernels._PrivateApt``: private sources list and state, never
installed), and only :data:`FILES` are extracted from the ``usr/src/linux-source-<x.y>.tar.xz``
inside::

    <cache>/<key>/source/source.json     what was fetched (package, version, files)
    <cache>/<key>/source/<path>          e.g. drivers/dma-buf/dma-buf.c

Reproduce from the project folder::

    DMABUF_CHECK_CACHE=... python -m properties.conform.sources 6.12

(fetches the kernel image too when it is not cached: its version is the one the source must have).
The project never reads these files at run time; the opt-in test tests/test_conform_sources.py
checks known.toml's quoted kernel lines against them.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from .kernels import FetchedKernel, _locked, _PrivateApt, _spec, cached_kernel, default_cache_dir, fetch_kernel
from .protocol import GuestError

__all__ = ["FILES", "SOURCES_FORMAT", "fetch_sources", "cached_sources", "source_package"]

#: the files the catalog's v6.12 entries and known.toml refer to
FILES = (
    "drivers/dma-buf/dma-buf.c",
    "drivers/dma-buf/udmabuf.c",
    "drivers/dma-buf/heaps/system_heap.c",
    "drivers/gpu/drm/drm_prime.c",
    "drivers/gpu/drm/drm_gem_shmem_helper.c",
    "drivers/gpu/drm/vgem/vgem_drv.c",
    "include/linux/dma-buf.h",
)
#: bump when the layout of the source folder changes
SOURCES_FORMAT = 1


def source_package(fk: FetchedKernel) -> str:
    """``linux-source-6.12`` for a kernel whose version is 6.12.x."""
    m = re.match(r"(\d+\.\d+)", fk.version)
    if not m:
        raise GuestError(f"cannot tell the kernel series of version {fk.version!r}")
    return f"linux-source-{m.group(1)}"


def _source_dir(key: str, cache: Path) -> Path:
    return cache / key / "source"


def cached_sources(key: str, cache_dir: Path | str | None = None) -> tuple[Path, dict] | None:
    """(the source folder, its source.json) when kernel `key`'s sources are cached and match the
    cached kernel's version; None otherwise."""
    cache = Path(cache_dir or default_cache_dir())
    folder = _source_dir(key, cache)
    try:
        meta = json.loads((folder / "source.json").read_text())
    except (OSError, ValueError):
        return None
    fk = cached_kernel(key, cache)
    if (meta.get("format") != SOURCES_FORMAT or fk is None or meta.get("version") != fk.version
            or not all((folder / f).is_file() for f in FILES)):
        return None
    return folder, meta


def fetch_sources(key: str, cache_dir: Path | str | None = None,
                  progress: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """Make sure :data:`FILES` of kernel `key`'s Debian source are in the cache; returns the
    source folder and its metadata (package, version)."""
    say = progress or (lambda msg: None)
    cache = Path(cache_dir or default_cache_dir())
    hit = cached_sources(key, cache)
    if hit is not None:
        say(f"source {key}: cached {hit[1]['package']} {hit[1]['version']}")
        return hit
    fk = fetch_kernel(key, cache, progress=progress)
    spec = _spec(key)
    with _locked(cache / f".{key}.source.lock"):
        hit = cached_sources(key, cache)
        if hit is not None:
            return hit
        t0 = time.monotonic()
        apt_root = cache / "apt" / re.sub(r"[^A-Za-z0-9._-]", "_", "+".join(s for _, s in spec.sources))
        apt = _PrivateApt(apt_root, spec.sources)
        package = source_package(fk)
        try:
            version = apt.field(package, "Version")
        except GuestError:
            say(f"source {key}: apt-get update (private lists)")
            apt.update()
            version = apt.field(package, "Version")
        # the archive's candidate must be the booted image's version; ask for it exactly
        say(f"source {key}: downloading {package} {fk.version} (candidate {version})")
        folder = _source_dir(key, cache)
        with tempfile.TemporaryDirectory(prefix="source-", dir=cache) as tmp_s:
            tmp = Path(tmp_s)
            apt.run("apt-get", "download", f"{package}={fk.version}", cwd=tmp)
            debs = list(tmp.glob("*.deb"))
            if len(debs) != 1:
                raise GuestError(f"apt-get download {package} produced {len(debs)} .deb files")
            deb_bytes = debs[0].stat().st_size
            say(f"source {key}: extracting {len(FILES)} files from {debs[0].name} ({deb_bytes / 1e6:.1f} MB)")
            series = package[len("linux-source-"):]
            inner = f"usr/src/linux-source-{series}.tar.xz"
            root = tmp / "root"
            root.mkdir()
            with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE) as deb:
                proc = subprocess.run(["tar", "-x", "-C", str(root), f"./{inner}"], stdin=deb.stdout,
                                      capture_output=True, text=True)
            if proc.returncode != 0 or not (root / inner).is_file():
                raise GuestError(f"{debs[0].name}: no {inner} ({proc.stderr.strip()})")
            debs[0].unlink()
            top = f"linux-source-{series}"
            proc = subprocess.run(["tar", "-xJf", str(root / inner), "-C", str(tmp),
                                   *(f"{top}/{f}" for f in FILES)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise GuestError(f"{inner}: extracting {', '.join(FILES)} failed: {proc.stderr.strip()}")
            if folder.exists():
                shutil.rmtree(folder)
            for f in FILES:
                (folder / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(tmp / top / f, folder / f)
        meta = {"format": SOURCES_FORMAT, "key": key, "package": package, "version": fk.version,
                "tarball": inner, "files": list(FILES), "deb_bytes": deb_bytes,
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (folder / "source.json").write_text(json.dumps(meta, indent=2) + "\n")
        say(f"source {key}: {package} {fk.version} ready in {time.monotonic() - t0:.1f} s")
    hit = cached_sources(key, cache)
    assert hit is not None
    return hit


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m properties.conform.sources KERNEL (e.g. 6.12)", file=sys.stderr)
        return 2
    try:
        folder, meta = fetch_sources(args[0], progress=lambda msg: print(f"conform: {msg}", file=sys.stderr))
    except GuestError as e:
        print(f"dmabuf-check: {e}", file=sys.stderr)
        return 2
    print(f"{meta['package']} {meta['version']}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
