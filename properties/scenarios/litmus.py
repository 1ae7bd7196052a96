"""Litmus files: one small scenario each, with its expected outcome, run on the model.

docs/interface.md ("Litmus files"), in the spirit of the Linux kernel memory model's litmus tests:
a TOML file gives a title, the claims the scenario is about, an exporter (a catalog name or a
policy file relative to the litmus file), optionally a revision (default v4.11) and a scope
(default ``small``), the steps as calls with keyword arguments, and ``[expect]``: the return of
each step (an integer, an errno name such as ``"-EINVAL"``, ``"SIGBUS"``/``"SIGSEGV"`` for a
faulting access, or ``"*"``), the claims that must fire and the claims that must stay quiet.

A claim *fires* when a property citing it is violated on the run (``always``/``step``), or when
an ``undefined`` property citing it is reached (the documentation calls the outcome undefined,
or a caller broke its own obligation). Witnesses do not fire: that a step succeeds is what
``returns`` checks.

Steps are parsed by a small tokenizer, never evaluated: argument values are integer literals
(decimal, ``0x`` hex, negative), the kernel constant names of ``model.constants.NAMED_CONSTANTS``,
``True``/``False``, and ``|`` of integers and constants. A file the model cannot run (a syntax
error, an unknown action, parameter, constant or claim, a handle outside the scope, a step whose
guard is false: a kernel caller that holds no reference) is invalid: :class:`LitmusError` names
the file, the step number (and line) and the reason.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from model.actions import ACTIONS
from model.catalog import CATALOG
from model.constants import ERRNO, FAULT_SIGBUS, FAULT_SIGSEGV, NAMED_CONSTANTS, errno_name
from model.files import FileProblem, exists, parse_toml, read_text
from model.machine import Model
from model.policy import ExporterPolicy, KNOBS, PolicyError, REVISIONS, load_policy_file
from model.scope import SCOPES, Scope

from ..claims import NOT_MODELLED, load_claims
from ..index import PROPERTIES, get_property
from ..judge import breaks_problem
from ..monitor import Monitor, Replayed
from ..trace import ReplayError, Trace, render, replay

__all__ = [
    "LIBRARY", "LitmusError", "LitmusStep", "LitmusTest", "LitmusOutcome", "parse_step",
    "load_litmus", "run_litmus", "collect", "format_line", "format_details",
    "display_fires", "litmus_from_trace", "LitmusRunner",
]

LIBRARY = Path(__file__).resolve().parents[2] / "litmus"

_TOP_KEYS = ("title", "claims", "exporter", "revision", "scope", "steps", "expect", "source")
_EXPECT_KEYS = ("returns", "fires", "quiet")


class LitmusError(ValueError):
    """An invalid litmus file; the message names the file, the place and the problem."""


# --- the step tokenizer and parser ---------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<int>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()=,|-])
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"column {pos + 1}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), pos + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, kind: str, value: str | None = None, what: str = "") -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if tok[0] != kind or (value is not None and tok[1] != value):
            found = "the end of the step" if tok[0] == "end" else repr(tok[1])
            raise ValueError(f"column {tok[2]}: expected {what or value or kind}, found {found}")
        self.i += 1
        return tok

    def atom(self) -> tuple[Any, int]:
        kind, text, col = self.peek()
        if kind == "punct" and text == "-":
            self.i += 1
            kind2, text2, _ = self.peek()
            if kind2 not in ("int", "hex"):
                raise ValueError(f"column {col}: '-' must be followed by an integer")
            self.i += 1
            return -int(text2, 0), col
        if kind in ("int", "hex"):
            self.i += 1
            if kind == "int" and len(text) > 1 and text.startswith("0"):
                raise ValueError(f"column {col}: write decimal integers without leading zeros "
                                 f"(or 0x... for hex), got {text!r}")
            return int(text, 0), col
        if kind == "name":
            self.i += 1
            if text in ("True", "False"):
                return text == "True", col
            if text in NAMED_CONSTANTS:
                return NAMED_CONSTANTS[text], col
            close = difflib.get_close_matches(text, [*NAMED_CONSTANTS, "True", "False"], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"column {col}: unknown constant {text!r}{hint}")
        found = "the end of the step" if kind == "end" else repr(text)
        raise ValueError(f"column {col}: expected a value, found {found}")

    def value(self) -> Any:
        v, col = self.atom()
        parts = [(v, col)]
        while self.peek()[:2] == ("punct", "|"):
            self.i += 1
            parts.append(self.atom())
        if len(parts) == 1:
            return v
        out = 0
        for x, c in parts:
            if isinstance(x, bool):
                raise ValueError(f"column {c}: True/False cannot be combined with '|'")
            out |= x
        return out


def parse_step(text: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``"dma_buf_kmap(buf=0, page=1)"`` -> ``("dma_buf_kmap", (("buf", 0), ("page", 1)))``.

    Raises ``ValueError`` naming the column of a syntax error. Nothing is evaluated."""
    p = _Parser(text)
    _, name, _ = p.take("name", what="an action name")
    p.take("punct", "(", what="'('")
    args: list[tuple[str, Any]] = []
    seen: set[str] = set()
    while p.peek()[:2] != ("punct", ")"):
        _, key, col = p.take("name", what="a parameter name")
        if key in seen:
            raise ValueError(f"column {col}: parameter {key!r} given twice")
        seen.add(key)
        p.take("punct", "=", what="'='")
        args.append((key, p.value()))
        if p.peek()[:2] == ("punct", ","):
            p.i += 1
        elif p.peek()[:2] != ("punct", ")"):
            tok = p.peek()
            found = "the end of the step" if tok[0] == "end" else repr(tok[1])
            raise ValueError(f"column {tok[2]}: expected ',' or ')', found {found}")
    p.take("punct", ")", what="')'")
    p.take("end", what="the end of the step")
    return name, tuple(args)


