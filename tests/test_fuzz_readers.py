"""Every input reader is total: whatever the bytes of a policy file, a litmus file or an ITF trace,
and whatever the value of a numeric option, the command line ends in a result (exit 0 or 1) or in
exit 2 with exactly one line on stderr naming the file (or the option); never a traceback, never
exit 3 (an internal error), never a file written outside the output paths given.

Hypothesis mutates the project's own examples (the litmus library and its policy files, catalog
policies written as TOML, the notebooks' ITF traces and one written from a litmus run): bytes
flipped, lines deleted or duplicated, non-UTF-8 bytes and deep nesting inserted, and, on the
parsed document, keys renamed or dropped and values replaced by other types, huge integers or
deep nesting; it also feeds arbitrary bytes. The command line runs in-process, in a scratch
working folder, so that a stray relative write would be seen. ``DMABUF_FUZZ_SCALE=20`` hunts
longer (20 times the examples, not derandomized).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from model.catalog import CATALOG
from model.policy import KNOBS
from properties.cli import app
from properties.cli import litmus as litmus_cli
from properties.cli.common import memory_size
from properties.scenarios import replay as replay_mod
from properties.scenarios.itf import dumps, to_itf
from properties.scenarios.litmus import LIBRARY, LitmusRunner, load_litmus

ROOT = Path(__file__).resolve().parent.parent
LITMUS_FILES = sorted(LIBRARY.glob("*.litmus.toml"))
POLICY_FILES = sorted((LIBRARY / "policies").glob("*.toml"))
NOTEBOOK_TRACES = sorted((ROOT / "notebooks" / "traces").glob("*.itf.json"))

# DMABUF_FUZZ_SCALE=N runs N times the examples, drawn at random rather than derandomized: a
# longer hunt, by hand
SCALE = int(os.environ.get("DMABUF_FUZZ_SCALE", "1"))
SETTINGS = dict(derandomize=SCALE == 1, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


def _catalog_toml(name: str) -> str:
    """A catalog policy as a user's policy file would say it."""
    p = CATALOG[name]
    lines = [f"name = {json.dumps('my-' + name)}", f"based_on = {json.dumps(name)}",
             f"description = {json.dumps(p.description)}", f"breaks = {json.dumps(list(p.breaks))}", "", "[knobs]"]
    for k in KNOBS:
        v = getattr(p, k)
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def _litmus_trace(name: str) -> str:
    out = LitmusRunner().run(load_litmus(LIBRARY / f"{name}.litmus.toml"))
    return dumps(to_itf(out.model, out.trace, prop="P-KMAP-PINNED", verdict="violated", engine="litmus", seed=1))


