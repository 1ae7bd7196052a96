"""Checker power (properties.bench.power): the default campaign's engine finds every ground-truth
violation of a sample of buggy policies that no engine was tuned on."""
import dataclasses
import functools
import json
from pathlib import Path

from model.catalog import CATALOG
from model.scope import get_scope
from properties.bench.power import FOUND_KINDS, REVISION, SAMPLE_MAX_STATES, SCOPE, digests, variant
from properties.index import PROPERTIES
from properties.engines.portfolio import DEFAULT_BUDGET, PortfolioEngine
from properties.runs.runner import plan_per_exporter, run
from properties.runs.workers import LocalWorkers

SAMPLE = Path(__file__).parent / "data" / "power_sample.json"
REWRITE = "python -m properties.bench.power --write-sample tests/data/power_sample.json"

# The default campaign's exhaustive stage as it is; Z3 and Hypothesis cut down to seconds.
REDUCED = dataclasses.replace(DEFAULT_BUDGET, depth=2, examples=10, steps=10, rounds=1)
ENGINE = PortfolioEngine(seed=1, z3_seconds=10, induction=False)


@functools.lru_cache(maxsize=1)
def _sample():
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    entries = data["policies"]
    policies = [variant(CATALOG[e["base"]], [tuple(c) for c in e["changes"]]) for e in entries]
    for e, p in zip(entries, policies):
        assert p.name == e["name"], (p.name, e["name"])
    return entries, policies


@functools.lru_cache(maxsize=1)
def _stale() -> tuple[str, ...]:
    """The sample's policies whose model or properties digest is no longer the recorded one."""
    entries, policies = _sample()
    return tuple(e["name"] for e, p in zip(entries, policies)
                 if digests(p) != (e["model_digest"], e["properties_digest"]))


def test_the_sample_is_the_current_model_s():
    """The committed ground truth was computed for the model and properties as they are now."""
    entries, policies = _sample()
    assert 15 <= len(entries) <= 25
    stale = _stale()
    assert not stale, (f"the model or the properties changed since {SAMPLE.name} was written "
                       f"({len(stale)} of its policies differ, e.g. {stale[0]}): rerun `{REWRITE}`")
    assert all(e["states"] <= SAMPLE_MAX_STATES for e in entries)
    fired = [f for e in entries for f in e["fired"].values()]
    assert any(f["kind"] in ("always", "step") for f in fired) and any(f["kind"] == "undefined" for f in fired)


def test_the_default_campaign_finds_every_ground_truth_violation_of_the_sample():
    """A fixed sample of about 20 policies of the bench-power population (drawn, seeded, among
    those whose whole tiny graph has at most 1.5 million states, so that the test stays fast),
    whose ground truth (the explicit engine's exhaustive search of tiny) is committed as data:
    the default campaign's engine reports every ground-truth always/step violation and every
    undefined finding ``violated`` on the campaign's scope.

    The portfolio runs with the default campaign's exhaustive budget but with small Z3 and
    Hypothesis budgets (depth 2, 10 examples, no induction). The portfolio's merge only ever adds
    findings (a property is violated if any stage showed it; nothing a later stage does takes a
    finding back), and the exhaustive stage is the default run's, so if this reduced run finds
    everything, the default run does too."""
    entries, policies = _sample()
    stale = _stale()
    assert not stale, f"{SAMPLE.name} is stale for {stale[0]} (and {len(stale) - 1} more): rerun `{REWRITE}`"
    tasks = plan_per_exporter(policies, get_scope(SCOPE), REVISION, ENGINE, [p.id for p in PROPERTIES], REDUCED)
    out = run(tasks, LocalWorkers(2))
    assert out.stopped is None and len(out.results) == len(policies)
    misses = []
    for e, r in zip(entries, out.results):
        got = {v.property: v for v in r.verdicts}
        for pid, f in e["fired"].items():
            if f["kind"] in FOUND_KINDS and (pid not in got or got[pid].verdict != "violated"):
                misses.append(f"{e['name']}: {pid} ({f['kind']}, shortest {f['length']} on tiny) is "
                              f"{got[pid].verdict if pid in got else 'not reported'}")
    assert not misses, "the portfolio missed ground-truth violations:\n" + "\n".join(misses)
