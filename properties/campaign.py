"""Property campaigns: properties against exporter policies with an engine; the table, the
traces, the report, and whether every outcome was the expected one.

A campaign passes when every judged verdict is as expected and every claim a policy declares
broken has at least one violated property citing it. Each exporter is run in its own worker
process (``jobs``); its result depends only on the seed and the budget, so the report does not
depend on the number of workers.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from model.machine import Model
from model.policy import ExporterPolicy
from model.scope import Scope

from .catalog import PROPERTIES, by_claim
from .claims import load_claims
from .engines.hypothesis_engine import run_hypothesis
from .trace import render
from .verdict import Verdict

__all__ = ["CampaignResult", "ClaimCheck", "run_campaign", "format_table", "write_report", "SCHEMA"]

SCHEMA = "dmabuf-check.report/1"


@dataclass(frozen=True)
class ClaimCheck:
    exporter: str
    claim: str
    found: bool
    by: tuple[str, ...]


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

    @property
    def mismatches(self) -> list[str]:
        out = [f"{v.exporter}: {v.property} is {v.verdict}, expected {v.expected}"
               for v in self.verdicts if not v.as_expected]
        out += [f"{c.exporter}: declares {c.claim} broken, but no property citing it was violated"
                for c in self.claim_checks if not c.found]
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
            "results": [v.to_json() for v in self.verdicts],
            "claims_expected_broken": [
                {"exporter": c.exporter, "claim": c.claim, "found": c.found, "by": list(c.by)}
                for c in self.claim_checks],
            "mismatches": self.mismatches, "interrupted": self.interrupted,
            "seconds": round(self.seconds, 2),
        }


def _run_one(policy: ExporterPolicy, scope: Scope, revision: str, examples: int, seed: int,
             steps: int, engine: str = "hypothesis", depth: int = 8, coverage: bool = False) -> list[Verdict]:
    model = Model(policy, scope, revision)
    if engine == "z3":
        from .engines.z3_engine import run_z3
        return run_z3(model, PROPERTIES, depth=depth)
    if coverage:  # also the fraction of the reachable state graph the campaign visited
        from .coverage import campaign_coverage
        return campaign_coverage(model, PROPERTIES, examples, seed, steps)[0]
    return run_hypothesis(model, PROPERTIES, examples=examples, seed=seed, steps=steps)


def _claim_checks(policy: ExporterPolicy, verdicts: Sequence[Verdict], scope: Scope,
                  revision: str = "v4.11") -> list[ClaimCheck]:
    mine = [v for v in verdicts if v.exporter == policy.name and v.verdict == "violated"]
    out = []
    for claim in policy.breaks:
        if claim.startswith("P-"):
            continue  # a property ID: judged on its own verdict
        if not any(p.fits(scope) and p.kind in ("always", "step") and revision in p.revisions
                   for p in by_claim(claim)):
            continue  # no property citing it can be violated in a scope this small (or at this revision)
        by = tuple(v.property for v in mine if claim in v.claims and v.kind in ("always", "step"))
        out.append(ClaimCheck(policy.name, claim, bool(by), by))
    return out


def run_campaign(exporters: Sequence[ExporterPolicy], scope: Scope, revision: str = "v4.11",
                 examples: int = 150, seed: int = 1, steps: int = 30, jobs: int = 1,
                 progress: Callable[[str], None] | None = None, engine: str = "hypothesis",
                 depth: int = 8, coverage: bool = False) -> CampaignResult:
    """``engine="z3"``: bounded checks to ``depth`` and induction instead of Hypothesis.
    ``coverage``: measure each Hypothesis run against the explicit engine's reachable graph
    (properties.coverage; the verdicts' evidence and the table carry the figures)."""
    result = CampaignResult("campaign", revision, scope, seed, engine, {"examples": examples, "steps": steps}
                            if engine == "hypothesis" else {"depth": depth}, list(exporters))
    started = time.monotonic()
    say = progress or (lambda msg: None)
    done: dict[str, list[Verdict]] = {}
    try:
        if jobs <= 1:
            for i, p in enumerate(exporters, 1):
                say(f"[{i}/{len(exporters)}] {p.name} ...")
                done[p.name] = _run_one(p, scope, revision, examples, seed, steps, engine, depth, coverage)
                say(f"[{i}/{len(exporters)}] {p.name}: {_summary(done[p.name])}")
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = {p.name: pool.submit(_run_one, p, scope, revision, examples, seed, steps, engine, depth, coverage)
                           for p in exporters}
                for i, p in enumerate(exporters, 1):
                    done[p.name] = futures[p.name].result()
                    say(f"[{i}/{len(exporters)}] {p.name}: {_summary(done[p.name])}")
    except KeyboardInterrupt:
        result.interrupted = True
        say("interrupted: writing what was found")
    for p in exporters:
        if p.name in done:
            result.verdicts += done[p.name]
            result.claim_checks += _claim_checks(p, done[p.name], scope, revision)
    result.seconds = time.monotonic() - started
    return result


def _summary(vs: Sequence[Verdict]) -> str:
    bad = sum(1 for v in vs if v.verdict == "violated" and v.kind in ("always", "step"))
    ev = vs[0].evidence if vs else {}
    if "examples" not in ev:  # the z3 engine
        return (f"depth {ev.get('depth', 0)}, {sum(v.verdict == 'proved' for v in vs)} proved, "
                f"{bad} violated")
    return (f"{ev.get('examples', 0)} examples, {ev.get('states', 0)} states, {bad} violated, "
            f"{ev.get('seconds', 0):.1f} s")


_CELL = {"holds": ".", "proved": "P", "violated": "V", "unknown": "?"}


def format_table(result: CampaignResult, models: dict[str, Model] | None = None) -> str:
    """Property by exporter, then the shortest trace of each violation, then what differed."""
    names = [p.name for p in result.exporters]
    by = {(v.property, v.exporter): v for v in result.verdicts}
    pids = [p.id for p in PROPERTIES if any((p.id, n) in by for n in names)]
    width = max(len(p) for p in pids) if pids else 10
    out = [f"dmabuf-check campaign: revision {result.revision}, scope {result.scope.name}, seed "
           f"{result.seed}, engine {result.engine}, " + (
               f"{result.budget['examples']} examples x {result.budget['steps']} steps per exporter"
               if "examples" in result.budget else f"depth {result.budget.get('depth')}"), ""]
    out.append("exporters: " + "  ".join(f"{i}={n}" for i, n in enumerate(names, 1)))
    out.append("cells: " + ("P proved  . holds up to the depth" if result.engine == "z3" else ". holds")
               + "  V violated (reached, for undefined/witness)  ? unknown  "
               "! not as expected  (blank: does not apply)")
    out.append("")
    out.append(" " * width + " " + "".join(f"{i:>3}" for i in range(1, len(names) + 1)))
    for pid in pids:
        row = []
        for n in names:
            v = by.get((pid, n))
            if v is None:
                row.append("   ")
            else:
                row.append(f" {_CELL[v.verdict]}{'!' if not v.as_expected else ' '}")
        out.append(pid.ljust(width) + " " + "".join(row))
    out.append("")
    claims = load_claims()
    viol = [v for v in result.verdicts if v.verdict == "violated" and v.kind in ("always", "step")]
    if viol:
        out.append("Violations (shortest trace found):")
        for v in viol:
            tag = "expected" if v.expected == "violated" or any(c in _breaks(result, v.exporter) for c in v.claims) \
                else "NOT EXPECTED"
            out.append(f"- {v.exporter}: {v.property} [{', '.join(v.claims)}] ({tag})")
            out.append(f"  {_claim_text(claims, v.claims[0])}")
            if v.trace is not None and models is not None and v.exporter in models:
                out.append(_indent(render(models[v.exporter], v.trace), "  "))
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
                       f"shortest ({best.exporter}):")
            if best.trace is not None and models is not None and best.exporter in models:
                out.append(_indent(render(models[best.exporter], best.trace), "  "))
        out.append("")
    from .coverage import format_coverage
    out += format_coverage(result.verdicts)
    mism = result.mismatches
    judged = sum(1 for v in result.verdicts if v.expected is not None) + len(result.claim_checks)
    if mism:
        out.append("Not as expected:")
        out += ["- " + m for m in mism]
        out.append("")
    out.append(f"{len(result.verdicts)} verdicts, {judged} judged, {len(mism)} not as expected "
               f"({result.seconds:.1f} s)")
    return "\n".join(out)


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


