"""Checker-power benchmark (``make bench-power``): what fraction of the ground-truth violations
each engine, and the default campaign, finds on a population of buggy policies that no engine was
tuned on. Not a test: figures to record (``tests/test_power.py`` is the test built on it).

**Population** (:func:`population`, deterministic for a seed): every single-knob change of every
real catalog driver (``model.catalog.REAL_DRIVERS``) and of ``reference``, over every knob of
``model.policy.KNOBS`` including the ``mutant_*`` ones (booleans flipped, enumerated knobs set to
each other choice), named ``"i915+end_flush=False"``, with no declared breaks; then seeded random
changes of two and three knobs of random bases (``"vgem+coherent=False+has_mmap=False"``) until the
population has ``size`` policies (at least ``min_multi`` of them multi-knob). A change is kept only
if it changes behaviour: the digest of its compiled ``tiny`` model (``Model.digest``: the
knob-substituted, folded transition terms) and of its active properties' folded terms
(``properties.property.properties_digest``) must differ from its base's and from every policy
already in the population. A change whose ops the ``REVISION`` ``dma_buf_export()`` refuses (no
mmap, kmap or kmap_atomic at v4.11, corpus §3.5) is dropped too: its whole graph is the initial
state, and there is nothing in it for an engine to find (most single-knob changes of udmabuf, the
system heap and vgem, which are not exportable at v4.11).

**Ground truth** (:func:`ground_truth`): the explicit engine's exhaustive search of ``tiny``
(no symmetry, no edges), every property; per property that fired, its kind and shortest trace
length. A policy whose ``tiny`` graph does not fit the budget (60 million states, and 5.5 GB of
resident memory per process) is reported and left out. One JSON file per policy under
``.cache/power/`` (``properties.runs.database.cache_dir()``), keyed by the policy's knob values, the
model and properties digests and the search's budget, so that reruns are fast and a changed model
recomputes; missing ones are computed with the runner (``--jobs`` worker processes).

**Engines** (:data:`ENGINES`), each on the campaign scope ``small`` with the default campaign's
budgets, one runner task per policy and engine: ``hypothesis``, ``z3`` and ``portfolio`` (the
default campaign). For each: the fraction of the ground truth's ``always``/``step`` violations it
reports ``violated``, the same for ``undefined`` findings, every miss (policy, property, kind,
shortest length on ``tiny``), what it reports violated on ``small`` beyond ``tiny``'s ground truth,
any ``proved`` verdict that the ground truth contradicts, and its time per policy. Engine results
are cached too (``.cache/power/runs/``, keyed by the engine, its budget and the policy's digests
on both scopes; ``--fresh`` ignores them), so that an interrupted run resumes.

Same seed, same population, same sample, same figures (timings aside; the portfolio's Z3 stage
stops after ``z3_seconds`` of wall time, so on a loaded machine its depth can differ).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from model.catalog import CATALOG, REAL_DRIVERS
from model.machine import Model
from model.policy import ExporterPolicy, KNOBS
from model.scope import get_scope

from ..engines.explicit import ExplicitEngine
from ..engines.hypothesis_engine import HypothesisEngine
from ..engines.interface import Budget, Engine
from ..engines.portfolio import DEFAULT_BUDGET, PortfolioEngine
from ..engines.z3_engine import Z3Engine
from ..index import PROPERTIES
from ..property import properties_digest
from ..report.atomic import write_text_atomic
from ..runs.database import cache_dir
from ..runs.runner import Task, plan_per_exporter, run
from ..runs.workers import LocalWorkers

__all__ = ["population", "members", "Member", "bases", "variant", "ground_truth", "ENGINES", "measure",
           "write_sample", "main", "REVISION", "GROUND_SCOPE", "SCOPE", "GT_BUDGET", "SAMPLE_MAX_STATES"]

REVISION = "v4.11"
GROUND_SCOPE = "tiny"        # searched exhaustively for the ground truth
SCOPE = "small"              # the campaign's scope, where the engines are measured
GT_BUDGET = Budget(states=60_000_000, memory=5_500_000_000)
SAMPLE_MAX_STATES = 1_500_000   # tests/test_power.py samples policies with tiny graphs this small
FOUND_KINDS = ("always", "step", "undefined")
_GT_VERSION = "bench-power ground truth/1"


# ---------------------------------------------------------------------------------------------
# Population


def bases() -> list[ExporterPolicy]:
    """The policies the population changes: the real drivers and ``reference``."""
    return [*REAL_DRIVERS, CATALOG["reference"]]


def _other_values(knob: str, base: ExporterPolicy) -> list[Any]:
    k, cur = KNOBS[knob], getattr(base, knob)
    return [c for c in k.choices if c != cur] if k.choices else [not cur]


def variant(base: ExporterPolicy, changes: Sequence[tuple[str, Any]]) -> ExporterPolicy:
    """``base`` with the knob ``changes``, named ``base+knob=value+...``, declaring no breaks."""
    suffix = "".join(f"+{k}={v}" for k, v in changes)
    return dataclasses.replace(base.with_knobs(**dict(changes)), name=base.name + suffix, breaks=(),
                               description=f"{base.name} with {suffix[1:].replace('+', ', ')}",
                               why="bench-power population")


def _active(policy: ExporterPolicy, model: Model) -> list:
    return [p for p in PROPERTIES if p.active(policy, model.scope, model.revision)]


def digests(policy: ExporterPolicy, scope: str = GROUND_SCOPE) -> tuple[str, str]:
    """The model digest and the digest of the active properties' terms, on ``scope``."""
    model = Model(policy, scope, REVISION)
    return model.digest(), properties_digest(model, _active(policy, model))


