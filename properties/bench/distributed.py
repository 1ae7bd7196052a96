"""Benchmark of the distributed explicit search (``make bench-distributed``): not a test, figures
to record.

For each policy (default: ``vgem``, ``system-heap``, ``i915``) on a scope (default ``tiny``), in
the same run: the local search (:func:`properties.engines.explicit.explore`, every property
checked, without and with edges: the distributed search counts the edges, so the second is the
like-for-like one) and the distributed search on a loopback cluster of ``--workers`` workers
started here (:func:`properties.runs.cluster.loopback_cluster`), with the same counts
checked (on ``small``, the local search without edges, and the counts but the edges). Printed
per policy: states, levels, seconds of each, seconds per level, the overhead per
level (distributed less local with edges, or without on ``small``, over the levels), and the fixed cost of a level (the
median seconds of the levels whose new states number at most 1,000: the round trips of the
expand and merge tasks, with next to no work). ``--json PATH`` writes the figures.

On one machine the workers share its cores with each other and with the client; the figures say
what the coordination costs, not what a cluster of machines gains.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from statistics import median

from model.catalog import CATALOG
from model.machine import Model
from model.scope import SCOPES

from ..engines.distributed import explore_distributed
from ..engines.explicit import Budget, explore
from ..index import PROPERTIES
from ..runs.cluster import loopback_cluster


def measure(client, policy: str, scope: str, repeat: int = 1, edges: bool = True) -> dict:
    """``edges``: also time the local search keeping its edges (about 1 KB a state: not for
    ``small``), which is then the one compared with (else the one without)."""
    model = Model(CATALOG[policy], SCOPES[scope], "v4.11")
    explore(model, PROPERTIES, budget=Budget(depth=3))   # (warm: the compiled model and checks)
    local_edges = dist = None
    t_local = t_edges = t_dist = float("inf")
    for _ in range(repeat):
        t = time.monotonic()
        local = explore(model, PROPERTIES, keep_edges=False)
        t_local = min(t_local, time.monotonic() - t)
        if edges:
            t = time.monotonic()
            local_edges = explore(model, PROPERTIES, keep_edges=True)
            t_edges = min(t_edges, time.monotonic() - t)
        else:
            local_edges, t_edges = local, t_local
        t = time.monotonic()
        d = explore_distributed(client, model, PROPERTIES)
        if time.monotonic() - t < t_dist:
            t_dist, dist = time.monotonic() - t, d
    for k in ("states", "transitions", "self_loops", "depth") + (("edges",) if edges else ()):
        if dist.summary()[k] != local_edges.summary()[k]:
            raise AssertionError(f"{policy}: {k} {dist.summary()[k]} distributed, {local_edges.summary()[k]} local")
    level_seconds = [s for _, s in dist.levels]
    levels = len(level_seconds)
    small = [s for n, s in dist.levels if n <= 1000]
    return {"policy": policy, "scope": scope, "states": dist.n_states, "levels": levels,
            "local_seconds": round(t_local, 3), "local_edges_seconds": round(t_edges, 3) if edges else None,
            "distributed_seconds": round(t_dist, 3), "distributed_level_seconds": round(sum(level_seconds), 3),
            "setup_and_traces_seconds": round(t_dist - sum(level_seconds), 3),
            "local_per_level": round(t_edges / levels, 4), "distributed_per_level": round(sum(level_seconds) / levels, 4),
            "overhead_per_level": round((sum(level_seconds) - t_edges) / levels, 4),
            "fixed_cost_per_level": round(median(small), 4) if small else None,
            "partitions": dist.partitions, "peak_worker_mb": round(dist.peak_worker_bytes / 2**20)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.distributed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", action="append", help="a catalog policy (repeatable; default vgem, system-heap, i915)")
    ap.add_argument("--scope", default="tiny", choices=sorted(SCOPES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, the fastest kept")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args(argv)
    from distributed import Client  # reason: optional dependency (the cluster extra)
    policies = a.policy or ["vgem", "system-heap", "i915"]
    rows = []
    with loopback_cluster(a.workers) as address, Client(address) as client:
        for p in policies:
            rows.append(measure(client, p, a.scope, a.repeat, edges=a.scope == "tiny"))
            r = rows[-1]
            counting = f" ({r['local_edges_seconds']:.2f} s counting edges)" if r["local_edges_seconds"] else ""
            print(f"{p} {a.scope}: {r['states']:,} states, {r['levels']} levels; local {r['local_seconds']:.2f} s"
                  f"{counting}, distributed on {r['partitions']} workers "
                  f"{r['distributed_seconds']:.2f} s ({r['distributed_level_seconds']:.2f} s in the levels, "
                  f"{r['setup_and_traces_seconds']:.2f} s setting up and walking traces); per level "
                  f"{r['local_per_level'] * 1000:.0f} ms local, {r['distributed_per_level'] * 1000:.0f} ms distributed, "
                  f"overhead {r['overhead_per_level'] * 1000:+.0f} ms; fixed cost of a level "
                  f"{(r['fixed_cost_per_level'] or 0) * 1000:.0f} ms; peak worker {r['peak_worker_mb']} MB", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "machine": platform.node(), "workers": a.workers,
                       "results": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