# --- files -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LitmusStep:
    number: int                     # 1-based
    text: str
    line: int | None                # line of the file, where it can be found
    action: str
    args: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class LitmusTest:
    path: Path
    title: str
    claims: tuple[str, ...]
    exporter: str                   # as written in the file
    policy: ExporterPolicy
    revision: str
    scope: Scope
    steps: tuple[LitmusStep, ...]
    returns: tuple[Any, ...] | None   # per step: an int, or None for "*"
    returns_text: tuple[str, ...] | None
    fires: tuple[str, ...]
    quiet: tuple[str, ...]
    source: str = ""

    @property
    def name(self) -> str:
        n = self.path.name
        return n[: -len(".litmus.toml")] if n.endswith(".litmus.toml") else self.path.stem


def _err(path: Path, msg: str) -> LitmusError:
    return LitmusError(f"{path}: {msg}")


def _str_list(data: dict, key: str, path: Path, where: str = "") -> tuple[str, ...]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _err(path, f"{where}{key} must be a list of strings")
    return tuple(v)


def _line_of(raw: str, text: str, after: int) -> int | None:
    """The line of the file holding the step text (searched after the ``steps`` key)."""
    for quoted in (f'"{text}"', f"'{text}'"):
        i = raw.find(quoted, after)
        if i >= 0:
            return raw.count("\n", 0, i) + 1
    return None


