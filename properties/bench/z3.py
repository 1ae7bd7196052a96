"""Benchmark of the Z3 engine (``make bench-z3``): not a test, figures to record.

Prints (and with ``--json`` writes), measured on this machine:

- the time to bounded-check every property of each exporter to depth 12 on the ``small`` scope
  (the issue's target: all properties to depth 12 within five minutes), and the sum over the
  exporters measured;
- the depth reached per property within a time budget on the ``small`` and ``default`` scopes
  (iterative deepening until the budget runs out; a property whose target is reached reports
  the depth where it was);
- the time of each induction proof (Houdini per exporter, each step property from the proved
  invariants; the core's properties for every policy at once);
- the time of the synthesis queries (the FIXME with and without kmap users).

Wall-clock and CPU seconds are both given: the machines are shared, so the load average at the
start and end is printed too.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from typing import Any

import z3

from model import CATALOG, Model

from ..engines.synthesis import fixme_query, prove_for_every_policy
from ..engines.z3_engine import Encoding, bmc, houdini, prove_step
from ..index import PROPERTIES
from ..monitor import Monitor
from ..report.atomic import write_report

__all__ = ["main"]

_DEFAULT_EXPORTERS = ("reference", "omapdrm", "i915", "udmabuf", "broken-kmap-unpinned")


def _cpu() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def _timed(fn, *a, **kw):
    w, c = time.monotonic(), _cpu()
    out = fn(*a, **kw)
    return out, round(time.monotonic() - w, 2), round(_cpu() - c, 2)


def bench_depth12(exporters: list[str], depth: int, timeout: float | None = None) -> list[dict[str, Any]]:
    rows = []
    for name in exporters:
        model = Model(CATALOG[name], "small")
        props = Monitor(model, PROPERTIES).props
        res, wall, cpu = _timed(bmc, model, props, depth, timeout)
        rows.append({"exporter": name, "scope": "small", "depth": depth, "properties": len(props),
                     "reached": sum(r.status == "reached" for r in res.values()),
                     "unknown": sum(r.status == "unknown" for r in res.values()),
                     "wall": wall, "cpu": cpu})
        unknown = sum(r.status == "unknown" for r in res.values())
        print(f"  depth {depth}, small, {name}: {len(props)} properties in {wall} s wall ({cpu} s cpu)"
              + (f"; {unknown} unknown (a query ran out of its {timeout:g} s)" if unknown else ""), flush=True)
    return rows


def bench_budget(exporters: list[str], scope: str, budget: float, cap: int) -> list[dict[str, Any]]:
    rows = []
    for name in exporters:
        model = Model(CATALOG[name], scope)
        props = Monitor(model, PROPERTIES).props
        res, wall, cpu = _timed(bmc, model, props, cap, budget=budget)
        per = {pid: {"status": r.status, "depth": r.depth} for pid, r in res.items()}
        bound = max((r.depth for r in res.values() if r.status == "unreached"), default=None)
        rows.append({"exporter": name, "scope": scope, "budget": budget, "depth_reached": bound,
                     "wall": wall, "cpu": cpu, "properties": per})
        print(f"  {scope}, {name}: every undecided property checked to depth {bound} within "
              f"{budget:g} s ({wall} s wall, {cpu} s cpu); "
              f"{sum(r.status == 'reached' for r in res.values())} reached", flush=True)
    return rows


def bench_induction(exporters: list[str], scope: str) -> list[dict[str, Any]]:
    rows = []
    for name in exporters:
        model = Model(CATALOG[name], scope)
        props = Monitor(model, PROPERTIES).props
        enc = Encoding(model.schema, model.terms, fixed=model.knob_env)
        cands = [p for p in props if p.kind == "always"]
        (inv, why), wall, cpu = _timed(houdini, model, cands, 120.0, encoding=enc)
        steps = []
        for p in props:
            if p.kind == "step":
                r, w, c = _timed(prove_step, model, p, inv, 120.0, encoding=enc)
                steps.append({"property": p.id, "proved": r.proved, "wall": w, "cpu": c})
        core = [p.id for p in props if p.party == "core" and p.kind == "always"]
        rows.append({"exporter": name, "scope": scope, "houdini_wall": wall, "houdini_cpu": cpu,
                     "proved_always": sorted(p.id for p in inv),
                     "core_always_proved": all(c in {p.id for p in inv} for c in core),
                     "steps": steps})
        print(f"  induction, {scope}, {name}: Houdini {wall} s wall ({cpu} s cpu), "
              f"{len(inv)}/{len(cands)} always proved (core: "
              f"{'all' if rows[-1]['core_always_proved'] else 'NOT all'}); "
              f"{sum(s['proved'] for s in steps)}/{len(steps)} step properties proved in "
              f"{round(sum(s['wall'] for s in steps), 2)} s", flush=True)
    core = [p for p in PROPERTIES if p.party == "core" and p.kind in ("always", "step") and "v4.11" in p.revisions]
    res, wall, cpu = _timed(prove_for_every_policy, core, scope)
    rows.append({"exporter": "*every policy*", "scope": scope, "wall": wall, "cpu": cpu,
                 "proved": [e["property"] for e in res if e["proved"]],
                 "not_proved": [e["property"] for e in res if not e["proved"]]})
    print(f"  induction, {scope}, every policy at once: {len(rows[-1]['proved'])}/{len(res)} core "
          f"properties proved in {wall} s wall ({cpu} s cpu)", flush=True)
    return rows


def bench_synthesis(scope: str, depth: int) -> list[dict[str, Any]]:
    rows = []
    for ku in (True, False):
        r, wall, cpu = _timed(fixme_query, ku, scope, depth)
        rows.append({"query": r.title, "scope": scope, "depth": depth, "answer": r.status,
                     "proved_every_depth": r.proved, "satisfying": r.count, "space": r.space,
                     "refuting_traces": r.refuting_traces, "wall": wall, "cpu": cpu})
        print(f"  synthesis, {scope}, depth {depth}, {'with' if ku else 'without'} kmap users: "
              f"{r.status}{' (proved)' if r.proved else ''}, {r.count} of {r.space} policies, "
              f"{wall} s wall ({cpu} s cpu)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.z3", description=__doc__.split("\n")[0])
    ap.add_argument("--exporters", nargs="*", default=list(_DEFAULT_EXPORTERS))
    ap.add_argument("--all", action="store_true", help="every catalog exporter for the depth-12 figure")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per exporter for the depth-reached figure")
    ap.add_argument("--cap", type=int, default=40, help="deepest depth tried within the budget")
    ap.add_argument("--synth-depth", type=int, default=8)
    ap.add_argument("--bounded-depth", type=int, default=12,
                    help="depth of the every-property bounded check on small (the issue's figure: 12)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["bounded", "budget", "induction", "synthesis"],
                    help="sections not to run")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds per solver query in the bounded section (default 60, as `prove`); a "
                         "query that runs out is unknown and reported")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args(argv)
    for n in a.exporters:
        if n not in CATALOG:
            print(f"bench_z3: unknown exporter {n!r}", file=sys.stderr)
            return 2

    head = {"machine": platform.platform(), "python": platform.python_version(),
            "z3": z3.get_version_string(), "cpus": os.cpu_count(), "load_start": os.getloadavg()}
    print(f"Z3 engine benchmark on {head['machine']}, {head['cpus']} cpus, z3 {head['z3']}, "
          f"load {head['load_start'][0]:.1f}", flush=True)
    out: dict[str, Any] = {"head": head}
    d12 = list(CATALOG) if a.all else a.exporters
    if "bounded" not in a.skip:
        print(f"Bounded checks of every property to depth {a.bounded_depth}, small scope:")
        out["depth12"] = bench_depth12(d12, a.bounded_depth, a.timeout)
        total = sum(r["wall"] for r in out["depth12"])
        print(f"  total for {len(d12)} exporters: {total:.1f} s wall "
              f"({sum(r['cpu'] for r in out['depth12']):.1f} s cpu)")
    if "budget" not in a.skip:
        print(f"Depth reached within {a.budget:g} s per exporter:")
        out["budget"] = bench_budget(a.exporters, "small", a.budget, a.cap) + \
            bench_budget(a.exporters, "default", a.budget, a.cap)
    if "induction" not in a.skip:
        print("Induction:")
        out["induction"] = bench_induction(a.exporters, "small") + bench_induction(a.exporters[:2], "default")
    if "synthesis" not in a.skip:
        print("Synthesis:")
        out["synthesis"] = bench_synthesis("tiny", a.synth_depth) + bench_synthesis("small", a.synth_depth)
    head["load_end"] = os.getloadavg()
    print(f"load at the end: {head['load_end'][0]:.1f}")
    if a.json:
        write_report(out, a.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
