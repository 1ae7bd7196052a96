"""``dmabuf-check prove``: the Z3 engine from the command line (docs/interface.md).

Four parts, each selectable with ``--only``:

- ``bmc``: per exporter, bounded model checking of every property to ``--depth``, then
  induction (``proved``) for the ``always``/``step`` properties bounded checking did not refute;
  and the core's properties proved for every exporter policy at once (knobs free);
- ``synthesis``: the FIXME of ``@begin_cpu_access`` as a policy-synthesis query, (a) with and
  (b) without kernel kmap users, and any ``--pair`` of claims;
- ``arith``: the bit-precise 64-bit checks of the kernel's mmap arithmetic.

Results go to stdout, progress to stderr; ``--json`` writes the report (the schema of
docs/interface.md, ``engine: z3``, with ``proved`` verdicts and the sections ``universal``,
``synthesis`` and ``arith``); ``--smt2 DIR`` writes each solver query as an SMT-LIB 2 file.
Exit status: 0 when every outcome is as expected, 1 when one is not (a verdict not as expected,
a declared-broken claim not found broken within the depth, or the model's mmap check found to
disagree with the kernel's), 2 for bad input.
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any, Callable

from model.machine import Model

from .. import interrupt
from ..claims import load_claims
from ..engines.arith import check_all
from ..engines.interface import Budget
from ..engines.synthesis import fixme_query, prove_for_every_policy, synthesize_claims
from ..engines.z3_engine import Z3Engine
from ..index import PROPERTIES, by_claim, get_property
from ..judge import claim_checks, split_exportable
from ..report.atomic import write_report
from ..runs.campaign import CampaignResult, format_table
from ..runs.runner import plan_per_exporter, run
from ..runs.workers import InlineWorkers
from ..trace import render
from .common import DEPTH, TIMEOUT, UsageError, progress, resolve_exporters, scope_arg, warn_not_exportable

__all__ = ["add_parser", "cmd_prove", "format_synthesis", "format_arith", "SmtWriter"]

PARTS = ("bmc", "synthesis", "arith")


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Register ``prove`` on the CLI's subparsers."""
    p = sub.add_parser("prove", help="the Z3 engine: bounded checks, induction proofs, the FIXME "
                       "synthesis query, bit-precise mmap checks")
    common(p)
    p.add_argument("--depth", type=DEPTH, default=8, help="bound of the bounded checks and of the "
                   "synthesis query, in steps (1 to 64; default 8)")
    p.add_argument("--timeout", type=TIMEOUT, default=60.0,
                   help="seconds per solver query; a query that runs out is 'unknown' (above 0, at most 1,000,000; "
                   "default 60)")
    p.add_argument("--smt2", metavar="DIR", help="write every solver query as an SMT-LIB 2 file in DIR")
    p.add_argument("--only", action="append", choices=PARTS,
                   help="run only this part (repeatable; default: all)")
    p.add_argument("--pair", nargs=2, action="append", metavar=("CLAIMS_A", "CLAIMS_B"),
                   help="also ask the synthesis query for this pair: comma-separated claim IDs "
                   "(or property IDs) on each side")
    p.set_defaults(func=cmd_prove)
    return p


class SmtWriter:
    """Writes each query to ``DIR/NNNN-name.smt2``."""

    def __init__(self, folder: str) -> None:
        self.dir = Path(folder)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--smt2: cannot create {folder}: {e.strerror}") from None
        self.count = 0

    def __call__(self, name: str, text: str) -> None:
        self.count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]
        (self.dir / f"{self.count:04d}-{safe}.smt2").write_text(text, encoding="utf-8")


def _parse_pair(pair: list[str]) -> tuple[list[str], list[str]]:
    known = load_claims()
    sides = []
    for side in pair:
        ids = [x.strip() for x in side.split(",") if x.strip()]
        if not ids:
            raise UsageError("--pair: each side needs at least one claim ID")
        for c in ids:
            if c.startswith(("P-", "W-", "I-")):
                try:
                    get_property(c)
                except KeyError as e:
                    raise UsageError(f"--pair: {e.args[0]}") from None
            elif c not in known:
                raise UsageError(f"--pair: unknown claim {c!r} (see spec/claims.md)")
            elif not any(p.kind in ("always", "step") for p in by_claim(c)):
                raise UsageError(f"--pair: no always/step property cites the claim {c} (nothing to keep)")
        sides.append(ids)
    return sides[0], sides[1]


