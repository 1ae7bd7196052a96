"""Pictures and tables of a trace: a sequence diagram with one lane per actor, and the trace as
rows (plain dicts) or as an HTML table with the changed fields highlighted.

docs/design.md ("Anyone exploring opens a notebook, loads a counterexample, steps through it state by
state"). The lanes are the actors of the model's actions (``model.actions``): userspace, the
kernel importer, the exporter (with the dma-buf core in front of it), the device, and memory.
Each step is an arrow from the actor that calls to the party it reaches; a step where a
property fires is drawn in red, one that returns an error in orange. Nothing here runs at import
time; matplotlib is imported when a diagram is drawn.
"""
from __future__ import annotations

import html
from typing import Any, Sequence

from model.actions import ACTIONS
from model.constants import errno_name
from model.events import event_names
from model.machine import Model

from ..trace import Trace

__all__ = ["LANES", "target_lane", "trace_rows", "trace_html", "state_rows", "state_html",
           "sequence_diagram"]

LANES = ("userspace", "kernel importer", "exporter", "device", "memory")

# The party a step reaches, where it is not the exporter (through the dma-buf core).
_TARGET = {
    "cpu_read": "memory", "cpu_write": "memory", "kernel_read": "memory", "kernel_write": "memory",
    "device_read": "memory", "device_write": "memory", "dma_fence_signal": "memory",
    "dma_buf_fd": "userspace", "dup": "userspace",
    "reservation_object_add_excl_fence": "device", "reservation_object_add_shared_fence": "device",
}
_QUIET_EVENTS = ("from_user",)


def target_lane(action: str) -> str:
    """The lane an action's arrow points to."""
    if action == "dma_buf_export":
        return "exporter"
    return _TARGET.get(action, "exporter")


def _v(x: Any) -> str:
    return {True: "1", False: "0"}.get(x, str(x)) if isinstance(x, bool) else str(x)


