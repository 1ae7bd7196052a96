"""The spec-review report as a document: Markdown, and one self-contained HTML file (inline CSS,
no script, no external reference; every link is an anchor inside the file).

The document is built once as a list of blocks (headings with anchors, paragraphs, bullet lists,
tables, quotes, code) whose text uses a small inline markup: `code`, **bold**,
``[[claim:ID]]`` (a link to the claim's section), ``[[trace:rev/engine/exporter/PID|label]]``
(a link to that verdict's trace), ``[[sec:anchor|label]]`` and ``[[src:FILE:LINE@COMMIT]]`` (a
kernel source line: in Markdown a link to git.kernel.org, in the HTML the same text and the address
as text, never a link, so that the file references nothing outside itself). Both outputs are rendered from the
same blocks, so they say the same thing. Traces are rendered with ``properties.trace.render``
(kernel calls with their returns, the fields that changed, the events and the properties that
fire), one section each, shared by every verdict whose trace reads the same; each is also written
as an ITF file that ``dmabuf-check replay`` re-runs.

Sections: findings; the claims one by one (quote, source, properties, verdict per exporter,
engine and revision); the revision comparison; the exporter policies; the runs and their
evidence; the traces; reproducibility (version, seed, budgets, commands).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from model.policy import REVISIONS, export_refusal

from ..claims import CHANGES, NOT_MODELLED, claim_revisions, load_claims
from ..index import PROPERTIES, by_claim, get_property
from ..monitor import Monitor
from ..scenarios.itf import trace_filename, write_itf
from ..scenarios.litmus import litmus_from_trace
from ..trace import Trace, render, trace_model
from .atomic import write_text_atomic
from .sources import SourceLine, claim_sources, source_url
from .doc_patch import DOC_EDITS, DocEdit, build_patch, edits_for
from ..attribution import CLASSES, CONTEXT, PERMISSIVE, RULES
from .review import (SEVERITIES, ClaimStatus, Finding, ReviewData, TraceRef, claim_status, engine_words,
                     exporter_kind, finding_sources, findings, guarantee_note, trace_note)

__all__ = ["Heading", "Para", "Bullets", "Table", "Quote", "Code", "Details", "Document", "build", "to_markdown",
           "to_html", "write_review", "anchor", "src_markup"]


# --- blocks ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]       # the first row is the header


@dataclass(frozen=True)
class Quote:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Details:
    """Blocks shown collapsed under a one-line summary (HTML ``<details>``; Markdown the same
    element, which Markdown viewers render as HTML)."""

    summary: str
    blocks: tuple


@dataclass
class Document:
    title: str
    blocks: list
    traces: dict[str, str]                   # trace key -> anchor
    itf: dict[str, str]                      # anchor -> ITF file, relative to the report's folder

    def add(self, *blocks: Any) -> None:
        self.blocks.extend(blocks)


def anchor(*parts: str) -> str:
    """An HTML id: lower case letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _claim_anchor(cid: str) -> str:
    return anchor("claim", cid)


# --- inline markup ----------------------------------------------------------------------------------

_INLINE = re.compile(r"`([^`]*)`|\*\*(.+?)\*\*|\[\[(claim|trace|sec|src):([^\]|]+)(?:\|([^\]]+))?\]\]")


def _src(ref: str) -> tuple[str, str]:
    """``include/linux/dma-buf.h:184@0959a1683d78`` -> (its label, its git.kernel.org address)."""
    where, commit = ref.rsplit("@", 1)
    file, line = where.rsplit(":", 1)
    return f"{file}:{line} @ {commit}", source_url(file, commit, int(line))


def src_markup(s: SourceLine) -> str:
    """A source line as inline markup: ``[[src:...]]`` with a line, else the file, the section and
    why the project's data gives no line."""
    if s.line is None:
        return f"`{s.label()}`, no line number: {s.note}"
    return f"[[src:{s.file}:{s.line}@{s.commit}]]"


def _link_target(kind: str, ref: str, doc: Document) -> tuple[str, str] | None:
    if kind == "claim":
        return "#" + _claim_anchor(ref), ref
    if kind == "trace":
        a = doc.traces.get(ref)
        return ("#" + a, "trace") if a else None
    return "#" + ref, ref


def _md_inline(text: str, doc: Document, in_table: bool = False) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) is not None:
            return m.group(0)
        if m.group(2) is not None:
            return m.group(0)
        if m.group(3) == "src":
            label, url = _src(m.group(4))
            return f"[`{label}`]({url})"
        target = _link_target(m.group(3), m.group(4), doc)
        label = m.group(5)
        if target is None:
            return label or m.group(4)
        return f"[{label or target[1]}]({target[0]})"

    out = _INLINE.sub(sub, text)
    if in_table:
        out = out.replace("|", "\\|").replace("\n", " ")
    return out


def _html_inline(text: str, doc: Document) -> str:
    out = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        elif m.group(2) is not None:
            out.append(f"<strong>{_html_inline(m.group(2), doc)}</strong>")
        elif m.group(3) == "src":
            # the address as text: the file stays free of references outside itself
            label, url = _src(m.group(4))
            out.append(f"<code>{html.escape(label)}</code> (<code>{html.escape(url)}</code>)")
        else:
            target = _link_target(m.group(3), m.group(4), doc)
            label = m.group(5)
            if target is None:
                out.append(html.escape(label or m.group(4)))
            else:
                if not target[0].startswith("#"):  # pragma: no cover - every link is internal
                    raise ValueError(f"external link {target[0]!r}")
                # a label's own markup (`code`, **bold**) is rendered, never shown as backticks
                out.append(f'<a href="{html.escape(target[0])}">{_html_inline(label or target[1], doc)}</a>')
    out.append(html.escape(text[pos:]))
    return "".join(out)


# --- rendering ----------------------------------------------------------------------------------------

def to_markdown(doc: Document) -> str:
    return "\n\n".join(_md_blocks(doc.blocks, doc)) + "\n"