def write_report(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write JSON atomically: a temporary file in the same folder, then rename."""
    from .atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def shorten_verdicts(verdicts: Sequence[Verdict], models: dict[str, Any], states: int | None,
                     progress: Callable[[str], None] | None = None) -> list[Verdict]:
    """``campaign --shortest``: every trace of a violation or a reached target replaced by a
    shortest one, found by the explicit engine's breadth-first search to one step less than the
    trace (``properties.engines.explicit.shorten``; at most ``states`` states per trace). The
    evidence records the length before (``shrunk_length``) and ``shortest``: true (the trace is a
    shortest) or false (the search was cut by its budget: the trace is kept, unconfirmed)."""
    import dataclasses

    from .catalog import get_property
    from .engines.explicit import Budget, shorten

    out = []
    for v in verdicts:
        if v.trace is None:
            out.append(v)
            continue
        tr, status = shorten(models[v.exporter], get_property(v.property), v.trace, Budget(states=states))
        ev = {**v.evidence, "shrunk_length": len(v.trace), "shortest": status != "unconfirmed"}
        if "trace_length" in ev:
            ev["trace_length"] = len(tr)
        if progress and status == "shortened":
            progress(f"{v.exporter}: {v.property}: {len(v.trace)} -> {len(tr)} steps (shortest)")
        out.append(dataclasses.replace(v, trace=tr, evidence=ev))
    return out
