"""The Z3 engine: bounded model checking with traces that replay, induction proofs of the core's
invariants, three-valued verdicts, SMT-LIB output, the command line, and agreement with the
Hypothesis engine on the tiny scope."""
import json
import os

import pytest
import z3

from model.catalog import CATALOG
from model.machine import Model
from model.terms import not_
from properties.index import PROPERTIES, get_property
from properties.cli import main
from properties.engines import z3_engine as ze
from properties.engines.hypothesis_engine import run_hypothesis
from properties.monitor import Monitor
from properties.property import Property
from properties.trace import replay

CORE_ALWAYS = [p.id for p in PROPERTIES if p.party == "core" and p.kind == "always" and "v4.11" in p.revisions]


def test_bmc_finds_the_user_pin_with_a_trace_that_replays():
    model = Model(CATALOG["omapdrm"], "tiny")
    p = get_property("P-NO-USER-PIN")
    r = ze.bmc(model, [p], depth=5)["P-NO-USER-PIN"]
    assert r.status == "reached" and r.depth == 3
    assert [c[0] for c in r.trace.calls()] == ["dma_buf_export", "dma_buf_fd", "ioctl_sync"]
    again = replay(model, r.trace.calls())
    assert again.states() == r.trace.states()
    assert Monitor(model, [p]).fires(again, p.id)


def test_bounded_check_of_a_kept_property_gives_its_depth():
    model = Model(CATALOG["reference"], "tiny")
    r = ze.bmc(model, [get_property("P-NO-USER-PIN")], depth=4)["P-NO-USER-PIN"]
    assert r.status == "unreached" and r.depth == 4 and r.trace is None


@pytest.mark.parametrize("policy", ["reference", "omapdrm", "i915"])
def test_core_invariants_are_proved_by_induction(policy):
    model = Model(CATALOG[policy], "tiny")
    vs = {v.property: v for v in ze.run_z3(model, [get_property(p) for p in CORE_ALWAYS], depth=2)}
    for pid in CORE_ALWAYS:
        assert vs[pid].verdict == "proved", (pid, vs[pid].evidence)
        assert vs[pid].evidence["method"].startswith("1-induction")


def test_a_mutant_core_is_refuted_not_proved():
    model = Model(CATALOG["mutant-vmap-no-refcount"], "tiny")
    v = {v.property: v for v in ze.run_z3(model, [get_property("P-VMAP-REFCOUNT")], depth=4)}["P-VMAP-REFCOUNT"]
    assert v.verdict == "violated" and v.trace is not None
    assert Monitor(model, [get_property("P-VMAP-REFCOUNT")]).fires(v.trace, "P-VMAP-REFCOUNT")


def test_houdini_drops_what_is_not_inductive_and_says_why():
    model = Model(CATALOG["reference"], "small")
    inv, why = ze.houdini(model, [get_property("P-MIGRATE-MAPPED")])
    assert inv == [] and "one-step induction fails" in why["P-MIGRATE-MAPPED"]
    inv, why = ze.houdini(model, [get_property(p) for p in ("P-MIGRATE-MAPPED", "I-ATT-MAPPED-LIVE",
                                                              "I-UNEXPORTED-UNUSED")])
    assert {p.id for p in inv} == {"P-MIGRATE-MAPPED", "I-ATT-MAPPED-LIVE", "I-UNEXPORTED-UNUSED"}


def test_every_scope_keeps_its_bounds():
    for scope in ("tiny", "small"):
        model = Model(CATALOG["omapdrm"], scope)
        assert ze.Encoding(model.schema, model.terms, fixed=model.knob_env).bounded()


def test_a_solver_that_gives_up_makes_unknown_never_holds(monkeypatch):
    class GivesUp(z3.Solver):
        def check(self, *a):
            return z3.unknown

        def reason_unknown(self):
            return "timeout"

    monkeypatch.setattr(ze.Encoding, "solver", lambda self, timeout=None: GivesUp())
    model = Model(CATALOG["reference"], "tiny")
    props = [get_property(p) for p in ("P-RELEASE-ONCE", "P-SYNC-FLAGS", "P-KMAP-AFTER-END", "W-DMA-BUF-EXPORT")]
    vs = ze.run_z3(model, props, depth=3)
    assert [v.verdict for v in vs] == ["unknown"] * len(props)


def test_a_trace_that_does_not_replay_is_an_engine_error():
    omap, ref = Model(CATALOG["omapdrm"], "tiny"), Model(CATALOG["reference"], "tiny")
    enc = ze.Encoding(omap.schema, omap.terms, fixed=omap.knob_env)
    s = enc.solver()
    s.add(*enc.init(), *enc.trans(0), *enc.trans(1), *enc.trans(2), enc.target(get_property("P-NO-USER-PIN"), 3))
    assert s.check() == z3.sat
    ze._check_trace(omap, enc, s.model(), 3)          # replays on its own model
    with pytest.raises(ze.EngineError):
        ze._check_trace(ref, enc, s.model(), 3)       # not on another policy's


