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

__all__ = ["write_atomic", "write_text_atomic", "write_report", "output_problem"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_problem(path: str | os.PathLike, folder: bool = False) -> str | None:
    """Why ``path`` cannot take an output (``None``: it can), checked before any work starts: a
    file output must be a regular file (or a symbolic link to one, written through) or not exist
    yet; a folder output must be a folder or not exist yet. The folder that will hold it is
    created now (the run would create it anyway) and a probe file is written in it and removed,
    which is the only check that holds for every file system and user."""
    p = Path(path)
    try:
        if p.exists() or p.is_symlink():
            if folder and not p.is_dir():
                return "exists and is not a folder"
            if not folder and not p.resolve().is_file():
                return "exists and is not a regular file" + (" (a folder)" if p.is_dir() else "")
        where = p if folder else p.resolve().parent
    except (OSError, RuntimeError) as e:   # a name too long, a loop of symbolic links
        return f"cannot be used: {getattr(e, 'strerror', None) or e}"
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".dmabuf-check-probe.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write in {where}: {e.strerror or e}"
    return None


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``.

    A symbolic link is written through (its target is replaced, the link stays); anything else
    that is not a regular file (a folder, a device such as ``/dev/stdout``) is refused with
    ``IsADirectoryError`` or ``ValueError`` rather than replaced."""
    p = Path(path)
    if p.is_symlink() or p.exists():
        p = p.resolve()
        if p.is_dir():
            raise IsADirectoryError(f"{path}: is a folder")
        if p.exists() and not p.is_file():
            raise ValueError(f"{path}: not a regular file; refusing to replace it")
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


def write_report(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write JSON atomically: a temporary file in the same folder, then rename. Returns the path
    written: an interrupted run's report (``"interrupted": true``) does not replace a complete
    report already at ``path`` (one with ``"interrupted": false``); it goes beside it, to
    ``NAME.interrupted.json``."""
    if data.get("interrupted") is True and _complete_report(path):
        p = Path(path)
        path = p.with_name(f"{p.stem}.interrupted{p.suffix or '.json'}")
    return write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def _complete_report(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a JSON report of a run that was not interrupted."""
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and old.get("interrupted") is False
