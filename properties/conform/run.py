"""One conformance run: traces built from the model (random ones per exporter and the userspace
litmus files), one QEMU boot of a kernel running them all, and the comparison step by step
(``properties.conform.compare``); the table of the runs. The command is ``dmabuf-check conform``
(``properties.cli.conform``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import GuestError, run_batch
from .compare import compare_result, compare_trace, summarise
from .kernels import default_cache_dir
from .translate import litmus_traces, random_traces

__all__ = ["KernelRun", "build_traces", "conform_kernel", "default_timeout", "format_table", "MAX_PER_EXPORTER", "LITMUS_ID"]

#: trace ids: random traces of the j-th exporter from j * _ID_STRIDE, litmus traces from LITMUS_ID
_ID_STRIDE = 1_000_000
LITMUS_ID = 9_000_000
#: random traces per exporter: the ids stay apart and one batch stays within the runner's tables
MAX_PER_EXPORTER = 30_000


@dataclass(frozen=True)
class KernelRun:
    """One boot of one kernel: what was sent, what came back, and the comparison."""

    kernel: str
    uname: str
    package: str
    version: str
    traces: tuple[Any, ...]  # ConformTrace
    verdicts: tuple[Any, ...]  # TraceVerdict
    summaries: tuple[Any, ...]  # Summary
    seconds: float | None  # boot, QEMU start to power-off
    error: str = ""  # why the kernel gave no (complete) results

    @property
    def steps(self) -> int:
        return sum(len(t.steps) for t in self.traces)

    @property
    def passed(self) -> bool:
        return not self.error and all(s.passed for s in self.summaries)

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "uname": self.uname, "package": self.package, "version": self.version,
                "traces": len(self.traces), "steps": self.steps,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "error": self.error or None}


def default_timeout(traces: Sequence[Any]) -> float:
    """Seconds one boot may take: generous for a busy 2-core machine running TCG (measured idle:
    ~3 s to boot, ~4000 steps/s; allowed: 180 s plus 5 ms per step and 50 ms per trace)."""
    steps = sum(len(t.steps) for t in traces)
    return 180.0 + steps / 200 + len(traces) / 20


def build_traces(exporters: Sequence[str], n: int, seed: int, scope: str = "default",
                 revision: str = "v5.12", litmus: Sequence[str | Path] = (),
                 kernel_side: bool = False) -> tuple[list[Any], list[str]]:
    """``n`` random traces per exporter, then the userspace litmus files for every exporter
    (``kernel_side``: random traces mix in kernel-side actions, and litmus files with the
    kernel-side actions the module performs are used too).
    Returns ``(traces, skipped litmus files with the reason)``."""
    traces: list[Any] = []
    for j, e in enumerate(exporters):
        traces += random_traces(e, n, seed, scope=scope, revision=revision, first_id=j * _ID_STRIDE,
                                kernel_side=kernel_side,
                                **({"min_len": 8, "max_len": 40} if kernel_side else {}))
    skipped: list[str] = []
    if litmus:
        lt, skipped = litmus_traces(litmus, exporters, first_id=LITMUS_ID, revision=revision,
                                    kernel_side=kernel_side)
        traces += lt
    return traces, skipped


def conform_kernel(kernel: str, traces: Sequence[Any], known: Sequence[Any] = (), *,
                   timeout: float | None = None, cache_dir: str | Path | None = None,
                   progress: Callable[[str], None] | None = None,
                   command: Sequence[str] | None = None, kmod: bool = False) -> KernelRun:
    """Boot ``kernel`` once with ``traces`` and compare. A boot that fails (QEMU missing, no
    power-off within the timeout, a guest crash) gives a KernelRun with ``error`` set and every
    trace unknown; it does not raise. ``command`` is run_batch's test seam; ``kmod`` loads the
    kernel-side runner module (traces with kernel-side steps need it)."""
    kwargs: dict[str, Any] = {"strict": False}
    if progress is not None:
        kwargs["progress"] = progress
    t = timeout if timeout is not None else default_timeout(traces)
    try:
        res = run_batch([tr.batch() for tr in traces], kernel=kernel, timeout=t, cache_dir=cache_dir,
                        command=command, kmod=kmod, **kwargs)
    except GuestError as e:
        verdicts = [compare_trace(tr, None, "", known) for tr in traces]
        saved = _save_log(kernel, e.log, cache_dir)
        return KernelRun(kernel, "", "", "", tuple(traces), tuple(verdicts),
                         tuple(summarise(kernel, "", verdicts)), None,
                         f"{kernel}: {e}" + (f" (console log: {saved})" if saved else ""))
    verdicts = compare_result(traces, res, known)
    error = ""
    if res.trouble:
        error = f"{kernel}: the kernel reported trouble: {res.trouble[0]}"
    elif not res.done:
        error = f"{kernel}: the guest stopped before the end of the batch (no done line)"
    elif res.garbled:
        error = f"{kernel}: {len(res.garbled)} runner lines garbled on the console"
    if error:
        hint = _kernel_said(res.log)
        saved = _save_log(kernel, res.log, cache_dir)
        error += (f"; {hint}" if hint else "") + (f" (console log: {saved})" if saved else "")
    fk = res.kernel
    return KernelRun(kernel, res.uname, fk.package if fk else "", fk.version if fk else "", tuple(traces),
                     tuple(verdicts), tuple(summarise(kernel, res.uname, verdicts)), res.boot_seconds, error)


def _kernel_said(log: str) -> str:
    """The last line of kernel trouble (panic, oops, OOM) on the console, if any."""
    for line in reversed(log.splitlines()):
        if re.search(r"Kernel panic|BUG:|Oops|Out of memory|Killed process|not syncing", line):
            return "kernel said: " + line.strip()[:160]
    return ""


def _save_log(kernel: str, log: str, cache_dir: str | Path | None) -> Path | None:
    """Keep the console output of a failed boot beside the kernel cache, for debugging."""
    if not log:
        return None
    folder = (Path(cache_dir) if cache_dir else default_cache_dir()).parent / "conform"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{kernel}-console.log"
        path.write_text(log, encoding="utf-8", errors="replace")
    except OSError:
        return None
    return path


def format_table(runs: Sequence[KernelRun]) -> str:
    head = (f"{'kernel':<11} {'uname':<26} {'exporter':<12} {'traces':>6} {'steps':>6} {'loads':>6} "
            f"{'agree':>6} {'known':>6} {'disagree':>8} {'unknown':>7} {'rate':>7}")
    lines = [head]
    for r in runs:
        for s in r.summaries:
            lines.append(f"{r.kernel:<11} {(s.uname or '-'):<26} {s.exporter:<12} {s.traces:>6} {s.steps:>6} "
                         f"{s.loads:>6} {s.agree:>6} {s.known:>6} {s.disagree:>8} {s.unknown:>7} "
                         f"{100 * s.rate:>6.1f}%")
    lines.append("")
    for r in runs:
        if r.seconds is not None:
            rate = r.steps / r.seconds if r.seconds else 0.0
            lines.append(f"boot {r.kernel}: {len(r.traces)} traces, {r.steps} steps in one boot, "
                         f"{r.seconds:.1f} s ({rate:.0f} steps/s, start to power-off)")
        if r.error:
            lines.append(f"boot {r.kernel}: FAILED: {r.error}")
    return "\n".join(lines)
