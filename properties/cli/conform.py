"""``dmabuf-check conform``: replay model traces in real kernels under QEMU and compare.

docs/interface.md ("Command line"). For each kernel (``--kernel``, default ``6.12-cloud``; repeatable,
``all`` for the whole kernel catalog) one boot runs every trace: ``--traces`` random userspace
traces per exporter (``properties.conform.translate``) plus every userspace litmus file, each
predicted by the exporter's catalog policy. The kernel's results are compared step by step
(``properties.conform.compare``), known differences (``properties/conform/known.toml``) are
reported as known, and the table gives per kernel and exporter the traces that agree, are known,
disagree, or could not be judged (unknown).

QEMU is installed when missing (``properties/conform/setup.sh``, Debian packages), the kernel
package is fetched into the project's cache (``.cache/kernels``, or ``$DMABUF_CHECK_CACHE``),
never installed on the host. Progress goes to stderr, the table to stdout.

Exit status: 0 when every trace agrees or differs only in known ways; 1 when a trace disagrees,
or a kernel could not be booted or its results are incomplete (unknown is not a pass); 2 for bad
input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from model.catalog import CATALOG as POLICIES
from model.policy import export_refusal

from ..conform import kernels
from ..conform.compare import KnownError, load_known
from ..conform.run import LITMUS_ID, MAX_PER_EXPORTER, KernelRun, build_traces, conform_kernel, format_table
from ..conform.translate import POLICY_OF, TranslateError
from ..report.atomic import write_report
from ..runs.campaign import SCHEMA
from ..scenarios.litmus import LIBRARY
from .common import SHOWN, TIMEOUT, UsageError, progress, scope_arg, whole_number

__all__ = ["add_parser", "cmd_conform"]

def _known_lines(runs: Sequence[KernelRun], known: Sequence[Any]) -> list[str]:
    counts: dict[str, int] = {}
    where: dict[str, set[str]] = {}
    for r in runs:
        for s in r.summaries:
            for kid, n in s.known_ids.items():
                counts[kid] = counts.get(kid, 0) + n
                where.setdefault(kid, set()).add(f"{r.kernel}/{s.exporter}")
    by_id = {k.id: k for k in known}
    out = []
    for kid, n in sorted(counts.items()):
        k = by_id[kid]
        out.append(f"  {kid} ({k.kind}; {n} steps on {', '.join(sorted(where[kid]))}): {k.explanation}")
    return out


def _report(a: argparse.Namespace, runs: Sequence[KernelRun], known: Sequence[Any], n_litmus: int,
            skipped: Sequence[str]) -> dict[str, Any]:
    dis = []
    for r in runs:
        for v in r.verdicts:
            if v.status != "disagree":
                continue
            dis.append({"kernel": r.kernel, "uname": r.uname, "exporter": v.trace.exporter, "trace": v.trace.id,
                        "source": v.trace.source, "steps": [
                            {"runner": s.step.runner(), "model": s.step.model, "expected": s.step.expect,
                             "got": s.got, "status": s.status, "known": s.known} for s in v.steps]})
    used = {kid for r in runs for s in r.summaries for kid in s.known_ids}
    return {
        "schema": SCHEMA, "command": "conform", "revision": a.revision, "scope": {"name": a.scope},
        "seed": a.seed, "traces_per_exporter": a.traces, "litmus_traces": n_litmus,
        "litmus_skipped": list(skipped),
        "boots": [r.to_json() for r in runs],
        "results": [s.to_json() for r in runs for s in r.summaries],
        "known": [{"id": k.id, "kind": k.kind, "kernel": list(k.kernel), "exporter": k.exporter,
                   "explanation": k.explanation} for k in known if k.id in used],
        "disagreements": dis,
    }


# --------------------------------------------------------------------------------------
# the command


def _plan(kernel_args: Sequence[str] | None, exporter_args: Sequence[str] | None) -> list[tuple[str, list[str]]]:
    """(kernel, exporters to run on it) pairs; UsageError for names or pairs that cannot work."""
    keys: list[str] = []
    for k in kernel_args or [kernels.DEFAULT_KERNEL]:
        for part in k.split(","):
            part = part.strip()
            if part == "all":
                keys += [x for x in kernels.CATALOG if x not in keys]
            elif part not in kernels.CATALOG:
                raise UsageError(f"conform: --kernel: unknown kernel {part!r}; known: "
                                 f"{', '.join(kernels.CATALOG)}, all")
            elif part not in keys:
                keys.append(part)
    wanted: list[str] = []
    for e in exporter_args or []:
        if e not in POLICY_OF:
            raise UsageError(f"conform: --exporter: {e!r} is not an exporter the runner drives "
                             f"(it drives: {', '.join(POLICY_OF)})")
        if e not in wanted:
            wanted.append(e)
    plan = []
    for k in keys:
        offers = kernels.CATALOG[k].exporters
        exps = [e for e in (wanted or list(POLICY_OF)) if e in offers]
        if exps:
            plan.append((k, exps))
    for e in wanted:
        if not any(e in exps for _, exps in plan):
            better = [k for k, s in kernels.CATALOG.items() if e in s.exporters]
            raise UsageError(f"conform: kernel {', '.join(keys)} has no {e} exporter"
                             + (f"; use --kernel {better[0]}" if better else ""))
    if not plan:
        raise UsageError(f"conform: none of the exporters is offered by kernel {', '.join(keys)}")
    return plan


def cmd_conform(a: argparse.Namespace) -> int:
    scope = scope_arg(a.scope)
    plan = _plan(a.kernel, a.exporter)
    refused = [f"{e} ({export_refusal(POLICIES[POLICY_OF[e]], a.revision)})" for _, exps in plan for e in exps
               if not POLICIES[POLICY_OF[e]].exportable_at(a.revision)]
    if refused:
        raise UsageError(f"conform: --revision {a.revision}: not exportable there, so nothing to compare: "
                         f"{', '.join(dict.fromkeys(refused))}; the default, v6.12, exports them")
    try:
        known = load_known(a.known) if a.known else load_known()
    except KnownError as e:
        raise UsageError(str(e)) from None
    litmus: list[str | Path] = []
    if not a.no_litmus:
        if a.litmus:
            litmus = list(a.litmus)
        else:
            litmus = [LIBRARY] if LIBRARY.is_dir() else []
    runs: list[KernelRun] = []
    n_litmus = 0
    skipped: list[str] = []
    for kernel, exporters in plan:
        t0 = time.monotonic()
        try:
            traces, skipped = build_traces(exporters, a.traces, a.seed, scope.name, a.revision, litmus,
                                           kernel_side=a.kernel_side)
        except TranslateError as e:
            raise UsageError(str(e)) from None
        n_litmus = sum(1 for t in traces if t.id >= LITMUS_ID) // max(1, len(exporters))
        progress(f"conform: {kernel}: {len(traces)} traces ({a.traces} random per exporter for "
                  f"{', '.join(exporters)}, {n_litmus} litmus), {sum(len(t.steps) for t in traces)} steps, "
                  f"generated in {time.monotonic() - t0:.1f} s")
        run = conform_kernel(kernel, traces, known, timeout=a.timeout, cache_dir=a.cache, kmod=a.kernel_side)
        if run.error:
            print(f"conform: {run.error}", file=sys.stderr, flush=True)
        runs.append(run)
    lit = f", {n_litmus} userspace litmus files" if n_litmus else ""
    side = " (userspace and kernel-side)" if a.kernel_side else ""
    print(f"dmabuf-check conform: revision {a.revision}, scope {scope.name}, seed {a.seed}, "
          f"{a.traces} random traces per exporter{side}{lit}")
    print(format_table(runs))
    kl = _known_lines(runs, known)
    if kl:
        print("\nKnown differences seen (reported as known, not as failures):")
        print("\n".join(kl))
    shown = 0
    for r in runs:
        per: dict[str, int] = {}
        for v in r.verdicts:
            if v.status != "disagree" or per.get(v.trace.exporter, 0) >= a.show:
                continue
            if shown == 0:
                print("\nDisagreements (X: the kernel differs from the model; first "
                      f"{a.show} per kernel and exporter):")
            per[v.trace.exporter] = per.get(v.trace.exporter, 0) + 1
            shown += 1
            print(f"[{r.kernel}, {r.uname}] " + v.render(upto_first_disagreement=True))
    unknown = [(r, v) for r in runs for v in r.verdicts if v.status == "unknown" and not r.error]
    if unknown:
        print(f"\nUnknown: {len(unknown)} traces have incomplete kernel results, e.g. "
              f"[{unknown[0][0].kernel}] trace {unknown[0][1].trace.id}: {unknown[0][1].reason}")
    if a.json:
        progress(f"report written to {write_report(_report(a, runs, known, n_litmus, skipped), a.json)}")
    return 0 if all(r.passed for r in runs) else 1


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    c = sub.add_parser("conform", help="replay model traces in real kernels under QEMU and compare",
                       description="Replay random userspace traces of the model (and the userspace "
                       "litmus files) in real Linux kernels under QEMU, and compare every return "
                       "and every value read with what the exporter's catalog policy predicts. "
                       "The scope defaults to 'default' here (2 buffers of 2 pages).")
    common(c)
    # the drivers the runner drives exist from v4.20 on, and the v4.11 dma_buf_export() refuses
    # their ops (no kmap, kmap_atomic: corpus §3.5); the kernels booted are 6.12: the model
    # predicts them at v6.12 (v5.12 stays selectable)
    c.set_defaults(scope="default", revision="v6.12")
    for act in c._actions:  # the shared --scope help names the other commands' default
        if act.dest == "scope":
            act.help = "tiny, small or default (default here: default)"
        elif act.dest == "revision":
            act.help = ("the model's revision (default here: v6.12, the kernels booted; v5.12 works too; at "
                        "v4.11 dma_buf_export() refuses every exporter the runner drives)")
    c.add_argument("--kernel", action="append", metavar="KEY",
                   help="kernel to boot: 6.12-cloud (default), 6.12, 6.1, or all (repeatable)")
    c.add_argument("--traces", type=whole_number(1, MAX_PER_EXPORTER, "a number of traces"), default=200,
                   help=f"random traces per exporter (1 to {MAX_PER_EXPORTER:,}: one boot runs them all; default 200)")
    c.add_argument("--litmus", action="append", metavar="PATH",
                   help="litmus files or folders (default: the project's litmus/ library)")
    c.add_argument("--no-litmus", action="store_true", help="random traces only")
    c.add_argument("--kernel-side", action="store_true",
                   help="mix kernel-side actions (dma_buf_get/put, attach/detach, map/unmap, begin/end_cpu_access, "
                   "vmap/vunmap and loads and stores through it, pin/unpin) into the traces; they run in a "
                   "module built from the kernel's Debian headers; at v6.12 also dma_resv_lock/unlock around "
                   "each locked call, the _unlocked variants and dma_buf_dynamic_attach")
    c.add_argument("--known", default=None, metavar="FILE",
                   help="known-differences file (default: properties/conform/known.toml)")
    c.add_argument("--timeout", type=TIMEOUT, default=None,
                   help="seconds one boot may take (above 0, at most 1,000,000; default: from the number of steps)")
    c.add_argument("--cache", default=None, metavar="DIR",
                   help="kernel cache folder (default: .cache/kernels or $DMABUF_CHECK_CACHE)")
    c.add_argument("--show", type=SHOWN, default=5, metavar="N",
                   help="disagreeing traces to print per kernel and exporter (0 to 10,000; default 5)")
    c.set_defaults(func=cmd_conform)
