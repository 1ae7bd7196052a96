"""Kernel catalog and fetching of Debian kernel packages into a private cache.

A kernel is fetched with ``apt-get download`` using a *private* sources list and
private apt state folders inside the cache, so the system's apt configuration is
never read for sources nor modified, and nothing is installed on the host. The
package is unpacked to a temporary folder, and only what a boot needs is kept:

    <cache>/<key>/kernel.json     what was fetched (package, version, uname -r, sizes)
    <cache>/<key>/vmlinuz-<uname -r>
    <cache>/<key>/config-<uname -r>
    <cache>/<key>/modules/<name>.ko[.xz]   the catalog's modules and their dependencies

The cache folder defaults to ``<project>/.cache/kernels`` and is overridden by the
environment variable ``DMABUF_CHECK_CACHE``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .protocol import GuestError

__all__ = [
    "KernelSpec",
    "FetchedKernel",
    "CATALOG",
    "DEFAULT_KERNEL",
    "default_cache_dir",
    "fetch_kernel",
    "cached_kernel",
    "module_depends",
]

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_KERNEL = "6.12-cloud"
#: bump when the layout of a cached kernel folder changes
CACHE_FORMAT = 1


@dataclass(frozen=True)
class KernelSpec:
    """One entry of the kernel catalog."""

    key: str
    meta_package: str  # Debian metapackage resolved to the versioned image package
    sources: tuple[tuple[str, str], ...]  # (archive URI, suite) pairs for the private sources list
    exporters: frozenset[str]  # exporters this kernel is known to offer
    modules: tuple[str, ...] = ()  # modules to load in the guest (dependencies are added)
    description: str = ""


CATALOG: Mapping[str, KernelSpec] = {
    spec.key: spec
    for spec in (
        KernelSpec(
            key="6.12-cloud",
            meta_package="linux-image-cloud-amd64",
            sources=((DEBIAN_MIRROR, "bookworm-backports"),),
            exporters=frozenset({"udmabuf", "system-heap"}),
            description="Debian bookworm-backports cloud kernel: udmabuf and the system "
            "DMA-BUF heap built in, no DRM (so no vgem)",
        ),
        KernelSpec(
            key="6.12",
            meta_package="linux-image-amd64",
            sources=((DEBIAN_MIRROR, "bookworm-backports"),),
            exporters=frozenset({"udmabuf", "system-heap", "vgem"}),
            modules=("vgem",),
            description="Debian bookworm-backports generic kernel: udmabuf and system heap "
            "built in, vgem as a module",
        ),
        KernelSpec(
            key="6.1",
            meta_package="linux-image-amd64",
            sources=((DEBIAN_MIRROR, "bookworm"), (DEBIAN_SECURITY, "bookworm-security")),
            exporters=frozenset({"vgem"}),
            modules=("vgem",),
            description="Debian bookworm generic kernel: vgem as a module, no udmabuf, "
            "no DMA-BUF heaps",
        ),
    )
}


@dataclass(frozen=True)
class FetchedKernel:
    """A kernel unpacked in the cache, ready to boot."""

    key: str
    package: str  # versioned image package, e.g. linux-image-6.12.38+deb12-cloud-amd64
    version: str  # exact Debian package version
    uname: str  # `uname -r` of this kernel
    vmlinuz: Path
    modules: tuple[Path, ...]  # in load order (dependencies first)
    exporters: frozenset[str]
    deb_bytes: int = 0  # size of the downloaded .deb
    fetch_seconds: float = 0.0  # time the download + unpack took (0 for a cache hit)
    config: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def module_decompress(self) -> bool:
        """Whether the kernel can load compressed modules itself (finit_module flag)."""
        return self.config.get("CONFIG_MODULE_DECOMPRESS") == "y"


def default_cache_dir() -> Path:
    env = os.environ.get("DMABUF_CHECK_CACHE")
    if env:
        return Path(env).expanduser()
    project = Path(__file__).resolve().parents[2]
    return project / ".cache" / "kernels"


def _progress_default(msg: str) -> None:
    print(f"conform: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# apt with private configuration


class _PrivateApt:
    """apt-get / apt-cache confined to a private sources list and private state dirs."""

    def __init__(self, root: Path, sources: Iterable[tuple[str, str]]):
        self.root = root
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        lines = [f"deb [signed-by={KEYRING}] {uri} {suite} main" for uri, suite in sources]
        self.sources_list = root / "sources.list"
        text = "\n".join(lines) + "\n"
        if not self.sources_list.exists() or self.sources_list.read_text() != text:
            self.sources_list.write_text(text)
            # the lists of another source set are stale
            for f in (root / "lists").glob("*"):
                if f.is_file():
                    f.unlink()
        self.options = [
            "-o", f"Dir::Etc::SourceList={self.sources_list}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", f"Dir::State::Lists={root / 'lists'}",
            "-o", f"Dir::Cache={root / 'cache'}",
            "-o", "Dir::State::status=/dev/null",
            "-o", "Acquire::Retries=3",
            "-o", "Debug::NoLocking=1",
        ]
        if os.geteuid() == 0:
            # the private folders belong to root: do not drop to the _apt user
            self.options += ["-o", "APT::Sandbox::User=root"]

    def run(self, tool: str, *args: str, cwd: Path | None = None, timeout: float = 900) -> str:
        cmd = [tool, "-q", *self.options, *args]
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise GuestError(f"{tool} not found: fetching kernels needs a Debian host") from None
        except subprocess.TimeoutExpired:
            raise GuestError(f"{tool} {' '.join(args)} did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            err = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise GuestError(f"{tool} {' '.join(args)} failed: {err}")
        return proc.stdout

    def update(self) -> None:
        self.run("apt-get", "update")

    def field(self, package: str, name: str) -> str:
        out = self.run("apt-cache", "show", "--no-all-versions", package)
        m = re.search(rf"^{re.escape(name)}: (.*)$", out, re.M)
        if not m:
            raise GuestError(f"apt-cache show {package}: no {name} field")
        return m.group(1).strip()


def _resolve_image_package(apt: _PrivateApt, meta: str) -> tuple[str, str]:
    """Metapackage -> (versioned linux-image package, its candidate version)."""
    depends = apt.field(meta, "Depends")
    for alt in depends.split(","):
        name = alt.split("|")[0].strip().split(" ")[0]
        if name.startswith("linux-image-") and name != meta:
            return name, apt.field(name, "Version")
    raise GuestError(f"cannot find the kernel image package {meta} depends on ({depends!r})")


# --------------------------------------------------------------------------------------
# module dependencies


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def _modinfo(data: bytes) -> dict[str, list[str]]:
    """key=value pairs of an ELF64 module's .modinfo section."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not an ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        base = shoff + i * shentsize
        name, = struct.unpack_from("<I", data, base)
        off, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[off:off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode("utf-8", "replace").split("=", 1)
                    info.setdefault(k, []).append(v)
    return info


def module_depends(path: Path) -> list[str]:
    """Names of the modules `path` depends on (from its .modinfo ``depends=``)."""
    info = _modinfo(_module_bytes(path))
    deps = ",".join(info.get("depends", []))
    return [d for d in deps.split(",") if d]


def _modname(filename: str) -> str:
    return filename.split(".ko")[0].replace("-", "_")


def _resolve_modules(moddir: Path, wanted: Iterable[str]) -> list[Path]:
    """Module files for `wanted` and their dependencies, dependencies first."""
    index: dict[str, Path] = {}
    for p in moddir.rglob("*.ko*"):
        index.setdefault(_modname(p.name), p)
    order: list[Path] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        key = name.replace("-", "_")
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise GuestError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        if key not in index:
            raise GuestError(f"module {name} (needed by {' -> '.join(chain) or 'catalog'}) "
                             f"is not in the kernel package")
        state[key] = 1
        for dep in module_depends(index[key]):
            visit(dep, chain + (name,))
        state[key] = 2
        order.append(index[key])

    for name in wanted:
        visit(name, ())
    return order


def _read_config(path: Path) -> dict[str, str]:
    cfg: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                k, v = line.split("=", 1)
                cfg[k] = v
    return cfg


# --------------------------------------------------------------------------------------
# public API


def cached_kernel(key: str, cache_dir: Path | str | None = None) -> FetchedKernel | None:
    """The cached kernel for catalog `key`, or None if it has not been fetched."""
    spec = _spec(key)
    folder = Path(cache_dir or default_cache_dir()) / key
    meta_path = folder / "kernel.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    vmlinuz = folder / meta["vmlinuz"]
    modules = tuple(folder / "modules" / m for m in meta["modules"])
    if not vmlinuz.exists() or not all(m.exists() for m in modules):
        return None
    return FetchedKernel(
        key=key,
        package=meta["package"],
        version=meta["version"],
        uname=meta["uname"],
        vmlinuz=vmlinuz,
        modules=modules,
        exporters=spec.exporters,
        deb_bytes=meta.get("deb_bytes", 0),
        fetch_seconds=0.0,
        config=_read_config(folder / f"config-{meta['uname']}"),
    )


def _spec(key: str) -> KernelSpec:
    try:
        return CATALOG[key]
    except KeyError:
        raise GuestError(f"unknown kernel {key!r}; known: {', '.join(CATALOG)}") from None


def fetch_kernel(
    key: str = DEFAULT_KERNEL,
    cache_dir: Path | str | None = None,
    *,
    refresh: bool = False,
    progress: Callable[[str], None] | None = _progress_default,
) -> FetchedKernel:
    """Make sure catalog kernel `key` is in the cache and return it.

    A cached kernel is reused without any network access unless `refresh` is true,
    in which case the archive is asked again for the newest version.
    """
    spec = _spec(key)
    cache = Path(cache_dir or default_cache_dir())
    say = progress or (lambda msg: None)
    if not refresh:
        hit = cached_kernel(key, cache)
        if hit is not None:
            say(f"kernel {key}: cached {hit.package} {hit.version} (uname {hit.uname})")
            return hit
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f".{key}.lock"):
        if not refresh:  # another process may have fetched it while we waited
            hit = cached_kernel(key, cache)
            if hit is not None:
                say(f"kernel {key}: cached {hit.package} {hit.version} (uname {hit.uname})")
                return hit
        return _fetch(spec, cache, say)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch(spec: KernelSpec, cache: Path, say: Callable[[str], None]) -> FetchedKernel:
    key = spec.key

    t0 = time.monotonic()
    apt_root = cache / "apt" / re.sub(r"[^A-Za-z0-9._-]", "_", "+".join(s for _, s in spec.sources))
    apt = _PrivateApt(apt_root, spec.sources)
    say(f"kernel {key}: apt-get update ({', '.join(s for _, s in spec.sources)}, private lists)")
    apt.update()
    package, version = _resolve_image_package(apt, spec.meta_package)
    say(f"kernel {key}: downloading {package} {version}")
    folder = cache / key
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=cache) as tmp_s:
        tmp = Path(tmp_s)
        apt.run("apt-get", "download", f"{package}={version}", cwd=tmp)
        debs = list(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise GuestError(f"apt-get download {package} produced {len(debs)} .deb files")
        deb = debs[0]
        deb_bytes = deb.stat().st_size
        say(f"kernel {key}: unpacking {deb.name} ({deb_bytes / 1e6:.1f} MB)")
        root = tmp / "root"
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise GuestError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
        deb.unlink()
        images = sorted((root / "boot").glob("vmlinuz-*"))
        if len(images) != 1:
            raise GuestError(f"{package}: expected one /boot/vmlinuz-*, found {len(images)}")
        uname = images[0].name[len("vmlinuz-"):]
        moddirs = [d for d in (root / "lib" / "modules" / uname, root / "usr" / "lib" / "modules" / uname)
                   if d.is_dir()]
        if spec.modules and not moddirs:
            raise GuestError(f"{package}: no modules folder for {uname}")
        mods = _resolve_modules(moddirs[0], spec.modules) if spec.modules else []

        # replace the cached folder's content
        for old in folder.iterdir():
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
        shutil.copy2(images[0], folder / images[0].name)
        config = root / "boot" / f"config-{uname}"
        if config.exists():
            shutil.copy2(config, folder / config.name)
        (folder / "modules").mkdir()
        for m in mods:
            shutil.copy2(m, folder / "modules" / m.name)
        meta = {
            "format": CACHE_FORMAT,
            "key": key,
            "package": package,
            "version": version,
            "uname": uname,
            "vmlinuz": images[0].name,
            "modules": [m.name for m in mods],
            "deb_bytes": deb_bytes,
            "sources": [list(s) for s in spec.sources],
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (folder / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
    seconds = time.monotonic() - t0
    say(f"kernel {key}: {package} {version} (uname {uname}) ready in {seconds:.1f} s"
        + (f", modules: {', '.join(m.name for m in mods)}" if mods else ""))
    hit = cached_kernel(key, cache)
    assert hit is not None
    return dataclasses.replace(hit, fetch_seconds=seconds)