def trace_rows(model: Model, trace: Trace, fired: Sequence[Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """One dict per step: ``step``, ``actor``, ``call``, ``ret`` (as the kernel spells it),
    ``changed`` (flat field -> (old, new)), ``events`` and ``fires``."""
    rows = []
    prev = trace.init
    for i, st in enumerate(trace.steps, 1):
        rows.append({
            "step": i, "actor": ACTIONS[st.action].actor, "call": st.call(), "ret": errno_name(st.ret),
            "changed": model.schema.diff(prev, st.state),
            "events": [e for e in event_names(st.events) if e not in _QUIET_EVENTS],
            "fires": list(fired[i - 1]) if fired is not None and i - 1 < len(fired) else [],
        })
        prev = st.state
    return rows


# Inline styles, not a <style> element: code hosts strip style elements from notebook outputs,
# and the bold tags keep the highlighting readable where inline styles are stripped too.
_CHG = 'style="background:#ffe08a"'
_FIRE = 'style="color:#b00020"'
_ERR = 'style="color:#b35900"'


def _td(text: str, mark: str = "") -> str:
    return "<td>" + (f"<b><span {mark}>{text}</span></b>" if mark and text else text) + "</td>"


def _th(text: str, title: str = "") -> str:
    t = f' title="{html.escape(title)}"' if title else ""
    return f"<th{t}>{text}</th>"


def trace_html(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`trace_rows` as an HTML table; changed fields are highlighted, firing
    properties in red, error returns in orange."""
    out = ["<table><tr>" + "".join(_th(h) for h in ("#", "actor", "call", "ret", "changed fields",
                                                      "events", "fires")) + "</tr>"]
    for r in rows:
        err = r["ret"].startswith("-") or r["ret"].startswith("SIG")
        changed = ", ".join(f'<b><span {_CHG}>{html.escape(k)}</span></b> {_v(a)}&rarr;{_v(b)}'
                            for k, (a, b) in r["changed"].items())
        out.append("<tr>" + _td(str(r["step"])) + _td(html.escape(r["actor"])) + _td(html.escape(r["call"]))
                   + _td(html.escape(r["ret"]), _ERR if err else "") + _td(changed)
                   + _td(html.escape(", ".join(r["events"])))
                   + _td(html.escape(", ".join(r["fires"])), _FIRE) + "</tr>")
    out.append("</table>")
    return "".join(out)


def state_rows(model: Model, trace: Trace, groups: Sequence[str] | None = None,
               only_changed: bool = True) -> list[dict[str, Any]]:
    """The states as a table of flat fields by step: one dict per field with ``field`` and one
    entry per state (``"0"`` is the initial state), plus ``changed``: the steps where it changed.
    ``groups`` restricts to field groups (``["pins", "resident"]``); ``only_changed`` drops
    fields that never change along the trace."""
    states = trace.states()
    names = model.schema.names
    out = []
    for i, name in enumerate(names):
        group = name.split("[", 1)[0]
        if groups is not None and group not in groups:
            continue
        values = [s[i] for s in states]
        changed = [k for k in range(1, len(values)) if values[k] != values[k - 1]]
        if only_changed and not changed:
            continue
        row: dict[str, Any] = {"field": name}
        row.update({str(k): v for k, v in enumerate(values)})
        row["changed"] = changed
        out.append(row)
    return out


def state_html(rows: Sequence[dict[str, Any]], steps: int, calls: Sequence[str] = ()) -> str:
    """The rows of :func:`state_rows` as HTML: one column per state, changed cells highlighted."""
    head = "".join(_th(str(k), calls[k - 1] if 0 < k <= len(calls) else "initial state")
                   for k in range(steps + 1))
    out = [f"<table><tr>{_th('field')}{head}</tr>"]
    for r in rows:
        cells = "".join(_td(_v(r[str(k)]), _CHG if k in r["changed"] else "") for k in range(steps + 1))
        out.append(f"<tr>{_td(html.escape(r['field']))}{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _short(call: str, width: int = 64) -> str:
    call = call.replace("DMA_BUF_SYNC_", "").replace("DMA_", "")
    return call if len(call) <= width else call[: width - 1] + "\u2026"


def sequence_diagram(model: Model, trace: Trace, fired: Sequence[Sequence[str]] | None = None,
                     title: str | None = None, fired_init: Sequence[str] = ()):
    """The trace as a sequence diagram (a matplotlib ``Figure``): one lane per actor, one arrow
    per step from the caller to the party it reaches, labelled with the call and its return;
    red where a property fires (named at the right), orange where the call fails."""
    n = len(trace.steps)
    from matplotlib.figure import Figure  # optional: the notebooks extra, needed only to draw

    fig = Figure(figsize=(11, (1.8 if title else 1.3) + 0.36 * max(n, 1)), dpi=80)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    extra = sorted({ACTIONS[st.action].actor for st in trace.steps} - set(LANES))
    lanes = (*LANES, *extra)                 # an actor added to the model gets a lane of its own
    x = {lane: 5.2 + 1.3 * i for i, lane in enumerate(lanes)}
    right = x[lanes[-1]] + 0.7
    top = 0.9
    ax.set_xlim(-0.1, right + 3.2)
    ax.set_ylim(-(n + 0.6), top + (1.5 if title else 0.9))
    ax.axis("off")
    for lane, lx in x.items():
        ax.plot([lx, lx], [top - 0.2, -(n + 0.4)], color="#999999", lw=0.8, zorder=0)
        ax.text(lx, top + 0.1, lane.replace(" ", "\n"), ha="center", va="bottom", fontsize=9,
                fontweight="bold", bbox={"boxstyle": "round", "fc": "#eef3fb", "ec": "#7a8db3"})
    if title:
        ax.text(0.0, top + 1.35, title, fontsize=10, fontweight="bold", va="top")
    if fired_init:
        ax.text(right + 0.1, top - 0.3, "initially: " + ", ".join(fired_init), fontsize=8,
                color="#b00020", va="center")
    for i, st in enumerate(trace.steps, 1):
        y = -i + 0.3
        src = x[ACTIONS[st.action].actor]
        dst = x[target_lane(st.action)]
        fires = list(fired[i - 1]) if fired is not None and i - 1 < len(fired) else []
        failed = st.ret < 0
        color = "#b00020" if fires else ("#b35900" if failed else "#1f3b73")
        ax.text(0.0, y, f"{i:>2}. {_short(st.call())} = {errno_name(st.ret)}", fontsize=8,
                family="monospace", va="center", color=color)
        if src == dst:
            ax.plot([src], [y], marker="o", color=color, ms=6)
        else:
            ax.annotate("", xy=(dst, y), xytext=(src, y),
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.4})
        notes = fires or [e for e in event_names(st.events)
                          if e not in _QUIET_EVENTS + ("begin_ok", "end_ok", "exporter_begin_called",
                                                       "exporter_end_called", "sync_end")]
        if notes:
            ax.text(right + 0.1, y, ", ".join(notes), fontsize=8, va="center",
                    color="#b00020" if fires else "#555555")
    return fig
