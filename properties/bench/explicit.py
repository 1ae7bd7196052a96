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
   disagree, and for every violation the length of Hypothesis's shrunk trace against the shortest;
8. with ``--speedup``: the search against the search before its batch deduplication
   (``_explore_before``, a copy kept here; with ``--before REV`` the engine as committed in REV)
   on whole tiny graphs (i915 and reference, no edges, every property checked): states per second
   of each, timed alternately in this process, their ratio, and each one's peak memory per state
   (in a forked child each). Only section 8 runs with ``--speedup-only``.
9. with ``--reduce``: for every catalog policy (or ``--only``) on ``tiny``, the search with the
   dead-variable reduction against the one without (:func:`reduction_agreement`): states and
   seconds of each, and whether verdicts, shortest lengths, findings and (``--reduce-stuck``, edges
   kept) stuck states agree. Only section 9 runs with ``--reduce-only``.
10. with ``--por``: for every catalog policy (or ``--only``) on ``tiny``, the search with the
   dead-variable reduction against the one with partial-order reduction on top
   (:func:`por_agreement`): states, transitions and seconds of each, the states a proper stubborn
   set expanded and those the cycle proviso expanded fully, and whether verdicts, shortest lengths,
   findings and ``undefined`` findings agree. Only section 10 runs with ``--por-only``.
11. with ``--small``: every catalog policy's (or ``--only``) whole ``small`` graph at its first
   exportable revision, with the dead-variable reduction (the default of ``explore``), every
   property checked, no edges and no stuck states, ``--jobs`` children at a time (the machine's
   cores; each child one search), each bounded by ``--small-seconds`` and ``--small-memory``:
   states, transitions, depth, seconds, peak memory, and whether the search was complete; then
   the wall time of the whole section. Only section 11 runs with ``--small-only``.

Each measurement runs in a forked child (``os.fork``/``os.wait4``), so that its peak resident set
is its own.
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from model.catalog import CATALOG
from model.machine import Model
from model.scope import SCOPES

from ..engines.explicit import (Budget, Finding, StateSpace, _FRONTIER_CHUNK, _check_states, _keys_of,
                                _packing, check, explore, resident_bytes, verdicts)
from ..engines.hypothesis_engine import run_hypothesis
from ..engines.stuck import find_stuck
from ..engines.vectorize import VecModel, columns
from ..engines.z3_engine import run_z3
from ..index import PROPERTIES
from ..monitor import Monitor
from ..property import Property
from ..report.atomic import write_report

__all__ = ["main", "trivial_bfs", "compare_engines", "cross_engine", "speedup", "committed_explore", "por_agreement"]


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
    m = Model(CATALOG[policy], scope, CATALOG[policy].exportable_revisions[0])
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
    m = Model(CATALOG[policy], scope, CATALOG[policy].exportable_revisions[0])
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
    return _in_children([fn], 1, lambda i, d: None)[0]


def _in_children(fns: Sequence[Callable[[], dict[str, Any]]], jobs: int,
                 done: Callable[[int, dict[str, Any]], None]) -> list[dict[str, Any]]:
    """:func:`_in_child` for each of ``fns``, ``jobs`` children at a time; ``done(i, result)`` as
    each one ends (in the order they end). The results in the order of ``fns``."""
    out: list[dict[str, Any] | None] = [None] * len(fns)
    running: dict[int, tuple[int, int]] = {}            # pid -> (index, read end)
    todo = list(range(len(fns)))
    while todo or running:
        while todo and len(running) < max(1, jobs):
            i = todo.pop(0)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                os.close(r)
                try:
                    res = fns[i]()
                except BaseException as e:  # noqa: BLE001 - reported by the parent
                    res = {"error": f"{type(e).__name__}: {e}"}
                with os.fdopen(w, "w") as f:
                    json.dump(res, f)
                os._exit(0)
            os.close(w)
            running[pid] = (i, r)
        pid, _, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        i, r = running.pop(pid)
        with os.fdopen(r) as f:        # the child wrote everything before it ended
            text = f.read()
        res = json.loads(text) if text else {"error": "the child died"}
        res["peak_mb"] = round(usage.ru_maxrss / 1024)
        out[i] = res
        done(i, res)
    return [o for o in out if o is not None]


