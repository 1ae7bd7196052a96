"""ITF traces: value encoding, the round trip (write, read, same trace), stable bytes, and the
metadata a trace needs to replay on its own."""
from __future__ import annotations

import json

import pytest

from model.catalog import CATALOG
from model.machine import Model
from model.policy import load_policy_file
from properties.scenarios.itf import (ACTION_TAKEN, NONDET_PICKS, ItfError, Variant, decode, dumps, encode, loads,
                            read_itf, to_itf, trace_filename, write_itf, write_verdict_traces)
from properties.scenarios.litmus import LIBRARY, LitmusRunner, load_litmus
from properties.scenarios.replay import replay_itf
from properties.trace import replay
from properties.verdict import make_verdict
from properties.index import get_property


def _run(name: str):
    out = LitmusRunner().run(load_litmus(LIBRARY / f"{name}.litmus.toml"))
    return out.model, out.trace


@pytest.mark.parametrize("value", [
    0, -22, (1 << 64) - 1, True, False, "x", [1, [2, 3]], (1, "a", True), frozenset({3, 1, 2}),
    {"a": 1, "b": [True]}, {1: "one", 2: "two"}, Variant("Some", 5), Variant("None", ()),
])
def test_value_round_trip(value):
    assert decode(json.loads(json.dumps(encode(value))), "v") == value


def test_integers_are_bigints_and_sets_are_canonical():
    assert encode(7) == {"#bigint": "7"}
    assert encode((1 << 64) - 1) == {"#bigint": "18446744073709551615"}
    assert encode(True) is True
    assert encode(frozenset({"b", "a"})) == encode(frozenset({"a", "b"})) == {"#set": ["a", "b"]}
    assert encode((1, 2)) == {"#tup": [{"#bigint": "1"}, {"#bigint": "2"}]}
    assert encode({3: 4}) == {"#map": [[{"#bigint": "3"}, {"#bigint": "4"}]]}
    assert decode(12, "v") == 12            # plain JSON numbers are ITF integers too


@pytest.mark.parametrize("raw, msg", [
    ({"#bigint": "12x"}, "#bigint must be a string of decimal digits"),
    ({"#bigint": 12}, "#bigint must be a string"),
    ({"#weird": 1}, "unknown ITF value tag '#weird'"),
    ({"#unserializable": "Int"}, "cannot be replayed"),
    ({"#map": [[1]]}, "a map entry must be a [key, value] pair"),
    (1.5, "float is not an ITF value"),
])
def test_decode_rejects_non_itf_values(raw, msg):
    with pytest.raises(ItfError, match="where") as e:
        decode(raw, "where")
    assert msg in str(e.value)


def test_document_layout_and_meta():
    model, trace = _run("fixme-user-end-drops-kernel-pin")
    doc = to_itf(model, trace, prop="P-KMAP-PINNED", verdict="violated", engine="litmus", seed=3,
                 claims=("FIXME-KMAP-PINNED",))
    meta = doc["#meta"]
    assert meta["format"] == "ITF" and meta["dmabuf-check-format"] == "dmabuf-check.itf/1"
    assert (meta["exporter"], meta["revision"], meta["property"], meta["engine"], meta["seed"]) == \
        ("omapdrm", "v4.11", "P-KMAP-PINNED", "litmus", 3)
    assert meta["scope"]["name"] == "small" and meta["scope"]["pages"] == 2
    assert meta["knobs"]["begin_pins"] is True
    assert doc["vars"][:2] == [ACTION_TAKEN, NONDET_PICKS]
    states = doc["states"]
    assert len(states) == len(trace) + 1
    assert [s["#meta"]["index"] for s in states] == list(range(len(states)))
    assert states[0][ACTION_TAKEN] == "init"
    s6 = states[6]                                              # ioctl_sync(fd=0, flags=END|READ)
    assert s6[ACTION_TAKEN] == "ioctl_sync"
    assert s6[NONDET_PICKS]["flags"] == {"tag": "Some", "value": {"#bigint": "5"}}
    assert s6[NONDET_PICKS]["buf"] == {"tag": "None", "value": {"#tup": []}}
    assert s6["pins"] == [{"#bigint": "0"}] and states[5]["pins"] == [{"#bigint": "1"}]
    assert s6["cache"] == [[{"#bigint": "0"}, {"#bigint": "0"}]]   # a sequence per buffer, per page
    assert s6["kopen"] == [True]
    assert set(doc["vars"]) == set(states[3]) - {"#meta"}


