"""The spec-review report's data: every engine's verdicts at both documentation revisions, the
synthesis and bit-precise answers, and the findings drawn from them (docs/review.md). Rendering
(Markdown and one self-contained HTML file) is ``review_render.py``.

:func:`collect` runs what the report needs with a budget: by default the portfolio campaign at
v4.11 and v5.12 (``campaign.run_campaign(..., engine="portfolio")``: the tiny scope searched
exhaustively, then Z3's bounded checks and induction and Hypothesis on the review's scope; each
verdict states what it covers), the FIXME as a policy-synthesis query (with and without kmap users
at v4.11, and its v5.12 counterpart) and the bit-precise mmap arithmetic; on request, the
Hypothesis campaign, the Z3 engine (bounded checks and induction per exporter) and the
explicit-state engine (a state budget) on their own. The findings read the portfolio's verdicts
when it ran (``_main_engine``). An engine whose module is missing or that fails is recorded as such,
and the report says which engines ran. :func:`findings` turns the results into the findings
(the FIXME, undefined behaviour reachable through the API, drift between documentation and code,
real drivers breaking obligations, what v5.12 resolved), each with its evidence: verdicts and
trace references (``TraceRef``). Findings depend only on the configuration (seed and budgets),
never on timings, so the same seed gives the same findings.
"""
from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

from model.actions import ACTIONS
from model.constants import ERRNO
from model.catalog import BROKEN, MUTANTS, REAL_DRIVERS
from model.machine import Model
from model.events import EVENT_WORDS, event_names
from model.policy import ExporterPolicy, REVISIONS, export_refusal
from model.scope import SCOPES, Scope

from ..attribution import CLASSES, PERMISSIVE, classify, counts_against
from ..claims import CHANGES, NOT_MODELLED, claim_revisions, load_claims
from ..engines.arith import check_all
from ..engines.explicit import ExplicitEngine
from ..engines.interface import Budget
from ..engines.portfolio import DEFAULT_BUDGET, PortfolioEngine
from ..engines.synthesis import fixme_query, synthesize_claims
from ..engines.z3_engine import Z3Engine, fresh_context
from ..index import PROPERTIES, by_claim, get_property
from ..judge import NotExportable, claim_checks, split_exportable
from ..runs.campaign import run_campaign
from ..runs.runner import Call, Failure, TaskResult, plan_per_exporter, run
from ..runs.workers import InlineWorkers, LocalWorkers
from ..scenarios.litmus import display_fires, run_litmus
from ..trace import Trace, render
from ..verdict import Verdict
from .sources import SourceLine, claim_sources

__all__ = [
    "ENGINES", "DEFAULT_ENGINES", "ReviewConfig", "EngineRun", "ReviewData", "TraceRef", "Evidence",
    "Finding", "ClaimStatus", "collect", "findings", "claim_status", "exporter_kind",
    "project_version", "SYNTHESIS_SCOPE", "MAIN_ENGINES", "guarantee_note", "trace_note",
    "engine_words", "finding_sources", "restart_trace", "RESTART_LITMUS",
]

ENGINES = ("portfolio", "hypothesis", "z3", "explicit", "synthesis", "arith")
DEFAULT_ENGINES = ("portfolio", "synthesis", "arith")
SYNTHESIS_SCOPE = "tiny"      # the synthesis queries leave every knob free: kept to the tiny scope
# The check of a declared break that no property can show at the review's scope (P-ZAP-OWN-FILE
# needs two buffers): the explicit engine on the smallest catalog scope the property fits, within
# ``ReviewConfig.wide_states`` states, for the policies declaring such a break only.
WIDE_ENGINE = "explicit-wide"
# The engine whose verdicts the findings read, the first of these that ran at a revision.
MAIN_ENGINES = ("portfolio", "hypothesis", "z3", "explicit")

_MODULES = {"portfolio": "properties.engines.portfolio",
            "hypothesis": "properties.engines.hypothesis_engine", "z3": "properties.engines.z3_engine",
            "explicit": "properties.engines.explicit", "synthesis": "properties.engines.synthesis",
            "arith": "properties.engines.arith"}


def project_version() -> str:
    try:
        from importlib.metadata import version

        return version("dmabuf-check")
    except Exception:  # noqa: BLE001 - not installed: say so rather than fail
        return "unknown (not installed)"