def cmd_prove(a: argparse.Namespace) -> int:
    parts = set(a.only or PARTS)
    scope = scope_arg(a.scope)
    exporters = resolve_exporters(a.exporter, a.revision) if "bmc" in parts else []
    warn_not_exportable(exporters, a.revision)
    exporters, refused = split_exportable(exporters, a.revision)   # listed, never run
    pairs = [_parse_pair(p) for p in (a.pair or [])]
    smt2 = SmtWriter(a.smt2) if a.smt2 else None
    started = time.monotonic()
    result = CampaignResult("prove", a.revision, scope, a.seed, "z3",
                            {"depth": a.depth, "timeout": a.timeout}, list(exporters), not_exportable=refused)
    report_extra: dict[str, Any] = {}
    models = {}
    out: list[str] = []
    tasks = plan_per_exporter(exporters, scope, a.revision, Z3Engine(smt2=smt2), [q.id for q in PROPERTIES],
                              Budget(depth=a.depth, timeout=a.timeout))

    def on_result(r, running: int) -> None:
        p = tasks[r.index].exporter
        models[p.name] = Model(p, scope, a.revision)
        vs = r.verdicts
        result.verdicts += vs
        result.claim_checks += claim_checks(p, vs, scope, a.revision)
        n = sum(v.verdict == "proved" for v in vs)
        bad = sum(v.verdict == "violated" and v.kind in ("always", "step") for v in vs)
        progress(f"[{r.index + 1}/{len(tasks)}] {p.name}: {n} proved, {bad} violated "
                  f"({time.monotonic() - started:.1f} s)")

    try:
        workers = InlineWorkers(announce=lambda t: progress(f"[{t.index + 1}/{len(tasks)}] {t.exporter.name} ..."))
        if run(tasks, workers, on_result=on_result).stopped:
            raise KeyboardInterrupt
        if "bmc" in parts:
            core = [q for q in PROPERTIES if q.party == "core" and q.kind in ("always", "step")
                    and q.fits(scope) and a.revision in q.revisions]
            progress("proving the core's properties for every exporter policy ...")
            report_extra["universal"] = prove_for_every_policy(core, scope, a.revision, a.timeout)
        if "synthesis" in parts:
            synth = []
            for ku in (True, False):
                progress(f"synthesis: the FIXME {'with' if ku else 'without'} kernel kmap users ...")
                synth.append(fixme_query(ku, scope, a.depth, revision=a.revision, timeout=a.timeout,
                                         progress=progress, smt2=smt2))
            for ca, cb in pairs:
                progress(f"synthesis: {'+'.join(ca)} and {'+'.join(cb)} ...")
                synth.append(synthesize_claims(ca, cb, scope, a.depth, revision=a.revision,
                                               timeout=a.timeout, progress=progress, smt2=smt2))
            report_extra["synthesis"] = synth
        if "arith" in parts:
            progress("bit-precise mmap arithmetic ...")
            findings = check_all(a.timeout)
            if smt2 is not None:
                for f in findings:
                    if f.smt2:
                        smt2(f"arith-{f.id}", f"; {f.question}\n" + f.smt2)
            report_extra["arith"] = findings
    except KeyboardInterrupt:
        result.interrupted = True
        progress("interrupted: writing what was found")
    result.seconds = time.monotonic() - started

    out.append(f"dmabuf-check prove: revision {a.revision}, scope {scope.name}, engine z3, depth "
               f"{a.depth}, {a.timeout:g} s per query")
    if result.verdicts:
        table = format_table(result, models).split("\n", 1)[1]
        out.append(table)
        out.append(_format_induction(result))
    elif result.not_exportable:   # (with verdicts, the table lists them)
        out.append(f"not exportable at {a.revision}, so not checked there (dma_buf_export() refuses their ops):\n"
                   + "\n".join("- " + n.sentence() for n in result.not_exportable))
    if "universal" in report_extra:
        out.append(_format_universal(report_extra["universal"]))
    for r in report_extra.get("synthesis", []):
        out.append(format_synthesis(r, a.revision))
    if "arith" in report_extra:
        out.append(format_arith(report_extra["arith"]))
    arith_bad = [f.id for f in report_extra.get("arith", []) if f.answer in ("refuted",)]
    if smt2 is not None:
        out.append(f"{smt2.count} SMT-LIB 2 files written to {a.smt2}")
    print("\n\n".join(x for x in out if x))
    if a.json:
        data = result.to_json()
        data["budget"] = {"depth": a.depth, "timeout": a.timeout}
        if "universal" in report_extra:
            data["universal"] = report_extra["universal"]
        if "synthesis" in report_extra:
            data["synthesis"] = [r.to_json() for r in report_extra["synthesis"]]
        if "arith" in report_extra:
            data["arith"] = [f.to_json() for f in report_extra["arith"]]
        data["mismatches"] = result.mismatches + [f"arith: {x} refuted" for x in arith_bad]
        progress(f"report written to {write_report(data, a.json)}")
    if result.interrupted:
        return interrupt.exit_status()
    return 1 if (result.mismatches or arith_bad) else 0


