"""Conformance harness: replay userspace dma-buf traces in real Linux kernels under QEMU.

    from properties.conform import run_batch
    result = run_batch([{"id": 1, "exporter": "udmabuf", "npages": 4,
                         "steps": [("create", ()), ("mmap", (0, 0, 4)),
                                   ("write", (0, 1, 42)), ("read", (0, 1)),
                                   ("sync", (0, 1))]}])
    result.results[1][3].val          # 42, read through the real mapping
    result.uname, result.kernel.version

The pieces: ``protocol`` (batch format and console parsing, no QEMU needed),
``kernels`` (catalog, fetching Debian kernel packages into a cache), ``guest``
(QEMU install, runner + initramfs build, boot with a timeout), ``runner.c``
(the guest's /init). ``setup.sh`` installs QEMU, cpio and gcc when missing.
"""
from .guest import boot, build_initramfs, build_runner, ensure_qemu, qemu_argv, run_batch
from .kernels import (
    CATALOG,
    DEFAULT_KERNEL,
    FetchedKernel,
    KernelSpec,
    cached_kernel,
    default_cache_dir,
    fetch_kernel,
)
from .protocol import (
    EXPORTERS,
    MARKER,
    OPS,
    GuestError,
    GuestResult,
    StepResult,
    TraceResult,
    format_line,
    parse_output,
    write_batch,
)

__all__ = [
    "run_batch",
    "write_batch",
    "parse_output",
    "format_line",
    "GuestError",
    "GuestResult",
    "TraceResult",
    "StepResult",
    "EXPORTERS",
    "OPS",
    "MARKER",
    "CATALOG",
    "DEFAULT_KERNEL",
    "KernelSpec",
    "FetchedKernel",
    "fetch_kernel",
    "cached_kernel",
    "default_cache_dir",
    "ensure_qemu",
    "build_runner",
    "build_initramfs",
    "qemu_argv",
    "boot",
]
