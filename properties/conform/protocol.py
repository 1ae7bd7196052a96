"""The host <-> guest protocol of the conformance runner.

Host -> guest: a line-based *batch* file (``write_batch``), read by ``runner.c``::

    B <n_traces>
    T <trace_id> <exporter> <npages>      exporter: udmabuf | system-heap | vgem
    S <op> <args...>                      one line per step
    E                                     end of trace

Ops (all arguments are decimal integers)::

    create                      -> fd slot (lowest free)
    dup <slot>                  -> fd slot (lowest free)
    close <slot>                -> 0
    mmap <slot> <pgoff> <npages>  -> vma index (lowest free; pgoff, npages: raw u64)
    munmap <vma>                -> 0
    sync <slot> <flags>         -> ioctl result (flags: raw u64)
    read <vma> <page>           -> 0, plus "val" (u64 at the start of the page)
    write <vma> <page> <value>  -> 0 (value: u64)

Kernel-side ops (one ioctl on ``/dev/dmabuf_check``, the module in ``kmod/``; the module's
tables are per trace: the child opens the device at its first kernel-side step and its exit
undoes whatever is left)::

    kget <slot>                 -> buffer handle (lowest free; dma_buf_get of the slot's fd)
    kput <handle>               -> 0 (dma_buf_put)
    kattach <handle>            -> attachment (lowest free; dma_buf_attach)
    kdattach <handle>           -> attachment (dma_buf_dynamic_attach, move_notify counting)
    kdetach <att>               -> 0 (dma_buf_detach)
    kmap <att> <dir> <locked>   -> 0 (dma_buf_map_attachment under dma_resv_lock, or _unlocked)
    kunmap <att> <locked>       -> 0
    kbegin <handle> <dir>       -> dma_buf_begin_cpu_access(); kend: _end_cpu_access()
    kvmap <handle> <locked>     -> vmap index (dma_buf_vmap under the lock, or _unlocked)
    kvunmap <kvmap> <locked>    -> 0
    kread <kvmap> <page>        -> 0, plus "val" (u64 at the start of the page, via the vmap)
    kwrite <kvmap> <page> <value> -> 0
    kpin <att> / kunpin <att>   -> dma_buf_pin()/dma_buf_unpin() under the lock (dynamic only)
    kmoves <att>                -> 0, plus "val" (move_notify calls so far)

The module refuses what would make the kernel misbehave instead of answering (``err``:
"noslot" a handle/attachment/vmap that is not there, "full" its table (16) is full, "range" a
direction or page out of range, "static" a pin of a static attachment, "busy" a put of the last
handle while attachments or vmaps of its buffer remain, or a detach while pinned, "mapped" /
"unmapped" a map of a mapped or an unmap of an unmapped attachment; "nokmod" the device is
missing). ``kdetach`` adds ``"moves"`` when move_notify was called.

Guest -> host: one JSON object per line on the serial console, each prefixed by
``MARKER`` and followed by `` ~xxxxxxxx`` (FNV-1a 32-bit of the JSON text, so a line
garbled by interleaved kernel output is detected). In order::

    {"hello":1,"uname":..,"exporters":{..},"modules":{..},"ntraces":N}
    {"t":id,"begin":1,"exporter":..,"npages":n,"steps":k}      per trace (parent)
    {"t":id,"s":i,"op":..,"ret":r,"errno":e[,"val":v][,"sig":"SIGBUS"]}   per step (child)
    {"t":id,"s":i,"op":..,"err":"nomap"|"range"|"full"|"overflow"|"noexporter"}   runner-level refusal
    {"t":id,"end":1,"status":"ok"|"killed"|"timeout"|"exit"[,"sig":..][,"code":..]}
    {"done":N}

Each trace runs in a forked child of /init, so every trace starts from a clean fd
and vma table, and a trace killed by the kernel (e.g. the OOM killer) or stuck for
60 s is reported (end status "killed"/"timeout") instead of taking the boot down.

Runner semantics the model has to match:

- fd slots and vma indexes are the lowest free ones, from 0. ``create`` and ``dup``
  take a slot only on success; ``close`` frees the slot (even if close fails).
- A slot that is not open is passed to the kernel as fd -1 (so EBADF).
- ``mmap`` is ``mmap(NULL, npages*4096, PROT_READ|PROT_WRITE, MAP_SHARED, fd,
  pgoff*4096)``; ``munmap`` unmaps the whole vma.
- ``read``/``write`` touch the first 8 bytes of one page of a vma. A vma that is not
  mapped gives ``err "nomap"``, a page outside the vma ``err "range"`` (nothing is
  accessed). A fault gives ret -1, errno 0, ``sig``.
- ``err "overflow"``: pgoff/npages too large for an mmap offset/length; ``err
  "full"``: runner table full (1024); ``err "noexporter"``: the exporter's device is
  missing in this kernel. ``detail`` (JSON ``at``) names the sub-call that failed
  inside a ``create`` (e.g. "ftruncate"), absent when the final export call failed.
- SYNC is issued once: EINTR/EAGAIN are reported, not retried.
"""
from __future__ import annotations