def test_smt2_queries_are_valid_smtlib(tmp_path):
    model = Model(CATALOG["omapdrm"], "tiny")
    files = {}
    ze.bmc(model, [get_property("P-NO-USER-PIN")], depth=3, smt2=lambda n, t: files.setdefault(n, t))
    assert len(files) == 4
    results = []
    for text in files.values():
        s = z3.Solver()
        s.add(z3.parse_smt2_string(text))
        results.append(s.check())
    assert results == [z3.unsat, z3.unsat, z3.unsat, z3.sat]


def test_cli_prove_writes_report_and_smt2(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["prove", "--scope", "tiny", "--depth", "3", "--exporter", "reference", "--only", "bmc",
               "--json", str(out), "--smt2", str(tmp_path / "q")])
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["engine"] == "z3" and data["command"] == "prove"
    verdicts = {r["property"]: r["verdict"] for r in data["results"]}
    assert all(verdicts[p] == "proved" for p in CORE_ALWAYS)
    assert {e["property"] for e in data["universal"] if e["proved"]} >= set(CORE_ALWAYS)
    assert list((tmp_path / "q").glob("*.smt2"))
    assert "P-RELEASE-ONCE" in text and rc in (0, 1)


@pytest.mark.parametrize("argv, needle", [
    (["prove", "--depth", "-1"], "--depth"),
    (["prove", "--timeout", "0"], "--timeout"),
    (["prove", "--only", "synthesis", "--pair", "NO-SUCH-CLAIM", "FIXME-NO-USER-PIN"], "NO-SUCH-CLAIM"),
    (["prove", "--exporter", "nonesuch"], "nonesuch"),
])
def test_cli_prove_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_campaign_with_the_z3_engine(tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = main(["campaign", "--engine", "z3", "--depth", "4", "--scope", "tiny", "--exporter", "omapdrm",
               "--jobs", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["engine"] == "z3"
    v = {r["property"]: r for r in data["results"]}
    assert v["P-NO-USER-PIN"]["verdict"] == "violated" and v["P-NO-USER-PIN"]["trace"]
    assert v["P-RELEASE-ONCE"]["verdict"] == "proved"
    assert "engine z3, depth 4" in capsys.readouterr().out
    assert rc in (0, 1)


# --- agreement with the Hypothesis engine on the tiny scope --------------------------------------

DEPTH = 5          # Z3's bound; Hypothesis's first run explores as many rule steps per example


def _as_invariant(p):
    """A target (undefined behaviour) as an invariant, so that Hypothesis stops at the first
    example that reaches it."""
    return Property(p.id, p.claims, p.party, "always", p.doc, lambda v, f=p.predicate: not_(f(v)),
                    on=p.on, action=p.action, needs=p.needs, revisions=p.revisions)


def _hypothesis_finds(model, p, examples=3000):
    target = p if p.target_is_bad else _as_invariant(p)
    vs = run_hypothesis(model, [target], examples=examples, seed=2, steps=DEPTH + 3, max_rounds=1)
    return vs[0].verdict == "violated"


# In the default suite: one policy of each kind (real drivers, a coherent exporter, the
# reference and a broken policy per family of rule); the whole catalog with DMABUF_SLOW_TESTS=1
# (about 12 s a policy: all of them took a third of the suite's ten minutes).
AGREE_DEFAULT = ("reference", "i915", "omapdrm", "coherent", "broken-end-no-flush", "broken-evict-pinned",
                 "broken-kmap-unpinned", "broken-pin-leak-on-interrupt", "mutant-sync-stateful")


@pytest.mark.parametrize("policy", [
    p if p in AGREE_DEFAULT else pytest.param(p, marks=pytest.mark.skipif(
        not os.environ.get("DMABUF_SLOW_TESTS"), reason="the rest of the catalog; set DMABUF_SLOW_TESTS=1"))
    for p in CATALOG])
def test_z3_and_hypothesis_agree_on_tiny(policy):
    """Violated versus not violated, for every property: what Z3 finds within DEPTH steps,
    Hypothesis finds too (if its first, broad run misses it, a run aimed at that property alone
    with a larger budget must find it); what Hypothesis finds, Z3 finds within the length of
    Hypothesis's trace and never claims to have proved. Every trace replays on the model."""
    model = Model(CATALOG[policy], "tiny")
    mon = Monitor(model, PROPERTIES)
    zv = {v.property: v for v in ze.run_z3(model, PROPERTIES, depth=DEPTH)}
    hv = {v.property: v for v in run_hypothesis(model, PROPERTIES, examples=150, seed=1, steps=DEPTH,
                                                max_rounds=1)}
    assert zv.keys() == hv.keys()
    for pid, z in zv.items():
        h = hv[pid]
        if z.kind == "witness":
            continue
        for v in (z, h):
            if v.trace is not None:
                assert replay(model, v.trace.calls()).states() == v.trace.states()
                assert mon.fires(v.trace, pid), (v.engine, pid)
        if z.verdict == "violated" and h.verdict != "violated":
            assert _hypothesis_finds(model, get_property(pid)), \
                f"{policy}: Z3 reaches {pid} in {len(z.trace)} steps, Hypothesis does not"
        if h.verdict == "violated" and z.verdict != "violated":
            assert z.verdict != "proved", f"{policy}: Z3 proved {pid}, Hypothesis violates it"
            r = ze.bmc(model, [get_property(pid)], depth=len(h.trace))[pid]
            assert r.status == "reached" and r.depth <= len(h.trace), f"{policy}: {pid}"
