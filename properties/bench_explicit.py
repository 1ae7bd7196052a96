"""Benchmark of the explicit-state engine (``make bench-explicit``): not a test, figures to record.

Prints, measured in the same run (the machines are shared and noisy: compare the ratios):

1. a plain breadth-first search (a Python set of tuples) over a trivial state space (six counters
   0..9, each step moves one counter by one), in states per second: the floor of any BFS in
   Python;
2. the same plain BFS over the dma-buf model (``Model.successors``), for the first states of tiny;
3. the explicit engine (vectorised, every property checked, edges kept) on the ``tiny``,
   ``small`` and ``default`` scopes: states, transitions, seconds, states per second and peak
   memory (the resident set of a forked process that does only that search); small and default
   do not finish in any sensible budget, so they run under ``--seconds`` and say so;
4. how the state count grows with the scope: the states within ``--depth`` steps for tiny and
   for tiny with one dimension raised (pages, buffers, mappings, fds, attachments);
5. with ``--catalog``: every catalog policy's whole ``tiny`` graph (states, transitions, edges,
   depth, seconds, stuck-state findings), and with and without symmetry reduction for three;
6. with ``--cross``: for every catalog policy on ``tiny``, the explicit engine's verdicts next to
   a default Hypothesis campaign's and Z3's bounded checks (:func:`compare_engines`): where they
   disagree, and for every violation the length of Hypothesis's shrunk trace against the shortest.

Each measurement runs in a forked child (``os.fork``/``os.wait4``), so that its peak resident set
is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from typing import Any, Callable

__all__ = ["main", "trivial_bfs", "compare_engines", "cross_engine"]


def trivial_bfs(counters: int = 6, top: int = 9) -> tuple[int, float]:
    """Plain BFS over tuples of ``counters`` values in 0..top; returns (states, seconds)."""
    start = (0,) * counters
    seen = {start}
    frontier = [start]
    t = time.perf_counter()
    while frontier:
        nxt = []
        for s in frontier:
            for i in range(counters):
                for d in (-1, 1):
                    v = s[i] + d
                    if 0 <= v <= top:
                        n = s[:i] + (v,) + s[i + 1:]
                        if n not in seen:
                            seen.add(n)
                            nxt.append(n)
        frontier = nxt
    return len(seen), time.perf_counter() - t


def model_bfs(policy: str, scope: str, limit: int) -> tuple[int, int, float]:
    """Plain BFS over the dma-buf model's ``successors`` until ``limit`` states; returns
    (states, transitions, seconds)."""
    from model.catalog import CATALOG
    from model.machine import Model

    m = Model(CATALOG[policy], scope)
    seen = {m.init}
    frontier = [m.init]
    trans = 0
    t = time.perf_counter()
    while frontier and len(seen) < limit:
        nxt = []
        for s in frontier:
            for _, n, _, _, _ in m.successors(s):
                trans += 1
                if n not in seen:
                    seen.add(n)
                    nxt.append(n)
            if len(seen) >= limit:
                break
        frontier = nxt
    return len(seen), trans, time.perf_counter() - t


def state_by_state(policy: str, scope: str, seconds: float) -> dict[str, Any]:
    """The state-by-state engine the array engine replaces: breadth first over
    ``Model.successors`` one state at a time, a set of tuples for deduplication, a parent map for
    shortest traces, and every property checked on every transition by the monitor's compiled
    per-action functions (the Hypothesis engine's checks). Stops after ``seconds``."""
    from model.catalog import CATALOG
    from model.machine import Model

    from .catalog import PROPERTIES
    from .monitor import Monitor

    m = Model(CATALOG[policy], scope)
    mon = Monitor(m, PROPERTIES)
    names = [i.name for i in m.instances]
    fast = [mon.fast[n] for n in names]
    parent = {m.init: None}
    found: set[int] = set()
    frontier = [m.init]
    trans = 0
    t = time.perf_counter()
    complete = True
    while frontier:
        nxt = []
        for s in frontier:
            for i, n, ret, ev, buf in m.successors(s):
                trans += 1
                bad, hit = fast[i](s, n, ret, ev, buf)
                if bad | hit:
                    found.add(bad | hit)
                if n not in parent:
                    parent[n] = (s, i)
                    nxt.append(n)
            if time.perf_counter() - t > seconds:
                complete = False
                break
        if not complete:
            break
        frontier = nxt
    secs = time.perf_counter() - t
    return {"engine": "state-by-state", "policy": policy, "scope": scope, "states": len(parent),
            "transitions": trans, "complete": complete, "seconds": round(secs, 2),
            "states_per_s": round(len(parent) / secs)}


def _in_child(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its result with the child's peak resident set (MB)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            out = fn()
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            out = {"error": f"{type(e).__name__}: {e}"}
        with os.fdopen(w, "w") as f:
            json.dump(out, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, _, usage = os.wait4(pid, 0)
    out = json.loads(text) if text else {"error": "the child died"}
    out["peak_mb"] = round(usage.ru_maxrss / 1024)
    return out


def _explore(policy: str, scope: Any, seconds: float | None, symmetry: bool = False,
             depth: int | None = None, props: bool = True, stuck: bool = False,
             edges: bool = True) -> dict[str, Any]:
    from model.catalog import CATALOG
    from model.machine import Model

    from .catalog import PROPERTIES
    from .engines.explicit import Budget, explore

    model = Model(CATALOG[policy], scope)
    t = time.perf_counter()
    sp = explore(model, PROPERTIES if props else (), symmetry=symmetry,
                 budget=Budget(seconds=seconds, depth=depth), keep_edges=edges)
    secs = time.perf_counter() - t
    out = {"policy": policy, "scope": model.scope.name, **sp.summary(), "seconds": round(secs, 2),
           "states_per_s": round(sp.n_states / secs) if secs else None,
           "transitions_per_s": round(sp.transitions / secs) if secs else None}
    if stuck and sp.complete:
        from .engines.stuck import find_stuck
        out["stuck"] = [(f.goal, f.stuck, len(f.trace)) for f in find_stuck(sp)]
    return out


def compare_engines(explicit: list, other: list, bound: int | None = None) -> tuple[list[str], list[dict]]:
    """Where another engine's verdicts disagree with the explicit engine's, and the length of each
    trace it found next to the shortest one.

    ``explicit`` comes from a complete search, or from one bounded to ``bound`` steps (then only
    what fires within ``bound`` steps is judged). The other engine agrees when it reports every
    violation and every reached target the explicit engine found (a sampling engine may report a
    longer trace, never a shorter one; a bounded checker finds exactly the shortest within its
    depth, in ``evidence["depth"]``), and reports nothing the explicit engine showed cannot happen
    (a ``proved`` or ``holds`` on a complete graph)."""
    mine = {v.property: v for v in explicit}
    out, rows = [], []
    for o in other:
        e = mine.get(o.property)
        if e is None:
            continue
        fired_e = e.trace is not None
        fired_o = o.trace is not None
        le = len(e.trace) if fired_e else None
        lo = len(o.trace) if fired_o else None
        complete = e.evidence.get("complete", False)
        depth = o.evidence.get("depth") if o.engine == "z3" else None
        name = f"{e.exporter}: {e.property} ({e.kind})"
        if fired_e:
            rows.append({"exporter": e.exporter, "property": e.property, "kind": e.kind, "shortest": le,
                         "other": lo, "ratio": round(lo / le, 3) if lo and le else (1.0 if lo == le else None)})
        if fired_o and lo is not None and (fired_e and lo < le or not fired_e and (complete or lo <= (bound or 0))):
            out.append(f"{name}: {o.engine} fires after {lo} steps, the explicit engine's shortest is "
                       f"{le if fired_e else 'none'}")
        elif fired_e and not fired_o and (depth is None or le <= depth):
            out.append(f"{name}: {o.engine} misses it ({o.verdict}); the explicit engine fires after {le} steps")
        elif fired_e and fired_o and depth is not None and le <= depth and lo != le:
            out.append(f"{name}: {o.engine} fires after {lo} steps at bounded depth, the shortest is {le}")
        elif o.verdict == "proved" and fired_e and e.kind != "witness":
            out.append(f"{name}: {o.engine} proves it, the explicit engine violates it after {le} steps")
    return out, rows


def cross_engine(policy: str, scope: Any = "tiny", examples: int = 300, steps: int = 30, seed: int = 1,
                 depth: int = 6, bound: int | None = None) -> dict[str, Any]:
    """The three engines on one policy: explicit (whole graph, or ``bound`` levels), Hypothesis
    (the campaign's default budget) and Z3 (bounded to ``depth``, then induction)."""
    from model.catalog import CATALOG
    from model.machine import Model

    from .catalog import PROPERTIES
    from .engines.explicit import Budget, check
    from .engines.hypothesis_engine import run_hypothesis
    from .engines.z3_engine import run_z3

    model = Model(CATALOG[policy] if isinstance(policy, str) else policy, scope)
    t = time.perf_counter()
    space, ev = check(model, PROPERTIES, budget=Budget(depth=bound), keep_edges=False)
    te = time.perf_counter() - t
    t = time.perf_counter()
    hv = run_hypothesis(model, PROPERTIES, examples=examples, seed=seed, steps=steps)
    th = time.perf_counter() - t
    t = time.perf_counter()
    zv = run_z3(model, PROPERTIES, depth=depth)
    tz = time.perf_counter() - t
    dh, rows = compare_engines(ev, hv, bound)
    dz, zrows = compare_engines(ev, zv, bound)
    z3_len = {z["property"]: z["other"] for z in zrows}
    for r in rows:
        r["z3"] = z3_len.get(r["property"])
    return {"policy": model.policy.name, "states": space.n_states, "complete": space.complete,
            "seconds": {"explicit": round(te, 1), "hypothesis": round(th, 1), "z3": round(tz, 1)},
            "disagreements": dh + dz, "rows": rows}


def _row(d: dict[str, Any]) -> str:
    if "error" in d:
        return f"  ERROR {d['error']}"
    return (f"  {d['policy']:<32} {d['scope']:<8} {d['states']:>10} states {d['transitions']:>12} transitions "
            f"{d['edges']:>10} edges  depth {d['depth']:>2}  {'complete' if d['complete'] else 'CUT    '} "
            f"{d['seconds']:>7.1f} s {d['states_per_s'] or 0:>8} st/s  {d['peak_mb']:>6} MB"
            + (f"  stuck {d['stuck']}" if d.get("stuck") else ""))


def main(argv: list[str] | None = None) -> int:
    from model.catalog import CATALOG
    from model.scope import SCOPES

    ap = argparse.ArgumentParser(prog="python -m properties.bench_explicit", description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="i915", help="the policy of sections 2-4 (default i915)")
    ap.add_argument("--seconds", type=float, default=120.0, help="budget of the small and default searches")
    ap.add_argument("--depth", type=int, default=8, help="depth of the growth table (section 4)")
    ap.add_argument("--catalog", action="store_true", help="also section 5: every catalog policy's tiny graph")
    ap.add_argument("--cross", action="store_true", help="also section 6: explicit vs Hypothesis vs Z3 on tiny")
    ap.add_argument("--only", action="append", metavar="POLICY", help="sections 5-6: only these policies")
    ap.add_argument("--skip", action="append", default=[], metavar="SECTION", help="skip section 1, 2, 3, 4 or 7")
    ap.add_argument("--versus", type=float, default=60.0, help="seconds of each engine in section 7")
    ap.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    a = ap.parse_args(argv)
    figures: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load": os.getloadavg()}}

    def say(msg: str) -> None:
        print(msg, flush=True)

    say(f"dmabuf-check explicit-engine benchmark; python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f} at start")
    policies = a.only or list(CATALOG)
    if "1" not in a.skip:
        n, secs = trivial_bfs()
        figures["trivial_bfs"] = {"states": n, "seconds": round(secs, 2), "states_per_s": round(n / secs)}
        say(f"1. plain Python BFS, trivial space (6 counters 0..9): {n} states in {secs:.2f} s = "
            f"{n / secs:,.0f} states/s")
    if "2" not in a.skip:
        st, tr, secs = model_bfs(a.policy, "tiny", 100_000)
        figures["model_bfs"] = {"policy": a.policy, "states": st, "transitions": tr, "seconds": round(secs, 2)}
        say(f"2. plain Python BFS, dma-buf model ({a.policy}, tiny, first {st} states): {st / secs:,.0f} "
            f"states/s, {tr / secs:,.0f} transitions/s")
    if "3" not in a.skip:
        say(f"3. explicit engine, every property checked, edges kept ({a.policy}):")
        figures["scopes"] = []
        for name in ("tiny", "small", "default"):
            d = _in_child(lambda name=name: _explore(a.policy, name, None if name == "tiny" else a.seconds))
            figures["scopes"].append(d)
            say(_row(d))
    if "4" not in a.skip:
        say(f"4. growth with the scope: states within {a.depth} steps of the initial state ({a.policy}):")
        figures["growth"] = []
        tiny = SCOPES["tiny"]
        variants = [("tiny", tiny)] + [(f"tiny+{k}", replace(tiny, name=f"tiny+{k}", **{k: getattr(tiny, k) + 1}))
                                       for k in ("pages", "buffers", "vmas", "fds", "attachments")]
        for label, sc in variants:
            d = _in_child(lambda sc=sc: _explore(a.policy, sc, a.seconds, depth=a.depth, props=False))
            d["variant"] = label
            figures["growth"].append(d)
            say(_row(d))
    if "7" not in a.skip:
        say(f"7. the array engine against the state-by-state engine ({a.policy}, every property checked, "
            f"{a.versus:g} s each, no edges kept by either):")
        figures["versus"] = []
        for name in ("small", "default"):
            one = _in_child(lambda name=name: state_by_state(a.policy, name, a.versus))
            arr = _in_child(lambda name=name: {**_explore(a.policy, name, a.versus, edges=False), "engine": "array"})
            for d in (one, arr):
                figures["versus"].append(d)
            if "error" in one or "error" in arr:
                say(f"   {name}: ERROR {one.get('error') or arr.get('error')}")
                continue
            say(f"   {name}: state-by-state {one['states']:,} states in {one['seconds']} s = "
                f"{one['states_per_s']:,} states/s, peak {one['peak_mb']} MB; array {arr['states']:,} states in "
                f"{arr['seconds']} s = {arr['states_per_s']:,} states/s, peak {arr['peak_mb']} MB")
            say(f"   {name}: speed {arr['states_per_s'] / one['states_per_s']:.1f}x (target 4x); memory per "
                f"state {arr['peak_mb'] / arr['states'] * 1e6 / (one['peak_mb'] / one['states'] * 1e6):.2f} of "
                f"the state-by-state engine's (target at most 0.25)")
    if a.catalog:
        say("5. every catalog policy, whole tiny graph (properties, edges, stuck states):")
        figures["catalog"] = []
        for pol in policies:
            d = _in_child(lambda pol=pol: _explore(pol, "tiny", None, stuck=True))
            figures["catalog"].append(d)
            say(_row(d))
        say("   with symmetry reduction:")
        for pol in [p for p in ("reference", "omapdrm", "i915") if p in policies]:
            d = _in_child(lambda pol=pol: _explore(pol, "tiny", None, symmetry=True))
            figures["catalog"].append(d)
            say(_row(d))
    if a.cross:
        say("6. three engines on tiny: explicit (whole graph), Hypothesis (300 examples x 30 steps), "
            "Z3 (depth 6, then induction); lengths of the traces each found (shortest first):")
        figures["cross"] = []
        for pol in policies:
            d = _in_child(lambda pol=pol: cross_engine(pol, "tiny"))
            figures["cross"].append(d)
            if "error" in d:
                say(f"  {pol}: ERROR {d['error']}")
                continue
            say(f"  {pol}: {d['states']} states; {len(d['disagreements'])} disagreements; seconds {d['seconds']}")
            for x in d["disagreements"]:
                say(f"    DISAGREE {x}")
            for r in d["rows"]:
                if r["kind"] != "witness":
                    say(f"    {r['property']:<28} {r['kind']:<9} shortest {r['shortest']:>2}  hypothesis "
                        f"{r['other'] if r['other'] is not None else '-':>2}  z3 "
                        f"{r['z3'] if r['z3'] is not None else '-':>2}  ratio {r['ratio']}")
    if a.json:
        from .campaign import write_report
        write_report(figures, a.json)
        say(f"figures written to {a.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
