"""The Hypothesis engine: random exploration with shrinking (docs/design.md, point 10).

A ``RuleBasedStateMachine`` is derived from the model's action list: one rule per action, whose
argument is drawn from that action's instances enabled in the current state. After every step the
monitor checks every compiled property. A violated ``always``/``step`` property raises an exception
of a class of its own, so that Hypothesis reports each property's failure separately and shrinks
each to a minimal trace; ``witness`` and ``undefined`` targets are collected without stopping the
run (the shortest trace that reached each is kept and then delta-debugged). Every trace found is
replayed through the monitor to catch properties that fire on the same step as another.
"""
from __future__ import annotations

import time
import unittest
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Sequence

from hypothesis import HealthCheck, Phase, Verbosity, seed as hyp_seed, settings, strategies as st, target
from hypothesis.control import current_build_context
from hypothesis.database import ExampleDatabase, choices_to_bytes
from hypothesis.errors import InvalidArgument, Unsatisfiable
from hypothesis.stateful import (RuleBasedStateMachine, get_state_machine_test, initialize, precondition,
                                 rule, run_state_machine_as_test)

from model.events import EVENT_BIT
from model.machine import Model

from .. import interrupt
from ..hazard import hazard_function
from ..monitor import Monitor
from ..property import Property
from ..runs.database import database_key as key_of, database_key, open_database
from ..trace import Trace, TraceStep, shrink
from ..verdict import Verdict, make_verdict
from .interface import Budget, EngineResult

__all__ = ["run_hypothesis", "PropertyViolation", "make_machine", "HypothesisEngine"]


class PropertyViolation(AssertionError):
    """Raised by the state machine when a property is violated; carries the trace."""

    pid = ""

    def __init__(self, trace: Trace) -> None:
        super().__init__(f"{self.pid} violated after {len(trace)} steps")
        self.trace = trace
        try:  # the choices Hypothesis drew for this example so far: replaying them fails again
            self.choices = current_build_context().data.choices
        except InvalidArgument:  # raised outside a Hypothesis run
            self.choices = None


_EXC: dict[str, type] = {}


def _exception_for(pid: str) -> type:
    if pid not in _EXC:
        _EXC[pid] = type("Violation_" + pid.replace("-", "_"), (PropertyViolation,), {"pid": pid})
    return _EXC[pid]


class _Run:
    """What one Hypothesis run collects across its examples."""

    def __init__(self) -> None:
        self.examples = 0
        self.steps = 0
        self.states: set[tuple] = set()
        self.transitions: set[tuple] = set()
        self.targets: dict[str, Trace] = {}
        self.successors = None
        self.calls = 0          # examples begun in the current Hypothesis run
        self.cap: int | None = None   # at most this many per run (None: no limit)
        self.raised: dict[str, PropertyViolation] = {}   # shortest violation per property, this run


class _BudgetSpent(Exception):
    """Raised by the state machine once a Hypothesis run has begun its share of examples.

    Hypothesis counts only valid examples toward ``max_examples`` and allows up to ten times as
    many calls; its targeted phase (``Phase.target``) used them up with our score, which changes
    as the run goes (a 3,000-example run aimed at one property of broken-zap-anon-file called
    the test 30,000 times in 780 s without finding the two-step trace that generation finds in
    about 700 examples). That phase is not used; this cap keeps any run within twice its
    examples whatever Hypothesis does."""


# Events that mark a call as a mere error (a fault on no mapping, bad flags, ...), not progress.
_NOISE = sum(EVENT_BIT[e] for e in ("sigsegv", "from_user", "sync_bad_flags", "kunmap_unmapped",
                                    "vunmap_bug", "kernel_access_unmapped"))


# Calls the setup phase of an example draws from, and how many at most.
_SETUP = ("dma_buf_export", "dma_buf_fd", "dma_buf_get", "dma_buf_attach", "dma_buf_map_attachment",
          "mmap", "dup", "reservation_object_add_excl_fence", "reservation_object_add_shared_fence",
          "dma_buf_begin_cpu_access", "ioctl_sync", "dma_buf_vmap", "dma_buf_kmap", "cpu_write",
          "kernel_write", "dma_buf_pin")   # dma_buf_pin exists at v5.12 only
