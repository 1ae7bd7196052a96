"""Property campaigns: properties against exporter policies with an engine; the table, the
traces, the report, and whether every outcome was the expected one.

A campaign passes when every judged verdict is as expected and every claim a policy declares
broken has at least one violated property citing it (``properties.judge``). The work is a plan of
runner tasks (``properties.runs.runner``): with the Hypothesis engine, the shards of
``properties.runs.shards`` (exporter by property group by seed slot; with a time ``duration``, slot after
slot until it is spent); with another engine, one task per exporter. The tasks run in this
process, in ``jobs`` local worker processes, or on a Dask cluster (``properties.runs.cluster``);
the merge is in plan order, so the report depends on the seed and the budget, not on the number of
workers. SIGINT and SIGTERM stop the run, and the report of what was found is still written; with a
duration it is also written every minute (``checkpoint``). Progress goes to ``progress``.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from model.catalog import CATALOG
from model.machine import Model
from model.policy import KNOBS, ExporterPolicy
from model.scope import Scope

from ..claims import load_claims
from ..engines.explicit import Budget as SearchBudget, ExplicitEngine, shorten
from ..engines.hypothesis_engine import HypothesisEngine
from ..engines.interface import Budget, Engine
from ..engines.portfolio import DEFAULT_BUDGET, PortfolioEngine
from ..engines.z3_engine import Z3Engine
from ..index import PROPERTIES, get_property
from ..invariants import PROPERTIES as _INVARIANT_PROPERTIES
from ..judge import ClaimCheck, NotExportable, claim_checks, mismatches, split_exportable
from ..monitor import Monitor
from ..trace import ReplayError, render, replay, trace_model
from ..verdict import Verdict
from . import shards as _shards
from .cluster import DaskWorkers
from .coverage import CoverageEngine, format_coverage
from .database import open_database
from .runner import TaskResult, plan_per_exporter, run
from .shards import lanes, merge
from .workers import InlineWorkers, LocalWorkers

__all__ = ["CampaignResult", "ClaimCheck", "run_campaign", "format_table", "SCHEMA",
           "parse_duration", "format_duration", "default_jobs", "CHECKPOINT_SECONDS"]

SCHEMA = "dmabuf-check.report/1"
CHECKPOINT_SECONDS = 60.0
_PROGRESS_SECONDS = 5.0


@dataclass
class CampaignResult:
    command: str
    revision: str
    scope: Scope
    seed: int
    engine: str
    budget: dict[str, Any]
    exporters: list[ExporterPolicy]
    verdicts: list[Verdict] = field(default_factory=list)
    claim_checks: list[ClaimCheck] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    # the policies asked for that the revision's dma_buf_export() refuses: listed, never run
    not_exportable: list[NotExportable] = field(default_factory=list)

    @property
    def mismatches(self) -> list[str]:
        out = mismatches(self.verdicts, self.claim_checks, self.not_exportable)
        if self.interrupted:
            out.append("the campaign was interrupted before every exporter ran")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "command": self.command, "revision": self.revision,
            "scope": {"name": self.scope.name, "buffers": self.scope.buffers, "pages": self.scope.pages,
                      "fds": self.scope.fds, "vmas": self.scope.vmas, "attachments": self.scope.attachments},
            "seed": self.seed, "engine": self.engine, "budget": self.budget,
            "exporters": [{"name": p.name, "breaks": list(p.breaks)} for p in self.exporters],
            # the policies asked for that the revision cannot export (absent when there is none)
            **({"not_exportable": [n.to_json() for n in self.not_exportable]} if self.not_exportable else {}),
            "results": [v.to_json() for v in self.verdicts],
            "claims_expected_broken": [
                {"exporter": c.exporter, "claim": c.claim, "found": c.found, "by": list(c.by)}
                for c in self.claim_checks],
            "mismatches": self.mismatches, "interrupted": self.interrupted,
            "seconds": round(self.seconds, 2),
        }


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


MAX_DURATION = 1000 * 86400.0


def parse_duration(text: str) -> float:
    """``30m``, ``8h``, ``1h30m``, ``90s``, ``2.5h`` or a number of seconds -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        total = float(t)
    elif re.fullmatch(r"(\d+(\.\d+)?[smhd])+", t):
        total = sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smhd])", t))
    else:
        raise ValueError(f"expected a duration such as 90s, 30m, 8h or 1h30m, got {text!r}")
    if not 0 < total <= MAX_DURATION:   # (a number of 400 digits is infinite)
        raise ValueError(f"expected a duration above zero and at most 1000d, got {text if len(text) <= 40 else text[:37] + '...'!r}")
    return total


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Meter:
    """Live progress of a run with a duration: examples per second, violations and coverage."""

    def __init__(self, say: Callable[[str], None], duration: float | None, started: float,
                 sampling: bool = True, total: int | None = None) -> None:
        self.say, self.duration, self.started = say, duration, started
        self.sampling, self.total = sampling, total
        self.last = started
        self.examples = 0
        self.violations: set[tuple[str, str]] = set()
        self.witnesses: dict[tuple[str, str], bool] = {}
        self.states = 0

    def add(self, r: TaskResult) -> None:
        self.examples += r.result.summary.get("examples", 0)
        for v in r.verdicts:
            if v.kind in ("always", "step") and v.verdict == "violated":
                self.violations.add((v.exporter, v.property))
            elif v.kind == "witness":
                key = (v.exporter, v.property)
                self.witnesses[key] = self.witnesses.get(key, False) or v.verdict == "holds"
            self.states = max(self.states, v.evidence.get("states", 0))

    def line(self, done: int, running: int, live_examples: int | None) -> str:
        elapsed = time.monotonic() - self.started
        ex = max(self.examples, live_examples or 0)
        clock = format_duration(elapsed) + (f" of {format_duration(self.duration)}" if self.duration else "")
        reached = sum(self.witnesses.values())
        cover = (f", witnesses reached {reached}/{len(self.witnesses)}" if self.witnesses else "")
        exporters = len({e for e, _ in self.violations})
        if not self.sampling:   # one task per exporter, no examples to count
            return (f"campaign [{clock}] {done}{f' of {self.total}' if self.total else ''} exporters done, "
                    f"{running} running; {len(self.violations)} violations in {exporters} exporters")
        return (f"campaign [{clock}] {done} shards done, {running} running; {ex} examples "
                f"({ex / max(elapsed, 1e-9):.0f}/s); {len(self.violations)} violations in {exporters} "
                f"exporters{cover}; up to {self.states} states in a shard")

    def maybe(self, done: int, running: int, live: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_SECONDS:
            self.last = now
            self.say(self.line(done, running, live))


def _engine_for(name: str, seed: int, coverage: bool, database: str | None) -> Engine:
    if name == "z3":
        return Z3Engine()
    if name == "portfolio":
        return PortfolioEngine(seed=seed, database=database)
    if name == "explicit":
        return ExplicitEngine(keep_edges=False)
    if coverage:  # also the fraction of the reachable state graph the campaign visited
        return CoverageEngine(seed=seed)
    return HypothesisEngine(seed=seed, database=database)


def run_campaign(exporters: Sequence[ExporterPolicy], scope: Scope, revision: str = "v4.11",
                 examples: int = 150, seed: int = 1, steps: int = 30, jobs: int = 1,
                 progress: Callable[[str], None] | None = None, engine: str = "hypothesis",
                 depth: int = 8, coverage: bool = False, *, database: str | None = None,
                 cluster: str | None = None, duration: float | None = None, duration_text: str | None = None,
                 grouping: str = "all", checkpoint: Callable[[CampaignResult], None] | None = None,
                 states: int | None = None, memory: int | None = None, z3_seconds: float | None = None,
                 ) -> CampaignResult:
    """Run a campaign and judge it.

    ``engine``: ``"portfolio"`` (``properties.engines.portfolio``: the ``tiny`` scope searched
    exhaustively within ``states`` states and ``memory`` bytes, Z3 to ``depth`` on the campaign's
    scope within ``z3_seconds``, then Hypothesis), ``"hypothesis"`` (random exploration with
    shrinking; ``examples`` x ``steps`` per round, up to six rounds while a declared break or a
    witness is missing), ``"z3"`` (bounded checks to ``depth``, then induction) or ``"explicit"``
    (every reachable state of the campaign's scope, within ``states`` and ``memory``).
    ``coverage``: measure each Hypothesis run against the
    explicit engine's reachable graph (``properties.runs.coverage``; the evidence and the table carry the
    figures). With the Hypothesis engine: ``database`` is a ``properties.runs.database`` spec (``None``:
    none), ``cluster`` a Dask scheduler address, ``duration`` seconds of wall-clock time (slot after
    slot of shards until it is spent; ``None``: one slot), ``grouping`` how each exporter's
    properties are cut into shards, and ``checkpoint`` is called with the result so far every minute
    of a run with a duration.

    A policy the revision's ``dma_buf_export()`` refuses is not run: the result lists it in
    ``not_exportable`` (``properties.judge.split_exportable``)."""
    say = progress or (lambda msg: None)
    started = time.monotonic()
    exporters, refused = split_exportable(exporters, revision)
    hyp = engine == "hypothesis"
    if hyp:
        budget_info: dict[str, Any] = {"examples": examples, "steps": steps}
        if grouping != "all":
            budget_info["property_groups"] = grouping
        if duration is not None:
            budget_info["duration"] = duration_text or format_duration(duration)
    elif engine == "portfolio":
        states = states or DEFAULT_BUDGET.states
        z3_seconds = z3_seconds if z3_seconds is not None else PortfolioEngine.z3_seconds
        budget_info = {"exhaustive": {"scope": PortfolioEngine.exhaustive_scope, "states": states,
                                      "symmetry": PortfolioEngine.symmetry},
                       "z3": {"depth": depth, "seconds": z3_seconds, "timeout": DEFAULT_BUDGET.timeout},
                       "examples": examples, "steps": steps}
    elif engine == "explicit":
        budget_info = {"states": states}
    else:
        budget_info = {"depth": depth}
    if database is not None:
        open_database(database)  # a bad spec fails here, with one line, not in a worker
    if hyp and not coverage:
        tasks = _shards.plan(exporters, seed, examples, steps, scope=scope, revision=revision,
                             slots=None if duration is not None else 1, grouping=grouping,
                             max_rounds=1 if duration is not None else 6, database=database)
        n_lanes = len(_shards.lanes(exporters, grouping))
    else:
        eng = _engine_for(engine, seed, coverage, database)
        if engine == "portfolio":
            eng = dataclasses.replace(eng, z3_seconds=z3_seconds)
            budget = dataclasses.replace(DEFAULT_BUDGET, states=states, memory=memory, depth=depth,
                                         examples=examples, steps=steps)
        else:
            budget = Budget(examples=examples, steps=steps, depth=depth, states=states, memory=memory)
        tasks = iter(plan_per_exporter(exporters, scope, revision, eng, [p.id for p in PROPERTIES], budget))
        n_lanes = len(exporters)
    total = None if duration is not None else n_lanes
    workers, where = _workers(jobs, cluster, duration is not None, total)
    if hyp and not coverage:
        say(f"campaign: {n_lanes} lanes (exporter x property group)"
            + (f", slots of {examples} examples until {format_duration(duration)} is spent" if duration else "")
            + f", on {where}")
    meter = _Meter(say, duration, started, sampling=hyp, total=total)
    results: list[TaskResult] = []
    last_checkpoint = [time.monotonic()]

    def snapshot(interrupted: bool) -> CampaignResult:
        r = CampaignResult("campaign", revision, scope, seed, engine, dict(budget_info), list(exporters),
                           not_exportable=list(refused))
        _fill(r, exporters, scope, revision, results, duration is not None, grouping if hyp and not coverage else "all")
        r.interrupted = r.interrupted or interrupted
        r.seconds = time.monotonic() - started
        return r

    def on_result(r: TaskResult, running: int) -> None:
        results.append(r)
        meter.add(r)
        if duration is None:
            name = r.lane[0] + ("" if r.lane[1] == "all" else f"/{r.lane[1]}")
            say(f"[{len(results)}/{total}] {name}: {_summary(r)}")
        else:
            meter.maybe(len(results), running, workers.examples())
            if checkpoint is not None and time.monotonic() - last_checkpoint[0] >= CHECKPOINT_SECONDS:
                last_checkpoint[0] = time.monotonic()
                checkpoint(snapshot(True))

    deadline = None if duration is None else started + duration
    out = run(tasks, workers, deadline=deadline, on_result=on_result,
              tick=lambda running: meter.maybe(len(results), running, workers.examples()))
    if out.stopped:
        say("interrupted: stopping the workers, writing what was found" if out.stopped == "signal"
            else f"budget of {format_duration(duration)} spent: stopping the workers")
    if duration is not None:
        meter.maybe(len(results), 0, workers.examples(), force=True)
    return snapshot(out.stopped == "signal")


def _workers(jobs: int, cluster: str | None, budgeted: bool, total: int | None):
    if cluster is not None:
        w = DaskWorkers(cluster)
        return w, f"{w.capacity} Dask worker threads at {cluster}"
    if jobs > 1 or budgeted:
        w = LocalWorkers(max(1, min(jobs, total or jobs)))
        return w, f"{w.capacity} worker processes"
    return InlineWorkers(), "this process"


def _fill(result: CampaignResult, exporters: Sequence[ExporterPolicy], scope: Scope, revision: str,
          results: list[TaskResult], budgeted: bool, grouping: str) -> None:
    verdicts = merge(exporters, results)
    result.verdicts = verdicts
    done = {r.lane for r in results}
    ran = {p.name for p in exporters if all(lane in done for lane in lanes([p], grouping))}
    for p in exporters:
        if p.name in ran:
            result.claim_checks += claim_checks(p, [v for v in verdicts if v.exporter == p.name], scope, revision)
    if budgeted:
        result.budget["shards"] = len(results)
    if len(ran) < len(exporters):
        result.interrupted = True   # some exporter has not had all its properties judged once


def _summary(r: TaskResult) -> str:
    vs = r.verdicts
    bad = sum(1 for v in vs if v.verdict == "violated" and v.kind in ("always", "step"))
    if "covers" in r.result.summary:  # the portfolio
        return (f"{'; '.join(_describe_cover(c) for c in r.result.summary['covers'])}; "
                f"{sum(v.verdict == 'proved' for v in vs)} proved, {bad} violated, {r.seconds:.1f} s")
    ev = vs[0].evidence if vs else {}
    if "examples" not in ev:  # the z3 engine
        return (f"depth {ev.get('depth', 0)}, {sum(v.verdict == 'proved' for v in vs)} proved, "
                f"{bad} violated")
    return (f"{ev.get('examples', 0)} examples, {ev.get('states', 0)} states, {bad} violated, "
            f"{ev.get('seconds', 0):.1f} s")


_INVARIANTS = frozenset(p.id for p in _INVARIANT_PROPERTIES)
_CELL = {"holds": ".", "proved": "P", "violated": "V", "unknown": "?"}
_HOLDS = {"exhaustive": "e", "bounded": "b", "sampled": "s"}


def _cell(v: Verdict) -> str:
    """A verdict's cell: a holds says what it covers (``e``, ``b``, ``s``; ``h`` without a guarantee);
    ``.`` is a witness reached, nothing else."""
    if v.verdict == "holds" and v.kind != "witness":
        return _HOLDS.get(v.evidence.get("guarantee", ""), "h")
    return _CELL[v.verdict]


# The table's sections: a row's kind says what its cells mean (a ``V`` of a rule is a violation,
# of undefined behaviour a finding, of a witness an unreachable call).
_SECTIONS = (
    ("rule", "Rules that must hold (P-*): V violated"),
    ("undefined", "Undefined behaviour and callers' broken obligations (P-*), findings, not judged: "
                  "V reached through the API; P e b s: not reached (with that guarantee)"),
    ("witness", "Witnesses (W-*), what the model must be able to do: . reached; V unreachable; ? not reached"),
    ("invariant", "Strengthening invariants (I-*): facts of every reachable state that the induction proofs "
                  "need; each cites the claims it helps prove: V violated"),
)


def _section(pid: str) -> str:
    if pid in _INVARIANTS:
        return "invariant"
    kind = get_property(pid).kind
    return "rule" if kind in ("always", "step") else kind


def _legend(result: CampaignResult) -> str:
    """What the cells shown mean (each section's header says what V means in it)."""
    shown = {_cell(v) for v in result.verdicts}
    parts = [("P", "proved (every depth)"), ("e", "holds on every reachable state of the scope searched "
              "exhaustively"), ("b", "holds on every run up to the depth"), ("s", "holds on the runs sampled"),
             ("h", "holds"), ("?", "unknown")]
    return ("cells: " + "  ".join(f"{c} {what}" for c, what in parts if c in shown)
            + ("  " if shown & set("Pebsh?") else "") + "! not as expected  (blank: does not apply)")


def _covers_lines(result: CampaignResult) -> list[str]:
    """What each exporter's verdicts cover, from their evidence (one line per exporter)."""
    lines = []
    for p in result.exporters:
        seen: dict[tuple, dict[str, Any]] = {}
        for v in result.verdicts:
            if v.exporter != p.name:
                continue
            for c in v.evidence.get("covers", ()):
                seen.setdefault((c["engine"], c["guarantee"], c["scope"]), c)
        if seen:
            lines.append(f"- {p.name}: " + "; ".join(_describe_cover(c) for c in seen.values()))
    if lines:
        lines.insert(0, "What the verdicts cover:")
        lines.append("")
    return lines


def _describe_cover(c: dict[str, Any]) -> str:
    figures = []
    if "states" in c:
        figures.append(f"{c['states']:,} states" + ("" if c.get("complete", True) else
                                                     f", cut: {c.get('stopped', 'budget')}"))
    if "depth" in c:
        figures.append(f"depth {c['depth']}")
    if "examples" in c:
        figures.append(f"{c['examples']:,} examples, {c.get('steps', 0):,} steps")
    return f"{c['guarantee']}, {c['scope']} ({c['engine']}{': ' + ', '.join(figures) if figures else ''})"


def format_table(result: CampaignResult, models: dict[str, Model] | None = None) -> str:
    """Property by exporter, then each violation with its trace (and, for a policy file, the knobs
    it sets that the trace needs), then the findings, then what differed."""
    names = [p.name for p in result.exporters]
    by = {(v.property, v.exporter): v for v in result.verdicts}
    pids = [p.id for p in PROPERTIES if any((p.id, n) in by for n in names)]
    width = max(len(p) for p in pids) if pids else 10
    out = [f"dmabuf-check campaign: revision {result.revision}, scope {result.scope.name}, seed "
           f"{result.seed}, engine {result.engine}, " + _budget_text(result.budget), ""]
    out.append("exporters: " + "  ".join(f"{i}={n}" for i, n in enumerate(names, 1)))
    if result.not_exportable:
        out.append(f"not exportable at {result.revision}, so not checked there (dma_buf_export() refuses their ops):")
        out += ["- " + n.sentence() for n in result.not_exportable]
    out.append(_legend(result))
    for section, header in _SECTIONS:
        rows = [pid for pid in pids if _section(pid) == section]
        if not rows:
            continue
        out.append("")
        out.append(header)
        out.append(" " * width + " " + "".join(f"{i:>3}" for i in range(1, len(names) + 1)))
        for pid in rows:
            row = []
            for n in names:
                v = by.get((pid, n))
                if v is None:
                    row.append("   ")
                else:
                    row.append(f" {_cell(v)}{'!' if not v.as_expected else ' '}")
            out.append(pid.ljust(width) + " " + "".join(row))
    out.append("")
    claims = load_claims()
    viol = [v for v in result.verdicts if v.verdict == "violated" and v.kind in ("always", "step")]
    if viol:
        out.append("Violations:")
        for v in viol:
            tag = "expected" if v.expected == "violated" or any(c in _breaks(result, v.exporter) for c in v.claims) \
                else "NOT EXPECTED"
            out.append(f"- {v.exporter}: {v.property} [{', '.join(v.claims)}] ({tag})")
            out.append(f"  {_claim_text(claims, v.claims[0])}")
            if models is not None and v.exporter in models:
                out += ["  " + line for line in knob_lines(v, trace_model(models[v.exporter], v.evidence))]
            if v.trace is not None:
                out.append(f"  trace: {trace_label(v, result.scope.name)}")
            if v.trace is not None and models is not None and v.exporter in models:
                out.append(_indent(render(trace_model(models[v.exporter], v.evidence), v.trace), "  "))
        out.append("")
    und = [v for v in result.verdicts if v.kind == "undefined" and v.verdict == "violated"]
    if und:
        out.append("Undefined behaviour and callers' broken obligations reachable through the API:")
        seen: dict[str, list[Verdict]] = {}
        for v in und:
            seen.setdefault(v.property, []).append(v)
        for pid, vs in seen.items():
            best = min(vs, key=lambda v: len(v.trace) if v.trace is not None else 0)
            out.append(f"- {pid} [{', '.join(best.claims)}] for {', '.join(v.exporter for v in vs)}; "
                       + (f"trace of {best.exporter}: {trace_label(best, result.scope.name)}"
                          if best.trace is not None else "no trace") + ":")
            if best.trace is not None and models is not None and best.exporter in models:
                out.append(_indent(render(trace_model(models[best.exporter], best.evidence), best.trace), "  "))
        out.append("")
    out += format_coverage(result.verdicts)
    out += _covers_lines(result)
    mism = result.mismatches
    judged = sum(1 for v in result.verdicts if v.expected is not None) + len(result.claim_checks)
    if mism:
        out.append("Not as expected:")
        out += ["- " + m for m in mism]
        out.append("")
    out.append(f"{len(result.verdicts)} verdicts, {judged} judged, {len(mism)} not as expected "
               f"({result.seconds:.1f} s)")
    return "\n".join(out)


def _budget_text(budget: dict[str, Any]) -> str:
    if "exhaustive" in budget:    # the portfolio
        ex, z3 = budget["exhaustive"], budget["z3"]
        return (f"{ex['scope']} searched exhaustively (up to {ex['states']:,} states), Z3 to depth {z3['depth']}, "
                f"{budget['examples']} examples x {budget['steps']} steps per exporter")
    if "examples" in budget:
        return f"{budget['examples']} examples x {budget['steps']} steps per exporter"
    return f"depth {budget.get('depth')}"


_ENGINE_NAMES = {"hypothesis": "Hypothesis", "z3": "Z3's bounded checks", "explicit": "the explicit engine"}


def trace_label(v: Verdict, scope: str) -> str:
    """What is known of a verdict's trace: ``shortest`` only where a search showed that no shorter
    trace exists (the explicit engine's breadth-first search, or ``--shortest``), else who found it
    and how long it is."""
    ev = v.evidence
    n = len(v.trace) if v.trace is not None else 0
    steps = f"{n} step{'s' if n != 1 else ''}"
    clean = "" if ev.get("callers_keep_obligations", True) else (
        "; every shortest trace has a caller break an obligation first")
    if ev.get("shortest") is True:
        return f"{steps}, shortest on scope {scope} (breadth-first search, --shortest){clean}"
    by = ev.get("found_by", v.engine)
    if ev.get("shortest") is False:
        return (f"{steps}, found by {_ENGINE_NAMES.get(by, by)}; not shown to be shortest (the search "
                f"for a shorter one was cut by its budget)")
    if by == "explicit":
        searched = ev.get("trace_scope") or ev.get("scope") or scope
        if "shortest_with_caller_fault" in ev:
            return (f"{steps}, the shortest on scope {searched} in which every caller keeps its obligations "
                    f"(breadth-first search); the shortest of all, {ev['shortest_with_caller_fault']} steps, "
                    f"has a caller break one first")
        return f"{steps}, shortest on scope {searched} (breadth-first search of its states){clean}"
    if by == "hypothesis":
        return f"{steps}, found by Hypothesis and shrunk; not shown to be shortest"
    return f"{steps}, found by {_ENGINE_NAMES.get(by, by)}; not shown to be shortest"


def user_knobs(policy: ExporterPolicy) -> tuple[ExporterPolicy | None, dict[str, Any]]:
    """The knobs a policy file sets: those that differ from the catalog exporter it is based on,
    or from the defaults, with that reference (a catalog exporter: none)."""
    if CATALOG.get(policy.name) == policy:
        return None, {}
    ref = CATALOG.get(policy.based_on) or ExporterPolicy(name=policy.name)
    return ref, {k: getattr(policy, k) for k in KNOBS if getattr(policy, k) != getattr(ref, k)}


def _toml(x: Any) -> str:
    return ("true" if x else "false") if isinstance(x, bool) else repr(x)


_VARIANTS: dict[tuple, Model] = {}


def knob_lines(v: Verdict, model: Model) -> list[str]:
    """For a finding on a policy file: the knobs it sets, and which of them the trace needs (with
    that knob back at its reference value, the same calls no longer show the finding)."""
    ref, knobs = user_knobs(model.policy)
    if not knobs:
        return []
    where = f"exporter {ref.name}" if ref.name in CATALOG and ref.name == model.policy.based_on else "the defaults"
    lines = [f"knobs the policy file sets (differing from {where}): "
             + ", ".join(f"{k} = {_toml(x)}" for k, x in knobs.items())]
    if v.trace is None:
        return lines
    needed = []
    calls = v.trace.calls()
    for k in knobs:
        key = (model.policy, k, model.scope, model.revision)
        if key not in _VARIANTS:
            _VARIANTS[key] = Model(model.policy.with_knobs(**{k: getattr(ref, k)}), model.scope, model.revision)
        other = _VARIANTS[key]
        try:
            again = Monitor(other, [get_property(v.property)]).fires(replay(other, calls), v.property)
        except ReplayError:
            again = False
        if not again:
            needed.append(k)
    if needed:
        lines.append("caused by " + ", ".join(f"{k} = {_toml(knobs[k])}" for k in needed) + ": with "
                     + ", ".join(f"{k} = {_toml(getattr(ref, k))}" for k in needed)
                     + f" the same calls do not show {v.property}")
    else:
        lines.append(f"none of them alone causes it: with any one back at its value in {where}, "
                     f"the same calls still show {v.property}")
    return lines


def _breaks(result: CampaignResult, exporter: str) -> tuple[str, ...]:
    for p in result.exporters:
        if p.name == exporter:
            return p.breaks
    return ()


def _claim_text(claims, cid: str) -> str:
    c = claims.get(cid)
    return f"{cid}: {c.text}" if c else cid


def _indent(text: str, pre: str) -> str:
    return "\n".join(pre + line for line in text.splitlines())


def shorten_verdicts(verdicts: Sequence[Verdict], models: dict[str, Any], states: int | None,
                     progress: Callable[[str], None] | None = None) -> list[Verdict]:
    """``campaign --shortest``: every trace of a violation or a reached target replaced by a
    shortest one, found by the explicit engine's breadth-first search to one step less than the
    trace (``properties.engines.explicit.shorten``; at most ``states`` states per trace). The
    evidence records the length before (``shrunk_length``) and ``shortest``: true (the trace is a
    shortest) or false (the search was cut by its budget: the trace is kept, unconfirmed)."""
    out = []
    for v in verdicts:
        if v.trace is None:
            out.append(v)
            continue
        tr, status = shorten(models[v.exporter], get_property(v.property), v.trace, SearchBudget(states=states))
        ev = {**v.evidence, "shrunk_length": len(v.trace), "shortest": status != "unconfirmed"}
        if "trace_length" in ev:
            ev["trace_length"] = len(tr)
        if progress and status == "shortened":
            progress(f"{v.exporter}: {v.property}: {len(v.trace)} -> {len(tr)} steps (shortest)")
        out.append(dataclasses.replace(v, trace=tr, evidence=ev))
    return out