import errno as _errno
import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "MARKER",
    "EXPORTERS",
    "OPS",
    "SLOT_OPS",
    "KERNEL_OPS",
    "KERNEL_TROUBLE",
    "GuestError",
    "StepResult",
    "TraceResult",
    "GuestResult",
    "write_batch",
    "parse_output",
    "parse_line",
    "format_line",
    "fnv1a32",
]

MARKER = "@@DMABUF@@ "
EXPORTERS = ("udmabuf", "system-heap", "vgem")
#: op name -> argument names; the runner accepts exactly these
OPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "create": (),
    "dup": ("slot",),
    "close": ("slot",),
    "mmap": ("slot", "pgoff", "npages"),
    "munmap": ("vma",),
    "sync": ("slot", "flags"),
    "read": ("vma", "page"),
    "write": ("vma", "page", "value"),
    # kernel side (kmod/dmabuf_check_kmod.c through /dev/dmabuf_check)
    "kget": ("slot",),
    "kput": ("handle",),
    "kattach": ("handle",),
    "kdattach": ("handle",),
    "kdetach": ("att",),
    "kmap": ("att", "direction", "locked"),
    "kunmap": ("att", "locked"),
    "kbegin": ("handle", "direction"),
    "kend": ("handle", "direction"),
    "kvmap": ("handle", "locked"),
    "kvunmap": ("kvmap", "locked"),
    "kread": ("kvmap", "page"),
    "kwrite": ("kvmap", "page", "value"),
    "kpin": ("att",),
    "kunpin": ("att",),
    "kmoves": ("att",),
})
#: ops whose success returns a new slot or handle (outcome ``ok=<n>``)
SLOT_OPS = frozenset({"create", "dup", "mmap", "kget", "kattach", "kdattach", "kvmap"})
#: ops that the kernel-side module performs
KERNEL_OPS = frozenset(op for op in OPS if op.startswith("k"))
#: arguments that are raw u64 (negative Python ints are taken modulo 2**64)
_U64_ARGS = {"flags", "value", "pgoff", "npages"}
_I64_MIN, _I64_MAX, _U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
#: the runner's table sizes (keep in sync with runner.c)
MAX_STEPS = 100_000
MAX_TRACES = 100_000


class GuestError(Exception):
    """Anything that keeps a batch from producing complete, trustworthy results.

    The message is one line meant for the user. ``log`` holds the raw console
    output when there is one (for debugging), else "".
    """

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


# --------------------------------------------------------------------------------------
# host -> guest


def _as_int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise GuestError(f"{what} must be an int, got {v!r}")
    return v


