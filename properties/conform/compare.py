"""Compare what real kernels did with what the model predicted, and explain known differences.

For every step of every trace the kernel's outcome (``StepResult.outcome``) is checked against
the model's prediction (``translate.Step.expect``): return values and errnos exactly, loads by
value (``val=*`` accepts any value). A step that differs is *known* when an entry of the
known-differences file (``known.toml`` beside this module) matches it, else a *disagreement*.
A trace agrees when all its steps agree, is known when its only differences are known, is a
disagreement when any step disagrees, and is *unknown* when the kernel's results for it are
incomplete (the trace was killed, timed out, or its output was lost) and nothing disagrees.

Known differences (``known.toml``), one ``[[known]]`` table each::

    id = "vgem-shmem-fault-ignores-pgoff"     # unique, kebab-case
    kernel = ["6.1.*", "6.12.*"]              # fnmatch patterns on `uname -r`
    exporter = "vgem"                          # runner exporter, or "*"
    op = "read"                                # runner op, or "*"
    expected = "val=*"                         # fnmatch pattern on the model's prediction
    got = "val=*"                              # fnmatch pattern on the kernel's outcome
    semantics = "mmap-ignores-pgoff"           # optional: the kernel's value must be what this
                                               # variant of the page mapping predicts (SEMANTICS)
    kind = "kernel"                            # "kernel": the kernel differs from the v4.11
                                               # documentation; "model": a model limitation
    source_version = "6.12.95-1~bpo12+1"       # optional: the Debian source the lines are of
    source = [                                 # optional (with source_version): each kernel line
      { file = "drivers/gpu/drm/drm_gem_shmem_helper.c", line = 523,   # the explanation quotes
        function = "drm_gem_shmem_fault",
        code = "page_offset = (vmf->address - vma->vm_start) >> PAGE_SHIFT;" },
    ]
    explanation = "..."                        # why, with the kernel source that does it

Patterns use ``fnmatch`` syntax, so ``val=*`` in ``expected``/``got`` matches any load.
"""
from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from model.files import FileProblem, parse_toml, read_text

from .protocol import GuestResult, StepResult, TraceResult
from .translate import ConformTrace, Step, access_predictions, buffer_page, outcome_matches

__all__ = [
    "KNOWN_FILE",
    "SEMANTICS",
    "Known",
    "KnownError",
    "SourceLine",
    "load_known",
    "StepVerdict",
    "TraceVerdict",
    "Summary",
    "compare_trace",
    "compare_result",
    "summarise",
]

KNOWN_FILE = Path(__file__).resolve().parent / "known.toml"


def _page_ignoring_pgoff(step: Step) -> int:
    assert step.page is not None
    return step.page


#: variants of the mapping from (vma page) to buffer page that a kernel may implement;
#: name -> the buffer page a read or write of ``step`` touches
SEMANTICS: Mapping[str, Callable[[Step], int]] = {
    "model": buffer_page,
    "mmap-ignores-pgoff": _page_ignoring_pgoff,
}


class KnownError(ValueError):
    """A malformed known-differences file; the message names the file and the entry."""


@dataclass(frozen=True)
class SourceLine:
    """A kernel line an explanation quotes: ``code`` is line ``line`` of ``file`` (stripped of its
    indentation) in the Debian source of the entry's ``source_version``."""
    file: str
    line: int
    function: str
    code: str

    def label(self, version: str) -> str:
        return f"{self.file}:{self.line} {self.function}() ({version})"


@dataclass(frozen=True)
class Known:
    id: str
    kernel: tuple[str, ...]
    exporter: str
    op: str
    expected: str
    got: str
    explanation: str
    kind: str = "kernel"
    semantics: str | None = None
    source_version: str = ""
    source: tuple[SourceLine, ...] = ()

    def matches(self, uname: str, exporter: str, step: Step, got: str, alt: str | None) -> bool:
        """Does this entry explain ``step`` predicted ``step.expect`` but seeing ``got``?
        ``alt`` is the prediction under ``self.semantics`` (None when it has none)."""
        if not any(fnmatch.fnmatchcase(uname, k) for k in self.kernel):
            return False
        if self.exporter != "*" and self.exporter != exporter:
            return False
        if self.op != "*" and self.op != step.op:
            return False
        if not fnmatch.fnmatchcase(step.expect, self.expected) or not fnmatch.fnmatchcase(got, self.got):
            return False
        if self.semantics is not None:
            return alt is not None and outcome_matches(alt, got)
        return True


_KNOWN_KEYS = {"id", "kernel", "exporter", "op", "expected", "got", "explanation", "kind", "semantics",
               "source", "source_version"}
_SOURCE_KEYS = {"file", "line", "function", "code"}