@dataclass(frozen=True)
class Member:
    policy: ExporterPolicy
    base: str
    changes: tuple[tuple[str, Any], ...]
    model_digest: str            # on tiny
    properties_digest: str       # on tiny, the active properties

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def key(self) -> str:
        """The ground-truth cache key: knob values, digests, the search's budget."""
        blob = json.dumps([_GT_VERSION, self.policy.knob_values(), self.model_digest, self.properties_digest,
                           REVISION, GROUND_SCOPE, dataclasses.astuple(GT_BUDGET)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PopulationStats:
    single: int
    double: int
    triple: int
    same_as_base: int            # changes dropped: no change of behaviour
    duplicate: int               # changes dropped: the behaviour of a policy already in
    not_exportable: int = 0      # changes dropped: dma_buf_export() at REVISION refuses the ops


@lru_cache(maxsize=4)
def members(seed: int = 1, size: int = 200, min_multi: int = 20) -> tuple[tuple[Member, ...], PopulationStats]:
    """The population with its digests and counts (see the module docstring)."""
    base_digest = {b.name: digests(b) for b in bases()}
    seen: set[tuple[str, str]] = set()
    out: list[Member] = []
    same = dup = refused = 0

    def consider(base: ExporterPolicy, changes: tuple[tuple[str, Any], ...]) -> None:
        nonlocal same, dup, refused
        p = variant(base, changes)
        if not p.exportable_at(REVISION):
            refused += 1
            return
        d = digests(p)
        if d == base_digest[base.name]:
            same += 1
        elif d in seen:
            dup += 1
        else:
            seen.add(d)
            out.append(Member(p, base.name, changes, *d))

    for base in bases():
        for knob in KNOBS:
            for value in _other_values(knob, base):
                consider(base, ((knob, value),))
    singles = len(out)
    rng = random.Random(seed)
    order = list(KNOBS)
    tries = 0
    while len(out) < max(size, singles + min_multi):
        tries += 1
        if tries > 100_000:  # pragma: no cover - the knobs give far more combinations
            raise RuntimeError("bench-power: could not draw enough distinct multi-knob changes")
        base = rng.choice(bases())
        knobs = sorted(rng.sample(order, rng.choice((2, 3))), key=order.index)
        consider(base, tuple((k, rng.choice(_other_values(k, base))) for k in knobs))
    n = [len(m.changes) for m in out]
    return tuple(out), PopulationStats(n.count(1), n.count(2), n.count(3), same, dup, refused)


def population(seed: int = 1, size: int = 200, min_multi: int = 20) -> list[ExporterPolicy]:
    """The benchmark's population of policies (deterministic for a seed)."""
    return [m.policy for m in members(seed, size, min_multi)[0]]


# ---------------------------------------------------------------------------------------------
# Ground truth


def _power_dir() -> Path:
    return cache_dir() / "power"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def _record(m: Member, res) -> dict[str, Any]:
    """A ground-truth record from the explicit engine's result on ``tiny``."""
    s = res.summary
    fired = {v.property: {"kind": v.kind, "length": v.evidence["trace_length"]}
             for v in res.verdicts if v.trace is not None and
             (v.verdict == "violated" if v.kind in FOUND_KINDS else v.verdict == "holds")}
    return {"policy": m.name, "base": m.base, "changes": [list(c) for c in m.changes], "key": m.key,
            "model_digest": m.model_digest, "properties_digest": m.properties_digest,
            "complete": bool(s.get("complete")), "stopped": s.get("stopped", ""), "states": s.get("states"),
            "transitions": s.get("transitions"), "seconds": round(res.seconds, 3), "fired": fired}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ticker(what: str, total: int, done: list[int], started: float, say: Callable[[str], None]):
    last = [time.monotonic()]

    def tick(running: int) -> None:
        if time.monotonic() - last[0] >= 60:
            last[0] = time.monotonic()
            say(f"{what}: {done[0]} of {total} done, {running} running, {_clock(time.monotonic() - started)}")
    return tick


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def ground_truth(ms: Sequence[Member], jobs: int = 2, say: Callable[[str], None] = _say) -> dict[str, dict[str, Any]]:
    """The ground truth of each member, by name: from the cache, the missing ones computed on
    ``jobs`` worker processes (and cached as each finishes)."""
    out: dict[str, dict[str, Any]] = {}
    todo: list[Member] = []
    for m in ms:
        rec = _load(_power_dir() / f"{m.key}.json")
        if rec is not None and rec.get("key") == m.key:
            out[m.name] = {**rec, "policy": m.name, "cached": True}
        else:
            todo.append(m)
    if not todo:
        return out
    say(f"ground truth: {len(out)} cached, {len(todo)} to compute on {jobs} worker(s)")
    engine = ExplicitEngine(symmetry=False, keep_edges=False, reduce="dead")
    ids = tuple(p.id for p in PROPERTIES)
    tasks = [Task(i, m.policy, get_scope(GROUND_SCOPE), REVISION, engine, ids, GT_BUDGET) for i, m in enumerate(todo)]
    done, started = [0], time.monotonic()

    def on_result(r, running: int) -> None:
        m = todo[r.index]
        rec = _record(m, r.result)
        _save(_power_dir() / f"{m.key}.json", rec)
        out[m.name] = {**rec, "cached": False}
        done[0] += 1
        say(f"[ground truth {done[0]}/{len(todo)}] {m.name}: {rec['states']:,} states"
            f"{'' if rec['complete'] else ' (CUT: ' + rec['stopped'] + ')'}, {len(rec['fired'])} fired, "
            f"{rec['seconds']:.1f} s")

    outcome = run(tasks, LocalWorkers(jobs), on_result=on_result,
                  tick=_ticker("ground truth", len(todo), done, started, say))
    if outcome.stopped:
        raise KeyboardInterrupt(f"ground truth stopped ({outcome.stopped}); what finished is cached")
    return out


# ---------------------------------------------------------------------------------------------
# Engines


def _engines() -> dict[str, tuple[Engine, Budget]]:
    return {
        "hypothesis": (HypothesisEngine(seed=1), Budget(examples=300, steps=30, rounds=6)),
        "z3": (Z3Engine(), Budget(depth=8, timeout=20)),
        "portfolio": (PortfolioEngine(seed=1), DEFAULT_BUDGET),
    }


ENGINES = ("hypothesis", "z3", "portfolio")


def _run_key(name: str, engine: Engine, budget: Budget, m: Member, small: tuple[str, str]) -> str:
    blob = json.dumps([name, repr(engine), repr(budget), m.key, small, SCOPE], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _engine_record(res) -> dict[str, Any]:
    """What the benchmark keeps of an engine's result: each property's verdict and trace length."""
    return {"seconds": round(res.seconds, 3), "summary": _jsonable(res.summary),
            "verdicts": {v.property: [v.verdict, v.evidence.get("trace_length")] for v in res.verdicts}}


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def measure(ms: Sequence[Member], names: Sequence[str], jobs: int = 2, fresh: bool = False,
            say: Callable[[str], None] = _say) -> tuple[dict[str, dict[str, dict[str, Any]]], str | None]:
    """Run each engine of ``names`` on each member (``SCOPE``), through the runner: by engine, by
    policy, the record of :func:`_engine_record`. Cached results are reused unless ``fresh``.
    Returns the records and why the run stopped early (``None`` when it did not)."""
    table = _engines()
    out: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in names}
    small = {m.name: digests(m.policy, SCOPE) for m in ms}
    runs_dir = _power_dir() / "runs"
    tasks, where = [], []
    ids = [p.id for p in PROPERTIES]
    for n in names:
        engine, budget = table[n]
        todo = []
        for m in ms:
            path = runs_dir / f"{_run_key(n, engine, budget, m, small[m.name])}.json"
            rec = None if fresh else _load(path)
            if rec is not None:
                out[n][m.name] = {**rec, "cached": True}
            else:
                todo.append(m)
        tasks += plan_per_exporter([m.policy for m in todo], get_scope(SCOPE), REVISION, engine, ids, budget,
                                   start=len(tasks))
        where += [(n, m, runs_dir / f"{_run_key(n, engine, budget, m, small[m.name])}.json") for m in todo]
    if not tasks:
        return out, None
    say(f"engines: {sum(len(v) for v in out.values())} results cached, {len(tasks)} tasks to run on {jobs} worker(s)")
    done, started = [0], time.monotonic()

    def on_result(r, running: int) -> None:
        n, m, path = where[r.index]
        rec = _engine_record(r.result)
        _save(path, rec)
        out[n][m.name] = {**rec, "cached": False}
        done[0] += 1
        say(f"[{n} {done[0]}/{len(tasks)}] {m.name}: {sum(v[0] == 'violated' for v in rec['verdicts'].values())} "
            f"violated, {rec['seconds']:.1f} s")

    outcome = run(tasks, LocalWorkers(jobs), on_result=on_result,
                  tick=_ticker("engines", len(tasks), done, started, say))
    return out, outcome.stopped


# ---------------------------------------------------------------------------------------------
# Figures


def _times(xs: Sequence[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"policies": len(xs), "mean": round(statistics.fmean(xs), 2), "median": round(statistics.median(xs), 2),
            "max": round(max(xs), 2), "total": round(sum(xs), 1)}


def _fraction(found: int, total: int) -> dict[str, Any]:
    return {"found": found, "total": total, "fraction": round(found / total, 4) if total else None}


def score(gt: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """One engine's figures over the policies ``names`` (those with a complete ground truth and
    a result): fractions found, misses, findings beyond the ground truth, contradictions, times."""
    found = {"always/step": [0, 0], "undefined": [0, 0]}
    misses, beyond, contradicted = [], [], []
    times = []
    for name in names:
        if name not in runs:
            continue
        truth, got = gt[name]["fired"], runs[name]["verdicts"]
        times.append(runs[name]["seconds"])
        for pid, f in truth.items():
            if f["kind"] not in FOUND_KINDS:
                continue
            group = "undefined" if f["kind"] == "undefined" else "always/step"
            verdict = got.get(pid, ["absent", None])[0]
            found[group][1] += 1
            if verdict == "violated":
                found[group][0] += 1
            else:
                misses.append({"policy": name, "property": pid, "kind": f["kind"], "shortest": f["length"],
                               "verdict": verdict})
                if verdict == "proved":
                    contradicted.append({"policy": name, "property": pid, "kind": f["kind"], "shortest": f["length"]})
        for pid, (verdict, length) in got.items():
            if verdict == "violated" and pid not in truth:
                beyond.append({"policy": name, "property": pid, "length": length})
    return {"policies": len(times), "always_step": _fraction(*found["always/step"]),
            "undefined": _fraction(*found["undefined"]), "misses": misses, "contradicted": contradicted,
            "beyond_ground_truth": beyond, "time": _times(times)}


def _pct(f: dict[str, Any]) -> str:
    return f"{f['found']} of {f['total']}" + (f" ({100 * f['fraction']:.1f}%)" if f["total"] else "")


def _print_times(label: str, t: dict[str, float] | None) -> None:
    if t is None:
        print(f"  {label}: none measured")
    else:
        print(f"  {label}: mean {t['mean']:.1f} s, median {t['median']:.1f} s, max {t['max']:.1f} s "
              f"({t['policies']} policies, {t['total'] / 3600:.2f} h in all)")


def _describe(engine: Engine, budget: Budget) -> str:
    b = ", ".join(f"{f.name}={getattr(budget, f.name)}" for f in dataclasses.fields(budget)
                  if getattr(budget, f.name) is not None)
    return f"{engine!r}, Budget({b})"


# ---------------------------------------------------------------------------------------------
# The test's sample


def sample_members(ms: Sequence[Member], gt: dict[str, dict[str, Any]], n: int = 20, seed: int = 1) -> list[Member]:
    """``n`` members drawn (seeded) among those whose ``tiny`` graph is complete with at most
    ``SAMPLE_MAX_STATES`` states, in population order."""
    eligible = [m for m in ms if m.name in gt and gt[m.name]["complete"] and gt[m.name]["states"] <= SAMPLE_MAX_STATES]
    picked = set(m.name for m in random.Random(f"power-sample-{seed}").sample(eligible, min(n, len(eligible))))
    return [m for m in ms if m.name in picked]


def write_sample(path: str, ms: Sequence[Member], gt: dict[str, dict[str, Any]], n: int, seed: int) -> list[Member]:
    chosen = sample_members(ms, gt, n, seed)
    data = {
        "what": "ground truth of a sample of the bench-power population: the explicit engine's exhaustive "
                f"search of {GROUND_SCOPE} ({REVISION}, no symmetry), per property that fired its kind and "
                "shortest trace length; written by python -m properties.bench.power --write-sample PATH",
        "seed": seed, "revision": REVISION, "scope": GROUND_SCOPE, "max_states": SAMPLE_MAX_STATES,
        "policies": [{"name": m.name, "base": m.base, "changes": [list(c) for c in m.changes],
                      "model_digest": m.model_digest, "properties_digest": m.properties_digest,
                      "states": gt[m.name]["states"],
                      "fired": {pid: gt[m.name]["fired"][pid] for pid in sorted(gt[m.name]["fired"])}}
                     for m in chosen],
    }
    _save(Path(path), data)
    return chosen


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.power", description=__doc__.split("\n")[0])
    ap.add_argument("--engine", action="append", choices=ENGINES, help="an engine to measure (repeatable; "
                    "default: all three)")
    ap.add_argument("--sample", type=int, metavar="N", help="a seeded sample of N policies of the population")
    ap.add_argument("--only", metavar="NAME", help="one policy of the population")
    ap.add_argument("--seed", type=int, default=1, help="the population's (and the sample's) seed")
    ap.add_argument("--size", type=int, default=200, help="policies in the population at least")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--json", metavar="PATH", help="write every figure there")
    ap.add_argument("--fresh", action="store_true", help="rerun the engines even where a cached result exists")
    ap.add_argument("--ground-truth-only", action="store_true", help="compute the ground truth, measure no engine")
    ap.add_argument("--write-sample", metavar="PATH", help="write the test's sample (tests/data/power_sample.json) "
                    "from the whole population's ground truth, and stop")
    ap.add_argument("--sample-size", type=int, default=20, help="policies in --write-sample's sample")
    a = ap.parse_args(argv)
    names = list(dict.fromkeys(a.engine or ENGINES))

    t0 = time.monotonic()
    load0 = os.getloadavg()
    ms, st = members(a.seed, a.size)
    pop = {"total": len(ms), "single_knob": st.single, "two_knobs": st.double, "three_knobs": st.triple,
           "dropped_same_as_base": st.same_as_base, "dropped_duplicate": st.duplicate,
           "dropped_not_exportable": st.not_exportable}
    print(f"population (seed {a.seed}): {len(ms)} policies: {st.single} single-knob changes of the "
          f"{len(bases())} bases, {st.double} two-knob and {st.triple} three-knob random changes "
          f"(dropped: {st.same_as_base} that do not change behaviour, {st.duplicate} duplicates, "
          f"{st.not_exportable} that {REVISION} cannot export); "
          f"built in {time.monotonic() - t0:.0f} s", flush=True)

    if a.write_sample:
        gt = ground_truth(ms, a.jobs)
        chosen = write_sample(a.write_sample, ms, gt, a.sample_size, a.seed)
        print(f"wrote {a.write_sample}: {len(chosen)} policies "
              f"({sum(gt[m.name]['states'] for m in chosen):,} tiny states in all)")
        return 0

    chosen = list(ms)
    if a.only:
        chosen = [m for m in ms if m.name == a.only]
        if not chosen:
            print(f"bench-power: no policy {a.only!r} in the population", file=sys.stderr)
            return 2
    elif a.sample is not None:
        picked = set(m.name for m in random.Random(f"bench-sample-{a.seed}").sample(list(ms), min(a.sample, len(ms))))
        chosen = [m for m in ms if m.name in picked]
    print(f"measured: {len(chosen)} policies" + (f" (a seeded sample of {a.sample})" if a.sample and not a.only else ""),
          flush=True)

    gt = ground_truth(chosen, a.jobs)
    left_out = [{"policy": m.name, "states": gt[m.name]["states"], "stopped": gt[m.name]["stopped"]}
                for m in chosen if not gt[m.name]["complete"]]
    ok = [m for m in chosen if gt[m.name]["complete"]]
    gt_times = _times([gt[m.name]["seconds"] for m in ok])
    fired = [f for m in ok for f in gt[m.name]["fired"].values()]
    print(f"\nground truth: the explicit engine's whole {GROUND_SCOPE} graph ({REVISION}, no symmetry), "
          f"{len(ok)} policies complete")
    for l in left_out:
        print(f"  LEFT OUT {l['policy']}: {l['states']:,} states, {l['stopped']}")
    print(f"  violations: {sum(f['kind'] in ('always', 'step') for f in fired)} always/step, "
          f"{sum(f['kind'] == 'undefined' for f in fired)} undefined findings "
          f"({sum(any(f['kind'] in ('always', 'step') for f in gt[m.name]['fired'].values()) for m in ok)} "
          f"policies with an always/step violation)")
    states = [gt[m.name]["states"] for m in ok]
    if states:
        print(f"  states per policy: median {int(statistics.median(states)):,}, max {max(states):,}")
    _print_times("time per policy (when computed)", gt_times)

    report: dict[str, Any] = {
        "schema": "dmabuf-check.bench-power/1", "seed": a.seed, "revision": REVISION,
        "ground_scope": GROUND_SCOPE, "scope": SCOPE, "population": pop,
        "measured": [m.name for m in chosen],
        "ground_truth": {"engine": "explicit", "symmetry": False, "budget": _describe_budget(GT_BUDGET),
                         "left_out": left_out, "time": gt_times,
                         "policies": {m.name: {k: gt[m.name][k] for k in ("base", "changes", "states", "transitions",
                                                                            "complete", "seconds", "fired")}
                                      for m in chosen}},
        "engines": {},
    }
    stopped = None
    reused: dict[str, int] = {}
    if not a.ground_truth_only:
        table = _engines()
        runs, stopped = measure(ok, names, a.jobs, a.fresh)
        for n in names:
            engine, budget = table[n]
            s = score(gt, runs[n], [m.name for m in ok])
            report["engines"][n] = {"engine": repr(engine), "budget": _describe_budget(budget), **s,
                                    "per_policy": {k: {f: v for f, v in r.items() if f != "cached"}
                                                   for k, r in runs[n].items()}}
            reused[n] = sum(r.get("cached", False) for r in runs[n].values())
            print(f"\n{n}: {_describe(engine, budget)}, on {SCOPE}, {s['policies']} policies")
            print(f"  always/step violations found: {_pct(s['always_step'])}")
            print(f"  undefined findings found:     {_pct(s['undefined'])}")
            for x in s["misses"]:
                print(f"    MISS {x['policy']}: {x['property']} ({x['kind']}, shortest {x['shortest']} on "
                      f"{GROUND_SCOPE}; reported {x['verdict']})")
            for x in s["contradicted"]:
                print(f"    CONTRADICTED {x['policy']}: {x['property']} proved on {SCOPE}, violated on {GROUND_SCOPE}")
            if s["beyond_ground_truth"]:
                print(f"  violated on {SCOPE} beyond {GROUND_SCOPE}'s ground truth: {len(s['beyond_ground_truth'])} "
                      f"(in {len({x['policy'] for x in s['beyond_ground_truth']})} policies)")
            _print_times("time per policy", s["time"])
    report["machine"] = {"cpus": os.cpu_count(), "load_start": [round(x, 2) for x in load0],
                         "load_end": [round(x, 2) for x in os.getloadavg()],
                         "seconds": round(time.monotonic() - t0, 1),
                         "ground_truth_cached": sum(bool(gt[m.name].get("cached")) for m in chosen),
                         "engine_results_cached": reused}
    if stopped:
        report["stopped"] = stopped
        print(f"\nstopped early ({stopped}): the figures cover what finished", flush=True)
    if a.json:
        _save(Path(a.json), report)
        print(f"\nwrote {a.json}")
    return 1 if stopped else 0


def _describe_budget(b: Budget) -> dict[str, Any]:
    return {f.name: getattr(b, f.name) for f in dataclasses.fields(b) if getattr(b, f.name) is not None}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"bench-power: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        sys.exit(130)