def write_batch(traces: Iterable[Mapping[str, Any]]) -> str:
    """Serialise traces for the runner.

    A trace is ``{"id": int, "exporter": str, "npages": int, "steps": [(op, args), ...]}``
    where ``args`` is a tuple of ints (a bare int is accepted for one-argument ops).
    Raises GuestError for anything the runner would not accept.
    """
    out: list[str] = []
    seen: set[int] = set()
    traces = list(traces)
    if len(traces) > MAX_TRACES:
        raise GuestError(f"too many traces in one batch ({len(traces)} > {MAX_TRACES})")
    out.append(f"B {len(traces)}")
    for n, tr in enumerate(traces):
        try:
            tid, exporter, npages, steps = tr["id"], tr["exporter"], tr["npages"], tr["steps"]
        except (KeyError, TypeError):
            raise GuestError(f"trace #{n}: needs keys id, exporter, npages, steps") from None
        tid = _as_int(tid, f"trace #{n} id")
        if not _I64_MIN <= tid <= _I64_MAX:
            raise GuestError(f"trace #{n}: id {tid} out of range")
        if tid in seen:
            raise GuestError(f"duplicate trace id {tid}")
        seen.add(tid)
        if exporter not in EXPORTERS:
            raise GuestError(f"trace {tid}: unknown exporter {exporter!r} (known: {', '.join(EXPORTERS)})")
        npages = _as_int(npages, f"trace {tid} npages")
        if not 0 <= npages <= _I64_MAX // 4096:
            raise GuestError(f"trace {tid}: npages {npages} out of range")
        steps = list(steps)
        if len(steps) > MAX_STEPS:
            raise GuestError(f"trace {tid}: too many steps ({len(steps)} > {MAX_STEPS})")
        out.append(f"T {tid} {exporter} {npages}")
        for i, step in enumerate(steps):
            try:
                op, args = step
            except (TypeError, ValueError):
                raise GuestError(f"trace {tid} step {i}: expected (op, args), got {step!r}") from None
            if op not in OPS:
                raise GuestError(f"trace {tid} step {i}: unknown op {op!r} (known: {', '.join(OPS)})")
            if isinstance(args, int) and not isinstance(args, bool):
                args = (args,)
            try:
                args = tuple(args)
            except TypeError:
                raise GuestError(f"trace {tid} step {i}: args of {op} must be a tuple, got {args!r}") from None
            names = OPS[op]
            if len(args) != len(names):
                raise GuestError(f"trace {tid} step {i}: {op} takes {len(names)} args "
                                 f"({', '.join(names) or 'none'}), got {len(args)}")
            words = [op]
            for name, v in zip(names, args):
                v = _as_int(v, f"trace {tid} step {i} {op} {name}")
                if name in _U64_ARGS:
                    if not _I64_MIN <= v <= _U64_MAX:
                        raise GuestError(f"trace {tid} step {i}: {name} {v} does not fit in 64 bits")
                    v %= 2**64
                elif not _I64_MIN <= v <= _I64_MAX:
                    raise GuestError(f"trace {tid} step {i}: {name} {v} out of range")
                words.append(str(v))
            out.append("S " + " ".join(words))
        out.append("E")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# guest -> host


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def format_line(obj: Mapping[str, Any], checksum: bool = True) -> str:
    """One runner output line (what runner.c prints); used by tests and fakes."""
    text = json.dumps(obj, separators=(",", ":"))
    suffix = f" ~{fnv1a32(text.encode()):08x}" if checksum else ""
    return f"{MARKER}{text}{suffix}"


_CHECKED = re.compile(r"^(\{.*\}) ~([0-9a-f]{8})$")


class _Garbled(ValueError):
    pass