def test_round_trip_same_trace_and_same_bytes(tmp_path):
    model, trace = _run("direction-user-read-in-write-bracket")
    p = write_itf(tmp_path / "t.itf.json", model, trace, prop="P-DIRECTION-UB", verdict="violated",
                  engine="litmus", seed=1)
    text = p.read_text()
    assert dumps(to_itf(model, trace, prop="P-DIRECTION-UB", verdict="violated", engine="litmus", seed=1)) == text
    assert write_itf(tmp_path / "u.itf.json", model, trace, prop="P-DIRECTION-UB", verdict="violated",
                     engine="litmus", seed=1).read_text() == text
    json.loads(text)                                          # valid JSON
    itf = read_itf(p)
    assert itf.calls() == trace.calls()
    assert [s.ret for s in itf.steps] == [s.ret for s in trace.steps]
    again = replay(model, itf.calls())
    assert again == trace                                      # same steps, returns, events, states
    out = replay_itf(itf)
    assert out.ok and out.trace == trace and out.checked_states == len(trace) + 1
    assert out.prop_fires_at == 12


def test_user_policy_replays_without_its_file(tmp_path):
    pol = load_policy_file(LIBRARY / "policies" / "fake-coherency-own-file.toml", CATALOG)
    model = Model(pol, "default")
    trace = LitmusRunner().run(load_litmus(LIBRARY / "zap-through-own-file.litmus.toml")).trace
    p = write_itf(tmp_path / "z.itf.json", model, trace)
    out = replay_itf(read_itf(p))
    assert out.model.policy.name == "fake-coherency-own-file"
    assert out.model.policy.fake_coherency and out.model.policy.mmap_own_file
    assert out.model.scope.name == "default" and out.ok and out.notes == ()


def test_catalog_name_with_changed_knobs_is_noted(tmp_path):
    model, trace = _run("kmap-after-end")
    doc = to_itf(model, trace)
    doc["#meta"]["knobs"]["begin_pins"] = False
    p = tmp_path / "k.itf.json"
    p.write_text(dumps(doc))
    out = replay_itf(read_itf(p))
    assert out.model.policy.begin_pins is False
    assert any("begin_pins=False" in n for n in out.notes)
    assert not out.ok                       # recorded pins no longer match the model's
    assert any("pins[0] recorded 1, model 0" in d for d in out.disagreements)


def test_trace_filename_and_verdict_traces(tmp_path):
    assert trace_filename("omapdrm", "P-NO-USER-PIN") == "omapdrm__P-NO-USER-PIN.itf.json"
    assert trace_filename("my/policy x", "P-A") == "my_policy_x__P-A.itf.json"
    model, trace = _run("fixme-user-sync-pins")
    prop = get_property("P-NO-USER-PIN")
    v = make_verdict(prop, "omapdrm", "hypothesis", "violated", None, {}, trace)
    none = make_verdict(get_property("P-RELEASE-ONCE"), "omapdrm", "hypothesis", "holds", "holds", {}, None)
    written = write_verdict_traces([v, none], {"omapdrm": model}, tmp_path, seed=9)
    assert [p.name for p in written] == ["omapdrm__P-NO-USER-PIN.itf.json"]
    meta = read_itf(written[0]).meta
    assert (meta["property"], meta["verdict"], meta["engine"], meta["seed"], meta["claims"]) == \
        ("P-NO-USER-PIN", "violated", "hypothesis", 9, ["FIXME-NO-USER-PIN"])


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.pop("vars"), "'vars' must be a list"),
    (lambda d: d["vars"].remove("mbt::actionTaken"), "does not say which actions were taken"),
    (lambda d: d["vars"].append("bogus"), "vars: unknown variable 'bogus'"),
    (lambda d: d["states"][2].pop("pins"), "states[2]: variable 'pins' is missing"),
    (lambda d: d["states"][2].update({"mbt::actionTaken": 3}), "states[2].mbt::actionTaken: must be a string"),
    (lambda d: d["states"][1].update({"dmabuf::events": {"#set": ["nope"]}}), "unknown event 'nope'"),
    (lambda d: d["states"][1]["mbt::nondetPicks"].update({"buf": {"tag": "Maybe", "value": 1}}),
     "a pick is Some(value) or None"),
    (lambda d: d.update({"loop": 1}), "lasso trace"),
])
def test_malformed_documents_name_the_place(mutate, msg):
    model, trace = _run("kmap-after-end")
    doc = json.loads(dumps(to_itf(model, trace)))
    mutate(doc)
    with pytest.raises(ItfError) as e:
        loads(json.dumps(doc), "f.itf.json")
    assert str(e.value).startswith("f.itf.json: ") and msg in str(e.value)