def _explore(policy: str, scope: Any, seconds: float | None, symmetry: bool = False,
             depth: int | None = None, props: bool = True, stuck: bool = False,
             edges: bool = True, reduce: str = "none", memory: int | None = None) -> dict[str, Any]:
    model = Model(CATALOG[policy], scope, CATALOG[policy].exportable_revisions[0])
    t = time.perf_counter()
    sp = explore(model, PROPERTIES if props else (), symmetry=symmetry,
                 budget=Budget(seconds=seconds, depth=depth, memory=memory), keep_edges=edges, reduce=reduce)
    secs = time.perf_counter() - t
    out = {"policy": policy, "scope": model.scope.name, "revision": model.revision, **sp.summary(),
           "reduction": reduce, "stopped": sp.stopped, "seconds": round(secs, 2),
           "states_per_s": round(sp.n_states / secs) if secs else None,
           "transitions_per_s": round(sp.transitions / secs) if secs else None}
    if stuck and sp.complete:
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


def committed_explore(rev: str) -> Callable[..., Any]:
    """``explore`` as committed in ``rev``: its engine modules (explicit, vectorize, symmetry)
    read with ``git show`` into a temporary package next to today's, sharing the rest (model,
    properties), so that both run in one process."""
    root = Path(__file__).resolve().parents[2]
    tmp = tempfile.mkdtemp(prefix="dmabuf-engine-")
    atexit.register(shutil.rmtree, tmp, True)
    for f in ("explicit", "vectorize", "symmetry"):
        src = subprocess.run(["git", "show", f"{rev}:properties/engines/{f}.py"], cwd=root, check=True,
                             capture_output=True, text=True).stdout
        # one package level deeper: properties.engines._at_<rev>
        src = re.sub(r"^from \.\.(\w)", r"from ...\1", src, flags=re.M)
        # before properties/ was laid out in folders, the Property class was properties/registry.py
        src = re.sub(r"^from \.\.\.registry import", "from ...property import", src, flags=re.M)
        Path(tmp, f"{f}.py").write_text(src)
    name = "properties.engines._at_" + re.sub(r"\W", "_", rev)
    pkg = types.ModuleType(name)
    pkg.__path__ = [tmp]
    sys.modules[name] = pkg
    return importlib.import_module(name + ".explicit").explore