_SETUP_MAX = 14


class _Successors:
    """Per state, the enabled instances split into productive ones (they change the state or set
    an event), by action, and error-only ones; memoised, since runs revisit states a lot."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.memo: dict[tuple, tuple[dict[str, list[int]], list[int], dict[int, tuple]]] = {}

    def __call__(self, state: tuple):
        r = self.memo.get(state)
        if r is None:
            productive: dict[str, list[int]] = {}
            errors: list[int] = []
            results: dict[int, tuple] = {}
            outcomes: set[tuple] = set()
            for i, nxt, ret, ev, buf in self.model.successors(state):
                results[i] = (nxt, ret, ev, buf)
                # instances with the same outcome (two fds of one buffer, an interrupt with
                # nothing to interrupt) are drawn as one, so that no outcome is over-weighted
                key = (self.model.instances[i].name, nxt, ret, ev)
                if key in outcomes:
                    continue
                outcomes.add(key)
                if nxt != state or ev & ~_NOISE:
                    productive.setdefault(self.model.instances[i].name, []).append(i)
                else:
                    errors.append(i)
            r = (productive, errors, results)
            if len(self.memo) < 200_000:
                self.memo[state] = r
        return r


def make_machine(model: Model, mon: Monitor, run: _Run, active: set[str],
                 on_example: Callable[[], None] | None = None):
    """A RuleBasedStateMachine class for one model; ``active`` names the properties to raise on.

    One rule per action draws among that action's enabled instances that do something (change the
    state or set an event); one more rule, ``error_call``, draws among the calls that only return
    an error. Without that split most random steps would be calls on fds that do not exist.
    """
    instances = model.instances
    hazard = hazard_function(model)   # properties/hazard.py: near a coherence failure
    succ = run.successors if run.successors is not None else _Successors(model)
    run.successors = succ
    fast = mon.fast
    active_mask = mon.mask(active)
    names = [i.name for i in instances]
    fields = tuple(model.schema.names)   # every trace carries them (its JSON gives what each step changed)

    class DmaBufMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.state = model.init
            self.succ = succ(self.state)   # the current state's successors (every rule reads them)
            self.trace_steps: list[TraceStep] = []
            self.seen_events = 0
            self.best_hazard = 0
            self.novel = 0
            interrupt.check()   # a signal stops the run between two examples
            run.examples += 1
            run.calls += 1
            if run.cap is not None and run.calls > run.cap:
                raise _BudgetSpent()
            run.states.add(self.state)
            if on_example:
                on_example()
            for pid in mon.hit_state(self.state):
                run.targets.setdefault(pid, Trace(model.init, (), fields))
            bad = mon.bad_state(self.state, active)
            if bad:
                _raise(run, _exception_for(bad[0])(Trace(model.init, (), fields)))

        def _apply(self, i: int) -> None:
            pre = self.state
            post, ret, ev, buf = self.succ[2][i]
            inst = instances[i]
            self.trace_steps.append(TraceStep(inst.name, inst.args, ret, ev, buf, post))
            self.state = post
            self.succ = succ(post)
            self.seen_events |= ev
            h = hazard(post)
            if h > self.best_hazard:
                self.best_hazard = h
            run.steps += 1
            if post not in run.states:
                self.novel += 1
                run.states.add(post)
            run.transitions.add((pre, i))
            bad, hit = fast[names[i]](pre, post, ret, ev, buf)
            if hit:
                n = len(self.trace_steps)
                for pid in mon.ids(hit):
                    old = run.targets.get(pid)
                    if old is None or len(old) > n:
                        run.targets[pid] = Trace(model.init, tuple(self.trace_steps), fields)
            bad &= active_mask
            if bad:
                _raise(run, _exception_for(mon.ids(bad)[0])(Trace(model.init, tuple(self.trace_steps), fields)))

        def teardown(self) -> None:
            # Hypothesis's generation keeps a mutation of an example (a repeated run of its
            # choices) only when it scores at least as well: reward new states most, then event
            # variety and coherence hazards. (Its separate targeted phase is not used: see
            # _BudgetSpent.)
            target(float(4 * self.novel + bin(self.seen_events & ~_NOISE).count("1") + 2 * self.best_hazard),
                   label="interest")

        @initialize(data=st.data())
        def setup(self, data) -> None:
            """A short setup phase of productive setup calls (swarm-style bias toward the states
            where CPU access happens); shrinking can remove it step by step."""
            n = data.draw(st.integers(0, _SETUP_MAX), label="setup steps")
            for _ in range(n):
                prod = self.succ[0]
                kinds = [a for a in _SETUP if a in prod]
                if not kinds:
                    break
                name = data.draw(st.sampled_from(kinds), label="setup action")
                self._apply(data.draw(st.sampled_from(prod[name]), label="setup"))

        @precondition(lambda self: bool(self.succ[1]))
        @rule(data=st.data())
        def error_call(self, data) -> None:
            self._apply(data.draw(st.sampled_from(self.succ[1]), label="error_call"))

    for name in model.by_name:
        def make(name: str):
            def enabled(self) -> bool:
                return name in self.succ[0]

            def run_rule(self, data) -> None:
                self._apply(data.draw(st.sampled_from(self.succ[0][name]), label=name))

            run_rule.__name__ = name
            return precondition(enabled)(rule(data=st.data())(run_rule))

        setattr(DmaBufMachine, name, make(name))
    DmaBufMachine.__name__ = "DmaBufMachine_" + model.policy.name.replace("-", "_")
    return DmaBufMachine


def _no_local_constants() -> None:
    """Hypothesis mixes integer literals from the source of every local module in ``sys.modules``
    into about 5% of its draws, so what a seed generates would depend on which modules the
    process happened to import (the CLI, a worker process, a Dask worker and a notebook differ;
    seen here as different campaign reports for the same seed). Our draws are rule and instance
    indices, for which literals in our source mean nothing: turn that off, once per process."""
    try:
        from hypothesis.internal.conjecture import providers  # optional: Hypothesis internals, not in every version
        from hypothesis.internal.constants_ast import Constants  # optional: as above (ImportError below)
    except ImportError:  # pragma: no cover - a Hypothesis without the feature
        return
    if getattr(providers, "_dmabuf_check_pinned", False) or not hasattr(providers, "_get_local_constants"):
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    providers._dmabuf_check_pinned = True


def _raise(run: _Run, v: PropertyViolation):
    """Keep the shortest violation of each property as it is raised: what a run found does not
    depend on Hypothesis replaying its failing examples at the end (the replay of an example begun
    after the cap raises ``_BudgetSpent`` instead)."""
    old = run.raised.get(v.pid)
    if old is None or len(v.trace) < len(old.trace):
        run.raised[v.pid] = v
    raise v


def _violations(exc: BaseException) -> list[PropertyViolation]:
    if isinstance(exc, PropertyViolation):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        out = []
        for e in exc.exceptions:
            out += _violations(e)
        return out
    return []


def run_hypothesis(model: Model, props: Iterable[Property], examples: int = 200, seed: int = 1,
                   steps: int = 40, progress: Callable[[str], None] | None = None,
                   hypothesis_shrink: bool = False, max_rounds: int = 6,
                   database: ExampleDatabase | None = None, database_key: bytes | None = None,
                   reuse: bool = True, on_run: Callable[[_Run], None] | None = None,
                   found_elsewhere: Iterable[Property] = ()) -> list[Verdict]:
    """Run one Hypothesis campaign on one model; one verdict per relevant property.

    A round is ``examples`` examples of up to ``steps`` steps. While a witness is unreached, or a
    claim the policy declares broken has no violated property yet, further rounds run with seeds
    derived from ``seed`` (at most ``max_rounds`` in all); what is still missing then is reported
    ``unknown`` (witnesses) or as a claim not found (campaign). Every trace found is shrunk by
    delta debugging on the compiled model (fast, and the same for every engine);
    ``hypothesis_shrink=True`` lets Hypothesis's own shrinker run first (it also simplifies
    arguments, at many times the cost).

    With a ``database`` (properties.runs.database), every failing example found is saved in it under
    ``database_key`` (default: one key per policy, scope and revision) and, with ``reuse``, the
    examples stored there are replayed first, by Hypothesis's ``Phase.reuse``, before any new one is
    generated. Generation itself runs without the database, so that what it finds is the same
    with or without one (a database also turns on Hypothesis's Pareto-front optimisation, which
    changes the random stream and the cost); what a replay finds counts toward the claims
    still missing, so a run whose stored examples show every declared break needs no extra
    rounds to look for them.

    ``found_elsewhere``: properties another engine already showed firing on this policy (the
    portfolio's earlier stages); a declared break they show is not looked for again in further
    rounds."""
    _no_local_constants()
    props = list(props)
    mon = Monitor(model, props)
    run = _Run()
    invariants = {c.prop.id for c in mon.inv_state + mon.inv_step}
    broken = set(model.policy.breaks)
    started = time.monotonic()

    def tick() -> None:
        if progress and run.examples % 100 == 0:
            progress(f"{model.policy.name}: {run.examples} examples, {len(run.states)} states")

    cfg = settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                   report_multiple_bugs=True,
                   phases=[Phase.generate] + ([Phase.shrink] if hypothesis_shrink else []))
    violated: dict[str, Trace] = {}      # found by generation
    replayed: dict[str, Trace] = {}      # found by replaying the database's stored examples
    found_after: dict[str, int] = {}     # property -> examples run when first found violated
    rounds = 0
    if database is not None and database_key is None:
        database_key = key_of(model.policy, model.scope, model.revision)

    def record(found: list[PropertyViolation], into: dict[str, Trace]) -> None:
        for v in found:
            old = into.get(v.pid)
            if old is None or len(v.trace) < len(old):
                into[v.pid] = v.trace
            found_after.setdefault(v.pid, run.examples)
            if database is not None and v.choices is not None:
                database.save(database_key, choices_to_bytes(v.choices))

    elsewhere = list(found_elsewhere)
    shown = {c for p in elsewhere for c in p.claims}
    claim_props = {c: [p.id for p in mon.props if p.target_is_bad and c in p.claims]
                   for c in broken if not c.startswith("P-") and c not in shown}
    elsewhere_ids = {p.id for p in elsewhere}

    def missing() -> bool:
        """Is a witness unreached, or a declared-broken claim (or property) not yet violated?"""
        found = violated.keys() | replayed.keys() | elsewhere_ids
        return (any(p.kind == "witness" and p.id not in run.targets for p in mon.props)
                or any(pid in invariants and pid not in found for pid in broken)
                or any(pids and not any(pid in found for pid in pids) for pids in claim_props.values()))

    if database is not None and reuse:
        # Replay what earlier runs stored, until a replay finds nothing more: each pass switches
        # off the properties found so far, so that an example stored for a property that another
        # one masks in a full pass is still replayed (properties.runs.database keeps it stored).
        replay_cfg = settings(cfg, max_examples=10_000, database=database, phases=[Phase.reuse])
        active = set(invariants) if any(True for _ in database.fetch(database_key)) else set()
        while active:
            test = get_state_machine_test(make_machine(model, mon, run, active, on_example=tick),
                                          settings=replay_cfg)
            # the machine class is made per model, so Hypothesis's own key (a digest of its
            # source) would not tell policies apart: set it, as hypothesis.find() does
            test._hypothesis_internal_database_key = database_key
            try:
                test()
                break
            except unittest.SkipTest:  # Hypothesis's word for "no stored example to run"
                break
            except Unsatisfiable:  # the stored examples no longer make a valid run (the model or
                break              # the properties changed since they were saved): nothing to replay
            except BaseException as exc:  # noqa: BLE001 - Hypothesis raises groups of our violations
                found = _violations(exc)
                if not found:
                    raise
                record(found, replayed)
                active -= {v.pid for v in found}
    # Per Hypothesis run, at most twice the examples asked for (see _BudgetSpent); generation
    # stays well within it (a run's invalid examples are few).
    cap = 2 * examples + 50
    while rounds < max_rounds:
        round_seed = seed if rounds == 0 else seed * 1_000_003 + rounds
        rounds += 1
        active = invariants - set(violated)
        # Hypothesis stops at the first failure: run again, with the properties already found
        # violated switched off, until a run finds nothing (same seed, so deterministic).
        while True:
            machine = hyp_seed(round_seed)(make_machine(model, mon, run, active, on_example=tick))
            run.calls, run.cap, run.raised = 0, cap, {}
            try:
                run_state_machine_as_test(machine, settings=cfg)
                break
            except BaseException:  # noqa: BLE001 - Hypothesis raises groups of our violations
                found = [v for pid, v in sorted(run.raised.items()) if pid in active]
                spent = run.calls > cap
                if not found and not spent:
                    raise
                record(found, violated)
                active -= set(violated)
                if spent or not active:
                    break
            finally:
                run.cap = None
        if not missing():
            break
    seconds = time.monotonic() - started

    # Properties that fire on the same step as another one are masked by the first raise: replay
    # every trace found through the whole monitor, then keep the shortest trace per property.
    candidates = list(violated.values()) + list(replayed.values()) + list(run.targets.values())
    for trace in candidates:
        for fired in mon.replayed(trace).fired:
            for pid in fired:
                if pid in active and pid not in violated:
                    violated[pid] = trace
    for pid, trace in list(violated.items()):
        violated[pid] = shrink(model, trace, lambda t, pid=pid: mon.fires(t, pid))
    for pid, trace in list(run.targets.items()):
        run.targets[pid] = shrink(model, trace, lambda t, pid=pid: mon.fires(t, pid))
    for pid, trace in replayed.items():  # a replayed trace only where it is shorter once shrunk
        trace = shrink(model, trace, lambda t, pid=pid: mon.fires(t, pid))
        if pid not in violated or len(trace) < len(violated[pid]):
            violated[pid] = trace

    evidence = {"guarantee": "sampled", "scope": model.scope.name, "examples": run.examples, "rounds": rounds,
                "depth": steps, "states": len(run.states), "steps": run.steps, "seconds": round(seconds, 3)}
    out = []
    for p in mon.props:
        expected = None      # engines report; properties.judge judges
        if p.kind in ("always", "step"):
            tr = violated.get(p.id)
            verdict = "violated" if tr is not None else "holds"
        elif p.kind == "witness":
            tr = run.targets.get(p.id)
            verdict = "holds" if tr is not None else "unknown"
        else:
            tr = run.targets.get(p.id)
            verdict = "violated" if tr is not None else "holds"
        ev = dict(evidence)
        if tr is not None:
            ev["trace_length"] = len(tr)
        if p.id in found_after:
            ev["found_after"] = found_after[p.id]   # examples run when it was first found
            if p.id in replayed:
                ev["replayed"] = True               # a stored example showed it
        out.append(make_verdict(p, model.policy.name, "hypothesis", verdict, expected, ev, tr))
    if on_run is not None:  # e.g. properties.runs.coverage: the states and transitions the run visited
        on_run(run)
    return out


@dataclass(frozen=True)
class HypothesisEngine:
    """The Hypothesis engine behind the engine interface (``properties.engines.interface``).

    ``database`` is a ``properties.runs.database`` spec (``None``: no database); ``group`` names the
    property group, which with the policy, scope and revision keys the stored examples; ``reuse``
    replays them first. The budget's ``examples``, ``steps`` and ``rounds`` are one round's
    examples, the steps per example and the rounds at most."""

    seed: int = 1
    database: str | None = None
    group: str = "all"
    reuse: bool = True
    name: ClassVar[str] = "hypothesis"

    def check(self, model: Model, props: Sequence[Property], budget: Budget,
              progress: Callable[[str], None] | None = None) -> EngineResult:
        started = time.monotonic()
        db = open_database(self.database) if self.database is not None else None
        key = database_key(model.policy, model.scope, model.revision, self.group) if db is not None else None
        verdicts = run_hypothesis(model, props, examples=budget.examples or 300, seed=self.seed,
                                  steps=budget.steps or 30, max_rounds=budget.rounds or 6, progress=progress,
                                  database=db, database_key=key, reuse=self.reuse)
        ev = verdicts[0].evidence if verdicts else {}
        return EngineResult(self.name, model.policy.name, model.scope.name, model.revision, verdicts,
                            time.monotonic() - started,
                            {k: ev.get(k, 0) for k in ("examples", "rounds", "states", "steps")})
