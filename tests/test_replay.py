"""``dmabuf-check replay``: every trace a campaign writes replays and agrees; a disagreeing
recorded state exits 1 naming the step; a malformed file exits 2 naming the file and the place."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from properties.cli import main
from properties.scenarios.itf import dumps, read_itf, to_itf
from properties.scenarios.litmus import LIBRARY, LitmusRunner, load_litmus

NOTEBOOK_TRACES = Path(__file__).resolve().parent.parent / "notebooks" / "traces"


@pytest.fixture(scope="module")
def campaign_traces(tmp_path_factory):
    """One small campaign, written as ITF files (the same files `campaign --traces` writes)."""
    folder = tmp_path_factory.mktemp("traces")
    main(["campaign", "--engine", "hypothesis", "--exporter", "reference", "--exporter", "broken-zap-without-own-file",
          "--examples", "25", "--steps", "20", "--jobs", "1", "--traces", str(folder)])
    return sorted(folder.glob("*.itf.json"))


def test_campaign_writes_one_file_per_trace(campaign_traces):
    names = {p.name for p in campaign_traces}
    assert "broken-zap-without-own-file__P-ZAP-ALL.itf.json" in names   # a violation
    assert "reference__W-DMA-BUF-EXPORT.itf.json" in names             # a witness
    assert "reference__P-USER-BRACKET.itf.json" in names               # undefined behaviour reached
    assert not any(n.startswith("reference__P-ZAP") for n in names)    # nothing where nothing was found
    for p in campaign_traces:
        exporter, prop = p.name[: -len(".itf.json")].split("__")
        meta = read_itf(p).meta
        assert (meta["exporter"], meta["property"], meta["engine"], meta["seed"]) == (exporter, prop, "hypothesis", 1)


def test_every_campaign_trace_replays_and_agrees(campaign_traces, capsys):
    assert len(campaign_traces) > 20
    for p in campaign_traces:
        assert main(["replay", str(p)]) == 0, p.name
        out = capsys.readouterr().out
        prop = read_itf(p).meta["property"]
        assert f"{prop} fires " in out and "agrees with the file" in out, out


def test_shipped_notebook_traces_replay():
    files = sorted(NOTEBOOK_TRACES.glob("*.itf.json"))
    assert files
    for p in files:
        assert main(["replay", str(p)]) == 0, p.name


def test_replay_prints_calls_changes_and_fires(campaign_traces, capsys):
    p = next(p for p in campaign_traces if p.name == "broken-zap-without-own-file__P-ZAP-ALL.itf.json")
    assert main(["replay", str(p)]) == 0
    out = capsys.readouterr().out
    assert "1. dma_buf_export(buf=0) = 0" in out and "dma-buf 0: not exported -> exported" in out
    assert "PTE of page " in out and "event: after the exporter zapped the buffer's PTEs, a PTE of it is still present" in out
    assert "fires: P-ZAP-ALL" in out


def _doc(name="fixme-user-end-drops-kernel-pin"):
    out = LitmusRunner().run(load_litmus(LIBRARY / f"{name}.litmus.toml"))
    return json.loads(dumps(to_itf(out.model, out.trace, prop="P-KMAP-PINNED", verdict="violated",
                                   engine="litmus", seed=1)))


def _write(tmp_path, doc, name="t.itf.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(p)


def test_recorded_state_that_disagrees_exits_1(tmp_path, capsys):
    doc = _doc()
    doc["states"][4]["pins"] = [{"#bigint": "2"}]
    assert main(["replay", _write(tmp_path, doc)]) == 1
    out = capsys.readouterr().out
    assert "step 4: recorded state differs from the model's: pins[0] recorded 2, model 1" in out


def test_recorded_return_and_events_that_disagree_exit_1(tmp_path, capsys):
    doc = _doc()
    doc["states"][5]["dmabuf::ret"] = {"#bigint": "-12"}
    doc["states"][8]["dmabuf::events"] = {"#set": []}
    assert main(["replay", _write(tmp_path, doc)]) == 1
    out = capsys.readouterr().out
    assert "step 5: recorded return -ENOMEM, the model returns 0" in out
    assert "step 8: recorded events differ from the model's; model only: kernel_access_unbacked" in out


def test_property_that_does_not_fire_exits_1(tmp_path, capsys):
    doc = _doc("kmap-in-bracket")          # a run on which P-KMAP-PINNED cannot fire
    assert main(["replay", _write(tmp_path, doc)]) == 1
    assert "P-KMAP-PINNED (recorded as violated) does not fire on the replay" in capsys.readouterr().out


def test_hand_written_trace_without_states(tmp_path, capsys):
    doc = {"#meta": {"exporter": "omapdrm", "property": "P-NO-USER-PIN"},
           "vars": ["mbt::actionTaken", "mbt::nondetPicks"],
           "states": [{"mbt::actionTaken": "init", "mbt::nondetPicks": {}},
                      {"mbt::actionTaken": "dma_buf_export", "mbt::nondetPicks": {"buf": 0}},
                      {"mbt::actionTaken": "dma_buf_fd", "mbt::nondetPicks": {"buf": {"#bigint": "0"}}},
                      {"mbt::actionTaken": "ioctl_sync",
                       "mbt::nondetPicks": {"fd": 0, "flags": {"tag": "Some", "value": 3}}}]}
    assert main(["replay", _write(tmp_path, doc)]) == 0
    out = capsys.readouterr().out
    assert "P-NO-USER-PIN fires at step 3" in out and "0 recorded states" in out


def _one_line_error(capsys, path_part: str, msg: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert path_part in err[0] and msg in err[0], err[0]
    assert "Traceback" not in err[0]


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d["states"][3].update({"mbt::actionTaken": "dma_buf_gett"}), "step 3: unknown action 'dma_buf_gett'"),
    (lambda d: d["states"][3]["mbt::nondetPicks"].update({"fd": {"tag": "Some", "value": {"#bigint": "7"}}}),
     "step 3: dma_buf_get: fd=7 is outside the scope small"),
    (lambda d: d["states"][3]["mbt::nondetPicks"].update({"page": {"tag": "Some", "value": {"#bigint": "0"}}}),
     "step 3: dma_buf_get has no parameter 'page'"),
    (lambda d: d["states"][4].update({"mbt::actionTaken": "dma_buf_put"}), "step 4: dma_buf_put has no parameter 'direction'"),
    (lambda d: d["states"][2]["pins"].append(1), "states[2].pins: pins must be a sequence of 1"),
    (lambda d: d["states"][2].update({"pins": [{"#bigint": "9"}]}), "states[2].pins: pins[0] must be an integer in [0, 2]"),
    (lambda d: d["states"][2].update({"kopen": [1]}), "states[2].kopen: kopen[0] must be a boolean"),
    (lambda d: d["#meta"].update({"exporter": "nope", "knobs": None}), "#meta.exporter 'nope' is not in the catalog"),
    (lambda d: d["#meta"].update({"property": "P-NOPE"}), "#meta.property: unknown property 'P-NOPE'"),
    (lambda d: d["#meta"].update({"revision": "v9"}), "#meta.revision: unknown revision 'v9'"),
    (lambda d: d["#meta"]["knobs"].update({"begin_pinz": True}), "unknown knob 'begin_pinz'"),
])
def test_malformed_trace_exits_2_naming_file_and_place(tmp_path, capsys, mutate, msg):
    doc = _doc()
    mutate(doc)
    path = _write(tmp_path, doc)
    assert main(["replay", path]) == 2
    _one_line_error(capsys, path, msg)


def test_not_json_and_not_enabled_exit_2(tmp_path, capsys):
    path = _write(tmp_path, '{"vars": [\n', "broken.itf.json")
    assert main(["replay", path]) == 2
    _one_line_error(capsys, path, "line 2 column 1: not JSON")
    doc = _doc()
    # a kernel begin_cpu_access on a buffer the kernel holds no reference to
    for i in (3,):
        doc["states"][i]["mbt::actionTaken"] = "dma_buf_begin_cpu_access"
        doc["states"][i]["mbt::nondetPicks"] = {"buf": 0, "direction": 0}
    path = _write(tmp_path, doc)
    assert main(["replay", path]) == 2
    _one_line_error(capsys, path, "step 3: dma_buf_begin_cpu_access(buf=0, direction=DMA_BIDIRECTIONAL) is not enabled")
    assert main(["replay", str(tmp_path / "missing.itf.json")]) == 2
    _one_line_error(capsys, "missing.itf.json", "cannot read")


def test_replay_on_another_exporter_json_and_litmus(tmp_path, capsys):
    path = _write(tmp_path, _doc())
    assert main(["replay", path, "--exporter", "reference", "--json", str(tmp_path / "r.json"),
                 "--litmus", str(tmp_path / "r.litmus.toml")]) == 0
    captured = capsys.readouterr()
    assert "instead of the recorded 'omapdrm'" in captured.err
    assert "P-KMAP-PINNED does not fire on this trace" in captured.out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema"] == "dmabuf-check.replay/1" and report["exporter"] == "reference"
    assert len(report["steps"]) == 8
    # the litmus file written from the trace runs Ok with the returns the model gave
    assert main(["litmus", str(tmp_path / "r.litmus.toml")]) == 0
    assert capsys.readouterr().out.startswith("Ok ")


def test_replay_to_litmus_keeps_the_claims_that_fire(tmp_path, capsys):
    path = _write(tmp_path, _doc())
    assert main(["replay", path, "--litmus", str(tmp_path / "x.litmus.toml")]) == 0
    text = (tmp_path / "x.litmus.toml").read_text()
    assert 'exporter = "omapdrm"' in text
    assert 'fires = ["FIXME-KMAP-PINNED", "KCPU-ALWAYS-SUCCEED"]' in text
    assert main(["litmus", str(tmp_path / "x.litmus.toml")]) == 0
