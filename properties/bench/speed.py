"""Benchmark of the Hypothesis engine (``make bench``): not a test, figures to record.

Prints, measured in the same process (these machines are shared and noisy, so ratios matter,
not absolute times):
- rule steps per second of the dma-buf state machine on the ``default`` scope with every
  invariant checked, next to a trivial two-rule state machine, and their ratio;
- the time to the first counterexample for each broken policy and mutant.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from model import CATALOG, Model
from model.catalog import BROKEN, MUTANTS
from properties.index import PROPERTIES, by_claim

from ..engines.hypothesis_engine import _Run, make_machine, run_hypothesis
from ..monitor import Monitor

__all__ = ["main"]


def _cfg(examples: int, steps: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate], derandomize=True)


def trivial_steps_per_second(examples: int, steps: int) -> float:
    count = [0]

    class Trivial(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.x = 0

        @rule(n=st.integers(0, 3))
        def add(self, n: int) -> None:
            self.x += n
            count[0] += 1

        @rule()
        def reset(self) -> None:
            self.x = 0
            count[0] += 1

    t = time.perf_counter()
    run_state_machine_as_test(Trivial, settings=_cfg(examples, steps))
    return count[0] / (time.perf_counter() - t)


def model_steps_per_second(scope: str, examples: int, steps: int) -> tuple[float, int]:
    model = Model(CATALOG["reference"], scope)
    mon = Monitor(model, PROPERTIES)
    run = _Run()
    active = {c.prop.id for c in mon.inv_state + mon.inv_step}
    machine = make_machine(model, mon, run, active)
    t = time.perf_counter()
    run_state_machine_as_test(machine, settings=_cfg(examples, steps))
    return run.steps / (time.perf_counter() - t), len(mon.inv_state) + len(mon.inv_step)


def time_to_first_counterexample(name: str, scope: str) -> tuple[float, int | None]:
    p = CATALOG[name]
    props = [q for c in p.breaks for q in by_claim(c)]
    if any(dict(q.needs).get("buffers", 1) > 1 for q in props):
        scope = "default"
    t = time.perf_counter()
    vs = run_hypothesis(Model(p, scope), props, examples=300, seed=1, steps=30)
    lengths = [len(v.trace) for v in vs if v.verdict == "violated" and v.trace is not None
               and v.kind in ("always", "step")]
    return time.perf_counter() - t, (min(lengths) if lengths else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m properties.bench.speed")
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--scope", default="default")
    a = ap.parse_args(argv)
    print(f"dmabuf-check Hypothesis benchmark, {time.strftime('%Y-%m-%d')}, python {platform.python_version()}, "
          f"{platform.machine()}, scope {a.scope}, {a.examples} examples x {a.steps} steps")
    triv = trivial_steps_per_second(a.examples, a.steps)
    ours, n_inv = model_steps_per_second(a.scope, a.examples, a.steps)
    triv2 = trivial_steps_per_second(a.examples, a.steps)  # measured on both sides of ours
    base = (triv + triv2) / 2
    print(f"trivial two-rule machine: {base:,.0f} steps/s")
    print(f"dma-buf machine ({n_inv} invariants checked each step): {ours:,.0f} steps/s")
    print(f"ratio: {ours / base:.2f} (target >= 0.5)")
    print("\ntime to the first counterexample (Hypothesis engine, seed 1, 300 examples x 30 steps, "
          "only the properties citing the declared claims):")
    for p in (*BROKEN, *MUTANTS):
        secs, length = time_to_first_counterexample(p.name, "tiny")
        print(f"  {p.name:32s} {secs:6.1f} s  shortest trace {length}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