def _md_blocks(blocks, doc: Document) -> list[str]:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Details):
            out.append(f"<details><summary>{_html_inline(b.summary, doc)}</summary>")
            out += _md_blocks(b.blocks, doc)
            out.append("</details>")
        elif isinstance(b, Heading):
            out.append(f'{"#" * b.level} <a id="{b.anchor}"></a>{_md_inline(b.text, doc)}')
        elif isinstance(b, Para):
            out.append(_md_inline(b.text, doc))
        elif isinstance(b, Bullets):
            out.append("\n".join("- " + _md_inline(i, doc).replace("\n", "\n  ") for i in b.items))
        elif isinstance(b, Quote):
            out.append("\n".join("> " + line for line in _md_inline(b.text, doc).splitlines()))
        elif isinstance(b, Code):
            out.append("```\n" + b.text.rstrip("\n") + "\n```")
        elif isinstance(b, Table):
            head, *rows = b.rows
            lines = ["| " + " | ".join(_md_inline(c, doc, True) for c in head) + " |",
                     "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md_inline(c, doc, True) for c in r) + " |" for r in rows]
            out.append("\n".join(lines))
    return out


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;line-height:1.45;margin:0 auto;
max-width:72rem;padding:1rem 2rem;color:#1d1d1f;background:#fff}
h1{font-size:1.7rem;border-bottom:2px solid #ccc;padding-bottom:.3rem}
h2{font-size:1.35rem;border-bottom:1px solid #ddd;margin-top:2.2rem}
h3{font-size:1.12rem;margin-top:1.6rem}h4{font-size:1rem}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:.86em}
code{background:#f3f3f5;padding:0 .2em;border-radius:3px}
pre{background:#f6f6f8;border:1px solid #e2e2e6;padding:.6rem .8rem;overflow-x:auto;line-height:1.3}
pre code{background:none;padding:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9em}
th,td{border:1px solid #d6d6da;padding:.25rem .45rem;vertical-align:top;text-align:left}
th{background:#f0f0f3}
blockquote{margin:.5rem 0;padding:.3rem .9rem;border-left:4px solid #9aa7c7;background:#f6f8fc}
a{color:#1a4fa0;text-decoration:none}a:hover{text-decoration:underline}
:target{background:#fff6d5}
details{margin:.4rem 0;padding:.2rem .6rem;border:1px solid #e2e2e6;border-radius:4px}
summary{cursor:pointer;font-weight:600}
.back{font-size:.85em}
"""


def to_html(doc: Document) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(doc.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    out += _html_blocks(doc.blocks, doc)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_blocks(blocks, doc: Document) -> list[str]:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Details):
            out.append(f"<details><summary>{_html_inline(b.summary, doc)}</summary>")
            out += _html_blocks(b.blocks, doc)
            out.append("</details>")
        elif isinstance(b, Heading):
            out.append(f'<h{b.level} id="{b.anchor}">{_html_inline(b.text, doc)}</h{b.level}>')
        elif isinstance(b, Para):
            out.append(f"<p>{_html_inline(b.text, doc)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i, doc)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Quote):
            out.append(f"<blockquote><p>{_html_inline(b.text, doc)}</p></blockquote>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text.rstrip())}</code></pre>")
        elif isinstance(b, Table):
            head, *rows = b.rows
            out.append("<table><thead><tr>" + "".join(f"<th>{_html_inline(c, doc)}</th>" for c in head)
                       + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{_html_inline(c, doc)}</td>" for c in r) + "</tr>"
                                 for r in rows)
                       + "</tbody></table>")
    return out


# --- building the document ----------------------------------------------------------------------------

_VERB = {"holds": "holds", "proved": "proved", "violated": "violated", "unknown": "unknown"}


def _verdict_text(v, kind: str) -> str:
    if v is None:
        return "n/a"
    if kind in ("witness",):
        return "reached" if v.verdict == "holds" else ("unreachable" if v.verdict == "violated" else v.verdict)
    if kind == "undefined":
        return "reached" if v.verdict == "violated" else ("unreached" if v.verdict == "holds" else v.verdict)
    if v.verdict == "holds" and v.engine == "z3":
        return f"holds to depth {v.evidence.get('depth', '?')}"
    if v.engine == "portfolio" and v.verdict in ("holds", "proved") and guarantee_note(v):
        return f"{_VERB[v.verdict]} ({guarantee_note(v)})"
    return _VERB[v.verdict]


class _Builder:
    def __init__(self, data: ReviewData, out_dir: Path | None) -> None:
        self.data = data
        self.out_dir = out_dir
        self.doc = Document("dma-buf CPU access: spec-review report", [], {}, {})
        self.trace_users: dict[str, list[TraceRef]] = {}     # anchor -> verdicts sharing the trace
        self.trace_text: dict[str, str] = {}
        self._monitors: dict[tuple[str, str, str], Monitor] = {}

    # traces
    def register(self, ref: TraceRef) -> str | None:
        key = ref.key()
        if key in self.doc.traces:
            return self.doc.traces[key]
        trace = self.data.trace(ref)
        if trace is None:
            return None
        v = self.data.verdict(ref.revision, ref.engine, ref.exporter, ref.property)
        # a portfolio trace that shows only on its exhaustive scope runs on that scope's model
        model = trace_model(self.data.model(ref.revision, ref.exporter), v.evidence)
        mk = (ref.revision, ref.exporter, model.scope.name)
        if mk not in self._monitors:
            self._monitors[mk] = Monitor(model, PROPERTIES)
        text = render(model, trace, self._monitors[mk].replayed(trace).fired)
        where = ref.revision if model.scope == self.data.config.scope else f"{ref.revision}\n{model.scope.name}"
        a = "t-" + hashlib.sha1(f"{where}\n{text}".encode()).hexdigest()[:10]
        self.doc.traces[key] = a
        if a not in self.trace_text:
            self.trace_text[a] = text
            self.trace_users[a] = []
            if self.out_dir is not None:
                rel = Path("traces") / ref.revision / ref.engine / trace_filename(ref.exporter, ref.property)
                path = write_itf(self.out_dir / rel, model, trace, prop=ref.property, verdict=v.verdict,
                                 engine=ref.engine, seed=self.data.config.seed, claims=tuple(v.claims))
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(path, 0o666 & ~mask)
                self.doc.itf[a] = rel.as_posix()
        self.trace_users[a].append(ref)
        return a

    def tlink(self, ref: TraceRef, label: str) -> str:
        return f"[[trace:{ref.key()}|{label}]]" if self.register(ref) else label

    def register_markup(self, text: str) -> None:
        for m in _INLINE.finditer(text):
            if m.group(3) == "trace":
                rev, engine, exporter, pid = m.group(4).split("/", 3)
                self.register(TraceRef(rev, engine, exporter, pid))

    # sections
    def build(self, fs: Sequence[Finding]) -> Document:
        d = self.data
        cfg = d.config
        doc = self.doc
        run = {rev: d.engines_run(rev) for rev in REVISIONS}
        doc.add(Heading(1, doc.title, "top"))
        self.summary(fs)
        doc.add(Para(
            "Every claim of the dma-buf CPU-access documentation (`spec/claims.md`: the v4.11 kerneldoc of "
            "`struct dma_buf_ops`, \"DOC: cpu access\", \"DOC: dma buf device access\", the code, the uapi, and "
            "the v5.12 and v6.12 revisions), what the model makes of it, and the evidence: per exporter policy, per engine "
            "and per documentation revision, the verdict of every property that formalises it, with a trace for "
            "every violation and every undefined behaviour reached. The findings come first; each links to its "
            "evidence."))
        doc.add(Bullets((
            f"dmabuf-check {d.version}; scope `{cfg.scope.name}` ({cfg.scope.buffers} buffers, {cfg.scope.pages} "
            f"pages, {cfg.scope.fds} fds, {cfg.scope.vmas} mappings, {cfg.scope.attachments} attachments); seed "
            f"{cfg.seed}; {len(cfg.exporters)} exporter policies.",
            "Engines run: " + "; ".join(f"{rev}: {', '.join(run[rev]) or 'none'}" for rev in REVISIONS)
            + ". Status of every engine: " + ", ".join(f"{e} {s}" for e, s in d.engine_status.items()) + "."
            + (f" The findings read the verdicts of the {engine_words(d, 'portfolio')}; per exporter, a "
               "property one stage shows violated (or a witness it reaches) is not checked again by the next."
               if any("portfolio" in run[r] for r in REVISIONS) else ""),
            "Verdicts: `holds` (no violation within the budget), `proved` (Z3 induction: every depth), "
            "`holds to depth N` (Z3 bounded check), `violated` (with a trace), `unknown` (budget or solver "
            "timeout: never a pass); for undefined behaviour `reached`/`unreached`, for witnesses "
            "`reached`/`unreachable`; `n/a`: the property does not apply to that policy or revision."
            + (f" A portfolio verdict says what it covers: `holds (exhaustive, tiny)` (every reachable state "
               f"and step of the tiny scope), `holds (bounded, {cfg.scope.name}, depth {cfg.portfolio_depth})` "
               f"(every run of up to {cfg.portfolio_depth} steps), `holds (sampled, {cfg.scope.name})` (only the "
               f"runs Hypothesis drew), `proved (<induction>, {cfg.scope.name})` (every depth); a violation says "
               f"which stage found its trace and what that stage covers (`violated (N steps; explicit: "
               f"exhaustive, tiny)`: found by the exhaustive search of tiny, the trace replayed on "
               f"`{cfg.scope.name}`; `N steps on tiny`: the trace shows on tiny only)."
               if any("portfolio" in run[r] for r in REVISIONS) else ""),
            "[[sec:reproducibility|Reproducibility]]: the commands that regenerate each verdict.")))
        toc = [("summary", "Summary"), ("findings", "Findings"), ("attribution", "Who is at fault: the rules"),
               ("claims", "The claims, one by one"),
               ("revisions", "Revision comparison: v4.11 and v5.12"), ("switches", "Semantic switches by revision"),
               ("exporters", "Exporter policies"), ("runs", "Runs and their evidence"), ("traces", "Traces"),
               ("reproducibility", "Reproducibility")]
        doc.add(Heading(2, "Contents", "contents"), Bullets(tuple(f"[[sec:{a}|{t}]]" for a, t in toc)))
        self.findings(fs)
        self.attribution()
        self.claims()
        self.revisions()
        self.switches()
        self.exporters()
        self.runs()
        self.traces()
        self.reproducibility()
        return doc

    def summary(self, fs: Sequence[Finding]) -> None:
        """The page a maintainer reads first: one row per finding (class, severity, proposed
        action), most severe first, and what did not go as expected."""
        doc, d = self.doc, self.data
        doc.add(Heading(2, "Summary", "summary"))
        doc.add(Para(
            f"{len(fs)} findings on the dma-buf CPU-access documentation (v4.11, and what v5.12 did), each "
            "classified by who is at fault ([[sec:attribution|the rules]]): a *documentation defect* (the text "
            "contradicts itself or the code, or is stale), a *core defect* (the core's own ordering or checks make a "
            "rule impossible to keep), an *exporter defect* (a driver breaks a rule it could keep) or a *caller "
            "obligation* (undefined behaviour the core does not prevent). Evidence and traces follow, per exporter "
            "collapsed under each finding."))
        order = {s: i for i, s in enumerate(SEVERITIES)}
        rows: list[tuple[str, ...]] = [("finding", "class", "severity", "proposed action")]
        for f in sorted(fs, key=lambda f: (order.get(f.severity, len(order)), f.id)):
            rows.append((f"[[sec:{anchor('finding', f.id)}|{f.id}. {f.title}]]", CLASSES[f.cls], f.severity,
                         f.action or "-"))
        doc.add(Table(tuple(rows)))
        refused = [n for rev in REVISIONS for n in d.not_exportable(rev)]
        if refused:
            doc.add(Para("Not exportable, so not checked, at a revision (that revision's `dma_buf_export()` refuses "
                         "the policy's ops; nothing is claimed about them there): "
                         + "; ".join(n.sentence("checked at " + (", ".join(r for r in REVISIONS if r in n.exportable_at
                                                                         and r in self._checked(n.exporter))
                                                              or "no revision") + " only") for n in refused) + "."))
        mism = d.mismatches()
        doc.add(Para(
            (f"**{len(mism)} outcomes not as expected** ([[sec:mismatches|listed]]): never counted as passes; "
             "`dmabuf-check review` exits 1." if mism else "Every outcome is as the catalog declares.")
            + (" Interrupted: the report holds what was found before the stop." if d.interrupted else "")))

    def _checked(self, exporter: str) -> list[str]:
        """The revisions at which ``exporter`` was checked."""
        return [r for r in REVISIONS if any(p.name == exporter for p in self.data.exporters(r))]

    def findings(self, fs: Sequence[Finding]) -> None:
        doc = self.doc
        doc.add(Heading(2, "Findings", "findings"))
        doc.add(Bullets(tuple(f"[[sec:{anchor('finding', f.id)}|{f.id}. {f.title}]]" for f in fs)))
        for f in fs:
            doc.add(Heading(3, f"{f.id}. {f.title}", anchor("finding", f.id)))
            hunks = patch_edits(f)
            lit = finding_trace(self.data, f)
            doc.add(Bullets((f"Class: **{CLASSES[f.cls]}**" + (f": {f.reason}" if f.reason else "") + ".",
                             f"Severity: {f.severity}. Proposed action: {f.action or 'none'}.",
                             "Claims: " + ", ".join(f"[[claim:{c}]]" for c in f.claims) + ".")
                            + ((f"Proposed wording: `review.patch`, {_hunk_words(hunks)}.",) if hunks else ())
                            + ((f"Minimal litmus: `{litmus_path(f)}`, the shortest trace of its evidence "
                                f"([[trace:{lit[0].key()}|{len(lit[1].steps)} steps]]: `{lit[0].exporter}` at "
                                f"{lit[0].revision}, `{lit[0].property}`); `dmabuf-check litmus` runs it.",)
                               if lit else ())))
            self.sentences(f)
            doc.add(Para(f.summary))
            for e in f.evidence:
                self.evidence(e, doc.blocks)
            for name, e in f.detail:
                inner: list = []
                self.evidence(e, inner)
                doc.add(Details(f"`{name}`" + (f": {len(e.refs)} violation{'' if len(e.refs) == 1 else 's'}"
                                               if e.refs else ": none"), tuple(inner)))
        doc.add(Heading(3, "Outcomes not as expected", "mismatches"))
        rows = _mismatch_rows(self.data)
        if len(rows) > 1:
            doc.add(Para(f"{len(self.data.mismatches())} outcomes differ from what the catalog declares. They are "
                         "listed here, never counted as passes, and make `dmabuf-check review` exit 1. Most are the "
                         "budget's (a witness not reached within the examples or the depth, an expected violation "
                         "not found, an exhaustive search cut by its budget), and a larger budget (`--examples`, "
                         "`--depth`, `--portfolio-depth`, `--max-states`) or the portfolio, which searches the tiny "
                         "scope exhaustively, settles them."))
            doc.add(Table(tuple(rows)))
        else:
            doc.add(Para("None: every judged verdict of every engine is the one the catalog declares."))
        beyond = self.data.beyond_bound()
        if beyond:
            doc.add(Para(f"Not counted above ({len(beyond)}): a bounded check (Z3, `holds` up to its depth, not "
                         "proved) that misses a violation another engine of this review shows with a longer "
                         "trace. It does not contradict that engine; `--depth` at least the trace's length "
                         "lets Z3 find it too."))
            doc.add(Table((("run", "outcome"),) + tuple((m.split(": ", 1)[0], f"`{m.split(': ', 1)[1]}`")
                                                       for m in beyond)))

    def sentences(self, f: Finding) -> None:
        """The kernel sentences a finding is about: each quote, its claim, and its file and line at
        the revision (or why the project's data has no line for it)."""
        src = finding_sources(f)
        if not src:
            self.doc.add(Para("Kernel sentences: none quoted; the claims of this finding are the project's "
                              "readings of the code."))
            return
        items = tuple(f"[[claim:{cid}]] {src_markup(s)}: \"{s.quote}\"" for cid, s in src)
        lead = (f"The kernel's sentences this finding is about ({len(items)}), verbatim, with file and line at the "
                "revision (the line where the quoted text begins):")
        if len(items) > 6:
            self.doc.add(Details(lead, (Bullets(items),)))
        else:
            self.doc.add(Para(lead), Bullets(items))

    def evidence(self, e, into: list) -> None:
        self.register_markup(e.text)
        for r in e.refs:
            self.register(r)
        into.append(Para(e.text))
        if e.code:
            into.append(Code(e.code))
        if e.table:
            for row in e.table:
                for c in row:
                    self.register_markup(c)
            into.append(Table(e.table))
        if e.refs:
            into.append(Para("Traces: " + ", ".join(self.tlink(r, f"{r.property} ({r.exporter}, {r.revision}, "
                                                                  f"{r.engine})") for r in e.refs) + "."))

    def attribution(self) -> None:
        """The rules that decide each finding's class, from ``properties/attribution.py``."""
        doc = self.doc
        doc.add(Heading(2, "Who is at fault: the rules", "attribution"))
        doc.add(Para("A violation's class follows from the property's kind and party: an `undefined` property is "
                     "a caller obligation, a `tension` one a documentation defect, a `core` one a core defect (only "
                     "a core mutant breaks it), an `exporter` one an exporter defect; except where a rule below says "
                     "otherwise. A claim a property cites for context, or a permissive sentence, is never shown "
                     "broken by it. The rules live in `properties/attribution.py`."))
        rows: list[tuple[str, ...]] = [("property or claim", "class", "why")]
        for pid, r in RULES.items():
            rows.append((f"`{pid}`", CLASSES[r.cls] + (f" (exporter defect when the policy sets `{r.exporter_if}`)"
                                                       if r.exporter_if else ""), r.reason))
        for cid, why in PERMISSIVE.items():
            rows.append((f"[[claim:{cid}]]", CLASSES["none"], why))
        for pid, ctx in CONTEXT.items():
            for cid, why in ctx.items():
                rows.append((f"`{pid}` citing [[claim:{cid}]]", "cited for context: not shown broken", why))
        doc.add(Table(tuple(rows)))

    def claims(self) -> None:
        d, doc = self.data, self.doc
        claims = load_claims()
        doc.add(Heading(2, "The claims, one by one", "claims"))
        engines = {rev: d.engines_run(rev) for rev in REVISIONS}
        cols = [(rev, e) for rev in REVISIONS for e in engines[rev] if e in ("portfolio", "hypothesis", "z3", "explicit")]
        doc.add(Para("For each claim: the sentence and its source, the revisions whose text has it, what v5.12 did "
                     "to it, the properties that formalise it, and their verdicts. In the tables, exporters with "
                     "the same verdicts share a row; every violation and every undefined behaviour reached links to "
                     "its trace; the evidence behind each verdict (examples, distinct states, depth, proof method) "
                     "is in [[sec:runs|Runs and their evidence]]. Engine columns: " +
                     ", ".join(f"{rev} {e}" for rev, e in cols) + "."))
        section = None
        for cid, c in claims.items():
            if c.section != section:
                section = c.section
                doc.add(Heading(3, section, anchor("claims", section)))
            revs = claim_revisions(cid)
            doc.add(Heading(4, f"{cid}", _claim_anchor(cid)))
            if c.kernel:
                doc.add(Quote(c.kernel))
            if c.reading:
                doc.add(Para(f"Reading: {c.reading} (the project's words, not the kernel's)"))
            where = tuple(src_markup(s) for s in claim_sources(c))
            doc.add(Bullets(((f"Where: {'; '.join(where)}.",) if where else ()) + (
                f"Source: {c.source}; carried by: {c.who}; in the documentation of: {', '.join(revs)}.",
                f"At v5.12: {CHANGES.get(cid, 'no note')}.",
                "Verdict: " + "; ".join(f"{rev}: {self.status_text(claim_status(d, cid, rev))}" for rev in REVISIONS)
                + ".")))
            props = [p for p in by_claim(cid)]
            if cid in NOT_MODELLED:
                doc.add(Para(f"Not modelled as a property: {NOT_MODELLED[cid]}"))
            if not props:
                if cid not in NOT_MODELLED:
                    doc.add(Para("No property formalises this claim."))
                continue
            doc.add(Para("Formalised by: " + "; ".join(
                f"`{p.id}` ({p.kind}, {p.party}, {'/'.join(p.revisions)}): {p.doc}" for p in props) + "."))
            header = ("property", "exporters", *(f"{rev} {e}" for rev, e in cols))
            rows: list[tuple[str, ...]] = [header]
            for p in props:
                groups: dict[tuple[str, ...], list[str]] = {}
                for pol in d.config.exporters:
                    cells = []
                    for rev, e in cols:
                        if rev not in p.revisions:
                            cells.append("not in this revision")
                            continue
                        v = d.verdict(rev, e, pol.name, p.id)
                        text = _verdict_text(v, p.kind)
                        if v is not None and v.trace is not None and v.verdict == "violated":
                            text = self.tlink(TraceRef(rev, e, pol.name, p.id), f"{text} ({trace_note(v)})")
                        cells.append(text)
                    groups.setdefault(tuple(cells), []).append(pol.name)
                everyone = [x.name for x in d.config.exporters]
                biggest = max(groups.values(), key=len)
                for cells, names in sorted(groups.items(), key=lambda g: (g[1] is biggest, everyone.index(g[1][0]))):
                    if names is biggest and len(groups) > 1 and len(names) > 3:
                        who = f"every other exporter ({len(names)})"
                    elif len(names) == len(everyone) and len(names) > 3:
                        who = f"every exporter ({len(names)})"
                    else:
                        who = ", ".join(f"`{n}`" for n in names)
                    rows.append((f"`{p.id}`", who, *cells))
            doc.add(Details(f"Verdicts per exporter ({len(rows) - 1} rows)", (Table(tuple(rows)),)))

    def status_text(self, st: ClaimStatus, link: bool = True) -> str:
        if st.state == "absent":
            return "not in this revision's text"
        if st.state == "not-modelled":
            return "not modelled"
        if st.state == "permissive":
            return "permissive text: nobody breaks it (see [[sec:attribution|the rules]])"
        if st.state == "none":
            return "no verdict (formalised by witnesses only)"
        if st.state == "holds":
            return "holds for every exporter"
        if st.state == "unknown":
            return f"unknown for {', '.join(st.unknown) or 'some witness'}"
        verb = "violated by" if st.state == "violated" else "reachable (undefined) for"
        real = [self.tlink(r, f"`{r.exporter}`") if link else f"`{r.exporter}`"
                for r in st.refs if exporter_kind(r.exporter) == "real"]
        others = [r for r in st.refs if exporter_kind(r.exporter) != "real"]
        parts = []
        if real:
            parts.append("real-driver policies " + ", ".join(real))
        if others:
            first = others[0]
            parts.append(f"{len(others)} other {'policy' if len(others) == 1 else 'policies'} ("
                         + (self.tlink(first, f"`{first.exporter}`") if link
                                                             else f"`{first.exporter}`")
                         + (", ..." if len(others) > 1 else "") + ")")
        return f"{verb} " + " and ".join(parts)

    def revisions(self) -> None:
        d, doc = self.data, self.doc
        doc.add(Heading(2, "Revision comparison: v4.11, v5.12 and v6.12", "revisions"))
        doc.add(Para("Each claim's verdict at the seed documentation (v4.11, commit 0959a1683d78), at the "
                     "later revision (v5.12: kmap removed in v5.6, the FIXME deleted by de9114ece5df, pinning "
                     "moved to `dma_buf_pin`) and at v6.12 (the reservation-lock convention, dynamic "
                     "attachments and `move_notify`: the `L-*` and `R-*` claims), what the later text did to "
                     "the sentence, and whether v5.12 resolved what the model found at v4.11. \"Real-driver "
                     "policies\" are the catalog's policies modelled on drivers; the "
                     "others are the reference exporter, deliberately broken exporters and core mutants (which "
                     "break claims by design)."))
        rows: list[tuple[str, ...]] = [("claim", "who", "v4.11", "v5.12", "v6.12", "what the later text did",
                                        "outcome")]
        for cid, c in load_claims().items():
            old, new = claim_status(d, cid, "v4.11"), claim_status(d, cid, "v5.12")
            rows.append((f"[[claim:{cid}]]", c.who, self.status_text(old), self.status_text(new),
                         self.status_text(claim_status(d, cid, "v6.12")),
                         CHANGES.get(cid, ""), _outcome(cid, old, new)))
        doc.add(Table(tuple(rows)))

    def switches(self) -> None:
        doc = self.doc
        doc.add(Heading(2, "Semantic switches by revision", "switches"))
        doc.add(Para("Where the model itself differs between the revisions (everything else is the same "
                     "transition at both). What begin and end do is the exporter's knobs at both revisions; "
                     "what the documentation asks of them differs, and is judged by properties that name the "
                     "revisions they apply to."))
        doc.add(Table(SWITCHES))
        props = [p for p in PROPERTIES if tuple(p.revisions) != tuple(REVISIONS)]
        doc.add(Para("Properties that apply at one revision only: " + "; ".join(
            f"`{p.id}` ({'/'.join(p.revisions)})" for p in props) + "."))

    def exporters(self) -> None:
        d, doc = self.data, self.doc
        doc.add(Heading(2, "Exporter policies", "exporters"))
        doc.add(Para("`breaks` lists the claims a policy is expected to break; a claim counts at the revisions "
                     "whose text has it. A policy whose ops a revision's `dma_buf_export()` refuses is not "
                     "exportable there and is not checked there. `dmabuf-check exporters` shows every knob."))
        rows: list[tuple[str, ...]] = [("policy", "kind", "what it models", *(f"expected broken at {r}" for r in REVISIONS))]
        for p in d.config.exporters:
            rows.append((f"`{p.name}`", exporter_kind(p.name), p.description, *(
                (", ".join(f"[[claim:{c}]]" for c in p.breaks if c.startswith(("P-", "W-")) or rev in claim_revisions(c))
                 or "none") if p.exportable_at(rev) else
                f"not exportable ({export_refusal(p, rev)}): not checked at {rev}" for rev in REVISIONS)))
        doc.add(Table(tuple(rows)))

    def runs(self) -> None:
        d, doc = self.data, self.doc
        doc.add(Heading(2, "Runs and their evidence", "runs"))
        rows: list[tuple[str, ...]] = [("revision", "engine", "status", "verdicts", "not as expected", "seconds")]
        for r in d.runs:
            rows.append((r.revision, r.engine, r.status, str(len(r.verdicts)), str(len(r.mismatches)),
                         f"{r.seconds:.1f}"))
        for e in ("synthesis", "arith"):
            rows.append(("v4.11 and v5.12" if e == "synthesis" else "(code)", e, d.engine_status[e],
                         str(len(d.synthesis) if e == "synthesis" else len(d.arith)), "-", "-"))
        doc.add(Table(tuple(rows)))
        for rev in REVISIONS:
            for engine in d.engines_run(rev):
                ev_rows: list[tuple[str, ...]] = []
                for pol in d.exporters(rev):
                    vs = [v for v in (d.verdict(rev, engine, pol.name, p.id) for p in PROPERTIES) if v is not None]
                    if not vs:
                        continue
                    counts = {k: sum(v.verdict == k for v in vs) for k in ("holds", "proved", "violated", "unknown")}
                    if engine == "portfolio":
                        ev = _portfolio_evidence(vs)
                    elif engine == "hypothesis":
                        e = vs[0].evidence
                        ev = (f"{e.get('examples')} examples in {e.get('rounds')} rounds, {e.get('steps')} steps, "
                              f"{e.get('states')} distinct states, depth {e.get('depth')}")
                    elif engine == "z3":
                        ev = f"bounded checks to depth {vs[0].evidence.get('depth')}, then induction"
                    else:
                        e = vs[0].evidence
                        ev = (f"{e.get('states')} states, {e.get('transitions')} transitions, "
                              f"{'complete' if e.get('complete') else 'cut short by the state budget'}")
                    ev_rows.append((f"`{pol.name}`", ev, *(str(counts[k]) for k in counts)))
                if ev_rows:
                    doc.add(Heading(3, f"{rev}, {engine}", anchor("runs", rev, engine)))
                    doc.add(Table((("exporter", "evidence", "holds", "proved", "violated", "unknown"), *ev_rows)))

    def traces(self) -> None:
        doc = self.doc
        doc.add(Heading(2, "Traces", "traces"))
        doc.add(Para("Each trace is a sequence of kernel and userspace calls with their returns, the state fields "
                     "that changed, the events, and the properties that fire at each step. The ITF file next to "
                     "each replays with `dmabuf-check replay FILE` (relative to the report's folder)."))
        # in order of first reference, so the numbering follows the report
        for n, (a, users) in enumerate(self.trace_users.items(), 1):
            doc.add(Heading(3, f"Trace {n}", a))
            shown = users[:6]
            lines = [f"`{u.property}` ({', '.join(f'[[claim:{c}]]' for c in _claims_of(u.property))}) for "
                     f"`{u.exporter}` at {u.revision}, {u.engine}{self.found_by(u)}" for u in shown]
            if len(users) > len(shown):
                lines.append(f"and {len(users) - len(shown)} more verdicts with the same trace")
            if a in doc.itf:
                lines.append(f"replay: `dmabuf-check replay {doc.itf[a]}`")
            doc.add(Bullets(tuple(lines)))
            doc.add(Code(self.trace_text[a]))
            doc.add(Para("[[sec:summary|Back to the summary]] · [[sec:findings|the findings]]"))

    def found_by(self, ref: TraceRef) -> str:
        """`` (found by explicit: exhaustive, tiny; on scope tiny)`` for a portfolio trace."""
        v = self.data.verdict(ref.revision, ref.engine, ref.exporter, ref.property)
        if v is None or not v.evidence.get("found_by"):
            return ""
        ev = v.evidence
        return (f" (found by {ev['found_by']}: {ev.get('guarantee', '?')}, {ev.get('scope', '?')}; the trace runs "
                f"on scope `{ev.get('trace_scope', self.data.config.scope.name)}`)")

    def reproducibility(self) -> None:
        d, doc = self.data, self.doc
        cfg = d.config
        doc.add(Heading(2, "Reproducibility", "reproducibility"))
        vers = [f"dmabuf-check {d.version}", f"Python {platform.python_version()}"]
        for mod in ("hypothesis", "z3-solver", "networkx", "numpy"):
            try:
                from importlib.metadata import version

                vers.append(f"{mod} {version(mod)}")
            except Exception:  # noqa: BLE001 - a missing package is reported as such
                vers.append(f"{mod} not installed")
        doc.add(Bullets((
            "Versions: " + ", ".join(vers) + ".",
            f"Seed {cfg.seed}; scope `{cfg.scope.name}`; exporters: " + ", ".join(f"`{p.name}`" for p in cfg.exporters) + ".",
            "Budgets: " + "; ".join(f"{e}: {_budget_text(b)}" for e, b in cfg.budget().items()) + ".",
            "Same seed and budgets, same findings: the Hypothesis engine is seeded and each exporter's run depends "
            "only on the seed and its budget (not on `--jobs`); Z3 and the explicit engine are deterministic; the "
            "explicit engine's budget is a number of states, not seconds"
            + ("; the portfolio's Z3 stage is bounded by its depth, not by time (unless `--z3-seconds` is given), "
               "and its exhaustive search by a number of states and, per worker, by a share of the machine's memory "
               "(a search cut by either says `unknown`, never `holds`)" if "portfolio" in cfg.engines else "")
            + ". Timings are reported but never enter a finding.")))
        review = (f"dmabuf-check review --out DIR --scope {cfg.scope.name} --seed {cfg.seed} --examples {cfg.examples} "
                  f"--steps {cfg.steps} --depth {cfg.depth} --timeout {cfg.timeout:g} --states {cfg.states} "
                  + (f"--portfolio-depth {cfg.portfolio_depth} --portfolio-examples {cfg.portfolio_examples} "
                     f"--max-states {cfg.max_states} "
                     + (f"--z3-seconds {cfg.z3_seconds:g} " if cfg.z3_seconds is not None else "")
                     if "portfolio" in cfg.engines else "")
                  + " ".join(f"--engine {e}" for e in cfg.engines)
                  + "".join(f" --exporter {p.name}" for p in cfg.exporters if exporter_kind(p.name) == "other"
                            and p.name != "reference"))
        rows: list[tuple[str, ...]] = [("what", "command")]
        rows.append(("this whole report", f"`{review}`"))
        for rev in REVISIONS:
            for e in d.engines_run(rev):
                rows.append((f"{e} verdicts at {rev}, one exporter", f"`{_command(e, rev, cfg)}`"))
        if d.synthesis:
            rows.append(("the FIXME synthesis queries (a), (b)",
                         f"`dmabuf-check prove --only synthesis --scope tiny --depth {cfg.depth + 2} "
                         f"--timeout {cfg.timeout:g}`"))
            rows.append(("the v5.12 synthesis query (c)",
                         f"`dmabuf-check prove --only synthesis --revision v5.12 --scope tiny --depth {cfg.depth + 2} "
                         f"--timeout {cfg.timeout:g} --pair M-PIN-NOT-USER M-BEGIN-COHERENCY-ONLY,M-NO-KMAP`"))
        if d.arith:
            rows.append(("the bit-precise mmap arithmetic", f"`dmabuf-check prove --only arith --timeout {cfg.timeout:g}`"))
        rows.append(("one trace", "`dmabuf-check replay traces/<revision>/<engine>/<exporter>__<property>.itf.json` "
                                  "(the file named under each trace)"))
        doc.add(Table(tuple(rows)))


def _portfolio_evidence(vs) -> str:
    """What each stage of the portfolio covered for one exporter (the union of its verdicts'
    ``covers``), and how many verdicts each stage decided (found the trace of, or gave the
    guarantee of a holds)."""
    stages: dict[tuple[str, str, str], dict[str, Any]] = {}
    for v in vs:
        for c in v.evidence.get("covers", ()):
            stages.setdefault((c["engine"], c["guarantee"], c["scope"]), c)
    decided: dict[str, int] = {}
    for v in vs:
        by = v.evidence.get("found_by") or {"exhaustive": "explicit", "bounded": "z3", "sampled": "hypothesis"}.get(
            v.evidence.get("guarantee", "") if v.verdict == "holds" else "", "")
        if v.verdict == "proved":
            by = "z3"
        if by:
            decided[by] = decided.get(by, 0) + 1
    parts = []
    for (engine, guarantee, scope), c in stages.items():
        if "states" in c:
            figures = (f"{c['states']:,} states, {c.get('transitions', 0):,} transitions, "
                       + ("complete" if c.get("complete", True) else f"cut ({c.get('stopped', 'budget')})"))
        elif "depth" in c:
            figures = f"depth {c['depth']}"
        else:
            figures = f"{c.get('examples', 0):,} examples, {c.get('steps', 0):,} steps"
        parts.append(f"{guarantee} on {scope} ({engine}: {figures}; decided {decided.get(engine, 0)})")
    return "; ".join(parts) or "no stage ran"


def _mismatch_rows(data: ReviewData) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("run", "what", "count", "exporter: property")]
    for r in data.runs:
        if r.status != "ran":
            rows.append((f"{r.revision} {r.engine}", f"the engine {r.status}", "-", "every verdict of this run"))
            continue
        cats: dict[str, list[str]] = {}
        beyond = {m.split(" is ", 1)[0] for m in r.beyond_bound}
        for v in r.verdicts:
            if v.as_expected or f"{v.exporter}: {v.property}" in beyond:
                continue
            if v.kind == "witness" and v.verdict == "unknown":
                cat = "witness not reached within the budget (unknown)"
            elif v.expected == "violated" and v.verdict != "violated":
                cat = f"expected violation not found ({v.verdict})"
            elif v.verdict == "violated":
                cat = "unexpected violation"
            elif v.verdict == "unknown":
                cat = "unknown (budget or solver timeout)"
            else:
                cat = f"{v.verdict}, expected {v.expected}"
            cats.setdefault(cat, []).append(f"{v.exporter}: {v.property}")
        for m in r.mismatches:
            if ": declares " in m and " scope " in m:
                cats.setdefault("declared break that only a wider scope can show: not found there, or not "
                                "checked", []).append(m)
            elif ": declares " in m:
                who, rest = m.split(": declares ", 1)
                cats.setdefault("claim declared broken, no property citing it violated", []).append(
                    f"{who}: {rest.split(' broken', 1)[0]}")
            elif "interrupted" in m:
                cats.setdefault("interrupted", []).append(m)
        for cat, items in cats.items():
            rows.append((f"{r.revision} {r.engine}", cat, str(len(items)), ", ".join(f"`{i}`" for i in items)))
    return rows


def _budget_text(b: dict[str, Any]) -> str:
    """``examples 300, steps 30``; a nested budget (the portfolio's stages) in parentheses."""
    return ", ".join(f"{k} ({_budget_text(v)})" if isinstance(v, dict) else f"{k} {v}" for k, v in b.items())


def _command(engine: str, rev: str, cfg) -> str:
    if engine == "portfolio":
        return (f"dmabuf-check campaign --engine portfolio --revision {rev} --scope {cfg.scope.name} "
                f"--seed {cfg.seed} --examples {cfg.portfolio_examples} --steps {cfg.steps} --depth {cfg.portfolio_depth} "
                f"--max-states {cfg.max_states} --z3-seconds "
                f"{'inf' if cfg.z3_seconds is None else format(cfg.z3_seconds, 'g')} --database none --exporter NAME")
    if engine == "hypothesis":
        return (f"dmabuf-check campaign --revision {rev} --scope {cfg.scope.name} --seed {cfg.seed} "
                f"--examples {cfg.examples} --steps {cfg.steps} --database none --exporter NAME")
    if engine == "z3":
        return (f"dmabuf-check prove --only bmc --revision {rev} --scope {cfg.scope.name} --depth {cfg.depth} "
                f"--timeout {cfg.timeout:g} --exporter NAME")
    return (f"dmabuf-check explore --revision {rev} --scope {cfg.scope.name} --symmetry --max-states {cfg.states} "
            f"--no-stuck --exporter NAME")


def _claims_of(pid: str) -> tuple[str, ...]:
    return get_property(pid).claims


def _outcome(cid: str, old: ClaimStatus, new: ClaimStatus) -> str:
    bad = ("violated", "reached")
    if old.state == "permissive":
        return "permissive text" + (": deleted" if new.state == "absent" else "")
    if CHANGES.get(cid, "").startswith("resolved") and old.state in bad:
        return "**resolved by a code change** (the sentence stays)"
    if cid.startswith("M-"):
        if new.state == "violated":
            return ("new rule; broken by real-driver policies " + ", ".join(f"`{x}`" for x in new.real())
                    if new.real() else "new rule; broken only by deliberately broken policies")
        return {"holds": "new rule; holds", "reached": "new; reachable"}.get(new.state, f"new rule; {new.state}")
    if new.state == "absent":
        if old.state in bad:
            return "**resolved by deleting the sentence**" + (
                f" (v4.11 real-driver breakers: {', '.join(f'`{x}`' for x in old.real())})" if old.real() else "")
        return "deleted"
    if old.state in bad and new.state in bad:
        if old.state == "reached":
            return "left open: still reachable"
        if new.real():
            return "**left open** (real-driver policies: " + ", ".join(f"`{x}`" for x in new.real()) + ")"
        return "holds for every real-driver policy at both revisions; broken policies still break it"
    if old.state in bad and new.state == "holds":
        return "**resolved**"
    if old.state not in bad and new.state in bad:
        return "**new break at v5.12**"
    return {"holds": "holds at both", "not-modelled": "not modelled",
            "none": "witnesses only", "unknown": "unknown"}.get(new.state, new.state)


_SWITCHES_V5_12: tuple[tuple[str, ...], ...] = (
    ("`dma_buf_kmap`, `dma_buf_kunmap`, `dma_buf_kmap_atomic`, `dma_buf_kunmap_atomic`",
     "actions exist", "removed (kmap_atomic in v4.19, kmap in v5.6)", "`model/actions/kernel_access.py` (`revisions=`)"),
    ("`dma_buf_pin`, `dma_buf_unpin`, state field `att_pins`", "no such actions; `att_pins` stays 0",
     "actions exist (v5.7); a pin holds the storage (`derived.pinned`)", "`model/actions/pinning.py`"),
    ("ghost `kended` (kmap after end_cpu_access is undefined)", "kept by begin/end", "not kept (no kmap)",
     "`model/rules.py` (`m.revision`)"),
    ("`dma_buf_vmap` without `ops->vmap`", "NULL (modelled as -ENOMEM)", "-EINVAL (int return since v5.11)",
     "`model/actions/kernel_access.py` (`m.revision`)"),
    ("kmap knobs `has_kmap`, `has_kmap_atomic`, `kmap_returns_null`, `kmap_swaps_in`", "read by the kmap actions",
     "nothing reads them", "`model/catalog.py` docstring"),
    ("begin/end_cpu_access as allocate/swap-in/pin hooks (BEGIN-AVAILABLE, END-FLUSH-UNPIN, the FIXME)",
     "judged: `P-BEGIN-AVAILABLE`, `P-END-UNPINS`, `P-NO-USER-PIN`", "not judged: the sentences are deleted",
     "`properties/callbacks.py` (`revisions=`)"),
    ("begin/end_cpu_access as coherency hooks only; pinning is `dma_buf_pin`'s",
     "not judged", "judged: `P-BEGIN-NO-PIN`, `P-USER-NO-PIN`, `P-END-UNDO`", "`properties/later_revision.py`"),
    ("kernel CPU access", "kmap or vmap, bracketed (`P-KERNEL-BRACKET`)", "vmap only, bracketed "
     "(`P-NO-KMAP`, `P-VMAP-BRACKET`, `W-VMAP-IN-BRACKET`)", "`properties/later_revision.py`"),
    ("`dma_buf_export()` of ops without `mmap`, `kmap` or `kmap_atomic`",
     "refused (`WARN_ON`, -EINVAL, corpus §3.5): `P-EXPORT-OPS-DRIFT` (drift); such a policy is not exportable "
     "and not checked at v4.11", "accepted (optional since v4.19, corpus §6.1)",
     "`model/actions/lifecycle.py` (`m.revision`, `model.policy.export_requires`)"),
)

_SWITCHES_V6_12: tuple[tuple[str, ...], ...] = (
    ("reservation lock: state field `resv_held`, actions `dma_resv_lock`, `dma_resv_unlock`", "no lock",
     "no lock", "the importer holds it or not; the convention's lists judged by `P-RESV-LOCKED-CALL`, "
     "`P-RESV-UNLOCKED-CALL`, `P-RESV-NO-DEADLOCK`", "`model/actions/resv.py`, `properties/locking.py`"),
    ("`dma_buf_map_attachment_unlocked`, `dma_buf_unmap_attachment_unlocked`, `dma_buf_vmap_unlocked`, "
     "`dma_buf_vunmap_unlocked`", "no such actions", "no such actions", "actions exist (v6.2)",
     "`model/actions/resv.py`"),
    ("`dma_buf_dynamic_attach`, `exporter_move` (`move_notify`), state field `att_dynamic`", "no such actions",
     "no such actions (the model's v5.12 has no dynamic attachments)", "actions exist; `P-MOVE-NOTIFY`, "
     "`P-STATIC-PINNED`", "`model/actions/resv.py`, `properties/locking.py`"),
)

SWITCHES: tuple[tuple[str, ...], ...] = (
    ("switch", "v4.11", "v5.12", "v6.12", "where"),
    *((r[0], r[1], r[2], "as at v5.12", r[3]) for r in _SWITCHES_V5_12),
    *_SWITCHES_V6_12,
)


def build(data: ReviewData, fs: Sequence[Finding] | None = None, out_dir: Path | None = None) -> Document:
    """The report as a document; with ``out_dir``, every trace is also written there as ITF."""
    return _Builder(data, out_dir).build(findings(data) if fs is None else fs)


def _write_atomic(path: Path, text: str) -> None:
    """A temporary file in the same folder, then rename; readable as a normal file would be."""
    write_text_atomic(path, text)


def finding_trace(data: ReviewData, f: Finding) -> tuple[TraceRef, Trace] | None:
    """The shortest trace among a finding's evidence whose property cites one of its claims (ties:
    the first by revision, engine, exporter and property), or None when it has none."""
    refs = {r for e in f.evidence for r in e.refs} | {r for _, e in f.detail for r in e.refs}
    best = None
    for r in sorted(refs, key=TraceRef.key):
        t = data.trace(r)
        if t is None or not t.steps or not set(get_property(r.property).claims) & set(f.claims):
            continue
        if best is None or len(t.steps) < len(best[1].steps):
            best = (r, t)
    return best


def litmus_path(f: Finding) -> str:
    return f"litmus/{f.id}.litmus.toml"


def patch_edits(f: Finding) -> tuple[DocEdit, ...]:
    """The hunks of ``review.patch`` that propose wording for a documentation finding."""
    return edits_for(f.claims) if f.cls == "documentation" else ()


def _hunk_words(edits: Sequence[DocEdit]) -> str:
    files = sorted({e.file for e in edits})
    return (f"hunk{'s' if len(edits) > 1 else ''} " + ", ".join(f'"{e.finding}"' for e in edits)
            + " in " + " and ".join(f"`{x}`" for x in files))


def write_review(data: ReviewData, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``review.md``, ``review.html`` (self-contained), ``findings.json``, ``review.patch``
    (proposed wording for the documentation findings, :mod:`properties.report.doc_patch`) and the
    traces as ITF files into ``out_dir``; each file atomically. Returns the paths written."""
    out = Path(out_dir)
    fs = findings(data)
    doc = build(data, fs, out)
    paths = {"markdown": out / "review.md", "html": out / "review.html", "json": out / "findings.json"}
    _write_atomic(paths["markdown"], to_markdown(doc))
    _write_atomic(paths["html"], to_html(doc))
    for f in fs:
        lit = finding_trace(data, f)
        if lit is not None:
            ref, trace = lit
            paths[f"litmus {f.id}"] = out / litmus_path(f)
            _write_atomic(paths[f"litmus {f.id}"], litmus_from_trace(
                data.model(ref.revision, ref.exporter), trace, title=f"{f.id}. {f.title}", prop=ref.property,
                source=f"dmabuf-check review, finding {f.id} ({ref.key()})"))
    edits = [e for e in DOC_EDITS if any(e in patch_edits(f) for f in fs)]
    if edits:
        paths["patch"] = out / "review.patch"
        _write_atomic(paths["patch"], build_patch(edits))
    cfg = data.config
    _write_atomic(paths["json"], json.dumps({
        "schema": "dmabuf-check.review/1", "command": "review", "version": data.version,
        "seed": cfg.seed, "scope": cfg.scope.name, "budget": cfg.budget(), "engines": data.engine_status,
        "findings": [dict(f.to_json(), patch=[e.finding for e in patch_edits(f)],
                          litmus=litmus_path(f) if f"litmus {f.id}" in paths else None) for f in fs],
        "claims": {cid: {rev: _status_json(claim_status(data, cid, rev)) for rev in REVISIONS}
                   for cid in load_claims()},
        "mismatches": data.mismatches(),
        "beyond_bound": data.beyond_bound(),
        "traces": {a: {"users": [u.key() for u in users], "itf": doc.itf.get(a)}
                   for a, users in _users(doc).items()},
    }, indent=1) + "\n")
    return paths


def _status_json(st: ClaimStatus) -> dict[str, Any]:
    return {"state": st.state, "violators": list(st.violators), "traces": [r.key() for r in st.refs],
            "unknown": list(st.unknown)}


def _users(doc: Document) -> dict[str, list[TraceRef]]:
    out: dict[str, list[TraceRef]] = {}
    for key, a in doc.traces.items():
        rev, engine, exporter, pid = key.split("/", 3)
        out.setdefault(a, []).append(TraceRef(rev, engine, exporter, pid))
    return out

