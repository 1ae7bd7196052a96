"""Reading the text files a user gives the tool (policy files, litmus files, ITF traces, the
known-differences file): UTF-8 text, then TOML or JSON, with a bound on how deeply arrays and
tables may nest.

Python's TOML and JSON parsers recurse once (or several times) per level of nesting, so a file of
100,000 ``[`` ends in ``RecursionError`` rather than in a parse error, and how deep a file may go
would depend on the caller's stack. No file the tool reads needs more than a few levels, so the
text is scanned first, outside strings and comments, and a file nested deeper than
``MAX_NESTING`` is refused with the line and column where it passes the bound. Every problem is a
``FileProblem`` whose message says what is wrong and where (the caller prefixes the file name).
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["FileProblem", "MAX_NESTING", "read_text", "exists", "parse_toml", "parse_json", "nesting_problem"]

MAX_NESTING = 64


class FileProblem(ValueError):
    """A file that cannot be read as the text it should be; the message names the place."""


def read_text(path: str | Path) -> str:
    """The file's text; ``FileProblem`` when it cannot be read or is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise FileProblem(f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise FileProblem(f"not UTF-8 text: byte 0x{e.object[e.start]:02x} at offset {e.start}") from None
    except ValueError as e:   # a NUL character in the name
        raise FileProblem(f"cannot read: {e}") from None


def exists(path: str | Path) -> bool:
    """Whether there is a file or folder at ``path``; False for a name no file can have (too long,
    a NUL character) rather than an exception."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


# what can hide a bracket: strings and comments, in the syntax of each language
_JSON_SKIP = r'"(?:[^"\\]|\\.)*"?'
_TOML_SKIP = r'"""[\s\S]*?(?:"""|\Z)|\'\'\'[\s\S]*?(?:\'\'\'|\Z)|"(?:[^"\\\n]|\\.)*"?|\'[^\'\n]*\'?|#[^\n]*'
_SCAN = {
    "json": re.compile(rf"{_JSON_SKIP}|(?P<open>[\[{{])|(?P<close>[\]}}])"),
    "toml": re.compile(rf"{_TOML_SKIP}|(?P<open>[\[{{])|(?P<close>[\]}}])"),
}


def nesting_problem(text: str, syntax: str, limit: int = MAX_NESTING) -> str | None:
    """``"line L column C: ..."`` where arrays and tables (objects) nest more than ``limit``
    levels deep, or None. Brackets inside strings and comments do not count."""
    depth = 0
    for m in _SCAN[syntax].finditer(text):
        if m.lastgroup == "open":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, m.start()) + 1
                col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                what = "arrays and objects" if syntax == "json" else "arrays and tables"
                return f"line {line} column {col}: {what} nest more than {limit} levels deep (a file here needs a few)"
        elif m.lastgroup == "close":
            depth = max(0, depth - 1)
    return None


def parse_toml(text: str) -> dict[str, Any]:
    """TOML text as a dict; ``FileProblem`` for text that is not TOML or nests too deeply."""
    problem = nesting_problem(text, "toml")
    if problem:
        raise FileProblem(problem)
    try:
        return tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError, or an integer of more digits than Python converts
        raise FileProblem(f"not valid TOML: {e}") from None
    except RecursionError:   # a deep stack of the caller's: the bound above did not leave room
        raise FileProblem("arrays and tables nest too deeply") from None


def parse_json(text: str) -> Any:
    """JSON text as Python values; ``FileProblem`` for text that is not JSON or nests too deeply."""
    problem = nesting_problem(text, "json")
    if problem:
        raise FileProblem(problem)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FileProblem(f"line {e.lineno} column {e.colno}: not JSON: {e.msg}") from None
    except ValueError as e:  # an integer of more digits than Python converts
        raise FileProblem(f"not usable JSON: {e}") from None
    except RecursionError:   # a deep stack of the caller's: the bound above did not leave room
        raise FileProblem("arrays and objects nest too deeply") from None