@pytest.fixture(scope="module")
def corpus():
    CORPUS.update({
        "policy": [p.read_bytes() for p in POLICY_FILES]
        + [_catalog_toml(n).encode() for n in ("omapdrm", "i915", "broken-zap-without-own-file")],
        "litmus": [p.read_bytes() for p in LITMUS_FILES],
        "itf": [p.read_bytes() for p in NOTEBOOK_TRACES]
        + [_litmus_trace("fixme-user-end-drops-kernel-pin").encode()],
    })


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A scratch working folder, and the CLI sped up for many runs: one compiled model per
    (policy, scope, revision) and one litmus runner for every run (both only cache)."""
    work = tmp_path_factory.mktemp("fuzz")
    runner = LitmusRunner()
    models: dict = {}
    real_model = replay_mod._model

    def cached_model(policy, scope, revision):
        key = (policy, scope, revision)
        if key not in models:
            models[key] = real_model(policy, scope, revision)
        return models[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setattr(replay_mod, "_model", cached_model)
        mp.setattr(litmus_cli, "LitmusRunner", lambda: runner)
        yield work


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = app.main(argv)
    return rc, out.getvalue(), err.getvalue()


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def check_total(argv: list[str], names: str, folder: Path, outputs: tuple[Path, ...] = ()) -> int:
    """Run the CLI; assert it ends in a result or in one line on stderr naming ``names``, and that
    it writes nothing in ``folder`` but ``outputs``."""
    before = _files(folder)
    rc, out, err = run(argv)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert rc in (0, 1, 2), (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and names in lines[0], (argv, err)
    new = _files(folder) - before
    assert new <= set(outputs), (argv, sorted(map(str, new - set(outputs))))
    return rc


# --- mutations -------------------------------------------------------------------------------------

ODD_VALUES = st.sampled_from([None, True, False, 0, -1, 1, 2**64, -(2**63) - 1, 10**30, 10**400, "", "x", "-EINVAL",
                              "small", "v5.12", "\u00e9\u0000", [], {}, [1, "a"], {"#bigint": "7"},
                              {"#bigint": "1" * 5000}, {"tag": "Some", "value": 1}, 1.5, math.nan])


_DEEP = re.compile(r'"@deep:(\d+):([\[{])@"')


def _deep(n: int, kind: str) -> str:
    """A placeholder for ``n`` levels of ``kind`` nesting: the writers expand it into text (a
    Python structure that deep could not be written by the json module)."""
    return f"@deep:{n}:{kind}@"


def _expand_deep(text: str, syntax: str) -> str:
    def one(m):
        n, kind = int(m[1]), m[2]
        if kind == "[":
            return "[" * n + "0" + "]" * n
        key = '"a":' if syntax == "json" else '"a" ='
        return ("{" + key) * n + "0" + "}" * n
    return _DEEP.sub(one, text)


def mutate_doc(draw, doc):
    """The document with one value replaced, one key renamed or dropped: a walk down from the top
    that stops at each level with probability 1/4 (the upper levels, where a file says what it is,
    are hit as often as the many leaves)."""
    parent, last = None, None
    node = doc
    while isinstance(node, (dict, list)) and node and (parent is None or draw(st.integers(0, 3))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, last = node, keys[draw(st.integers(0, len(keys) - 1))]
        node = parent[last]
    if parent is None:
        return draw(ODD_VALUES)
    how = draw(st.sampled_from(["value", "value", "deep", "rename", "drop"]))
    if how == "value":
        parent[last] = draw(ODD_VALUES)
    elif how == "deep":
        parent[last] = _deep(draw(st.sampled_from([40, 70, 3000])), draw(st.sampled_from("[{")))
    elif isinstance(parent, dict):
        v = parent.pop(last)
        if how == "rename":
            parent[draw(st.sampled_from([last + "s", last[:-1], last.upper(), "#" + last, "zz"]))] = v
    else:
        parent.pop(last)
    return doc


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "nan" if isinstance(v, float) and math.isnan(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return '""'   # None: TOML has no null


def toml_text(doc) -> str:
    if not isinstance(doc, dict):
        return f"x = {_toml_value(doc)}\n"
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in doc.items())


def mutate_bytes(draw, data: bytes) -> bytes:
    lines = data.split(b"\n")
    how = draw(st.sampled_from(["flip", "delete", "duplicate", "truncate", "non-utf8", "nest"]))
    i = draw(st.integers(0, max(0, len(data) - 1)))
    n = draw(st.integers(0, max(0, len(lines) - 1)))
    if how == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.sampled_from([1, 0x20, 0x80, 0xff]))]) + data[i + 1:] if data else data
    if how == "delete":
        return b"\n".join(lines[:n] + lines[n + 1:])
    if how == "duplicate":
        return b"\n".join(lines[:n + 1] + lines[n:])
    if how == "truncate":
        return data[:i]
    if how == "non-utf8":
        return data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + data[i:]
    return data[:i] + draw(st.sampled_from([b"[", b"{", b'{"a":', b"a = ["])) * draw(st.sampled_from([65, 100_000])) + data[i:]


CORPUS: dict[str, list[bytes]] = {}


@st.composite
def fuzzed(draw, kind: str):
    """A mutated example of ``kind`` (from ``CORPUS``), or arbitrary bytes."""
    base = CORPUS[kind][draw(st.integers(0, len(CORPUS[kind]) - 1))]
    how = draw(st.sampled_from(["bytes", "doc", "doc", "arbitrary"]))
    if how == "arbitrary":
        return draw(st.binary(max_size=300))
    if how == "bytes":
        return mutate_bytes(draw, base)
    text = base.decode()
    doc = json.loads(text) if kind == "itf" else tomllib.loads(text)
    doc = mutate_doc(draw, doc)
    if kind == "itf":
        return _expand_deep(json.dumps(doc), "json").encode()
    return _expand_deep(toml_text(doc), "toml").encode("utf-8", "surrogatepass")


# --- the readers ---------------------------------------------------------------------------------

def test_policy_files(corpus, scratch):
    @settings(max_examples=300 * SCALE, **SETTINGS)
    @given(fuzzed("policy"))
    def one(data):
        p = scratch / "p.toml"
        p.write_bytes(data)
        check_total(["exporters", "--exporter", str(p)], str(p), scratch)

    one()


def test_litmus_files(corpus, scratch):
    @settings(max_examples=300 * SCALE, **SETTINGS)
    @given(fuzzed("litmus"))
    def one(data):
        p = scratch / "t.litmus.toml"
        p.write_bytes(data)
        check_total(["litmus", str(p)], str(p), scratch)

    one()


def test_itf_traces(corpus, scratch):
    @settings(max_examples=300 * SCALE, **SETTINGS)
    @given(fuzzed("itf"), st.sampled_from(["plain", "plain", "outputs"]))
    def one(data, how):
        p = scratch / "t.itf.json"
        p.write_bytes(data)
        outs = (scratch / "out" / "r.json", scratch / "out" / "r.litmus.toml")
        argv = ["replay", str(p)] + (["--json", str(outs[0]), "--litmus", str(outs[1])] if how == "outputs" else [])
        check_total(argv, str(p), scratch, outs + (scratch / "out",))

    one()


def test_known_cases_end_in_one_line(scratch):
    """The failures that started this test, each pinned: deep nesting, an unknown scope, a knob
    of the wrong type, a litmus file and a policy file nested deep."""
    doc = json.loads(NOTEBOOK_TRACES[0].read_text())
    cases = [
        ("t.itf.json", "[" * 100_000, ["replay"], "line 1 column 65: arrays and objects nest more than 64 levels deep"),
        ("t.itf.json", '{"a":' * 100_000, ["replay"], "nest more than 64 levels deep"),
        ("t.itf.json", json.dumps({**doc, "#meta": {**doc["#meta"], "scope": {"name": "x", "bufers": 1}}}), ["replay"],
         "#meta.scope: unknown key 'bufers' (did you mean 'buffers'?)"),
        ("t.itf.json", json.dumps({**doc, "#meta": {**doc["#meta"], "scope": {"name": "x", "buffers": 10**30}}}),
         ["replay"], "#meta.scope.buffers must be a whole number from 1 to 4"),
        ("t.itf.json", json.dumps({**doc, "#meta": {**doc["#meta"], "scope": "smal"}}), ["replay"],
         "#meta.scope: unknown scope 'smal' (did you mean 'small'?)"),
        ("t.itf.json", json.dumps({**doc, "#meta": {**doc["#meta"], "knobs": {**doc["#meta"]["knobs"], "begin_pins": 3}}}),
         ["replay"], "#meta.knobs: knob begin_pins must be true or false, got 3"),
        ("t.litmus.toml", "title = " + "[" * 100_000, ["litmus"], "nest more than 64 levels deep"),
        ("p.toml", 'name = "x"\nknobs = ' + "[" * 500, ["exporters", "--exporter"], "line 2 column 73: arrays and tables nest"),
        ("p.toml", 'name = "x"\nbased_on = ["omapdrm"]\n', ["exporters", "--exporter"], "based_on names no catalog exporter"),
        ("p.toml", 'name = "x"\ndescription = [1]\n', ["exporters", "--exporter"], "'description' must be a string"),
        ("t.litmus.toml", 'title = "t"\nexporter = "reference"\nscope = ["small"]\nsteps = ["dma_buf_export(buf=0)"]\n',
         ["litmus"], "scope ['small'] is unknown"),
    ]
    for name, text, cmd, msg in cases:
        p = scratch / name
        p.write_text(text)
        rc, _, err = run([*cmd, str(p)])
        assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"{p}: ") and msg in err, (name, err)


# --- option values -------------------------------------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = app.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


_NUM = r"-?\d[\d,]*(?:\*\*\d+(?:-1)?)?[MT]?"
_RANGE = re.compile(rf"above (?P<above>{_NUM}), at most (?P<most>{_NUM})|(?P<lo>{_NUM}) to (?P<hi>{_NUM})")


def _number(text: str) -> float:
    text = text.replace(",", "")
    if text[-1] in "MT":
        return float(text[:-1]) * {"M": 2**20, "T": 2**40}[text[-1]]
    m = re.fullmatch(r"(-?)(\d+)\*\*(\d+)(-1)?", text)
    if m:
        v = int(m[2]) ** int(m[3]) - (1 if m[4] else 0)
        return -v if m[1] else v
    return int(text)


def numeric_options() -> list[tuple[str, str, tuple[float, float, bool], str]]:
    """(command, option, (least, most, least excluded), kind) of every option that takes a number,
    its range read from its help (None: the help does not say it). The kind is "whole" (a whole
    number), "seconds" (a decimal) or "size" (a memory size)."""
    out = []
    for cmd, sp in _subparsers().items():
        for act in sp._actions:
            if act.type is None or not act.option_strings:
                continue
            m = _RANGE.search(act.help or "")
            if not m:
                out.append((cmd, act.option_strings[-1], None, ""))
                continue
            if m["above"]:
                rng = (_number(m["above"]), _number(m["most"]), True)
            else:
                rng = (_number(m["lo"]), _number(m["hi"]), False)
            kind = "size" if act.type is memory_size else "seconds" if rng[2] else "whole"
            out.append((cmd, act.option_strings[-1], rng, kind))
    return out


ALL_NUMERIC = numeric_options()
NUMERIC = [x for x in ALL_NUMERIC if x[2] is not None]


def test_every_numeric_option_documents_its_range():
    assert [(c, o) for c, o, rng, _ in ALL_NUMERIC if rng is None] == []
    names = {(c, o) for c, o, _, _ in NUMERIC}
    for must in [("campaign", "--steps"), ("campaign", "--examples"), ("campaign", "--depth"), ("campaign", "--seed"),
                 ("campaign", "--z3-seconds"), ("campaign", "--max-memory"), ("explore", "--radius"),
                 ("prove", "--depth"), ("prove", "--timeout"), ("review", "--depth"), ("conform", "--traces"),
                 ("conform", "--timeout"), ("conform", "--show")]:
        assert must in names


@pytest.fixture
def parse_only(monkeypatch):
    """The CLI with every command's work replaced by 'exit 0': what is left is the parsing and the
    up-front checks."""
    real = app.build_parser

    def build():
        p = real()
        parse = p.parse_args

        def parse_args(argv=None):
            a = parse(argv)
            if getattr(a, "func", None) is not None:
                a.func = lambda a: 0
            return a
        p.parse_args = parse_args
        return p

    monkeypatch.setattr(app, "build_parser", build)


def _value(text: str, kind: str) -> float | None:
    """What the option means by ``text`` (None: not a number of its kind)."""
    try:
        if kind == "whole":
            return int(text)
        if kind == "seconds":
            return float(text)
        t = text.strip().upper().removesuffix("B").removesuffix("I")
        unit = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
        return float(t[:-1] if unit > 1 else t) * unit
    except ValueError:
        return None


VALUES = st.one_of(
    st.integers(-10**25, 10**25).map(str),
    st.sampled_from(["", " ", "0", "-0", "1", "-1", "64", "65", "100", "1024", "1025", "10000", "10001", "30000",
                     "30001", "1000000", "1000001", "nan", "inf", "-inf", "1e400", "1e-400", "0x10", "1_000", " 5 ",
                     "9" * 5000, "2.5", "512M", "1024T", "1025T", "0.5M", "8G", "9223372036854775808",
                     "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8))


@given(st.sampled_from(NUMERIC), VALUES)
@settings(max_examples=600 * SCALE, **SETTINGS)
def test_numeric_options_take_their_documented_range_only(parse_only, option, value):
    cmd, opt, (least, most, open_low), kind = option
    rc, out, err = run([cmd, f"{opt}={value}"])
    v = _value(value, kind)
    inside = v is not None and (least < v <= most if open_low else least <= v <= most)
    if inside:
        assert rc == 0, (opt, value, err)
    else:
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and f"argument {opt}: expected" in lines[0], (opt, value, err)


def test_a_bounds_edge_of_each_option(parse_only):
    for cmd, opt, (least, most, open_low), kind in NUMERIC:
        if kind == "size":
            continue
        inside = [most] + ([] if open_low else [least])
        outside = [most + 1] + ([least] if open_low else [least - 1])
        for v in inside:
            assert run([cmd, f"{opt}={int(v)}"])[0] == 0, (cmd, opt, v)
        for v in outside:
            rc, _, err = run([cmd, f"{opt}={int(v)}"])
            assert rc == 2 and f"argument {opt}" in err, (cmd, opt, v, err)


# --- outputs -------------------------------------------------------------------------------------

_INPUTS = {("explore", "around"), ("conform", "litmus"), ("conform", "known"), ("conform", "cache"),
           ("campaign", "database"), ("replay", "trace"), ("litmus", "paths")}


def test_every_option_naming_a_path_is_checked_up_front_or_is_an_input():
    for cmd, sp in _subparsers().items():
        for act in sp._actions:
            meta = act.metavar if isinstance(act.metavar, str) else ""
            if any(w in meta for w in ("PATH", "DIR", "FILE", "TRACE")) and act.dest != "exporter":
                assert act.dest in app._OUTPUTS[cmd] or (cmd, act.dest) in _INPUTS, (cmd, act.dest)


def test_replay_litmus_output_is_checked_before_the_replay(scratch):
    trace = NOTEBOOK_TRACES[0]
    rc, out, err = run(["replay", str(trace), "--litmus", str(scratch)])
    assert rc == 2 and out == "" and err.strip() == f"replay: --litmus {scratch}: exists and is not a regular file (a folder)"