def _source_lines(e: dict, where: str) -> tuple[str, tuple[SourceLine, ...]]:
    """An entry's ``source_version`` and ``source`` (both or neither); KnownError on bad input."""
    if "source" not in e and "source_version" not in e:
        return "", ()
    version, lines = e.get("source_version"), e.get("source")
    if not isinstance(version, str) or not version.strip():
        raise KnownError(f"{where}: 'source' needs 'source_version', the Debian version of the source")
    if not isinstance(lines, list) or not lines:
        raise KnownError(f"{where}: 'source' must be a non-empty array of tables (file, line, function, code)")
    out = []
    for i, t in enumerate(lines, 1):
        at = f"{where}: source #{i}"
        if not isinstance(t, dict) or set(t) != _SOURCE_KEYS:
            raise KnownError(f"{at}: must be a table with exactly {', '.join(sorted(_SOURCE_KEYS))}")
        if not isinstance(t["line"], int) or isinstance(t["line"], bool) or t["line"] < 1:
            raise KnownError(f"{at}: 'line' must be a positive integer")
        for key in ("file", "function", "code"):
            if not isinstance(t[key], str) or not t[key].strip():
                raise KnownError(f"{at}: {key!r} must be a non-empty string")
        if " ".join(t["code"].split()) not in " ".join(e["explanation"].split()):
            raise KnownError(f"{at}: the explanation does not quote its code {t['code']!r}")
        out.append(SourceLine(t["file"], t["line"], t["function"], t["code"]))
    return version, tuple(out)


def load_known(path: str | Path = KNOWN_FILE) -> tuple[Known, ...]:
    """Read the known-differences file; KnownError names the file and the entry on bad input."""
    p = Path(path)
    try:
        data = parse_toml(read_text(p))
    except FileProblem as e:
        raise KnownError(f"{p}: {e}") from None
    extra = set(data) - {"known"}
    if extra:
        raise KnownError(f"{p}: unknown top-level key {sorted(extra)[0]!r} (only [[known]] tables)")
    entries = data.get("known", [])
    if not isinstance(entries, list):
        raise KnownError(f"{p}: 'known' must be an array of tables ([[known]])")
    out: list[Known] = []
    seen: set[str] = set()
    for n, e in enumerate(entries, 1):
        where = f"{p}: [[known]] #{n}"
        if not isinstance(e, dict):
            raise KnownError(f"{where}: not a table")
        if "id" in e:
            where += f" ({e['id']})"
        bad = set(e) - _KNOWN_KEYS
        if bad:
            raise KnownError(f"{where}: unknown key {sorted(bad)[0]!r} (allowed: {', '.join(sorted(_KNOWN_KEYS))})")
        for key in ("id", "kernel", "exporter", "op", "expected", "got", "explanation"):
            if key not in e:
                raise KnownError(f"{where}: missing key {key!r}")
        kern = e["kernel"]
        if isinstance(kern, str):
            kern = [kern]
        if not isinstance(kern, list) or not kern or not all(isinstance(k, str) and k for k in kern):
            raise KnownError(f"{where}: 'kernel' must be a pattern or a non-empty list of patterns")
        for key in ("id", "exporter", "op", "expected", "got", "explanation"):
            if not isinstance(e[key], str) or not e[key].strip():
                raise KnownError(f"{where}: {key!r} must be a non-empty string")
        if e["id"] in seen:
            raise KnownError(f"{where}: id {e['id']!r} used twice")
        seen.add(e["id"])
        kind = e.get("kind", "kernel")
        if not isinstance(kind, str) or kind not in ("kernel", "model"):
            raise KnownError(f"{where}: 'kind' must be \"kernel\" or \"model\", got {kind!r}")
        sem = e.get("semantics")
        if sem is not None and (not isinstance(sem, str) or sem not in SEMANTICS):
            raise KnownError(f"{where}: unknown semantics {sem!r} (known: {', '.join(SEMANTICS)})")
        version, source = _source_lines(e, where)
        out.append(Known(id=e["id"], kernel=tuple(kern), exporter=e["exporter"], op=e["op"],
                         expected=e["expected"], got=e["got"], explanation=" ".join(e["explanation"].split()),
                         kind=kind, semantics=sem, source_version=version, source=source))
    return tuple(out)


# --------------------------------------------------------------------------------------
# comparison


@dataclass(frozen=True)
class StepVerdict:
    index: int
    step: Step
    got: str | None  # kernel outcome; None when the kernel has no result for this step
    status: str  # agree | known | disagree | missing
    known: str | None = None  # id of the known difference

    def line(self) -> str:
        got = self.got if self.got is not None else "(no result)"
        mark = {"agree": " ", "known": "k", "disagree": "X", "missing": "?"}[self.status]
        note = f"   known: {self.known}" if self.known else ""
        return f"{mark} {self.index:3d}. {self.step.runner():<40s} model {self.step.expect:<24s} kernel {got}{note}"