def _returns(raw: Any, n_steps: int, path: Path) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    if not isinstance(raw, list):
        raise _err(path, "expect.returns must be a list, one entry per step")
    if len(raw) != n_steps:
        raise _err(path, f"expect.returns has {len(raw)} entries for {n_steps} steps")
    vals: list[Any] = []
    texts: list[str] = []
    for i, r in enumerate(raw, 1):
        if isinstance(r, bool):
            raise _err(path, f"expect.returns[{i}] (step {i}): true/false is not a return value")
        if isinstance(r, int):
            vals.append(r)
            texts.append(str(r))
            continue
        if not isinstance(r, str):
            raise _err(path, f"expect.returns[{i}] (step {i}): expected an integer, an errno name or \"*\"")
        if r == "*":
            vals.append(None)
        elif r == "SIGBUS":
            vals.append(FAULT_SIGBUS)
        elif r == "SIGSEGV":
            vals.append(FAULT_SIGSEGV)
        elif r.startswith("-") and r[1:] in ERRNO:
            vals.append(-ERRNO[r[1:]])
        else:
            known = ["-" + e for e in ERRNO] + ["SIGBUS", "SIGSEGV", "*"]
            close = difflib.get_close_matches(r if r.startswith("-") else "-" + r, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(path, f"expect.returns[{i}] (step {i}): unknown return {r!r}{hint}; use an "
                             f"integer, \"-EINVAL\"-style errno names, \"SIGBUS\", \"SIGSEGV\" or \"*\"")
        texts.append(r)
    return tuple(vals), tuple(texts)


def _resolve_exporter(name: str, path: Path, revision: str) -> ExporterPolicy:
    if name in CATALOG:
        pol = CATALOG[name]
    else:
        pfile = (path.parent / name)
        if not (name.endswith(".toml") or exists(pfile)):
            close = difflib.get_close_matches(name, list(CATALOG), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(path, f"exporter {name!r} is neither a catalog exporter{hint} nor a policy file "
                             f"next to the litmus file")
        try:
            pol = load_policy_file(pfile, CATALOG)
        except PolicyError as e:
            raise _err(path, f"exporter: {e}") from None
        problem = breaks_problem(pol)
        if problem:
            raise _err(path, f"exporter: {pfile}: {problem}")
    if revision not in pol.revisions and pol.exportable_at(revision):
        raise _err(path, f"exporter {pol.name} does not apply at revision {revision}")
    # (a policy whose ops the revision's dma_buf_export() refuses may be named: the file then
    # shows the refused export, -EINVAL, corpus §3.5)
    return pol


def load_litmus(path: str | Path, as_test: bool = True) -> LitmusTest:
    """Read and check a litmus file (syntax, keys, steps, claims); not yet run on the model.

    ``as_test``: the file is run as a test, so its ``[expect]`` must check something, or it could
    not fail; the conformance check, which only takes its steps to a real kernel, passes False."""
    path = Path(path)
    try:
        raw = read_text(path)
        data = parse_toml(raw)
    except FileProblem as e:
        raise _err(path, str(e)) from None
    for k in data:
        if k not in _TOP_KEYS:
            close = difflib.get_close_matches(k, _TOP_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(path, f"unknown key {k!r}{hint}; a litmus file has {', '.join(_TOP_KEYS)}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise _err(path, "'title' must be a non-empty string")
    source = data.get("source", "")
    if not isinstance(source, str):
        raise _err(path, "'source' must be a string")
    known_claims = load_claims()
    claims = _str_list(data, "claims", path)
    revision = data.get("revision", "v4.11")
    if not isinstance(revision, str) or revision not in REVISIONS:
        raise _err(path, f"revision {revision!r} is unknown; known: {', '.join(REVISIONS)}")
    scope_name = data.get("scope", "small")
    if not isinstance(scope_name, str) or scope_name not in SCOPES:
        raise _err(path, f"scope {scope_name!r} is unknown; known scopes: {', '.join(SCOPES)}")
    exporter = data.get("exporter")
    if not isinstance(exporter, str) or not exporter:
        raise _err(path, "'exporter' must name a catalog exporter or a policy file")
    policy = _resolve_exporter(exporter, path, revision)
    steps_raw = data.get("steps")
    if not isinstance(steps_raw, list) or not all(isinstance(s, str) for s in steps_raw):
        raise _err(path, "'steps' must be a list of calls such as \"dma_buf_export(buf=0)\"")
    if not steps_raw:
        raise _err(path, "'steps' is empty: a litmus test is at least one call")
    after = max(raw.find("steps"), 0)
    steps: list[LitmusStep] = []
    for n, text in enumerate(steps_raw, 1):
        line = _line_of(raw, text, after)
        at = f"step {n}" + (f" (line {line})" if line else "")
        try:
            name, args = parse_step(text)
        except ValueError as e:
            raise _err(path, f"{at}: {text!r}: {e}") from None
        if name not in ACTIONS:
            close = difflib.get_close_matches(name, list(ACTIONS), n=1)
            hint = ""
            if close and revision in ACTIONS[close[0]].revisions:
                hint = f" (did you mean {close[0]}?)"
            elif close:   # the nearest name is an action of another revision: say so
                hint = (f" ({close[0]} exists at revision {', '.join(ACTIONS[close[0]].revisions)}, "
                        f"not at {revision})")
            raise _err(path, f"{at}: unknown action {name!r}{hint}")
        steps.append(LitmusStep(n, text, line, name, args))
    expect = data.get("expect", {})
    if not isinstance(expect, dict):
        raise _err(path, "[expect] must be a table")
    for k in expect:
        if k not in _EXPECT_KEYS:
            raise _err(path, f"expect: unknown key {k!r}; [expect] has {', '.join(_EXPECT_KEYS)}")
    returns = returns_text = None
    if "returns" in expect:
        returns, returns_text = _returns(expect["returns"], len(steps), path)
    fires = _str_list(expect, "fires", path, "expect.")
    quiet = _str_list(expect, "quiet", path, "expect.")
    if as_test and not fires and not quiet and (returns is None or all(r is None for r in returns)):
        raise _err(path, "[expect] checks nothing (no returns, fires or quiet): the test could not fail")
    for key, ids in (("claims", claims), ("expect.fires", fires), ("expect.quiet", quiet)):
        for c in ids:
            if c not in known_claims:
                close = difflib.get_close_matches(c, list(known_claims), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise _err(path, f"{key}: unknown claim {c!r}{hint}; see spec/claims.md")
    both = sorted(set(fires) & set(quiet))
    if both:
        raise _err(path, f"claim {both[0]} is both in expect.fires and expect.quiet")
    return LitmusTest(path, title, claims, exporter, policy, revision, SCOPES[scope_name], tuple(steps),
                      returns, returns_text, fires, quiet, source)


# --- running -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LitmusOutcome(Replayed):
    """A litmus file's run: its trace with what fires (``Replayed``), the claims that fired and
    what differed from the file's expectation."""

    test: LitmusTest = None                       # type: ignore[assignment]
    fired_claims: dict[str, tuple[int, str]] = field(default_factory=dict)  # claim -> (first step, property)
    differences: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences


def display_fires(fired_init: Sequence[str], fired: Sequence[Sequence[str]], keep: str | None = None
                  ) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """What a rendering shows as firing: violations and undefined behaviour (witnesses only if
    ``keep`` names one), and a state property only at the step where it starts to hold, not at
    every later step while it still does."""
    props = {p.id: p for p in PROPERTIES}

    def show(pid: str) -> bool:
        return pid == keep or props[pid].kind != "witness"

    held = {p for p in fired_init if props[p].on == "state"}
    init = tuple(p for p in fired_init if show(p))
    out = []
    for f in fired:
        out.append(tuple(p for p in f if show(p) and not (props[p].on == "state" and p in held)))
        held = {p for p in f if props[p].on == "state"}
    return init, out


def _can_fire(mon: Monitor, claim: str) -> str | None:
    """None if some property of the monitor citing ``claim`` can fire; else why not."""
    if any(claim in p.claims and p.kind != "witness" for p in mon.props):
        return None
    if claim in NOT_MODELLED:
        return f"claim {claim} is not modelled, so it can never fire (properties/claims.py NOT_MODELLED)"
    cited = [p for p in PROPERTIES if claim in p.claims and p.kind != "witness"]
    if not cited:
        return f"no property formalises claim {claim}, so it can never fire"
    why = []
    for p in cited:
        if not p.fits(mon.model.scope):
            why.append(f"{p.id} needs " + ", ".join(f"{k} >= {v}" for k, v in p.needs))
        elif not p.relevant(mon.model.policy, mon.model.revision):
            why.append(f"{p.id} does not apply to exporter {mon.model.policy.name} at {mon.model.revision}")
    return (f"no property citing {claim} applies here ({'; '.join(why)}); "
            f"use a larger scope or another exporter")


class LitmusRunner:
    """Runs litmus tests, sharing compiled models and monitors between files."""

    def __init__(self) -> None:
        self._models: dict[tuple, tuple[Model, Monitor]] = {}

    def model(self, test: LitmusTest) -> tuple[Model, Monitor]:
        key = (test.policy, test.scope, test.revision)
        if key not in self._models:
            m = Model(test.policy, test.scope, test.revision)
            self._models[key] = (m, Monitor(m, PROPERTIES))
        return self._models[key]

    def run(self, test: LitmusTest) -> LitmusOutcome:
        model, mon = self.model(test)
        path = test.path
        for c in (*test.fires, *test.quiet):
            why = _can_fire(mon, c)
            if why:
                key = "expect.fires" if c in test.fires else "expect.quiet"
                raise _err(path, f"{key}: {why}")
        def where(n: int) -> str:
            st = test.steps[n - 1]
            return f"step {st.number}" + (f" (line {st.line})" if st.line else "")

        try:
            trace = replay(model, ((st.action, dict(st.args)) for st in test.steps),
                           why=lambda state, inst: model.why_disabled(state, inst.index), where=where)
        except ReplayError as e:
            raise _err(path, str(e)) from None
        run = mon.replayed(trace)
        got = run.claims(mon.props)
        diffs: list[str] = []
        if test.returns is not None:
            for st, want, text, tst in zip(test.steps, test.returns, test.returns_text, trace.steps):
                if want is not None and tst.ret != want:
                    diffs.append(f"step {st.number} {tst.call()} returned {errno_name(tst.ret)}, expected {text}")
        for c in test.fires:
            if c not in got:
                diffs.append(f"{c} did not fire")
        for c in test.quiet:
            if c in got:
                at, pid = got[c]
                where = "in the initial state" if at == 0 else f"at step {at}"
                diffs.append(f"{c} fired {where} ({pid}), expected quiet")
        return LitmusOutcome(model, trace, run.fired_init, run.fired, test=test, fired_claims=got,
                             differences=tuple(diffs))


def run_litmus(path: str | Path, runner: LitmusRunner | None = None) -> LitmusOutcome:
    """Load and run one litmus file."""
    return (runner or LitmusRunner()).run(load_litmus(path))


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """The litmus files named: files as they are, folders searched for ``*.litmus.toml``."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(p.rglob("*.litmus.toml"))
        elif p.exists():
            out.append(p)
        else:
            raise LitmusError(f"{p}: no such file or folder")
    return out


# --- output ------------------------------------------------------------------------------------

def _shown_path(p: Path) -> str:
    """The path relative to the working folder, or else to the project, where it lies inside."""
    for base in (Path.cwd(), LIBRARY.parent):
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(p)


def format_line(out: LitmusOutcome) -> str:
    """One line per test, in the manner of herd7: ``Ok`` or ``No``, the file, the title, and
    what differed."""
    verdict = "Ok" if out.ok else "No"
    line = f"{verdict:<3} {_shown_path(out.test.path)}  {out.test.title}"
    if not out.ok:
        line += ": " + "; ".join(out.differences)
    return line


def format_details(out: LitmusOutcome) -> str:
    """The run as kernel calls with returns, changed fields, events and the properties that
    fire, then the claims that fired."""
    t = out.test
    lines = [f"  exporter {t.policy.name}, revision {t.revision}, scope {t.scope.name}"
             + (f"; source: {t.source}" if t.source else "")]
    init, fired = display_fires(out.fired_init, out.fired)
    if init:
        lines.append("    0. (initial state)\n       fires: " + ", ".join(init))
    lines.append("  " + render(out.model, out.trace, fired).replace("\n", "\n  "))
    if out.fired_claims:
        lines.append("  claims fired: " + ", ".join(
            f"{c} (step {s}, {p})" for c, (s, p) in sorted(out.fired_claims.items(), key=lambda x: x[1][0])))
    else:
        lines.append("  claims fired: none")
    return "\n".join(lines)


# --- from a trace ------------------------------------------------------------------------------

_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


def _toml_str(s: str) -> str:
    """A TOML basic string: backslash, quote and every control character escaped."""
    return '"' + re.sub(r'["\\\x00-\x1f\x7f]', lambda m: _TOML_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"),
                        s) + '"'


def _toml_list(items: Sequence[Any]) -> str:
    return "[" + ", ".join(_toml_str(x) if isinstance(x, str) else str(x) for x in items) + "]"


def _ret_text(ret: int) -> int | str:
    """A return as a litmus file writes it: the errno or fault name where there is one."""
    name = errno_name(ret)
    return ret if ret >= 0 or name == str(ret) else name


def litmus_from_trace(model: Model, trace: Trace, title: str, prop: str | None = None,
                      source: str = "") -> str:
    """A trace as litmus-file text: its steps, the returns the model gives and the claims that
    fire, ready to edit into a question of one's own. The exporter is written by name; a policy
    that is not the catalog's of that name is written as a ``[knobs]`` comment to turn into a
    policy file."""
    mon = Monitor(model, PROPERTIES)
    got = mon.replayed(trace).claims(mon.props)
    claims = list(get_property(prop).claims) if prop else sorted(got)
    pol = model.policy
    lines = [f"# Written by dmabuf-check{' from ' + source if source else ''}.",
             "# Edit the steps to ask the model another question; run with: dmabuf-check litmus FILE"]
    cat = CATALOG.get(pol.name)
    if cat is None or any(getattr(cat, k) != getattr(pol, k) for k in KNOBS):
        lines.append(f"# The exporter {pol.name!r} is not the catalog's: save these knobs as a policy "
                     f"file and name it in 'exporter':")
        lines.append(f"#   name = {_toml_str(pol.name)}")
        lines.append("#   [knobs]")
        lines += [f"#   {k} = {str(getattr(pol, k)).lower() if isinstance(getattr(pol, k), bool) else _toml_str(getattr(pol, k))}"
                  for k in KNOBS if getattr(pol, k) != KNOBS[k].default]
    lines += [
        f"title = {_toml_str(title)}",
        f"claims = {_toml_list(claims)}",
        f"exporter = {_toml_str(pol.name)}",
        f"revision = {_toml_str(model.revision)}",
        f"scope = {_toml_str(model.scope.name)}",
        "steps = [",
        *(f"  {_toml_str(st.call())}," for st in trace.steps),
        "]",
        "",
        "[expect]",
        "returns = " + _toml_list([_ret_text(st.ret) for st in trace.steps]),
        f"fires = {_toml_list(sorted(got))}",
    ]
    return "\n".join(lines) + "\n"

