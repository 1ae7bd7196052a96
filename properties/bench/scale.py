"""Benchmark of campaigns at scale (``make bench-scale``): not a test, figures to record in
docs/scale.md.

Prints, with the machine's load average beside each figure (these machines are shared, so every
comparison is interleaved A B B A, and a probe measures how many cores two busy processes
actually got at the time: the ceiling of any speed-up then):
1. the speed-up of ``--jobs 2`` over ``--jobs 1`` on one campaign (the same report both ways);
2. the overhead per shard on the Dask path: a no-op task's round trip through a scheduler and
   two workers on loopback, and a campaign through them against the same campaign on two local
   worker processes;
3. per deliberately broken policy, the time a budgeted campaign takes to find a violation of a
   claim the policy declares broken, with 1 and 2 workers (and more with ``--workers``).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time

from model.catalog import BROKEN, CATALOG
from model.scope import SCOPES

from ..runs.campaign import run_campaign
from ..runs.cluster import loopback_cluster
from ..runs.runner import run
from ..runs.shards import plan
from ..runs.workers import LocalWorkers

__all__ = ["main"]


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _burn(n: int = 3_000_000) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def effective_cores() -> float:
    """How many cores two CPU-bound processes get right now (2.0 on an idle 2-core machine)."""
    one = _burn()
    with multiprocessing.get_context("fork").Pool(2) as p:
        t = time.perf_counter()
        p.map(_burn, [3_000_000, 3_000_000])
        two = time.perf_counter() - t
    return 2 * one / two


def speedup(exporters, scope, examples: int, steps: int) -> tuple[list[float], list[float], bool, list[float]]:
    """Wall-clock times of the same campaign with 1 and 2 jobs, interleaved 1 2 2 1."""
    times: dict[int, list[float]] = {1: [], 2: []}
    reports = {}
    cores = []
    for jobs in (1, 2, 2, 1):
        cores.append(effective_cores())
        t = time.perf_counter()
        r = run_campaign(exporters, scope, examples=examples, steps=steps, jobs=jobs)
        times[jobs].append(time.perf_counter() - t)
        reports[jobs] = [v.to_json() | {"evidence": {}} for v in r.verdicts]
    return times[1], times[2], reports[1] == reports[2], cores


def _noop(x: int) -> int:
    return x


def dask_overhead(address: str, exporters, scope, examples: int, steps: int):
    from distributed import Client  # optional: the cluster extra

    with Client(address) as c:
        c.submit(_noop, -1, pure=False).result()   # warm up
        n = 200
        t = time.perf_counter()
        for i in range(n):
            c.submit(_noop, i, pure=False).result()
        serial = (time.perf_counter() - t) / n
        t = time.perf_counter()
        c.gather([c.submit(_noop, i, pure=False) for i in range(n)])
        batch = (time.perf_counter() - t) / n
    local, remote = 0.0, 0.0
    for where in ("local", "dask", "dask", "local"):
        t = time.perf_counter()
        run_campaign(exporters, scope, examples=examples, steps=steps, jobs=2,
                   cluster=address if where == "dask" else None)
        if where == "dask":
            remote += time.perf_counter() - t
        else:
            local += time.perf_counter() - t
    return serial, batch, local / 2, remote / 2, len(exporters)


def time_to_find(workers: int, policies, scope, examples: int, steps: int, budget: float) -> dict[str, float | None]:
    """Seconds from the start of a budgeted campaign (slots of derived seeds, as ``--budget``
    runs) to the first finished shard that shows a violation of a claim the policy declares."""
    found: dict[str, float | None] = {p.name: None for p in policies}
    claims = {p.name: set(p.breaks) for p in policies}
    started = time.monotonic()
    pool = LocalWorkers(workers)

    def on_result(r, running):
        for v in r.verdicts:
            if (v.verdict == "violated" and v.kind in ("always", "step") and found[v.exporter] is None
                    and (set(v.claims) & claims[v.exporter] or v.property in claims[v.exporter])):
                found[v.exporter] = time.monotonic() - started

    def tick(running):
        if all(t is not None for t in found.values()):
            raise KeyboardInterrupt  # everything found: stop early

    shards = plan(policies, 1, examples, steps, scope=scope, slots=None, max_rounds=1)
    run(shards, pool, deadline=started + budget, on_result=lambda r, n: (on_result(r, n), tick(n)), tick=tick)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.scale")
    ap.add_argument("--scope", default="tiny")
    ap.add_argument("--examples", type=int, default=60)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per time-to-find campaign")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--exporters", type=int, default=12, help="exporters in the speed-up campaign (at most 12)")
    ap.add_argument("--skip", choices=("speedup", "dask", "find"), action="append", default=[])
    a = ap.parse_args(argv)
    scope = SCOPES[a.scope]
    print(f"dmabuf-check scale benchmark, {time.strftime('%Y-%m-%d')}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores, scope {a.scope}, {a.examples} examples x {a.steps} steps per shard")
    exporters = [CATALOG[n] for n in ("i915", "omapdrm", "udmabuf", "system-heap", "coherent", "vgem",
                                      "reference", "broken-end-keeps-pin", "broken-begin-ignores-direction",
                                      "broken-kmap-unpinned", "mutant-no-size-check", "mutant-no-fence-wait")][:a.exporters]
    if "speedup" not in a.skip:
        print(f"\n1. speed-up, one campaign of {len(exporters)} exporters, run 1 2 2 1 jobs ({_load()}):",
              flush=True)
        t1, t2, same, cores = speedup(exporters, scope, a.examples, a.steps)
        print(f"   --jobs 1: {' '.join(f'{t:.1f}' for t in t1)} s   --jobs 2: {' '.join(f'{t:.1f}' for t in t2)} s"
              f"   speed-up {sum(t1) / sum(t2):.2f}x (target >= 1.7)   same verdicts: {same}", flush=True)
        print(f"   cores two busy processes got meanwhile: {' '.join(f'{c:.2f}' for c in cores)} "
              f"({_load()})", flush=True)
    if "dask" not in a.skip:
        print(f"\n2. Dask path, scheduler + 2 one-thread workers on loopback ({_load()}):", flush=True)
        with loopback_cluster(2, timeout=120) as address:
            serial, batch, local, remote, n = dask_overhead(address, exporters[:6], scope, a.examples, a.steps)
        print(f"   no-op task round trip: {serial * 1000:.1f} ms one at a time, {batch * 1000:.2f} ms each "
              f"in a batch of 200", flush=True)
        print(f"   campaign of {n} shards: 2 local processes {local:.1f} s, Dask {remote:.1f} s -> "
              f"{(remote - local) / n * 1000:+.0f} ms per shard ({_load()})", flush=True)
    if "find" not in a.skip:
        print(f"\n3. time to find a declared violation, budgeted campaign over the {len(BROKEN)} broken "
              f"policies, mean of two runs each, run 1 2 2 1 workers (budget {a.budget:.0f} s; "
              f"'-' = not found in the budget):", flush=True)
        table: dict[int, dict[str, list[float | None]]] = {w: {p.name: [] for p in BROKEN} for w in a.workers}
        for w in [*a.workers, *reversed(a.workers)]:   # interleaved: 1 2 2 1
            for name, t in time_to_find(w, list(BROKEN), scope, a.examples, a.steps, a.budget).items():
                table[w][name].append(t)

        def cell(ts: list[float | None]) -> str:
            if any(t is None for t in ts):
                return f"{'-':>12}" if all(t is None for t in ts) else f"{'(1 of 2)':>12}"
            return f"{sum(ts) / len(ts):>10.1f} s"

        print("   " + "policy".ljust(32) + "".join(f"{f'{w} worker' + ('s' if w > 1 else ''):>12}"
                                                  for w in a.workers))
        for p in BROKEN:
            cells = "".join(cell(table[w][p.name]) for w in a.workers)
            print(f"   {p.name:32s}{cells}")
        print(f"   ({_load()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