def _format_induction(result) -> str:
    """Which properties are proved, which hold only up to the depth, and why."""
    lines = ["Induction (always/step properties not refuted by the bounded check):"]
    by_prop: dict[str, list] = {}
    for v in result.verdicts:
        if v.kind in ("always", "step") and v.verdict in ("proved", "holds"):
            by_prop.setdefault(v.property, []).append(v)
    for pid, vs in by_prop.items():
        proved = [v.exporter for v in vs if v.verdict == "proved"]
        held = [v for v in vs if v.verdict == "holds"]
        if held:
            why = held[0].evidence.get("induction", "")
            lines.append(f"- {pid}: proved for {len(proved)} of {len(vs)} exporters; holds only up to depth "
                         f"{held[0].evidence.get('depth')} for {', '.join(v.exporter for v in held)}")
            if why:
                lines.append(f"    why ({held[0].exporter}): {why}")
        else:
            lines.append(f"- {pid}: proved for all {len(vs)} exporters")
    return "\n".join(lines)


def _format_universal(entries: list[dict[str, Any]]) -> str:
    lines = ["The core's properties for every exporter policy at once (knobs free; mutant_*, "
             "evict_pinned and begin_leaks_pin_on_error off):"]
    for e in entries:
        if e["proved"]:
            lines.append(f"- {e['property']} [{', '.join(e['claims'])}]: proved ({e['method']})")
        else:
            lines.append(f"- {e['property']} [{', '.join(e['claims'])}]: not proved for every policy: {e['reason']}")
    return "\n".join(lines)


def format_synthesis(r, revision: str = "v4.11") -> str:
    """One synthesis answer: the verdict, the satisfying classes, the failing classes with the
    trace that refutes each, and where the catalog's exporters fall."""
    lines = [f"Synthesis {r.title}",
             f"  scope {r.scope.name}, depth {r.depth}: keep {', '.join(r.safety)}"
             + (f"; reach {', '.join(r.witnesses)}" if r.witnesses else "")
             + (f"; actions removed: {', '.join(r.excluded_actions)}" if r.excluded_actions else ""),
             f"  search space: {len(r.free_knobs)} free knobs; mutant_*, evict_pinned and "
             f"begin_leaks_pin_on_error fixed false"]
    if r.status == "unsat":
        lines.append(f"  answer: NO policy keeps both ({r.refuting_traces} traces refute every policy)")
    elif r.status == "sat":
        scope_word = "at every depth (proved by induction)" if r.proved else f"up to depth {r.depth}"
        lines.append(f"  answer: {r.count if r.count is not None else 'many'} of {r.space} knob assignments "
                     f"keep both {scope_word}; {r.refuting_traces} traces refute the rest")
    else:
        lines.append(f"  answer: unknown ({r.note})")
    for k, v in r.partitions.items():
        lines.append(f"    {k}: {v}")
    if r.satisfying:
        lines.append("  policies that keep both (each line a class; unnamed knobs are free):")
        for c in r.satisfying:
            lines.append(f"    + {c.describe()}")
    if r.failing:
        lines.append("  policies that fail, with the trace that refutes each class:")
        for c in r.failing:
            if c.unreached:
                lines.append(f"    - {c.describe()}: vacuous, {c.unreached} is not reached within {r.depth} steps")
                continue
            lines.append(f"    - {c.describe()}: violates {', '.join(c.violates)}")
            if c.trace is not None:
                model = Model(c.example, r.scope, revision)
                lines.append("\n".join("        " + x for x in render(model, c.trace).splitlines()))
    if r.truncated:
        lines.append("  (more classes exist than were listed)")
    if r.explanation:
        lines.append("  " + r.explanation)
    keeps = [n for n, v in r.catalog.items() if v == "keeps both"]
    fails = [n for n, v in r.catalog.items() if v == "fails"]
    lines.append(f"  catalog exporters that keep both: {', '.join(keeps) or '(none)'}")
    lines.append(f"  catalog exporters that fail: {', '.join(fails) or '(none)'}")
    return "\n".join(lines)


def format_arith(findings) -> str:
    lines = ["Bit-precise mmap arithmetic (64-bit unsigned, as the C code computes it):"]
    for f in findings:
        wit = (" e.g. " + ", ".join(f"{k}={v}" for k, v in f.witness.items())) if f.witness else ""
        lines.append(f"- [{f.claim}] {f.question}\n    {f.answer}: {f.summary}{wit}")
    return "\n".join(lines)