@dataclass(frozen=True)
class ReviewConfig:
    """What the review runs, and with which budget."""

    scope: Scope = SCOPES["small"]
    seed: int = 1
    examples: int = 300          # Hypothesis: examples per round and exporter
    steps: int = 30              # Hypothesis: steps per example
    depth: int = 6               # Z3: bounded-check depth; synthesis depth is depth + 2
    timeout: float = 60.0        # Z3: seconds per solver query
    states: int = 200_000        # explicit engine: states per exporter run (a deterministic budget)
    engines: tuple[str, ...] = DEFAULT_ENGINES
    exporters: tuple[ExporterPolicy, ...] = ()
    jobs: int = 1
    revisions: tuple[str, ...] = REVISIONS   # the documentation revisions run (the report's columns: all)
    # the portfolio (the default campaign's engine): the tiny scope searched exhaustively within
    # ``max_states`` states (and ``memory`` bytes per worker, None: no bound), Z3 to
    # ``portfolio_depth`` on ``scope`` (within ``z3_seconds`` per exporter; None: no time bound, so
    # that the depth reached depends on the budget only), as the default campaign; then Hypothesis
    # with ``portfolio_examples`` x ``steps`` a round. That sampled stage gets a sixth of the
    # campaign's 300 examples: it decides no verdict of the catalog at either revision, and, as
    # the portfolio runs up to six rounds for most policies (looking for declared breaks an
    # earlier stage already showed), at 300 it was about half of the time (docs/review.md).
    portfolio_depth: int = 8
    max_states: int = 60_000_000
    z3_seconds: float | None = None
    memory: int | None = None
    portfolio_examples: int = 50
    # the explicit engine on a wider scope, for declared breaks the review's scope cannot show
    # (0: not run; each such break is then an outcome not as expected)
    wide_states: int = 30_000

    def budget(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "portfolio" in self.engines:
            out["portfolio"] = {
                "exhaustive": {"scope": PortfolioEngine.exhaustive_scope, "states": self.max_states,
                               "symmetry": PortfolioEngine.symmetry},
                "z3": {"depth": self.portfolio_depth, "timeout": DEFAULT_BUDGET.timeout,
                       "seconds": self.z3_seconds, "induction": PortfolioEngine.induction},
                "hypothesis": {"examples": self.portfolio_examples, "steps": self.steps, "max_rounds": 6}}
            if self.memory is not None:
                out["portfolio"]["exhaustive"]["memory"] = self.memory
        if "hypothesis" in self.engines:
            out["hypothesis"] = {"examples": self.examples, "steps": self.steps, "max_rounds": 6}
        if "z3" in self.engines:
            out["z3"] = {"depth": self.depth, "timeout": self.timeout, "induction": True}
        if "explicit" in self.engines:
            out["explicit"] = {"states": self.states, "symmetry": True}
        if "synthesis" in self.engines:
            out["synthesis"] = {"depth": self.depth + 2, "scope": SYNTHESIS_SCOPE, "timeout": self.timeout}
        if "arith" in self.engines:
            out["arith"] = {"timeout": self.timeout}
        return out


@dataclass
class EngineRun:
    """One engine at one revision: its verdicts (every exporter), or why it did not run."""

    engine: str
    revision: str
    status: str                                   # "ran" or the reason it did not
    verdicts: list[Verdict] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # outcomes of a bounded engine that differ from the expected one only because another engine's
    # trace is longer than the bound: reported, not counted as mismatches
    beyond_bound: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TraceRef:
    """Where a trace is: the verdict of ``property`` for ``exporter`` by ``engine`` at ``revision``."""

    revision: str
    engine: str
    exporter: str
    property: str

    def key(self) -> str:
        return f"{self.revision}/{self.engine}/{self.exporter}/{self.property}"


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence: a sentence (inline markup: `code`, **bold**, ``[[claim:ID]]``,
    ``[[trace:rev/engine/exporter/PID|label]]``), an optional table of such cells, and the traces
    it rests on."""

    text: str
    refs: tuple[TraceRef, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()      # first row: the header
    code: str = ""                               # a rendered trace shown as it is

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "traces": [r.key() for r in self.refs]}
        if self.table:
            out["table"] = [list(r) for r in self.table]
        if self.code:
            out["code"] = self.code
        return out


SEVERITIES = ("high", "medium", "low", "none")


@dataclass(frozen=True)
class Finding:
    """One finding: its class (``attribution.CLASSES``) and why, how much it matters, and what a
    maintainer should do about it (the summary page shows these first); ``detail`` is evidence
    per exporter, shown collapsed below the rest."""

    id: str
    title: str
    claims: tuple[str, ...]
    summary: str
    evidence: tuple[Evidence, ...]
    cls: str = "documentation"
    reason: str = ""
    severity: str = "medium"
    action: str = ""
    detail: tuple[tuple[str, Evidence], ...] = ()     # (exporter, its evidence)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "class": CLASSES[self.cls], "reason": self.reason,
                "severity": self.severity, "action": self.action, "claims": list(self.claims),
                "sources": [dict(s.to_json(), claim=cid) for cid, s in finding_sources(self)],
                "summary": self.summary, "evidence": [e.to_json() for e in self.evidence],
                "detail": {name: e.to_json() for name, e in self.detail}}


@dataclass
class ReviewData:
    config: ReviewConfig
    version: str
    runs: list[EngineRun] = field(default_factory=list)
    synthesis: list[Any] = field(default_factory=list)        # synthesis.SynthesisResult
    arith: list[Any] = field(default_factory=list)            # arith.ArithFinding
    engine_status: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False
    _index: dict[tuple[str, str, str, str], Verdict] = field(default_factory=dict, repr=False)
    _models: dict[tuple[str, str], Model] = field(default_factory=dict, repr=False)

    def add(self, run: EngineRun) -> None:
        self.runs.append(run)
        for v in run.verdicts:
            self._index[(run.revision, run.engine, v.exporter, v.property)] = v

    def verdict(self, revision: str, engine: str, exporter: str, pid: str) -> Verdict | None:
        return self._index.get((revision, engine, exporter, pid))

    def trace(self, ref: TraceRef) -> Trace | None:
        v = self.verdict(ref.revision, ref.engine, ref.exporter, ref.property)
        return v.trace if v is not None else None

    def engines_run(self, revision: str | None = None, wide: bool = False) -> list[str]:
        """The engines with verdicts (per exporter and property), in report order; with ``wide``,
        also the check at a wider scope of the declared breaks the review's scope cannot show."""
        ran = {(r.engine, r.revision) for r in self.runs if r.status == "ran"}
        names = ENGINES + ((WIDE_ENGINE,) if wide else ())
        return [e for e in names if any(e == x and (revision is None or revision == rv) for x, rv in ran)]

    def exporters(self, revision: str | None = None) -> list[ExporterPolicy]:
        """The policies checked at ``revision`` (all, with ``None``): those whose revisions name it
        and whose ops its ``dma_buf_export()`` accepts."""
        return [p for p in self.config.exporters
                if revision is None or (revision in self.config.revisions and revision in p.revisions
                                        and p.exportable_at(revision))]

    def not_exportable(self, revision: str) -> list[NotExportable]:
        """The policies the ``dma_buf_export()`` of ``revision`` refuses: listed, never checked there."""
        return split_exportable(self.config.exporters, revision)[1]

    def refused_export(self, exporter: str) -> str:
        """What the model's v4.11 ``dma_buf_export(buf=0)`` does for ``exporter``, computed by
        taking the step: ``dma_buf_export(buf=0) = -EINVAL (dma_buf_export() refused: ...)``."""
        m = self.model("v4.11", exporter)
        inst = m.find("dma_buf_export", buf=0)
        _, ret, events, _ = m.step(m.init, inst.index)
        words = "; ".join(EVENT_WORDS[e] for e in event_names(events))
        return f"`{inst} = {m.describe_ret(ret)}` ({words})"

    def policy(self, name: str) -> ExporterPolicy:
        for p in self.config.exporters:
            if p.name == name:
                return p
        raise KeyError(name)

    def model(self, revision: str, exporter: str) -> Model:
        key = (revision, exporter)
        if key not in self._models:
            self._models[key] = Model(self.policy(exporter), self.config.scope, revision)
        return self._models[key]

    def mismatches(self) -> list[str]:
        """The outcomes not as expected; an engine that was asked for and failed at a revision is
        one (its verdicts are missing, so nothing it should have shown can be counted as shown)."""
        return [f"{r.revision} {r.engine}: {m}" for r in self.runs
                for m in (r.mismatches if r.status == "ran" else [f"the engine {r.status}"])] + [
            n.sentence("nothing of it checked, though its revisions name " + rev)
            for rev in REVISIONS for n in self.not_exportable(rev) if not n.declared]

    def beyond_bound(self) -> list[str]:
        return [f"{r.revision} {r.engine}: {m}" for r in self.runs for m in r.beyond_bound]


# --- running the engines ------------------------------------------------------------------------

def _traces_found(data: "ReviewData", revision: str) -> dict[tuple[str, str], int]:
    """(exporter, property) -> the shortest violation trace any engine that already ran at this
    revision found."""
    out: dict[tuple[str, str], int] = {}
    for r in data.runs:
        if r.revision != revision:
            continue
        for v in r.verdicts:
            if v.verdict == "violated" and v.trace is not None:
                k = (v.exporter, v.property)
                out[k] = min(out.get(k, len(v.trace)), len(v.trace))
    return out


def _beyond_bound(v: Verdict | None, lengths: Sequence[int | None]) -> str:
    """A bounded check (``holds`` up to depth k, not proved) that misses a violation another
    engine shows with a trace longer than k does not contradict it: the note to report, or ""
    when that is not the case (then it is a mismatch)."""
    if v is None or v.verdict != "holds" or "depth" not in v.evidence or v.evidence.get("method") != "bmc":
        return ""
    k = v.evidence["depth"]
    known = [n for n in lengths if n is not None]
    if known and min(known) > k:
        return f" (bounded to depth {k}; the shortest trace another engine found has {min(known)} steps)"
    return ""


def _available(engine: str) -> str:
    try:
        importlib.import_module(_MODULES[engine])
    except ImportError as e:
        return f"not available ({e})"
    return "available"


def collect(cfg: ReviewConfig, progress: Callable[[str], None] | None = None) -> ReviewData:
    """Run every engine of ``cfg.engines`` at both revisions; an engine that is missing or fails
    is recorded (``engine_status``), never silently skipped. Ctrl-C stops the run and keeps what
    was found (``interrupted``)."""
    say = progress or (lambda msg: None)
    started = time.monotonic()
    data = ReviewData(cfg, project_version())
    for e in ENGINES:
        data.engine_status[e] = _available(e) if e in cfg.engines else "not requested"
    try:
        _collect(cfg, data, say)
    except KeyboardInterrupt:
        data.interrupted = True
        say("interrupted: writing what was found")
    for e in ENGINES:
        if data.engine_status[e] == "available":
            data.engine_status[e] = "interrupted" if data.interrupted else "ran"
    data.seconds = time.monotonic() - started
    return data


def _collect(cfg: ReviewConfig, data: ReviewData, say: Callable[[str], None]) -> None:
    jobs = max(1, cfg.jobs)

    def workers(n: int):
        return LocalWorkers(min(jobs, n)) if jobs > 1 and n > 1 else InlineWorkers()

    def engine_run(name: str, rev: str, pols: Sequence[ExporterPolicy]) -> list[Verdict]:
        if name == "z3":
            engine, budget = Z3Engine(), Budget(depth=cfg.depth, timeout=cfg.timeout)
        else:
            engine, budget = ExplicitEngine(symmetry=True, keep_edges=False, reduce="dead"), Budget(states=cfg.states)
        tasks = plan_per_exporter(pols, cfg.scope, rev, engine, [p.id for p in PROPERTIES], budget)
        out = run(tasks, workers(len(tasks)),
                  on_result=lambda r, n: say(f"  {name} [{r.index + 1}/{len(tasks)}] {r.lane[0]} done"))
        if out.stopped:
            raise KeyboardInterrupt
        return [v for r in out.results for v in r.verdicts]

    for rev in cfg.revisions:
        pols = data.exporters(rev)
        if data.engine_status["portfolio"] == "available":
            say(f"review: portfolio at {rev} ({len(pols)} exporters: tiny exhaustively, then Z3 to depth "
                f"{cfg.portfolio_depth} and Hypothesis on {cfg.scope.name})")
            try:
                res = run_campaign(pols, cfg.scope, rev, examples=cfg.portfolio_examples, seed=cfg.seed,
                                   steps=cfg.steps, jobs=min(jobs, len(pols)), progress=lambda m: say("  " + m),
                                   engine="portfolio",
                                   depth=cfg.portfolio_depth, states=cfg.max_states, memory=cfg.memory,
                                   z3_seconds=float("inf") if cfg.z3_seconds is None else cfg.z3_seconds,
                                   database=None)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - an engine failing is reported (and counted), not fatal
                data.add(EngineRun("portfolio", rev, f"failed: {type(e).__name__}: {e}".splitlines()[0]))
            else:
                data.add(EngineRun("portfolio", rev, "ran", res.verdicts, res.mismatches, res.seconds))
                if res.interrupted:
                    raise KeyboardInterrupt
        if data.engine_status["hypothesis"] == "available":
            say(f"review: Hypothesis campaign at {rev} ({len(pols)} exporters)")
            res = run_campaign(pols, cfg.scope, rev, examples=cfg.examples, seed=cfg.seed, steps=cfg.steps,
                               jobs=min(jobs, len(pols)), progress=lambda m: say("  " + m))
            data.add(EngineRun("hypothesis", rev, "ran", res.verdicts, res.mismatches, res.seconds))
            if res.interrupted:
                raise KeyboardInterrupt
        for engine in ("z3", "explicit"):
            if data.engine_status[engine] != "available":
                continue
            say(f"review: {engine} engine at {rev}")
            t0 = time.monotonic()
            try:
                vs = engine_run(engine, rev, pols)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - an engine failing is reported, not fatal
                data.add(EngineRun(engine, rev, f"failed: {type(e).__name__}: {e}".splitlines()[0]))
                continue
            found = _traces_found(data, rev)
            mism, beyond = [], []
            for v in vs:
                if v.as_expected:
                    continue
                what = f"{v.exporter}: {v.property} is {v.verdict}, expected {v.expected}"
                longer = _beyond_bound(v, [found.get((v.exporter, v.property))])
                (beyond if longer else mism).append(what + longer)
            for p in pols:
                for c in claim_checks(p, [v for v in vs if v.exporter == p.name], cfg.scope, rev):
                    if c.found:
                        continue
                    what = f"{c.exporter}: declares {c.claim} broken, but no property citing it was violated"
                    mine = [v for v in vs if v.exporter == p.name and c.claim in v.claims]
                    longer = _beyond_bound(mine[0] if mine else None,
                                           [n for (e, pid), n in found.items()
                                            if e == p.name and c.claim in get_property(pid).claims
                                            and get_property(pid).target_is_bad])
                    (beyond if longer else mism).append(what + longer)
            data.add(EngineRun(engine, rev, "ran", vs, mism, time.monotonic() - t0, beyond))
        _wide_checks(cfg, data, rev, pols, say)
    calls = []
    if data.engine_status["synthesis"] == "available":
        say("review: the FIXME as a policy-synthesis query: (a) with and (b) without kernel kmap users at "
            "v4.11, (c) M-PIN-NOT-USER with M-BEGIN-COHERENCY-ONLY and M-NO-KMAP at v5.12")
        calls += [Call(len(calls) + i, "synthesis", _synthesis_one, (q, cfg.depth + 2, cfg.timeout))
                  for i, q in enumerate("abc")]
    if data.engine_status["arith"] == "available":
        say("review: bit-precise mmap arithmetic")
        calls.append(Call(len(calls), "arith", _arith_one, (cfg.timeout, cfg.scope.name)))
    if not calls:
        return
    failed: dict[str, str] = {}
    out = run(calls, _KeepGoing(workers(len(calls)), failed))
    if out.stopped:
        raise KeyboardInterrupt
    for engine, why in failed.items():
        data.engine_status[engine] = why
    for r in out.results:
        if r.lane[1] in failed:
            continue
        if r.lane[1] == "synthesis":
            data.synthesis.append(r.result)
        else:
            data.arith = r.result


def unchecked_breaks(pols: Sequence[ExporterPolicy], scope: Scope, revision: str
                     ) -> list[tuple[ExporterPolicy, str, tuple[Any, ...]]]:
    """(policy, claim, the properties that could show it) for every claim a policy declares
    broken at ``revision`` that a property shows broken only on a scope larger than ``scope``
    (``P-ZAP-OWN-FILE`` needs two buffers): no verdict at ``scope`` can check that break."""
    out = []
    for p in pols:
        for claim in p.breaks:
            if claim.startswith(("P-", "W-")) or revision not in claim_revisions(claim):
                continue
            cands = tuple(q for q in by_claim(claim) if q.kind in ("always", "step") and revision in q.revisions
                          and claim in counts_against(q.id))
            if cands and not any(q.fits(scope) for q in cands):
                out.append((p, claim, cands))
    return out


def _wide_scope(props: Sequence[Any]) -> Scope | None:
    """The smallest catalog scope every one of ``props`` fits."""
    return next((s for s in SCOPES.values() if all(q.fits(s) for q in props)), None)


def _wide_checks(cfg: ReviewConfig, data: ReviewData, rev: str, pols: Sequence[ExporterPolicy],
                 say: Callable[[str], None]) -> None:
    """Check, on the smallest scope that can show them, the declared breaks that no property can
    show on the review's scope; one not found there, or not checked (``wide_states`` 0), is an
    outcome not as expected, never a pass."""
    todo = unchecked_breaks(pols, cfg.scope, rev)
    if not todo:
        return
    mism: list[str] = []
    verdicts: list[Verdict] = []
    t0 = time.monotonic()
    for pol, claim, props in todo:
        scope = _wide_scope(props)
        needs = "; ".join(f"`{q.id}` needs " + ", ".join(f"{n} {k}" for k, n in q.needs) for q in props)
        if cfg.wide_states <= 0 or scope is None:
            mism.append(f"{pol.name}: declares {claim} broken, but no property citing it can be violated at "
                        f"scope {cfg.scope.name} ({needs}) and the check at a wider scope was not run")
            continue
        say(f"review: {pol.name} declares {claim} broken, which only scope {scope.name} can show ({needs}): "
            f"explicit engine within {cfg.wide_states:,} states")
        engine = ExplicitEngine(symmetry=True, keep_edges=False)
        tasks = plan_per_exporter([pol], scope, rev, engine, [q.id for q in props], Budget(states=cfg.wide_states))
        out = run(tasks, InlineWorkers())
        if out.stopped:
            raise KeyboardInterrupt
        found = False
        for r in out.results:
            for v in r.verdicts:
                v = dataclasses.replace(v, engine=WIDE_ENGINE, evidence={**v.evidence, "trace_scope": scope.name})
                verdicts.append(v)
                found = found or (v.verdict == "violated" and claim in counts_against(v.property))
        if not found:
            mism.append(f"{pol.name}: declares {claim} broken, but no property citing it was violated at scope "
                        f"{scope.name} within {cfg.wide_states:,} states (scope {cfg.scope.name} cannot show it: "
                        f"{needs})")
    data.add(EngineRun(WIDE_ENGINE, rev, "ran", verdicts, mism, time.monotonic() - t0))


class _KeepGoing:
    """Workers whose failed calls are recorded (``failed``: engine -> why) instead of stopping
    the run: an engine failing is reported in the review, not fatal."""

    def __init__(self, inner, failed: dict[str, str]) -> None:
        self.inner, self.failed = inner, failed
        self.capacity = inner.capacity
        self.labels: dict[int, str] = {}

    def submit(self, task) -> None:
        self.labels[task.index] = task.label
        self.inner.submit(task)

    def get(self, timeout: float):
        return self.inner.get(timeout)

    def collect(self, item):
        r = self.inner.collect(item)
        if isinstance(r, Failure):
            label = self.labels[r.index]
            self.failed.setdefault(label, f"failed: {type(r.error).__name__}: {r.error}".splitlines()[0])
            return TaskResult(r.index, ("", label), 0, None)
        return r

    def examples(self):
        return None

    def stop(self, cancel: bool) -> None:
        self.inner.stop(cancel)


def _synthesis_one(query: str, depth: int, timeout: float) -> Any:
    """One synthesis query, from a fresh Z3 context; the answer without its Z3 formula (which does
    not cross processes; the report uses the classes and partitions)."""
    fresh_context()
    if query in "ab":
        r = fixme_query(query == "a", SYNTHESIS_SCOPE, depth, timeout=timeout)
    else:
        r = synthesize_claims(("M-PIN-NOT-USER",), ("M-BEGIN-COHERENCY-ONLY", "M-NO-KMAP"), SYNTHESIS_SCOPE,
                              depth, revision="v5.12", timeout=timeout)
        r.title = "(c) v5.12: " + r.title
    r.formula = None
    return r


def _arith_one(timeout: float, scope: str) -> list[Any]:
    fresh_context()
    return check_all(timeout, scopes=(scope,))


# --- summaries per claim ------------------------------------------------------------------------

_REAL = {p.name for p in REAL_DRIVERS}
_BROKEN = {p.name for p in BROKEN} | {p.name for p in MUTANTS}


def exporter_kind(name: str) -> str:
    """``real`` (modelled on a driver), ``broken`` (deliberately broken exporter or core mutant),
    or ``other`` (the reference exporter, a user's policy)."""
    return "real" if name in _REAL else "broken" if name in _BROKEN else "other"


@dataclass(frozen=True)
class ClaimStatus:
    """A claim at one revision, over every exporter and engine."""

    claim: str
    revision: str
    state: str                    # absent | not-modelled | violated | reached | holds | unknown | none
    violators: tuple[str, ...] = ()   # exporters with an always/step property violated (or target reached)
    refs: tuple[TraceRef, ...] = ()   # one trace per violator (the shortest)
    unknown: tuple[str, ...] = ()

    def real(self) -> tuple[str, ...]:
        return tuple(x for x in self.violators if exporter_kind(x) == "real")

    def others(self) -> tuple[str, ...]:
        return tuple(x for x in self.violators if exporter_kind(x) != "real")


def claim_status(data: ReviewData, cid: str, revision: str) -> ClaimStatus:
    if revision not in claim_revisions(cid):
        return ClaimStatus(cid, revision, "absent")
    if cid in PERMISSIVE:
        return ClaimStatus(cid, revision, "permissive")
    wide = WIDE_ENGINE in data.engines_run(revision, wide=True)
    props = [p for p in by_claim(cid) if revision in p.revisions and (p.fits(data.config.scope) or wide)]
    if not props:
        return ClaimStatus(cid, revision, "not-modelled" if cid in NOT_MODELLED else "none")
    # a property citing the claim for context only does not show it broken (properties/attribution.py)
    judged = [p for p in props if p.kind in ("always", "step") and cid in counts_against(p.id)]
    undefined = [p for p in props if p.kind == "undefined"]
    target = judged or undefined
    violators: dict[str, TraceRef] = {}
    lengths: dict[str, int] = {}
    unknown: set[str] = set()
    any_verdict = False
    for pol in data.exporters(revision):
        for engine in data.engines_run(revision, wide=True):
            for p in target:
                v = data.verdict(revision, engine, pol.name, p.id)
                if v is None:
                    continue
                any_verdict = True
                if v.verdict == "violated":
                    n = len(v.trace) if v.trace is not None else 10 ** 6
                    if pol.name not in violators or n < lengths[pol.name]:
                        violators[pol.name] = TraceRef(revision, engine, pol.name, p.id)
                        lengths[pol.name] = n
                elif v.verdict == "unknown":
                    unknown.add(pol.name)
    order = [p.name for p in data.exporters(revision)]
    names = tuple(n for n in order if n in violators)
    refs = tuple(violators[n] for n in names)
    unk = tuple(n for n in order if n in unknown and n not in violators)
    if not any_verdict:
        # only witnesses formalise it: reached by every exporter they apply to?
        wit = [p for p in props if p.kind == "witness"]
        st = "holds"
        for pol in data.exporters(revision):
            for p in wit:
                vs = [data.verdict(revision, e, pol.name, p.id) for e in data.engines_run(revision)]
                vs = [v for v in vs if v is not None]
                if vs and not any(v.verdict == "holds" for v in vs):
                    st = "unknown"
        return ClaimStatus(cid, revision, st if wit else "none")
    if names:
        return ClaimStatus(cid, revision, "violated" if judged else "reached", names, refs, unk)
    return ClaimStatus(cid, revision, "unknown" if unk else "holds", (), (), unk)


# --- findings ------------------------------------------------------------------------------------

def _tref(ref: TraceRef, label: str) -> str:
    return f"[[trace:{ref.key()}|{label}]]"


def _cell(data: ReviewData, revision: str, exporter: str, pid: str, engine: str) -> tuple[str, TraceRef | None]:
    v = data.verdict(revision, engine, exporter, pid)
    if v is None:
        return "n/a", None
    if v.trace is not None and v.verdict == "violated":
        ref = TraceRef(revision, engine, exporter, pid)
        return _tref(ref, f"violated ({trace_note(v)})"), ref
    covered = guarantee_note(v)
    return v.verdict + (f" ({covered})" if covered else ""), None


def guarantee_note(v: Verdict) -> str:
    """What a verdict that is not a violation covers, from its evidence: ``exhaustive, tiny``,
    ``bounded, small, depth 8``, ``sampled, small``, ``1-induction, small`` (a proof); "" when the
    evidence does not say (an ``unknown``, or an engine that states no guarantee)."""
    ev = v.evidence
    if v.verdict == "unknown" or "guarantee" not in ev:
        return ""
    if v.verdict == "proved" and ev.get("method"):
        return f"{ev['method']}, {ev.get('scope', '?')}"
    depth = ev.get("depth", ev.get("depth_complete"))
    return f"{ev['guarantee']}, {ev.get('scope', '?')}" + (
        f", depth {depth}" if ev["guarantee"] == "bounded" and depth is not None else "")


def engine_words(data: "ReviewData", engine: str) -> str:
    """How ``engine`` ran in this review, in words (its budget)."""
    cfg = data.config
    if engine == "portfolio":
        if cfg.scope.name == PortfolioEngine.exhaustive_scope:
            return (f"portfolio: `{cfg.scope.name}`, the review's own scope, searched exhaustively within "
                    f"{cfg.max_states:,} states (a complete search decides every property and leaves the Z3 and "
                    f"Hypothesis stages nothing)")
        return (f"portfolio: `{PortfolioEngine.exhaustive_scope}` searched exhaustively, then Z3 to depth "
                f"{cfg.portfolio_depth} and Hypothesis ({cfg.portfolio_examples} examples x {cfg.steps} steps a round) on "
                f"`{cfg.scope.name}`")
    if engine == "hypothesis":
        return f"Hypothesis, {cfg.examples} examples x {cfg.steps} steps a round, on `{cfg.scope.name}`"
    if engine == "z3":
        return f"Z3 to depth {cfg.depth}, then induction, on `{cfg.scope.name}`"
    return f"explicit, up to {cfg.states} states of `{cfg.scope.name}`"


def trace_note(v: Verdict) -> str:
    """A trace's length and, for a portfolio verdict, which stage found it and what that stage
    covers: ``8 steps; explicit: exhaustive, tiny`` (``8 steps on tiny; ...`` when the trace shows
    only on the exhaustive scope, not on the review's)."""
    n = len(v.trace) if v.trace is not None else 0
    ev = v.evidence
    text = f"{n} step{'' if n == 1 else 's'}"
    if ev.get("trace_scope"):
        text += f" on {ev['trace_scope']}"
    if ev.get("found_by"):
        text += f"; {ev['found_by']}: {ev.get('guarantee', '?')}, {ev.get('scope', '?')}"
    return text


def _names(xs: Sequence[str]) -> str:
    return ", ".join(f"`{x}`" for x in xs) if xs else "none"


def findings(data: ReviewData) -> list[Finding]:
    """The findings, in report order."""
    out = [_fixme(data), _undefined(data), _drift(data), _real_drivers(data), _resolved(data),
           _core_ordering(data), _size_floor(data)]
    return [f for f in out if f is not None]


def finding_sources(f: Finding) -> tuple[tuple[str, SourceLine], ...]:
    """(claim, where its sentence is) for every kernel sentence a finding's claims quote: file and
    line at the revision (``sources.py``; ``line`` None where the project's data has no line
    number). Raises ``sources.SourceError`` when a quote is not in the kernel text kept for its
    source, or is there more than once."""
    claims = load_claims()
    return tuple((cid, s) for cid in f.claims if cid in claims for s in claim_sources(claims[cid]))


def said(cid: str) -> str:
    """A claim's words for a finding's text: the kernel's quotes, then the project's reading,
    labelled as such."""
    c = load_claims()[cid]
    return c.kernel + (f" (Reading, the project's words, not the kernel's: {c.reading})" if c.reading else "")


def _main_engine(data: ReviewData, revision: str) -> str | None:
    """The engine whose verdicts the findings read at ``revision``: the portfolio when it ran
    (its verdicts are the strongest: each says what it covers), else the first of
    ``MAIN_ENGINES`` that ran."""
    run = data.engines_run(revision)
    return next((e for e in MAIN_ENGINES if e in run), None)


def _fixme(data: ReviewData) -> Finding:
    claims = load_claims()
    a, b = claims["FIXME-NO-USER-PIN"], claims["FIXME-KMAP-PINNED"]
    ev: list[Evidence] = []
    props = ("P-NO-USER-PIN", "P-KMAP-SUCCEEDS", "P-KMAP-PINNED", "P-KMAP-BACKED")
    rev = "v4.11"
    engine = _main_engine(data, rev)
    # the synthesis query: the condition under which the FIXME bites
    with_users = next((r for r in data.synthesis if r.title.startswith("(a)")), None)
    without = next((r for r in data.synthesis if r.title.startswith("(b)")), None)
    later = next((r for r in data.synthesis if r.title.startswith("(c)")), None)
    condition = ""
    if with_users is not None:
        none_parts = [k for k, v in with_users.partitions.items() if v == "none"]
        some_parts = [k for k, v in with_users.partitions.items() if v != "none"]
        if with_users.status == "sat" and none_parts:
            condition = (f"With kernel kmap users, no exporter policy with {' or '.join(f'`{k}`' for k in none_parts)} "
                         f"keeps both sentences (Z3 policy synthesis, scope {with_users.scope.name}, depth "
                         f"{with_users.depth}); policies with {', '.join(f'`{k}`' for k in some_parts)} can.")
        elif with_users.status == "unsat":
            condition = "With kernel kmap users, no exporter policy keeps both sentences (Z3 policy synthesis)."
        else:
            condition = f"The synthesis query with kernel kmap users answered {with_users.status}."
        ev.append(_synthesis_evidence(with_users))
        if without is not None:
            ev.append(_synthesis_evidence(without))
    # the campaign: which swappable exporters break which side
    if engine is not None:
        rows: list[tuple[str, ...]] = [("exporter", "swappable", "begin pins", *props)]
        refs: list[TraceRef] = []
        for p in data.exporters(rev):
            # the FIXME's question needs an exporter with kmap; those without fail kmap anyway (F4)
            if p.name.startswith("mutant-") or not (p.kmap_gives_pages and p.kmap_atomic_gives_pages):
                continue
            cells = []
            for pid in props:
                text, ref = _cell(data, rev, p.name, pid, engine)
                cells.append(text)
                if ref is not None:
                    refs.append(ref)
            rows.append((f"`{p.name}`", "yes" if p.swappable else "no", "yes" if p.begin_pins else "no", *cells))
        bite_a = [r[0] for r in rows[1:] if "violated" in r[3]]
        bite_b = [r[0] for r in rows[1:] if any("violated" in c for c in r[4:])]
        ev.append(Evidence(
            f"Campaign at v4.11 ({engine_words(data, engine)}; seed {data.config.seed}), every exporter "
            f"with kmap and kmap_atomic (those without fail kmap whatever they do: F4); each cell says what the "
            f"verdict covers, or which stage found the trace and what that stage covers. Pinning in begin breaks "
            f"[[claim:FIXME-NO-USER-PIN]] (a userspace SYNC_START pins: {', '.join(bite_a) or 'none'}); not "
            f"pinning, or a userspace SYNC_END dropping the pin a kernel bracket relies on (the core keeps "
            f"no SYNC state, [[claim:SYNC-STATELESS]]), breaks [[claim:FIXME-KMAP-PINNED]] / "
            f"[[claim:KCPU-ALWAYS-SUCCEED]] ({', '.join(bite_b) or 'none'}).",
            tuple(refs), tuple(rows)))
        if not condition:
            swappable_ok = [r[0] for r in rows[1:] if r[1] == "yes" and not any("violated" in c for c in r[3:])]
            fixed_ok = [r[0] for r in rows[1:] if r[1] == "no" and not any("violated" in c for c in r[3:])]
            condition = ("The synthesis engine did not run; from the campaign: every exporter with kmap and "
                         "swappable storage breaks one side" if not swappable_ok else
                         f"The synthesis engine did not run; from the campaign, exporters with swappable storage "
                         f"keeping both: {', '.join(swappable_ok)}") + (
                f"; non-swappable ones keeping both: {', '.join(fixed_ok) or 'none'}"
                " (for these catalog policies only, each within what its cells say they cover; the synthesis "
                "query is what speaks for every policy).")
    if later is not None:
        parts = ", ".join(f"`{k}`: {v}" for k, v in later.partitions.items())
        ev.append(_synthesis_evidence(later, f"At v5.12 the question is gone: with kmap removed, "
                                              f"[[claim:M-PIN-NOT-USER]] and [[claim:M-BEGIN-COHERENCY-ONLY]] "
                                              f"together with kernel vmap access ({parts})."))
    eng = _main_engine(data, "v5.12")
    for ex in [p.name for p in data.exporters("v5.12") if exporter_kind(p.name) == "real" and p.begin_pins]:
        if eng is not None:
            cells = [(pid, *_cell(data, "v5.12", ex, pid, eng)) for pid in ("P-BEGIN-NO-PIN", "P-USER-NO-PIN")]
            ev.append(Evidence(
                f"A driver that still pins in begin at v5.12 breaks the later rules instead: `{ex}` "
                + "; ".join(f"`{pid}` {t}" for pid, t, _ in cells) + ".",
                tuple(r for _, _, r in cells if r is not None)))
    summary = (f"The FIXME of `@begin_cpu_access` asks two things of one callback. [[claim:FIXME-NO-USER-PIN]]: "
               f"{said(a.id)} [[claim:FIXME-KMAP-PINNED]]: {said(b.id)} Userspace (DMA_BUF_IOCTL_SYNC) and kernel importers "
               f"reach the same hook, and the core keeps no SYNC state, so a userspace SYNC_END also drops a pin a "
               f"kernel bracket relies on. {condition}")
    return Finding("F1", "The FIXME in @begin_cpu_access contradicts itself, reachably through the public API",
                   ("FIXME-NO-USER-PIN", "FIXME-KMAP-PINNED", "FIXME-NO-KMAP-USERS", "KCPU-ALWAYS-SUCCEED"),
                   summary, tuple(ev), cls="documentation",
                   reason="the two sentences of the FIXME ask opposite things of one callback, which userspace "
                          "and kernel importers both reach: no exporter with swappable storage can keep both",
                   severity="high",
                   action="decide the rule in the text: begin_cpu_access must not pin for userspace, and kernel "
                          "kmap users must hold the storage by other means (what v5.12 did with dma_buf_pin)")


def _synthesis_evidence(r: Any, lead: str | None = None) -> Evidence:
    if r.status == "sat":
        ans = f"**sat**: {r.count if r.count is not None else 'some'} knob assignments keep both"
    elif r.status == "unsat":
        ans = "**unsat**: no policy keeps both"
    else:
        ans = f"**{r.status}** ({r.note})"
    parts = "; ".join(f"`{k}`: {v}" for k, v in r.partitions.items())
    fails = [n for n, v in r.catalog.items() if v == "fails"]
    keeps = [n for n, v in r.catalog.items() if v == "keeps both"]
    rows: list[tuple[str, ...]] = [("policies (unnamed knobs free)", "outcome")]
    for c in r.satisfying:
        rows.append((f"`{c.describe()}`", "keeps both"))
    for c in r.failing:
        rows.append((f"`{c.describe()}`", f"vacuous: {c.unreached} not reached" if c.unreached
                     else "violates " + ", ".join(f"`{x}`" for x in c.violates)
                     + (f" ({len(c.trace)}-step trace)" if c.trace is not None else "")))
    text = (lead + " " if lead else "") + (
        f"Synthesis {r.title} (scope {r.scope.name}, depth {r.depth}, keeping {', '.join(f'`{x}`' for x in r.safety)}"
        f"{'; reaching ' + ', '.join(f'`{x}`' for x in r.witnesses) if r.witnesses else ''}): {ans}"
        f"{'; ' + parts if parts else ''}. Catalog exporters that fail: {_names(fails)}; that keep both: "
        f"{_names(keeps)}. In a knob partition answered 'none', every policy is refuted by a concrete trace or is "
        f"vacuous (never reaches a witness within the depth); `dmabuf-check prove --only synthesis` prints the "
        f"refuting traces.")
    return Evidence(text, (), tuple(rows))


def _undefined(data: ReviewData) -> Finding:
    ev: list[Evidence] = []
    for party, lead in (("undefined", "Documented as undefined"),
                        ("importer", "An importer breaking its obligation (the API does not stop it)"),
                        ("userspace", "Userspace breaking its obligation (the API does not stop it)")):
        # (a `tension` property is a documentation defect, F3, not a caller's)
        for p in PROPERTIES:
            if p.kind != "undefined" or p.party != party:
                continue
            per_rev = []
            refs = []
            for rev in REVISIONS:
                if rev not in p.revisions:
                    per_rev.append(f"{rev}: not in this revision")
                    continue
                eng = _main_engine(data, rev)
                if eng is None:
                    continue
                reached = [x.name for x in data.exporters(rev)
                           if (v := data.verdict(rev, eng, x.name, p.id)) is not None and v.verdict == "violated"]
                if not reached:
                    per_rev.append(f"{rev}: not reached")
                    continue
                best = min(reached, key=lambda n: len(data.verdict(rev, eng, n, p.id).trace or ()))
                ref = TraceRef(rev, eng, best, p.id)
                refs.append(ref)
                tr = data.verdict(rev, eng, best, p.id).trace
                per_rev.append(f"{rev}: reached for {len(reached)} of {len(data.exporters(rev))} exporters, "
                               + _tref(ref, f"shortest {trace_note(data.verdict(rev, eng, best, p.id))} ({best})")
                               + (f", calls by: {_actors(tr)}" if len(tr) else ", in the initial state"))
            if not refs:
                continue
            cl = ", ".join(f"[[claim:{c}]]" for c in p.claims)
            ev.append(Evidence(f"**{lead}**: `{p.id}` ({cl}), {p.doc}. " + "; ".join(per_rev) + ".",
                               tuple(refs)))
    modelled = [p for p in PROPERTIES if p.kind == "undefined" and p.party != "tension"]
    reached = {r.property for e in ev for r in e.refs}
    missed = [p.id for p in modelled if p.id not in reached and any(_main_engine(data, r) for r in p.revisions)]
    ub_not_modelled = [c for c in NOT_MODELLED if "undefined" in load_claims()[c].text.lower()
                       or c.endswith("-UB")]
    summary = (f"Of the {len(modelled)} outcomes the documentation calls undefined or leaves to a caller's "
               f"obligation that the model formalises, {len([p for p in modelled if p.id in reached])} are reached "
               f"by a sequence of public calls (kernel importer API, the dma-buf fd's mmap and DMA_BUF_IOCTL_SYNC)"
               + (f"; not reached in this run: {_names(missed)}" if missed else "")
               + ". Each is a caller obligation the core does not enforce, not an exporter defect. Not modelled, so "
               "not claimed reached: " + (", ".join(f"[[claim:{c}]]" for c in ub_not_modelled) or "none")
               + " (see [[sec:finding-f3|F3]]).")
    return Finding("F2", "Undefined behaviour and broken caller obligations are reachable through the public API",
                   tuple(sorted({c for p in modelled for c in p.claims})),
                   summary, tuple(ev), cls="caller",
                   reason="the documentation leaves these outcomes to the caller (importer or userspace); the core "
                          "checks none of them, so reaching them is the caller's doing",
                   severity="low",
                   action="none for exporters; keep the caller's obligations in the text where callers read them "
                          "(the importer API kerneldoc and the uapi SYNC documentation)")


def _actors(trace: Trace | None) -> str:
    if trace is None:
        return "?"
    seen: list[str] = []
    for st in trace.steps:
        a = ACTIONS[st.action].actor
        if a not in seen:
            seen.append(a)
    return ", ".join(seen)


def _drift(data: ReviewData) -> Finding:
    ev: list[Evidence] = []
    eng = _main_engine(data, "v4.11")
    refused = data.not_exportable("v4.11")
    if eng is not None or refused:
        # the policies the v4.11 dma_buf_export() refuses are not run there: their refused export,
        # the step P-EXPORT-OPS-DRIFT reads, is taken here on the model, one step
        shown = "; ".join(f"`{n.exporter}`: {data.refused_export(n.exporter)}" for n in refused)
        ev.append(Evidence(
            "[[claim:MMAP-OPTIONAL-DRIFT]]: `@mmap` says \"This callback is optional.\", but the v4.11 "
            "`dma_buf_export()` refuses an exporter without it (corpus §3.5: `WARN_ON(... || "
            "!exp_info->ops->kmap_atomic || !exp_info->ops->kmap || !exp_info->ops->mmap)` returns "
            "`ERR_PTR(-EINVAL)`), and the `@kmap`/`@kmap_atomic` members are required too. `P-EXPORT-OPS-DRIFT` is "
            "the refused export itself. "
            + (f"Of the policies reviewed, the v4.11 `dma_buf_export()` refuses {_names([n.exporter for n in refused])}, "
               f"so they are not exportable at v4.11 and are checked at "
               f"{', '.join(r for r in data.config.revisions if any(r in n.exportable_at for n in refused)) or 'no revision'} only: {shown}. "
               if refused else "No policy reviewed lacks one of them. ")
            + "Resolved in v4.19 ('Make mmap callback actually optional'); at v5.12 the property does not apply."))
    internal = [f for f in data.arith if f.claim == "MMAP-INTERNAL-OVERFLOW"]
    if internal:
        rows: list[tuple[str, ...]] = [("question (64-bit, as the C code computes)", "answer", "witness")]
        for f in internal:
            rows.append((f.question, f"**{f.answer}**: {f.summary}",
                         ", ".join(f"{k}={v}" for k, v in f.witness.items()) or "-"))
        ev.append(Evidence(
            "[[claim:MMAP-INTERNAL-OVERFLOW]]: the kernel-internal `dma_buf_mmap()` (corpus §3.9) restores "
            "`vm_file` when the exporter's mmap fails but leaves `vm_pgoff` changed: the vma is left with the old "
            "file and the dma-buf's offset. Bit-precise answers (Z3 bit-vectors, `properties/engines/arith.py`):",
            (), tuple(rows)))
    else:
        ev.append(Evidence(
            "[[claim:MMAP-INTERNAL-OVERFLOW]] (a code-reading finding: the bit-precise engine did not run): "
            "`dma_buf_mmap()` (corpus §3.9) sets `vma->vm_pgoff = pgoff` before calling the exporter, and on "
            "failure restores only `vma->vm_file = oldfile`: `vm_pgoff` stays changed."))
    ev.append(Evidence(
        "At v5.12 (from v5.11, `vma_set_file()`, corpus §6.1 and §6.5) `dma_buf_mmap()` restores neither field on "
        "failure, so `vm_file` and `vm_pgoff` again agree (the caller's error path drops the file)."))
    ev.append(Evidence("[[claim:KCPU-RANGE-UB]]: " + NOT_MODELLED["KCPU-RANGE-UB"]))
    ev.append(Evidence(
        "Also noted in the corpus, outside the two modelled revisions: the `@pin` kerneldoc says it is called "
        "\"from dma_buf_attach()\" for non-dynamic importers while the current code pins in "
        "`dma_buf_map_attachment()` (corpus §6.3); `vmapping_counter` and \"DOC: cpu access\" still say "
        "\"Protected by @lock\" / \"the &dma_buf.lock mutex\" after that lock was removed in v6.2 (§6.3, §6.4)."))
    return Finding("F3", "The documentation drifts from the code",
                   ("MMAP-OPTIONAL-DRIFT", "MMAP-INTERNAL-OVERFLOW", "KCPU-RANGE-UB"),
                   "Three sentences of the v4.11 documentation do not describe the v4.11 code: `@mmap` is "
                   "documented optional but required at export; `dma_buf_mmap()` documents bounds checking and a "
                   "restore on failure but leaves `vm_pgoff` changed; and kmap calls \"outside of the range "
                   "specified in begin_cpu_access\" refer to arguments removed in v4.6.", tuple(ev),
                   cls="documentation",
                   reason="each sentence contradicts the code of the same revision or refers to interfaces that "
                          "no longer exist",
                   severity="medium",
                   action="reword the three sentences: @mmap required at export (until v4.19), dma_buf_mmap() "
                          "leaves vm_pgoff changed on an exporter failure, and drop the range sentence")


def _real_drivers(data: ReviewData) -> Finding:
    """Real-driver policies breaking rules they could keep (exporter defects); their other
    violations are listed with the class that applies (``properties/attribution.py``)."""
    detail: list[tuple[str, Evidence]] = []
    counted: list[str] = []
    broken: set[str] = set()
    for p in data.config.exporters:
        if exporter_kind(p.name) != "real":
            continue
        parts = []
        refs = []
        for rev in REVISIONS:
            if not p.exportable_at(rev):
                parts.append(f"{rev}: not exportable ({export_refusal(p, rev)}), so not checked at {rev}")
                continue
            if rev not in p.revisions:
                continue
            eng = _main_engine(data, rev)
            if eng is None:
                continue
            own, other = [], []
            for prop in PROPERTIES:
                if prop.kind not in ("always", "step"):
                    continue
                v = data.verdict(rev, eng, p.name, prop.id)
                if v is None or v.verdict != "violated":
                    continue
                ref = TraceRef(rev, eng, p.name, prop.id)
                refs.append(ref)
                cls, why = classify(prop.id, p)
                shown = counts_against(prop.id)
                text = (f"{_tref(ref, prop.id)} ({', '.join(f'[[claim:{c}]]' for c in shown) or 'no claim'}; "
                        f"{trace_note(v)})")
                if cls == "exporter":
                    own.append(text)
                    broken.update(shown)
                else:
                    other.append(f"{text}: {CLASSES[cls]}, not the driver's: {why}")
            if own and p.name not in counted:
                counted.append(p.name)
            parts.append(f"{rev}: " + ("; ".join(own) if own else "no rule it could keep is broken")
                         + ("; also reached, " + "; ".join(other) if other else ""))
        detail.append((p.name, Evidence(f"`{p.name}`: {p.description}. Source: {p.why}. " + " | ".join(parts) + ".",
                                        tuple(refs))))
    summary = ("Each policy below follows the driver's code quoted in the corpus (§7); the rules it breaks and "
               "could keep are listed per revision, each with its shortest trace (its length, and which stage of "
               "the engine found it); a violation whose cause is the core's ordering or a permissive sentence is "
               "listed with its class, not counted against the driver. Policies breaking a rule they could keep: "
               + _names(counted) + "."
               + (" Where none is broken, that holds within what the verdicts cover: the tiny scope "
                  "exhaustively, the review's scope to the bounded depth and by sampling (see "
                  "[[sec:runs|Runs and their evidence]])." if "portfolio" in data.engines_run() else ""))
    return Finding("F4", "Exporter policies modelled on real drivers break documented obligations",
                   tuple(sorted(broken)), summary, (),
                   cls="exporter",
                   reason="each violation counted here is of a rule the driver's own callbacks could keep "
                          "(properties/attribution.py decides, per property)",
                   severity="medium",
                   action="fix the drivers named (per exporter below); no change to the text",
                   detail=tuple(detail))


def _core_ordering(data: ReviewData) -> Finding | None:
    """Violations the attribution rules put on the core (``P-BEGIN-ERRORS``: the hook runs before
    the interruptible fence wait), per policy whose own code is not the cause."""
    rows: list[tuple[str, ...]] = [("exporter", "revision", "property", "trace")]
    refs: list[TraceRef] = []
    reasons: dict[str, str] = {}
    for rev in REVISIONS:
        eng = _main_engine(data, rev)
        if eng is None:
            continue
        for pol in data.exporters(rev):
            if exporter_kind(pol.name) == "broken" and pol.name.startswith("mutant-"):
                continue   # an injected core bug: the checker's self-test, not the kernel's defect
            for prop in PROPERTIES:
                v = data.verdict(rev, eng, pol.name, prop.id)
                if v is None or v.verdict != "violated" or prop.kind not in ("always", "step"):
                    continue
                cls, why = classify(prop.id, pol)
                if cls != "core":
                    continue
                ref = TraceRef(rev, eng, pol.name, prop.id)
                refs.append(ref)
                reasons[prop.id] = why
                rows.append((f"`{pol.name}`", rev, f"`{prop.id}`", _tref(ref, trace_note(v))))
    if not refs:
        return None
    ev = [Evidence(f"`{pid}`: {why}.") for pid, why in list(reasons.items())[1:]]
    ev.append(Evidence("Policies that reach it (each trace ends with the failed begin and the pin still held):",
                       tuple(refs), tuple(rows)))
    ev.append(_restart_evidence())
    be = load_claims()["BEGIN-ERRORS"]
    return Finding("F6", "The core's ordering in dma_buf_begin_cpu_access() leaves the exporter's pin behind "
                         "when the fence wait is interrupted",
                   ("BEGIN-ERRORS", "BEGIN-FENCE-WAIT"),
                   "dma_buf_begin_cpu_access() (corpus §3.7) calls `ops->begin_cpu_access` and then "
                   "`__dma_buf_begin_cpu_access()`, whose `reservation_object_wait_timeout_rcu(resv, write, true, "
                   "MAX_SCHEDULE_TIMEOUT)` can return -ERESTARTSYS; the core then returns the error without calling "
                   "`ops->end_cpu_access`. An exporter that pins in its hook ("
                   + _names(sorted({r.exporter for r in refs})) + " here) is left pinned by a failed call, and the "
                   "restart pins again. The verdict rests on the project's reading of [[claim:BEGIN-ERRORS]], not "
                   f"on the kernel's words. The kernel says {be.kernel} (`@begin_cpu_access`, Returns): a caller is "
                   "told to restart an interrupted call, and nothing about what a failed call may leave behind. "
                   f"Reading (the project's words): {be.reading} What the core's ordering does to a caller "
                   "that restarts as told is in the trace below, and does not depend on the reading.",
                   tuple(ev), cls="core",
                   reason=next(iter(reasons.values())), severity="high",
                   action="in the core: wait for the fences before calling the exporter's hook, or call "
                          "end_cpu_access when the wait fails; until then, document that a hook must not acquire "
                          "what it cannot drop when the core's wait fails")


RESTART_LITMUS = Path(__file__).resolve().parents[2] / "litmus" / "begin-restart-pins-again.litmus.toml"


@lru_cache(maxsize=2)      # the same file gives the same run: one model compilation per process
def restart_trace(path: Path = RESTART_LITMUS) -> tuple[Any, str]:
    """F6's restart, run on the model: the litmus file whose begin_cpu_access is interrupted in the
    fence wait (-ERESTARTSYS), restarted as the kernel tells the caller, and succeeds; then one
    end_cpu_access. Returns (the outcome, the trace as text). Raises ``ValueError`` when the run
    does not show it: the file not as expected, or the pins after the restarted begin are not two
    with one bracket open, or not one after its end."""
    out = run_litmus(path)
    if not out.ok:
        raise ValueError(f"{path.name}: " + "; ".join(out.differences))
    tr = out.trace
    names = tr.fields
    pins, kopen = names.index("pins[0]"), names.index("kopen[0]")
    steps = tr.steps
    failed = next(i for i, st in enumerate(steps) if st.action == "dma_buf_begin_cpu_access"
                  and st.ret == -ERRNO["ERESTARTSYS"])
    again = next(i for i, st in enumerate(steps) if i > failed and st.action == "dma_buf_begin_cpu_access"
                 and st.ret == 0)
    end = next(i for i, st in enumerate(steps) if i > again and st.action == "dma_buf_end_cpu_access")
    got = (steps[failed].state[pins], steps[again].state[pins], bool(steps[again].state[kopen]),
           steps[end].state[pins])
    if got != (1, 2, True, 1):
        raise ValueError(f"{path.name}: pins after the failed begin, after the restart (bracket open), after "
                         f"end: {got}, expected (1, 2, True, 1)")
    return out, render(out.model, tr, display_fires(out.fired_init, out.fired)[1])


def _restart_evidence() -> Evidence:
    try:
        out, text = restart_trace()
    except (ValueError, StopIteration, OSError) as e:
        return Evidence(f"The restart that pins again was not shown: {e}.")
    t = out.test
    return Evidence(
        f"The restart, as the kernel tells the caller (`{t.policy.name}` at {t.revision}, scope `{t.scope.name}`; "
        f"`{RESTART_LITMUS.relative_to(RESTART_LITMUS.parents[1]).as_posix()}`, which `dmabuf-check litmus` runs): "
        "a device's write is pending, begin_cpu_access pins and its fence wait is interrupted (-ERESTARTSYS, the "
        "pin stays); the fence signals and the caller restarts begin, which succeeds and pins again: **2 pins for "
        "one bracket**. end_cpu_access drops one; one pin stays for good, and each interrupted attempt adds one.",
        code=text)


def _size_floor(data: ReviewData) -> Finding | None:
    """The bit-precise mmap size check: ``size >> PAGE_SHIFT`` floors (``prove --only arith``)."""
    floor = [f for f in data.arith if f.claim == "MMAP-SIZE-CHECK" and f.id.startswith("floor-")]
    if not floor:
        return None
    rows: list[tuple[str, ...]] = [("question (64-bit, as the C code computes)", "answer", "witness")]
    for f in floor:
        rows.append((f.question, f"**{f.answer}**: {f.summary}",
                     ", ".join(f"{k}={v}" for k, v in f.witness.items()) or "-"))
    ev = [Evidence("Bit-precise answers (Z3 bit-vectors, `properties/engines/arith.py`; "
                   "`dmabuf-check prove --only arith`) on the check of corpus §3.2, `if (vma->vm_pgoff + "
                   "vma_pages(vma) > dmabuf->size >> PAGE_SHIFT) return -EINVAL;`:", (), tuple(rows))]
    return Finding("F7", "The mmap size check floors: the partial last page of a buffer whose size is not "
                         "page-aligned can never be mapped",
                   ("MMAP-SIZE-CHECK", "LIFE-SIZE"),
                   "`dmabuf->size >> PAGE_SHIFT` rounds down, so for a size that is not a multiple of PAGE_SIZE "
                   "every accepted mapping ends before the last, partial page: its bytes are unreachable through "
                   "mmap, and mapping the whole buffer is refused with -EINVAL. The documentation of @mmap and "
                   "of the size says nothing of it (the model's pages are whole, so only the bit-precise engine "
                   "sees it).", tuple(ev), cls="documentation",
                   reason="the text does not say that the size must be page-aligned for the whole buffer to be "
                          "mappable; the code's check silently makes it so",
                   severity="low",
                   action="document in @mmap (or at dma_buf_export()) that mmap covers whole pages only: a size "
                          "that is not page-aligned leaves its last partial page unmappable")


def _who(st: ClaimStatus) -> str:
    """``omapdrm`` and 3 other policies"""
    real, others = st.real(), st.others()
    parts = [", ".join(f"`{x}`" for x in real)] if real else []
    if others:
        parts.append(f"{len(others)} deliberately broken or other {'policy' if len(others) == 1 else 'policies'}")
    return " and ".join(parts) or "none"


def _resolved(data: ReviewData) -> Finding:
    claims = load_claims()
    deleted, gone, fixed, open_real, open_other, still_ub, new, code, by_core = [], [], [], [], [], [], [], [], []
    refs: list[TraceRef] = []
    for cid in claims:
        old, cur = claim_status(data, cid, "v4.11"), claim_status(data, cid, "v5.12")
        link = f"[[claim:{cid}]]"
        if cid.startswith("M-"):
            if cur.state == "violated":
                new.append(f"{link} (broken by {_who(cur)})")
                refs += [r for r in cur.refs if exporter_kind(r.exporter) == "real"]
            continue
        if CHANGES.get(cid, "").startswith("resolved") and old.state in ("violated", "reached"):
            code.append(f"{link} ({CHANGES[cid]})")
        elif cur.state == "absent" and old.state == "violated":
            deleted.append(f"{link} (broken at v4.11 by {_who(old)})")
        elif cur.state == "absent" and old.state == "reached":
            gone.append(link)
        elif old.state in ("violated", "reached") and cur.state == "holds":
            fixed.append(f"{link} (v4.11: {_who(old)})")
        elif cur.state == "violated":
            core = [r for r in cur.refs if exporter_kind(r.exporter) == "real"
                    and classify(r.property, data.policy(r.exporter))[0] == "core"]
            if core and len(core) == len(cur.real()):
                by_core.append(f"{link} (reached by {_names([r.exporter for r in core])}: a core defect, "
                               f"[[sec:finding-f6|F6]])")
            elif cur.real():
                open_real.append(f"{link} ({_who(cur)})")
                refs += [r for r in cur.refs if exporter_kind(r.exporter) == "real"]
            else:
                open_other.append(link)
        elif cur.state == "reached":
            still_ub.append(link)
    ev = [Evidence("Resolved by deleting the sentence (the obligation no longer exists): " + ("; ".join(deleted) or "none") + "."),
          Evidence("Undefined behaviour or caller obligations gone with their interface: " + (", ".join(gone) or "none") + "."),
          Evidence("Resolved by a change of the code, the sentence staying: " + ("; ".join(code) or "none") + "."),
          Evidence("No longer violated although the sentence stays: " + ("; ".join(fixed) or "none") + "."),
          Evidence("Left open, still broken at v5.12 by real-driver policies: " + ("; ".join(open_real) or "none") + "."),
          Evidence("Left open by the core's own ordering (no exporter that acquires in its hook can keep it): "
                   + ("; ".join(by_core) or "none") + "."),
          Evidence("Still broken at v5.12 only by the deliberately broken policies and core mutants that exist to "
                   "break them (the checker can still see the violation): " + (", ".join(open_other) or "none") + "."),
          Evidence("Still undefined and reachable through the API at v5.12: " + (", ".join(still_ub) or "none") + "."),
          Evidence("New v5.12 rules, and who breaks them: " + ("; ".join(new) or "none") + ".", tuple(refs))]
    return Finding("F5", "What the later revision (v5.12) resolved, and what it left open",
                   tuple(c for c in claims if c.startswith("M-")),
                   "Deleting kmap (v5.6) and the FIXME (v5.12) removes the contradiction rather than settling it; "
                   "the pinning question moves to `dma_buf_pin`, where userspace may not pin, and an exporter that "
                   "still pins in begin now breaks the new rules. The revision comparison section has every claim "
                   "side by side.", tuple(ev), cls="documentation",
                   reason="the later text deletes the contradictory sentences instead of deciding between them; "
                          "the rule that replaces them (dma_buf_pin) is new, and drivers written to the old FIXME "
                          "still pin in begin",
                   severity="medium",
                   action="say in the text which side of the FIXME held, and that pinning moved to dma_buf_pin, "
                          "so that drivers written against the old FIXME stop pinning in begin")
