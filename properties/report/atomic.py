"""Atomic file writes, for every report, trace and graph the tool writes; ``write_report`` is
every command's and benchmark's JSON writer.

A temporary file in the destination's folder, then a rename: an interrupted run never leaves a
half-written file, and a reader sees the old file or the new one. The file gets the permissions
an ordinary ``open(path, "w")`` would give (``tempfile.mkstemp`` creates it readable by its
owner only)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

__all__ = ["write_atomic", "write_text_atomic", "write_report"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text))


def write_report(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write JSON atomically: a temporary file in the same folder, then rename."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
