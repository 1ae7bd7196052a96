"""Shards (properties.runs.shards) and the runner (properties.runs.runner): the plan, a merge that
ignores the order in which shards finish, and a campaign report that does not depend on the number
of workers."""
import random

from model.catalog import CATALOG
from model.scope import SCOPES
from properties.runs.campaign import run_campaign
from properties.engines.interface import EngineResult
from properties.runs.runner import TaskResult
from properties.runs.shards import merge, plan, slot_seed
from properties.trace import Trace, TraceStep
from properties.verdict import Verdict

TIMING = ("seconds",)


def untimed(report: dict) -> dict:
    """A report without its wall-clock fields (the only ones allowed to differ)."""
    report = dict(report)
    report.pop("seconds")
    report["results"] = [dict(r, evidence={k: v for k, v in r["evidence"].items() if k not in TIMING})
                         for r in report["results"]]
    return report


def test_plan_is_slot_by_slot_and_only_slot_0_replays():
    exporters = [CATALOG["omapdrm"], CATALOG["coherent"]]
    shards = list(plan(exporters, seed=7, examples=10, steps=5, scope=SCOPES["tiny"], slots=2, grouping="kind"))
    assert [s.index for s in shards] == list(range(8))
    assert [(s.slot, s.exporter.name, s.group) for s in shards[:4]] == [
        (0, "omapdrm", "invariants"), (0, "omapdrm", "targets"),
        (0, "coherent", "invariants"), (0, "coherent", "targets")]
    assert all(s.engine.seed == 7 and s.engine.reuse for s in shards[:4])
    assert all(s.slot == 1 and s.engine.seed == slot_seed(7, 1) != 7 and not s.engine.reuse for s in shards[4:])
    assert slot_seed(7, 1) == slot_seed(7, 1) != slot_seed(7, 2) != slot_seed(8, 2)
    inv = {p for s in shards[:1] for p in s.props}
    tgt = {p for s in shards[1:2] for p in s.props}
    assert inv and tgt and not inv & tgt
    # a plan without end, for a time budget
    endless = plan(exporters, seed=7, examples=10, steps=5, scope=SCOPES["tiny"], slots=None)
    assert [next(endless).slot for _ in range(5)] == [0, 0, 1, 1, 2]


def _trace(n: int) -> Trace:
    return Trace((), tuple(TraceStep("dma_buf_export", (("buf", 0),), i, 0, 0, ()) for i in range(n)))


def _v(prop: str, verdict: str, trace_len: int | None, examples: int, kind: str = "always") -> Verdict:
    return Verdict(prop, ("C",), "exporter", kind, "omapdrm", "hypothesis", verdict, None,
                   {"examples": examples, "rounds": 1, "steps": examples, "states": examples, "seconds": 0.1},
                   _trace(trace_len) if trace_len is not None else None)


def ShardResult(index, lane, verdicts, examples, seconds):
    return TaskResult(index, lane, 0, EngineResult("hypothesis", lane[0], "tiny", "v4.11", list(verdicts), seconds,
                                                   {"examples": examples}))


def test_merge_is_by_plan_order_not_completion_order():
    results = [
        ShardResult(0, ("omapdrm", "all"), (_v("P-A", "holds", None, 10), _v("W-X", "unknown", None, 10, "witness")), 10, 1.0),
        ShardResult(1, ("omapdrm", "all"), (_v("P-A", "violated", 5, 20), _v("W-X", "holds", 3, 20, "witness")), 20, 1.0),
        ShardResult(2, ("omapdrm", "all"), (_v("P-A", "violated", 3, 30), _v("W-X", "holds", 2, 30, "witness")), 30, 1.0),
        ShardResult(3, ("omapdrm", "all"), (_v("P-A", "violated", 3, 40), _v("W-X", "holds", 4, 40, "witness")), 40, 1.0),
    ]
    expected = merge([CATALOG["omapdrm"]], results)
    for seed in range(5):
        shuffled = results[:]
        random.Random(seed).shuffle(shuffled)
        assert merge([CATALOG["omapdrm"]], shuffled) == expected
    a = next(v for v in expected if v.property == "P-A")
    # violated beats holds; the shortest trace; on a tie (shards 2 and 3) the earlier shard's
    assert a.verdict == "violated" and len(a.trace) == 3 and a.evidence["examples"] == 100
    assert a.evidence["shards"] == 4 and a.evidence["states"] == 40
    assert a.trace is results[2].verdicts[0].trace
    w = next(v for v in expected if v.property == "W-X")
    assert w.verdict == "holds" and len(w.trace) == 2
    # a property judged by one shard keeps that shard's verdict unchanged
    assert merge([CATALOG["omapdrm"]], results[:1])[0] is results[0].verdicts[0]


EXPORTERS = [CATALOG["broken-end-keeps-pin"], CATALOG["coherent"]]
KW = dict(examples=12, seed=3, steps=10)


def test_report_does_not_depend_on_the_number_of_workers():
    # two shards per exporter (invariants, targets), so the merge has work to do
    one = run_campaign(EXPORTERS, SCOPES["tiny"], jobs=1, grouping="kind", **KW)
    two = run_campaign(EXPORTERS, SCOPES["tiny"], jobs=2, grouping="kind", **KW)
    assert untimed(one.to_json()) == untimed(two.to_json())
    assert one.budget == {"examples": 12, "steps": 10, "property_groups": "kind"} and not one.interrupted
    assert any(v.verdict == "violated" for v in one.verdicts if v.exporter == "broken-end-keeps-pin")
    assert {v.kind for v in one.verdicts} == {"always", "step", "witness", "undefined"}


def test_one_slot_is_one_run_per_exporter():
    """Sharded on two workers, the report is the one the plain one-process campaign gives."""
    two = run_campaign(EXPORTERS, SCOPES["tiny"], jobs=2, **KW)
    plain = run_campaign(EXPORTERS, SCOPES["tiny"], jobs=1, **KW)
    assert untimed(plain.to_json()) == untimed(two.to_json())
