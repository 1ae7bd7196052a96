"""Boot a real 6.12 kernel (Debian bookworm-backports cloud image) under QEMU ONCE and
check what the real udmabuf and system-heap exporters do for hand-written traces.

Slow-ish (fetches a 34 MB kernel package on first use, then a few seconds to a minute
of TCG boot); marked ``qemu``. Deselect with ``-m "not qemu"``. The whole module is
skipped if QEMU cannot be installed (properties/conform/setup.sh fails).
"""
from __future__ import annotations

import pytest

from properties.conform import GuestError, guest, run_batch

pytestmark = pytest.mark.qemu

KERNEL = "6.12-cloud"
N = 4  # pages per buffer
ALL = 2**64 - 1
EINVAL, EBADF = "EINVAL", "EBADF"

# name -> (steps, expected outcomes for udmabuf, for system-heap); see StepResult.outcome.
# "same" = identical for both exporters.
CASES: dict[str, tuple[list, list[str], list[str] | str]] = {
    "write-read-back": (
        [("create", ()), ("mmap", (0, 0, N)), ("read", (0, 0)), ("write", (0, 0, 0x1122334455667788)),
         ("read", (0, 0)), ("write", (0, 3, ALL)), ("read", (0, 3)), ("read", (0, 1)),
         ("munmap", (0,)), ("read", (0, 0))],
        ["ok=0", "ok=0", "val=0", "ok", f"val={0x1122334455667788}", "ok", f"val={ALL}", "val=0",
         "ok", "err:nomap"],
        "same",
    ),
    "sync-valid-flags": (
        [("create", ()), ("sync", (0, 1)), ("sync", (0, 2)), ("sync", (0, 3)),
         ("sync", (0, 5)), ("sync", (0, 6)), ("sync", (0, 7))],
        ["ok=0"] + ["ok"] * 6,
        "same",
    ),
    "sync-invalid-flags": (
        [("create", ()), ("sync", (0, 0)), ("sync", (0, 4)), ("sync", (0, 8)), ("sync", (0, ALL)),
         ("sync", (0, 1 << 63)), ("sync", (0, 16 | 1)), ("sync", (0, 8 | 3))],
        ["ok=0"] + [EINVAL] * 7,
        "same",
    ),
    "sync-end-before-start": (
        [("create", ()), ("sync", (0, 5)), ("sync", (0, 6)), ("sync", (0, 7)),
         ("sync", (0, 3)), ("sync", (0, 7)), ("sync", (0, 5))],
        ["ok=0", EINVAL, EINVAL, EINVAL, "ok", "ok", "ok"],
        ["ok=0", "ok", "ok", "ok", "ok", "ok", "ok"],
    ),
    "sync-start-twice-mismatched-end": (
        [("create", ()), ("sync", (0, 1)), ("sync", (0, 1)), ("sync", (0, 6)), ("sync", (0, 6))],
        ["ok=0", "ok", "ok", "ok", "ok"],
        "same",
    ),
    "mmap-too-big": (
        [("create", ()), ("mmap", (0, 0, 2 * N)), ("mmap", (0, 0, N + 1)), ("mmap", (0, 0, N))],
        ["ok=0", EINVAL, EINVAL, "ok=0"],
        "same",
    ),
    "mmap-overlapping-end": (
        [("create", ()), ("mmap", (0, N // 2, N)), ("mmap", (0, N, 1)), ("mmap", (0, N - 1, 1)),
         ("mmap", (0, N // 2, N // 2))],
        ["ok=0", EINVAL, EINVAL, "ok=0", "ok=1"],
        "same",
    ),
    "mmap-zero-pages": (
        [("create", ()), ("mmap", (0, 0, 0))],
        ["ok=0", EINVAL],
        "same",
    ),
    "mmap-offset-aliasing": (
        [("create", ()), ("mmap", (0, 0, N)), ("mmap", (0, 2, 2)), ("write", (0, 2, 99)), ("read", (1, 0)),
         ("write", (1, 1, 5)), ("read", (0, 3))],
        ["ok=0", "ok=0", "ok=1", "ok", "val=99", "ok", "val=5"],
        "same",
    ),
    "close-then-read-through-mapping": (
        [("create", ()), ("mmap", (0, 0, N)), ("write", (0, 1, 1234)), ("close", (0,)), ("read", (0, 1)),
         ("write", (0, 1, 4321)), ("read", (0, 1)), ("sync", (0, 1)), ("mmap", (0, 0, 1))],
        ["ok=0", "ok=0", "ok", "ok", "val=1234", "ok", "val=4321", EBADF, EBADF],
        "same",
    ),
    "dup": (
        [("create", ()), ("dup", (0,)), ("mmap", (1, 0, N)), ("write", (0, 0, 7)), ("close", (0,)),
         ("sync", (1, 3)), ("mmap", (1, 0, N)), ("read", (1, 0)), ("dup", (1,)), ("sync", (0, 7))],
        ["ok=0", "ok=1", "ok=0", "ok", "ok", "ok", "ok=1", "val=7", "ok=0", "ok"],
        "same",
    ),
    "close-bad-slot": (
        [("close", (3,)), ("close", (0,)), ("create", ()), ("close", (0,)), ("close", (0,)), ("dup", (5,)),
         ("sync", (2, 1)), ("close", (-1,))],
        [EBADF, EBADF, "ok=0", "ok", EBADF, EBADF, EBADF, EBADF],
        "same",
    ),
    "two-buffers-do-not-alias": (
        [("create", ()), ("create", ()), ("mmap", (0, 0, N)), ("mmap", (1, 0, N)), ("write", (0, 0, 1)),
         ("write", (1, 0, 2)), ("read", (0, 0)), ("read", (1, 0))],
        ["ok=0", "ok=1", "ok=0", "ok=1", "ok", "ok", "val=1", "val=2"],
        "same",
    ),
    "lowest-free-slot-and-vma": (
        [("create", ()), ("create", ()), ("create", ()), ("close", (1,)), ("dup", (2,)),
         ("mmap", (0, 0, 1)), ("mmap", (0, 1, 1)), ("munmap", (0,)), ("mmap", (2, 0, 1))],
        ["ok=0", "ok=1", "ok=2", "ok", "ok=1", "ok=0", "ok=1", "ok", "ok=0"],
        "same",
    ),
    "runner-refusals": (
        [("create", ()), ("mmap", (0, 0, 2)), ("read", (0, 2)), ("read", (1, 0)), ("write", (0, -1, 3)),
         ("munmap", (1,)), ("munmap", (0,)), ("munmap", (0,))],
        ["ok=0", "ok=0", "err:range", "err:nomap", "err:range", "err:nomap", "ok", "err:nomap"],
        "same",
    ),
    "fresh-table-per-trace": (
        [("create", ()), ("mmap", (0, 0, 1))],
        ["ok=0", "ok=0"],
        "same",
    ),
    "sync-after-munmap-and-unmapped": (
        [("create", ()), ("sync", (0, 3)), ("sync", (0, 7)), ("mmap", (0, 0, N)), ("munmap", (0,)),
         ("sync", (0, 1)), ("sync", (0, 5))],
        ["ok=0", "ok", "ok", "ok=0", "ok", "ok", "ok"],
        "same",
    ),
}
EXPORTERS = ("udmabuf", "system-heap")


def _traces() -> list[dict]:
    out = []
    for i, (name, (steps, _u, _h)) in enumerate(CASES.items()):
        for j, exporter in enumerate(EXPORTERS):
            out.append({"id": 10 * i + j, "exporter": exporter, "npages": N, "steps": steps})
    return out


TRACES = _traces()
assert len(TRACES) >= 20


def _expected(name: str, exporter: str) -> list[str]:
    _steps, u, h = CASES[name]
    if exporter == "udmabuf" or h == "same":
        return u
    return h  # type: ignore[return-value]


@pytest.fixture(scope="module")
def result():
    try:
        guest.ensure_qemu()
    except GuestError as e:
        pytest.skip(f"QEMU cannot be installed on this machine: {e}")
    return run_batch(TRACES, kernel=KERNEL, timeout=480)


def test_boot_reports_kernel(result):
    assert result.done and result.complete, [t.reason for t in result.traces if not t.complete]
    assert result.exporters["udmabuf"] and result.exporters["system-heap"]
    assert not result.exporters["vgem"]
    assert result.kernel is not None and result.uname == result.kernel.uname
    assert result.kernel.version and result.kernel.package.startswith("linux-image-")
    assert "cloud-amd64" in result.uname
    assert len(result.traces) == len(TRACES)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", list(CASES))
def test_case(result, name, exporter):
    tid = 10 * list(CASES).index(name) + EXPORTERS.index(exporter)
    t = result.trace(tid)
    assert t.exporter == exporter and t.complete, t.reason
    got = [s.outcome for s in t.steps]
    assert got == _expected(name, exporter), f"{name} on {exporter} ({result.uname})"