def speedup(policies: tuple[str, ...] = ("i915", "reference"), scope: str = "tiny", rounds: int = 3,
            memory: bool = True, say: Callable[[str], None] = print,
            before: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """The search (:func:`properties.engines.explicit.explore`) against the one before the
    batch deduplication on each policy's whole ``scope`` graph, no edges kept, every property
    checked. The one before is :func:`_explore_before` (a copy of its ``explore``, on today's
    helpers: generated code, key decoding and state checks, all of which got faster since, so
    the ratio is an underestimate), or ``before`` (e.g. :func:`committed_explore`). Both run in
    this process, alternately (new, old, old, new, ...), after a shallow warm-up of each (the
    terms are built once per process); the figures are the medians of ``rounds`` runs of each,
    and the ratio of the medians. Each run's result is checked to be the same (states, ids,
    parents, instances, transitions, findings). With ``memory``, each search also runs once in a
    forked child for its peak resident set."""
    old_explore = before or _explore_before

    def whole(fn, model):
        t = time.perf_counter()
        sp = fn(model, PROPERTIES, keep_edges=False)
        return sp, time.perf_counter() - t

    out = []
    for pol in policies:
        model = Model(CATALOG[pol], scope, CATALOG[pol].exportable_revisions[0])
        row: dict[str, Any] = {"policy": pol, "scope": scope}
        if memory:
            for name, fn in (("new", explore), ("old", old_explore)):
                d = _in_child(lambda fn=fn: {"states": whole(fn, model)[0].n_states})
                row[f"{name}_peak_mb"] = d.get("peak_mb")
                row[f"{name}_bytes_per_state"] = (round(d["peak_mb"] * 2**20 / d["states"], 1)
                                                  if "states" in d else None)
        for fn in (explore, old_explore):
            fn(model, PROPERTIES, keep_edges=False, budget=Budget(depth=2))
        times: dict[str, list[float]] = {"new": [], "old": []}
        ref = None
        for r in range(rounds):
            order = (("new", explore), ("old", old_explore))
            for name, fn in order if r % 2 == 0 else order[::-1]:
                sp, secs = whole(fn, model)
                times[name].append(secs)
                got = (sp.n_states, sp.transitions, sp.self_loops,
                       [(pid, f.state, f.instance) for pid, f in sp.found.items()])
                if ref is None:
                    ref, ref_sp = got, sp
                elif got != ref or not all(np.array_equal(getattr(sp, f), getattr(ref_sp, f))
                                           for f in ("parent", "via", "depth", "sorted_keys", "order")):
                    raise AssertionError(f"{pol}: the {name} search differs from the first run")
                del sp
        new, old = median(times["new"]), median(times["old"])
        row.update(states=ref[0], transitions=ref[1], rounds=rounds,
                   new_seconds=round(new, 3), old_seconds=round(old, 3),
                   new_states_per_s=round(ref[0] / new), old_states_per_s=round(ref[0] / old),
                   speedup=round(old / new, 2),
                   new_runs=[round(x, 3) for x in times["new"]], old_runs=[round(x, 3) for x in times["old"]])
        ref_sp = None
        mem = ""
        if memory and row.get("new_bytes_per_state") and row.get("old_bytes_per_state"):
            mem = (f"; peak {row['new_peak_mb']} MB = {row['new_bytes_per_state']:,.0f} bytes/state "
                   f"(before {row['old_peak_mb']} MB = {row['old_bytes_per_state']:,.0f}, ratio "
                   f"{row['new_bytes_per_state'] / row['old_bytes_per_state']:.2f})")
        say(f"   {pol} {scope}: {ref[0]:,} states, {ref[1]:,} transitions: now {new:.2f} s = "
            f"{ref[0] / new:,.0f} states/s, before {old:.2f} s = {ref[0] / old:,.0f} states/s: "
            f"{old / new:.2f}x (medians of {rounds}){mem}")
        out.append(row)
    return out


def outcomes(space: StateSpace, verdicts: list, stuck: bool) -> dict[str, Any]:
    """What a search reports, in a form two searches can be compared by: per property its
    verdict and trace length, the properties that fired, and per stuck-state goal the set of
    stuck states, each as its canonical state under ``space``'s reduction (or under the
    reduction passed to :func:`reduction_agreement` for an unreduced search)."""
    out: dict[str, Any] = {
        "verdicts": {v.property: (v.verdict, v.evidence.get("trace_length")) for v in verdicts},
        "found": sorted(space.found),
        "undefined": sorted(v.property for v in verdicts if v.kind == "undefined" and v.verdict == "violated"),
    }
    if stuck:
        from ..engines.stuck import goals_for, stuck_states  # (the stuck analysis: only with edges)

        out["stuck"] = {}
        for goal in goals_for(space):
            ids = stuck_states(space, goal)
            out["stuck"][goal.name] = (ids, int(space.depth[ids[0]]) if len(ids) else None)
    return out


def _canonical_rows(red: Any, rows: np.ndarray) -> set[tuple]:
    block = red.canonical(np.ascontiguousarray(rows.T))
    return set(map(tuple, block.T.tolist()))


def reduction_agreement(model: Model, props: Sequence[Property], reduce: Any = "dead",
                        stuck: bool = False) -> dict[str, Any]:
    """The search of ``model`` with the reduction ``reduce`` (a mode or a ``Reduction``) against
    the one without: each one's states, transitions and seconds, and the differences in what they
    report (``differences``: empty when they agree). With ``stuck`` (edges kept), also the stuck
    states: the unreduced ones, made canonical, must be exactly the reduced search's."""
    from ..engines.reduce import reduction_for  # (only this section compares reductions)

    props = list(props)
    active = [p for p in props if p.active(model.policy, model.scope, model.revision)]
    t = time.monotonic()
    red = reduce if not isinstance(reduce, str) else reduction_for(model, active, reduce)
    res: dict[str, Any] = {"analysis_seconds": round(time.monotonic() - t, 2)}
    runs = {}
    for name, mode in (("none", "none"), ("reduced", red)):
        t = time.monotonic()
        try:
            space, vs = check(model, props, keep_edges=stuck, reduce=mode)
        except AssertionError as e:      # a trace the unreduced model does not fire on
            res[name] = {"states": None}
            res["differences"] = [f"{name}: {e}"]
            res["dead"] = red.describe()
            return res
        res[name] = {"states": space.n_states, "transitions": space.transitions,
                     "seconds": round(time.monotonic() - t, 2)}
        o = outcomes(space, vs, stuck)
        if stuck:
            o["stuck"] = {g: (_canonical_rows(red, space.states[ids]), d) for g, (ids, d) in o["stuck"].items()}
        runs[name] = o
        del space
    diff = []
    a, b = runs["none"], runs["reduced"]
    for key in a:
        if a[key] != b[key]:
            if key == "verdicts":
                diff += [f"{p}: {a[key][p]} without, {b[key].get(p)} with the reduction"
                         for p in a[key] if a[key][p] != b[key].get(p)]
            else:
                diff.append(f"{key}: differ")
    res["differences"] = diff
    res["dead"] = red.describe()
    return res


def por_agreement(model: Model, props: Sequence[Property], base: str = "dead", drop: str | None = None,
                  budget: Any = None) -> dict[str, Any]:
    """The search of ``model`` with partial-order reduction on top of ``base`` against the one
    with ``base`` alone, both through :func:`check` (traces of the reduced search shortened by a
    search without it): each one's states, transitions and seconds, the reduced search's rows
    (states expanded by a proper stubborn set, and those the cycle proviso expanded fully), and
    the differences in verdicts, trace lengths, properties fired and ``undefined`` findings
    (``differences``: empty when they agree). ``drop``: a condition of the relations left out
    (the mutation check)."""
    props = list(props)
    res: dict[str, Any] = {}
    runs = {}
    por = "dead+por" if base == "dead" else "por"
    for name, mode in (("base", base), ("por", por)):
        t = time.monotonic()
        if mode == por and drop is not None:
            space = explore(model, props, keep_edges=False, reduce=mode, por_drop=drop, budget=budget)
            vs = verdicts(space, props)
        else:
            space, vs = check(model, props, keep_edges=False, reduce=mode, budget=budget)
        res[name] = {"states": space.n_states, "transitions": space.transitions,
                     "seconds": round(time.monotonic() - t, 2), "complete": space.complete}
        if space.partial_order is not None:
            po = space.partial_order
            res[name].update(rows_reduced=po.rows_reduced, rows_proviso=po.rows_proviso,
                             reduced_sets=po.reduced_sets)
        o = outcomes(space, vs, False)
        if drop is not None:      # the mutation: compared without shortening
            o["verdicts"] = {k: v[0] for k, v in o["verdicts"].items()}
        runs[name] = o
        del space
    diff = []
    a, b = runs["base"], runs["por"]
    for key in a:
        if a[key] != b[key]:
            if key == "verdicts":
                diff += [f"{p}: {a[key][p]} without, {b[key].get(p)} with partial-order reduction"
                         for p in a[key] if a[key][p] != b[key].get(p)]
            else:
                diff.append(f"{key}: differ")
    res["differences"] = diff
    return res


def _row(d: dict[str, Any]) -> str:
    if "error" in d:
        return f"  ERROR {d['error']}"
    return (f"  {d['policy']:<32} {d['scope']:<8} {d['states']:>10} states {d['transitions']:>12} transitions "
            f"{d['edges']:>10} edges  depth {d['depth']:>2}  {'complete' if d['complete'] else 'CUT    '} "
            f"{d['seconds']:>7.1f} s {d['states_per_s'] or 0:>8} st/s  {d['peak_mb']:>6} MB"
            + (f"  stuck {d['stuck']}" if d.get("stuck") else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.explicit", description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="i915", help="the policy of sections 2-4 (default i915)")
    ap.add_argument("--seconds", type=float, default=120.0, help="budget of the small and default searches")
    ap.add_argument("--depth", type=int, default=8, help="depth of the growth table (section 4)")
    ap.add_argument("--catalog", action="store_true", help="also section 5: every catalog policy's tiny graph")
    ap.add_argument("--cross", action="store_true", help="also section 6: explicit vs Hypothesis vs Z3 on tiny")
    ap.add_argument("--only", action="append", metavar="POLICY", help="sections 5-6: only these policies")
    ap.add_argument("--skip", action="append", default=[], metavar="SECTION", help="skip section 1, 2, 3, 4 or 7")
    ap.add_argument("--speedup", action="store_true", help="also section 8: the search against the one before "
                    "its batch deduplication, on whole tiny graphs (i915, reference)")
    ap.add_argument("--speedup-only", action="store_true", help="section 8 only")
    ap.add_argument("--rounds", type=int, default=3, help="section 8: timed runs of each search (medians)")
    ap.add_argument("--before", metavar="REV", help="section 8: measure against the engine as committed in REV "
                    "(read with git show) instead of the copy of its explore kept here, e.g. 55c353f")
    ap.add_argument("--versus", type=float, default=60.0, help="seconds of each engine in section 7")
    ap.add_argument("--reduce", action="store_true", help="also section 9: every catalog policy's tiny "
                    "with and without the dead-variable reduction, and whether they agree")
    ap.add_argument("--reduce-only", action="store_true", help="section 9 only")
    ap.add_argument("--por", action="store_true", help="also section 10: every catalog policy's tiny with "
                    "and without partial-order reduction (on top of the dead-variable reduction)")
    ap.add_argument("--por-only", action="store_true", help="section 10 only")
    ap.add_argument("--reduce-stuck", action="store_true", help="section 9: also compare the stuck states "
                    "(edges kept: about 1 KB a state of the unreduced search)")
    ap.add_argument("--small", action="store_true", help="also section 11: every catalog policy's whole small "
                    "graph with the dead-variable reduction, --jobs at a time")
    ap.add_argument("--small-only", action="store_true", help="section 11 only")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="section 11: searches at a time "
                    "(default: the cores)")
    ap.add_argument("--small-seconds", type=float, default=3600.0, help="section 11: budget of each search")
    ap.add_argument("--small-memory", type=float, default=10.0, help="section 11: resident memory of each "
                    "search, in GiB (default 10)")
    ap.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    a = ap.parse_args(argv)
    figures: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load": os.getloadavg()}}

    def say(msg: str) -> None:
        print(msg, flush=True)

    say(f"dmabuf-check explicit-engine benchmark; python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f} at start")
    policies = a.only or list(CATALOG)
    if a.speedup_only:
        a.speedup = True
        a.skip += ["1", "2", "3", "4", "7"]
    if a.reduce_only:
        a.reduce = True
    if a.por_only:
        a.por = True
        a.skip += ["1", "2", "3", "4", "7"]
    if a.small_only:
        a.small = True
        a.skip += ["1", "2", "3", "4", "7"]
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
    if a.speedup:
        say("8. the search against the one before its batch deduplication (whole tiny graphs, no edges, "
            "every property checked; timed alternately in this process):")
        if a.before:
            say(f"   (before: the engine as committed in {a.before})")
        figures["speedup"] = speedup(tuple(a.only or ("i915", "reference")), rounds=a.rounds, say=say,
                                     before=committed_explore(a.before) if a.before else None)
    if a.reduce:
        say("9. the dead-variable reduction (tiny, every property checked, no edges"
            + (", stuck states compared" if a.reduce_stuck else "") + "), each search in a forked child:")
        figures["reduce"] = []
        for pol in policies:
            def one(pol=pol) -> dict[str, Any]:
                from ..index import PROPERTIES as props  # (the property catalog: only this section)
                return reduction_agreement(Model(CATALOG[pol], "tiny", CATALOG[pol].exportable_revisions[0]), props, stuck=a.reduce_stuck)
            d = {"policy": pol, **_in_child(one)}
            figures["reduce"].append(d)
            if "error" in d:
                say(f"  {pol:<32} ERROR {d['error']}")
                continue
            n, r = d["none"], d["reduced"]
            say(f"  {pol:<32} {n['states']:>11,} states {n['seconds']:>7.1f} s | reduced {r['states']:>10,} "
                f"states {r['seconds']:>6.1f} s + {d['analysis_seconds']:.1f} s analysis "
                f"({n['states'] / max(1, r['states']):.1f}x) "
                + ("agree" if not d["differences"] else "DIFFER: " + "; ".join(d["differences"][:3])))
    if a.por:
        say("10. partial-order reduction (tiny, every property checked, no edges, on top of the dead-variable "
            "reduction), each pair of searches in a forked child:")
        figures["por"] = []
        for pol in policies:
            def one_por(pol=pol) -> dict[str, Any]:
                from ..index import PROPERTIES as props  # (the property catalog: only this section)
                return por_agreement(Model(CATALOG[pol], "tiny", CATALOG[pol].exportable_revisions[0]), props)
            d = {"policy": pol, **_in_child(one_por)}
            figures["por"].append(d)
            if "error" in d:
                say(f"  {pol:<32} ERROR {d['error']}")
                continue
            n, r = d["base"], d["por"]
            say(f"  {pol:<32} dead {n['states']:>10,} states {n['transitions']:>12,} tr {n['seconds']:>6.1f} s | "
                f"dead+por {r['states']:>10,} states {r['transitions']:>12,} tr {r['seconds']:>6.1f} s; "
                f"rows reduced {r['rows_reduced']:,}, proviso {r['rows_proviso']:,} "
                + ("agree" if not d["differences"] else "DIFFER: " + "; ".join(d["differences"][:3])))
    if a.small:
        say(f"11. every policy's whole small graph (dead-variable reduction, every property checked, no edges, "
            f"no stuck states; {a.jobs} at a time, each within {a.small_seconds:g} s and {a.small_memory:g} GiB):")
        memory = int(a.small_memory * 2**30)
        started = time.perf_counter()

        def told(i: int, d: dict[str, Any]) -> None:
            pol = policies[i]
            if "error" in d:
                say(f"  {pol:<32} ERROR {d['error']}")
                return
            say(f"  {pol:<32} {d['revision']:<6} {d['states']:>12,} states {d['transitions']:>15,} tr depth "
                f"{d['depth']:>2} {'complete' if d['complete'] else 'CUT: ' + d['stopped']} {d['seconds']:>8.1f} s "
                f"{d['states_per_s'] or 0:>8,} st/s {d['peak_mb']:>6,} MB")

        figures["small"] = _in_children(
            [lambda pol=pol: {"policy": pol, **_explore(pol, "small", a.small_seconds, edges=False, reduce="dead",
                                                        memory=memory)} for pol in policies], a.jobs, told)
        wall = time.perf_counter() - started
        figures["small_wall_seconds"] = round(wall, 1)
        done = sum(1 for d in figures["small"] if d.get("complete"))
        say(f"   {done} of {len(policies)} complete; the section took {wall / 60:.1f} min wall")
    if a.json:
        write_report(figures, a.json)
        say(f"figures written to {a.json}")
    return 0


# --- the search before the batch deduplication (section 8 only) ---------------------------------
# A copy of properties.engines.explicit.explore as committed in 55c353f, which deduplicated each
# (frontier chunk, instance) against the seen keys with unsorted queries; it shares the module's
# helpers (packing, columns, state checks), which kept their behaviour.

_CHUNK = 1 << 16          # rows expanded at once per instance (bounds the temporaries)


def _explore_before(model: Model, props: Iterable[Property] = (), symmetry: bool = False,
            budget: Budget | None = None, keep_edges: bool = True,
            progress: Callable[[str], None] | None = None,
            roots: Sequence[Sequence[Any]] | None = None,
            until_found: Iterable[str] | None = None) -> StateSpace:
    """The search as it was before the batch deduplication (commit 55c353f), kept only to
    measure the speed-up in the same process (section 8). Enumerate the reachable states of ``model`` breadth first, checking ``props`` (those that
    apply to the model's policy, scope and revision) on every state and transition.

    ``roots`` starts the search from these states instead of the initial state (all at depth 0;
    with ``Budget(depth=R)`` this gives the states within ``R`` steps of a trace).
    ``until_found`` stops after the level in which every property named there has fired (the
    search is then not complete)."""
    budget = budget or Budget()
    stop_ids = set(until_found or ())
    started = time.monotonic()
    mon = Monitor(model, list(props))
    vm = VecModel(model, mon.props, merge=False)
    state_props = vm.state_props
    packer, sym = _packing(model, symmetry)
    width = model.schema.width
    int_hi = {k: hi for k, ((_, hi), spec) in enumerate(zip(model.schema.bounds, model.schema.specs))
              if spec.sort == "int"}
    found: dict[str, Finding] = {}

    starts = [tuple(model.init)] if roots is None else list(dict.fromkeys(tuple(r) for r in roots))
    init = np.array([[int(v) for v in r] for r in starts], dtype=np.int8).T
    if sym is not None:
        sym.check_free_slots(init)
    init_key = _keys_of(model, init, symmetry)
    _, first_root = np.unique(init_key, return_index=True)
    first_root.sort()                                  # roots equal under symmetry count once
    init, init_key = init[:, first_root], init_key[first_root]
    n_roots = init.shape[1]
    _check_states(model, state_props, init, 0, found)
    init_rows = packer.pack(init) if sym is not None else init_key   # without symmetry, row = key

    # What is kept per state: its key in the sorted index (8 bytes a word) and its id there (4),
    # parent (4), instance (2) and depth (2); with symmetry also its own packed row (8). Rows
    # are decoded a frontier chunk at a time.
    row_key_parts = [init_rows] if sym is not None else None
    parents = [np.full(n_roots, -1, np.int32)]
    vias = [np.full(n_roots, -1, np.int16)]
    depths = [np.zeros(n_roots, np.int16)]
    e_src: list[np.ndarray] = []
    e_dst: list[np.ndarray] = []
    e_inst: list[np.ndarray] = []
    e_ret: list[np.ndarray] = []
    order0 = np.argsort(init_key, kind="stable")
    seen_sorted = init_key[order0]
    seen_ids = np.arange(n_roots, dtype=np.int32)[order0]
    frontier_rows, frontier_keys, base = init_rows, init_key, 0
    n_total, transitions, self_loops, level = n_roots, 0, 0, 0
    complete = True

    stopped = ""

    def over_time_or_memory() -> str:
        if budget.seconds is not None and time.monotonic() - started > budget.seconds:
            return f"time budget of {budget.seconds:g} s spent"
        if budget.memory is not None:
            rss = resident_bytes()
            if rss > budget.memory:
                return (f"memory budget of {budget.memory / 2**20:,.0f} MB reached "
                        f"({rss / 2**20:,.0f} MB resident)")
        return ""

    def out_of_budget() -> bool:
        nonlocal stopped
        if budget.states is not None and n_total >= budget.states:
            stopped = f"state budget of {budget.states:,} states reached"
        elif budget.depth is not None and level >= budget.depth:
            stopped = f"depth budget of {budget.depth} reached"
        else:
            stopped = over_time_or_memory()
        return bool(stopped)

    while len(frontier_keys):
        if out_of_budget():
            complete = False
            break
        level += 1
        cand_keys, cand_rows, cand_parent, cand_via = [], [], [], []
        lv_src, lv_dkey, lv_inst, lv_ret = [], [], [], []
        cut = False
        n_cand, n_kept = 0, 0

        def compact() -> int:
            """Keep the first candidate of each new state (the order of first discovery, as the
            level's final deduplication would): a state reached by many (state, instance) pairs
            is otherwise held once per pair until the level ends, which set the peak memory."""
            ck = np.concatenate(cand_keys)
            _, first = np.unique(ck, return_index=True)
            first.sort()
            cand_keys[:] = [ck[first]]
            if sym is not None:
                cand_rows[:] = [np.concatenate(cand_rows)[first]]
            cand_parent[:] = [np.concatenate(cand_parent)[first]]
            cand_via[:] = [np.concatenate(cand_via)[first]]
            return len(first)
        for f_lo in range(0, len(frontier_keys), _FRONTIER_CHUNK):
            frontier = packer.unpack(frontier_rows[f_lo:f_lo + _FRONTIER_CHUNK], width)
            f_keys = frontier_keys[f_lo:f_lo + _FRONTIER_CHUNK]
            f_base = base + f_lo
            n = frontier.shape[1]
            C = columns(model, frontier)
            for st in vm.steps:
                g = st.guard(C)
                idx_all = np.flatnonzero(np.broadcast_to(np.asarray(g, dtype=bool), (n,)))
                for lo in range(0, len(idx_all), _CHUNK):
                    idx = idx_all[lo:lo + _CHUNK]
                    m = len(idx)
                    Cs = columns(model, frontier, idx)
                    for c in st.checks:
                        if c.id in found:
                            continue
                        hit = np.broadcast_to(np.asarray(c.fn(Cs)) == c.fires_when, (m,))
                        if hit.any():
                            found[c.id] = Finding(f_base + int(idx[int(np.argmax(hit))]), st.index)
                    ret, changes = st.apply(Cs)
                    transitions += m
                    if not changes:
                        self_loops += m
                        continue
                    for k, col in changes:
                        if k in int_hi and np.any((np.asarray(col) < 0) | (np.asarray(col) > int_hi[k])):
                            raise AssertionError(            # the packed keys would alias: a model bug
                                f"explicit engine: {model.instances[st.index]} sets {model.schema.names[k]} "
                                f"outside [0, {int_hi[k]}]")
                    pre_keys = f_keys[idx]
                    if sym is None:
                        # no row is built: a successor's key is its state's plus the changed fields'
                        post = None
                        keys = pre_keys.copy()
                        for k, col in changes:
                            packer.update(keys, k, Cs[k], col)
                    else:
                        post = frontier[:, idx]
                        for k, col in changes:
                            post[k] = col
                        keys = sym.canonical(post)
                    move = np.flatnonzero(keys != pre_keys)
                    self_loops += m - len(move)
                    if not len(move):
                        continue
                    idx, keys = idx[move], keys[move]
                    if post is not None:
                        post = post[:, move]
                    if keep_edges:
                        lv_src.append((f_base + idx).astype(np.int32))
                        lv_dkey.append(keys)
                        lv_inst.append(np.full(len(move), st.index, np.int16))
                        lv_ret.append(np.broadcast_to(np.asarray(ret, dtype=np.int16), (m,))[move])
                    pos = np.searchsorted(seen_sorted, keys)
                    pos[pos >= len(seen_sorted)] = 0
                    new = np.flatnonzero(seen_sorted[pos] != keys)
                    if len(new):
                        _, first = np.unique(keys[new], return_index=True)
                        new = new[np.sort(first)]          # one candidate per new state and chunk
                        cand_keys.append(keys[new])
                        if sym is not None:
                            cand_rows.append(packer.pack(post[:, new]))
                        cand_parent.append((f_base + idx[new]).astype(np.int32))
                        cand_via.append(np.full(len(new), st.index, np.int16))
                        n_cand += len(new)
                        if n_cand > 2 * n_kept + _CHUNK:
                            n_kept = n_cand = compact()
                why = over_time_or_memory()
                if why:
                    stopped = why
                    cut = True
                    break
            if cut:
                break
        C = frontier = None
        if cut:
            complete = False
        # the level's new states, in order of first discovery
        first_new = n_total
        if cand_keys:
            ck = np.concatenate(cand_keys)
            uk, first = np.unique(ck, return_index=True)      # uk: the new keys, sorted
            disc = np.argsort(first, kind="stable")           # sorted position -> discovery rank
            first = first[disc]
            new_keys = ck[first]
            new_rows = np.concatenate(cand_rows)[first] if sym is not None else new_keys
            new_parent = np.concatenate(cand_parent)[first]
            new_via = np.concatenate(cand_via)[first]
            del ck
            rank = np.empty(len(disc), np.int32)
            rank[disc] = np.arange(len(disc), dtype=np.int32)
            at = np.searchsorted(seen_sorted, uk)
            seen_sorted = np.insert(seen_sorted, at, uk)
            seen_ids = np.insert(seen_ids, at, first_new + rank)
            del uk, rank, at
        else:
            new_keys = new_rows = init_key[:0]
            new_parent = np.zeros(0, np.int32)
            new_via = np.zeros(0, np.int16)
        cand_keys = cand_rows = cand_parent = cand_via = None
        for lo in range(0, len(new_keys), _FRONTIER_CHUNK):
            block = packer.unpack(new_rows[lo:lo + _FRONTIER_CHUNK], width)
            if sym is not None:
                sym.check_free_slots(block)
            _check_states(model, state_props, block, first_new + lo, found)
        block = None
        if keep_edges and lv_src:
            # each chunk's destinations become ids, then one edge per distinct pair of the level
            dst_parts = []
            for dk in lv_dkey:
                pos = np.searchsorted(seen_sorted, dk)
                pos[pos >= len(seen_sorted)] = 0
                dst_parts.append(np.where(seen_sorted[pos] == dk, seen_ids[pos], -1).astype(np.int32))
            lv_dkey.clear()
            dst = np.concatenate(dst_parts)
            del dst_parts
            src = np.concatenate(lv_src)
            pair = (src.astype(np.int64) - base) * (first_new + len(new_keys) + 1) + dst + 1
            _, keep = np.unique(pair, return_index=True)
            del pair
            keep.sort()
            keep = keep[dst[keep] >= 0]          # (a cut level may leave targets unnumbered)
            e_src.append(src[keep])
            e_dst.append(dst[keep])
            e_inst.append(np.concatenate(lv_inst)[keep])
            e_ret.append(np.concatenate(lv_ret)[keep])
        if row_key_parts is not None:
            row_key_parts.append(new_rows)
        parents.append(new_parent)
        vias.append(new_via)
        depths.append(np.full(len(new_keys), level, np.int16))
        base = first_new
        n_total += len(new_keys)
        frontier_rows, frontier_keys = new_rows, new_keys
        if progress:
            progress(f"explicit: {model.policy.name} {model.scope.name}: depth {level}, "
                     f"{n_total} states, {transitions} transitions, {time.monotonic() - started:.1f} s")
        if cut:
            break
        if stop_ids and stop_ids <= set(found):
            complete = not len(frontier_keys)
            if not complete:
                stopped = "every property asked for was found"
            break

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    frontier_rows = frontier_keys = new_rows = new_keys = None  # noqa: F841
    return StateSpace(
        model=model, symmetry=symmetry, complete=complete,
        parent=cat(parents, np.int32), via=cat(vias, np.int16), depth=cat(depths, np.int16),
        edge_src=cat(e_src, np.int32), edge_dst=cat(e_dst, np.int32), edge_inst=cat(e_inst, np.int16),
        edge_ret=cat(e_ret, np.int16), transitions=transitions, self_loops=self_loops,
        seconds=time.monotonic() - started, checked=tuple(p.id for p in mon.props), found=found,
        stopped="" if complete else stopped, sorted_keys=seen_sorted, order=seen_ids,
        row_keys=np.concatenate(row_key_parts) if row_key_parts is not None else None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