@dataclass(frozen=True)
class TraceVerdict:
    trace: ConformTrace
    result: TraceResult | None
    steps: tuple[StepVerdict, ...]
    status: str  # agree | known | disagree | unknown
    reason: str = ""  # for unknown: why the kernel's results are incomplete

    @property
    def first_difference(self) -> StepVerdict | None:
        for s in self.steps:
            if s.status in ("disagree", "known"):
                return s
        return None

    def render(self, upto_first_disagreement: bool = False) -> str:
        src = f", {self.trace.source}" if self.trace.source else ""
        lines = [f"trace {self.trace.id} ({self.trace.exporter}, policy {self.trace.policy}, "
                 f"{self.trace.npages} pages{src}): {self.status}"
                 + (f" ({self.reason})" if self.reason else "")]
        last = len(self.steps)
        if upto_first_disagreement:
            for s in self.steps:
                if s.status == "disagree":
                    last = s.index + 1
                    break
        for s in self.steps[:last]:
            lines.append("  " + s.line())
        for note in self.trace.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _alternatives(trace: ConformTrace, known: Sequence[Known]) -> dict[str, list[str | None]]:
    """Per semantics used by ``known``: the prediction of every step under that semantics
    (only reads change; None where the semantics says nothing different)."""
    return {sem: access_predictions(trace.steps, SEMANTICS[sem])
            for sem in sorted({k.semantics for k in known if k.semantics})}


def compare_trace(trace: ConformTrace, result: TraceResult | None, uname: str,
                  known: Sequence[Known] = ()) -> TraceVerdict:
    """Compare one trace's predictions with the kernel's results for it."""
    got_steps: Sequence[StepResult] = result.steps if result is not None else ()
    alts = _alternatives(trace, known)
    verdicts: list[StepVerdict] = []
    for i, s in enumerate(trace.steps):
        if i >= len(got_steps) or got_steps[i].err == "lost":
            verdicts.append(StepVerdict(i, s, None, "missing"))
            continue
        got = got_steps[i].outcome
        if got_steps[i].op != s.op:
            verdicts.append(StepVerdict(i, s, f"{got} (op {got_steps[i].op})", "disagree"))
            continue
        if outcome_matches(s.expect, got):
            verdicts.append(StepVerdict(i, s, got, "agree"))
            continue
        hit = next((k for k in known if k.matches(uname, trace.exporter, s, got,
                                                  alts[k.semantics][i] if k.semantics else None)), None)
        verdicts.append(StepVerdict(i, s, got, "known" if hit else "disagree", hit.id if hit else None))
    statuses = {v.status for v in verdicts}
    complete = result is not None and result.complete
    if "disagree" in statuses:
        status = "disagree"
    elif not complete or "missing" in statuses:
        status = "unknown"
    elif "known" in statuses:
        status = "known"
    else:
        status = "agree"
    reason = ""
    if status == "unknown":
        reason = result.reason if result is not None and result.reason else "no results for this trace"
    return TraceVerdict(trace, result, tuple(verdicts), status, reason)


def compare_result(traces: Sequence[ConformTrace], result: GuestResult,
                   known: Sequence[Known] = ()) -> list[TraceVerdict]:
    """Compare every trace sent in one boot with that boot's results."""
    by_id = {t.id: t for t in result.traces}
    return [compare_trace(t, by_id.get(t.id), result.uname, known) for t in traces]


@dataclass(frozen=True)
class Summary:
    """Agreement of one (kernel, exporter) pair."""

    kernel: str  # catalog key
    uname: str
    exporter: str
    policy: str
    traces: int
    steps: int
    agree: int  # traces
    known: int
    disagree: int
    unknown: int
    steps_agree: int
    steps_known: int
    steps_disagree: int
    loads: int  # reads compared by value
    known_ids: Mapping[str, int] = field(default_factory=dict)  # known difference -> steps

    @property
    def rate(self) -> float:
        """Share of traces that agree with the model or differ only in known ways."""
        return (self.agree + self.known) / self.traces if self.traces else 0.0

    @property
    def passed(self) -> bool:
        return self.disagree == 0 and self.unknown == 0

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "uname": self.uname, "exporter": self.exporter,
                "policy": self.policy, "traces": self.traces, "steps": self.steps,
                "agree": self.agree, "known": self.known, "disagree": self.disagree,
                "unknown": self.unknown, "rate": round(self.rate, 6),
                "steps_agree": self.steps_agree, "steps_known": self.steps_known,
                "steps_disagree": self.steps_disagree, "loads": self.loads,
                "known_differences": dict(self.known_ids)}


def summarise(kernel: str, uname: str, verdicts: Iterable[TraceVerdict]) -> list[Summary]:
    """One Summary per exporter, in the order the exporters first appear."""
    groups: dict[str, list[TraceVerdict]] = {}
    for v in verdicts:
        groups.setdefault(v.trace.exporter, []).append(v)
    out = []
    for exporter, vs in groups.items():
        st = Counter(v.status for v in vs)
        steps = [s for v in vs for s in v.steps]
        sst = Counter(s.status for s in steps)
        kid = Counter(s.known for s in steps if s.known)
        loads = sum(1 for s in steps if s.step.op in ("read", "kread") and s.got is not None and s.got.startswith("val="))
        out.append(Summary(kernel=kernel, uname=uname, exporter=exporter, policy=vs[0].trace.policy,
                           traces=len(vs), steps=len(steps), agree=st["agree"], known=st["known"],
                           disagree=st["disagree"], unknown=st["unknown"], steps_agree=sst["agree"],
                           steps_known=sst["known"], steps_disagree=sst["disagree"], loads=loads,
                           known_ids=dict(sorted(kid.items()))))
    return out