def parse_line(line: str) -> dict[str, Any] | None:
    """The runner object on a console line, None for other lines (kernel log).

    Raises ValueError (a private subclass) for a runner line that does not parse
    or whose checksum does not match.
    """
    idx = line.find(MARKER)
    if idx < 0:
        return None
    payload = line[idx + len(MARKER):].strip()
    m = _CHECKED.match(payload)
    if m:
        payload = m.group(1)
        if fnv1a32(payload.encode("utf-8", "surrogateescape")) != int(m.group(2), 16):
            raise _Garbled("checksum mismatch")
    try:
        obj = json.loads(payload)
    except ValueError as e:
        raise _Garbled(f"bad JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise _Garbled("not a JSON object")
    return obj


@dataclass(frozen=True)
class StepResult:
    """What one step did in the real kernel.

    ``ret``/``errno`` follow the syscall convention (ret -1 and errno != 0 on
    failure); they are None when the runner refused the step itself (``err``).
    ``val`` is the u64 read by a ``read``; ``sig`` names the signal a faulting
    access raised (the access then has ret -1, errno 0).
    """

    trace: int
    step: int
    op: str
    ret: int | None = None
    errno: int | None = None
    val: int | None = None
    sig: str | None = None
    err: str | None = None
    detail: str | None = None  # e.g. which sub-call of a create failed

    @property
    def ok(self) -> bool:
        return self.err is None and self.sig is None and self.ret is not None and self.ret >= 0

    @property
    def errno_name(self) -> str | None:
        """Symbolic errno ("EINVAL"), None when errno is 0 or absent."""
        if not self.errno:
            return None
        return _errno.errorcode.get(self.errno, str(self.errno))

    @property
    def outcome(self) -> str:
        """Compact summary: "ok", "ok=3", "val=42", "EINVAL", "SIGBUS", "err:nomap"."""
        if self.err:
            return f"err:{self.err}"
        if self.sig:
            return self.sig
        if self.ret is not None and self.ret < 0:
            return self.errno_name or f"ret={self.ret}"
        if self.val is not None:
            return f"val={self.val}"
        if self.op in SLOT_OPS:
            return f"ok={self.ret}"
        return "ok"


@dataclass(frozen=True)
class TraceResult:
    id: int
    exporter: str
    npages: int
    expected_steps: int
    steps: tuple[StepResult, ...]
    # "ok" | "killed" | "timeout" | "exit" (in-guest outcomes) | "cut" (results stop early)
    # | "garbled" (some step lines lost, see err "lost") | "missing" (no output at all)
    status: str
    reason: str = ""  # human-readable explanation when status != "ok"

    @property
    def complete(self) -> bool:
        return self.status == "ok" and len(self.steps) == self.expected_steps


@dataclass(frozen=True)
class GuestResult:
    uname: str
    exporters: Mapping[str, bool]
    traces: tuple[TraceResult, ...]
    done: bool
    modules: Mapping[str, int] = field(default_factory=dict)  # module file -> errno (0 = loaded)
    garbled: tuple[str, ...] = ()
    trouble: tuple[str, ...] = ()  # kernel log lines: oops, BUG, WARN, panic (kernel_trouble)
    kernel: Any = field(default=None, compare=False)  # kernels.FetchedKernel when from run_batch
    boot_seconds: float | None = field(default=None, compare=False)
    log: str = field(default="", compare=False, repr=False)

    @property
    def results(self) -> dict[int, tuple[StepResult, ...]]:
        """trace id -> its step results."""
        return {t.id: t.steps for t in self.traces}

    def trace(self, trace_id: int) -> TraceResult:
        for t in self.traces:
            if t.id == trace_id:
                return t
        raise KeyError(trace_id)

    @property
    def complete(self) -> bool:
        return self.done and not self.garbled and all(t.complete for t in self.traces)


#: kernel log lines that mean the kernel itself misbehaved (a step failure, not a result)
KERNEL_TROUBLE = re.compile(r"BUG:|Oops|WARNING:|general protection fault|Kernel panic|"
                            r"kernel NULL pointer|UBSAN:|KASAN:|refcount_t:")


def kernel_trouble(text: str) -> tuple[str, ...]:
    """The kernel log lines of `text` that report an oops, a BUG, a WARN or a panic."""
    return tuple(line.strip()[:200] for line in text.splitlines()
                 if MARKER not in line and KERNEL_TROUBLE.search(line))


def _kernel_hint(text: str) -> str:
    for line in reversed(text.splitlines()):
        if MARKER in line:
            break
        if re.search(r"Kernel panic|BUG:|Oops|Out of memory|Killed process|not syncing", line):
            return "; kernel said: " + line.strip()[:160]
    return ""


def parse_output(
    text: str,
    *,
    strict: bool = True,
    expect: Sequence[Mapping[str, Any]] | None = None,
) -> GuestResult:
    """Parse the guest console output into a GuestResult.

    Lines without ``MARKER`` (kernel log) are ignored. With ``strict`` (default) a
    garbled runner line, a missing hello or done line, or a trace cut short raises
    GuestError with a one-line message; otherwise these are flagged in the result
    (``garbled``, ``done``, ``TraceResult.status``). Traces the kernel killed or that
    timed out inside the guest are results (status "killed"/"timeout"), not errors.
    ``expect``: the traces that were sent; any of them without output is flagged
    (status "missing") or, when strict, an error.
    """
    hello: dict[str, Any] | None = None
    done: int | None = None
    garbled: list[str] = []
    traces: list[TraceResult] = []
    cur: dict[str, Any] | None = None  # trace being read
    last_pos = "before the first trace"

    def fail(msg: str) -> None:
        raise GuestError(msg, text)

    def close_cur(status: str, reason: str) -> None:
        nonlocal cur
        assert cur is not None
        traces.append(TraceResult(
            id=cur["id"], exporter=cur["exporter"], npages=cur["npages"],
            expected_steps=cur["expected"], steps=tuple(cur["steps"]), status=status, reason=reason,
        ))
        cur = None

    def bad(line: str, why: str) -> None:
        if strict:
            fail(f"garbled runner line ({why}): {line.strip()[:120]!r}")
        garbled.append(line)

    for line in text.splitlines():
        try:
            obj = parse_line(line)
        except ValueError as e:
            bad(line, str(e))
            continue
        if obj is None:
            continue
        try:
            if "fatal" in obj:
                fail(f"runner failed in the guest: {obj['fatal']}")
            if "hello" in obj:
                if hello is not None:
                    bad(line, "second hello line")
                    continue
                hello = obj
                continue
            if hello is None:
                bad(line, "runner output before the hello line")
                continue
            if "done" in obj:
                if cur is not None:
                    close_cur("cut", f"no end line for trace {cur['id']}")
                done = int(obj["done"])
                continue
            tid = int(obj["t"])
            if "begin" in obj:
                if cur is not None:
                    close_cur("cut", f"no end line for trace {cur['id']}")
                cur = {"id": tid, "exporter": str(obj.get("exporter", "")), "npages": int(obj.get("npages", 0)),
                       "expected": int(obj["steps"]), "steps": []}
                last_pos = f"trace {tid} began"
                continue
            if cur is None or cur["id"] != tid:
                bad(line, f"line for trace {tid} outside that trace")
                continue
            if "end" in obj:
                status = str(obj.get("status", "ok"))
                n, k = len(cur["steps"]), cur["expected"]
                if cur.get("lost"):
                    close_cur("garbled", "some step results were garbled on the console (op '?', err 'lost')")
                elif status == "ok":
                    reason = "" if n == k else f"only {n} of {k} step results"
                    close_cur("ok" if n == k else "cut", reason)
                elif status == "killed":
                    sig = obj.get("sig", "?")
                    close_cur("killed", f"trace process killed by {sig} after {n} of {k} steps")
                elif status == "timeout":
                    close_cur("timeout", f"trace process stuck, killed after {obj.get('seconds', '?')} s "
                                         f"at step {n} of {k}")
                else:
                    close_cur(status, f"trace process ended with {status} {obj.get('code', '')} "
                                      f"after {n} of {k} steps".replace("  ", " "))
                last_pos = f"trace {tid} ended"
                continue
            s = int(obj["s"])
            if s != len(cur["steps"]):
                if s < len(cur["steps"]) or s >= cur["expected"]:
                    bad(line, f"trace {tid}: step {s} where step {len(cur['steps'])} was expected")
                    continue
                # lenient mode: earlier steps' lines were lost (garbled); keep placeholders
                bad(line, f"trace {tid}: step {s} where step {len(cur['steps'])} was expected")
                while len(cur["steps"]) < s:
                    cur["steps"].append(StepResult(trace=tid, step=len(cur["steps"]), op="?", err="lost"))
                cur["lost"] = True
            sig = obj.get("sig")
            cur["steps"].append(StepResult(
                trace=tid, step=s, op=str(obj["op"]),
                ret=None if obj.get("ret") is None else int(obj["ret"]),
                errno=None if obj.get("errno") is None else int(obj["errno"]),
                val=None if obj.get("val") is None else int(obj["val"]),
                sig=None if sig is None else str(sig),
                err=None if obj.get("err") is None else str(obj["err"]),
                detail=None if obj.get("at") is None else str(obj["at"]),
            ))
            last_pos = f"trace {tid} step {s}"
        except GuestError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            bad(line, f"missing or bad field {e}")

    if hello is None:
        fail("no output from the runner (no hello line): the guest did not reach /init"
             + _kernel_hint(text))
    if cur is not None:
        close_cur("cut", f"output ended inside trace {cur['id']} after {len(cur['steps'])} of "
                         f"{cur['expected']} steps")
    if expect is not None:
        got = {t.id for t in traces}
        for tr in expect:
            if tr["id"] not in got:
                traces.append(TraceResult(id=tr["id"], exporter=tr["exporter"], npages=tr["npages"],
                                          expected_steps=len(tr["steps"]), steps=(), status="missing",
                                          reason="no output for this trace"))
    if strict:
        if done is None:
            fail(f"guest output ended before the done line (last seen: {last_pos})" + _kernel_hint(text))
        for t in traces:
            if t.status in ("cut", "missing"):
                fail(f"trace {t.id} cut short: {t.reason}" + _kernel_hint(text))
        seen = len([t for t in traces if t.status != "missing"])
        if done != seen:
            fail(f"runner reported {done} traces done but {seen} were seen")
    exporters = hello.get("exporters") or {}
    modules = hello.get("modules") or {}
    return GuestResult(
        uname=str(hello.get("uname", "")),
        exporters=MappingProxyType({str(k): bool(v) for k, v in exporters.items()}),
        modules=MappingProxyType({str(k): int(v) for k, v in modules.items()}),
        traces=tuple(traces),
        done=done is not None,
        garbled=tuple(garbled),
        trouble=kernel_trouble(text),
        log=text,
    )
