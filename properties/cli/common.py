"""What the subcommands share: the one-line usage error, argument types, the exporter and scope
arguments, progress on stderr, the memory default of the exhaustive searches."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from model.catalog import CATALOG
from model.policy import PolicyError, load_policy_file
from model.scope import SCOPES

from ..engines.explicit import physical_memory
from ..judge import breaks_problem

__all__ = ["UsageError", "Parser", "positive", "whole_number", "seed_arg", "memory_size", "resolve_exporters", "scope_arg",
           "progress", "share_of_memory"]


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def whole_number(least: int, noun: str = "a number"):
    """An argument type: a whole number of at least ``least`` (``noun`` names it in the error)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < least:
            raise argparse.ArgumentTypeError(f"expected {noun} of at least {least}, got {v}")
        return v
    return parse


positive = whole_number(1)


def seed_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_size(text: str) -> int:
    """``512M``, ``8G``, ``1.5G`` or a number of bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    try:
        v = float(t[:-1] if unit else t) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 8G, got {text!r}") from None
    if v < 2**20:
        raise argparse.ArgumentTypeError(f"expected at least 1M, got {text!r}")
    return int(v)


def resolve_exporters(names: Sequence[str] | None, revision: str):
    """Catalog names or policy TOML files -> policies (default: the catalog for the revision)."""
    if not names:
        return [p for p in CATALOG.values() if revision in p.revisions]
    out = []
    source: dict[str, str] = {}     # policy name -> where it came from (for a duplicate's message)
    for n in names:
        if n in CATALOG:
            out.append(CATALOG[n])
            where = "the catalog"
        elif n.endswith(".toml") or os.sep in n or Path(n).exists():
            try:
                pol = load_policy_file(n, CATALOG)
            except PolicyError as e:
                raise UsageError(str(e)) from None
            problem = breaks_problem(pol)
            if problem:
                raise UsageError(f"{n}: {problem}")
            if pol.name in CATALOG:
                raise UsageError(f"{n}: name {pol.name!r} is a catalog exporter's; give the policy its own name "
                                 f"(based_on = {pol.name!r} starts from that exporter)")
            out.append(pol)
            where = n
        else:
            raise UsageError(f"--exporter: unknown exporter {n!r} (not in the catalog, not a .toml "
                             f"file); 'dmabuf-check exporters' lists the catalog")
        name = out[-1].name
        if name in source:
            raise UsageError(f"--exporter: {name!r} given twice" if source[name] == where else
                             f"--exporter: two policies named {name!r}, from {source[name]} and from {where}")
        source[name] = where
    return out


def scope_arg(name: str):
    """``--scope NAME`` -> the scope (a usage error names the known ones)."""
    if name not in SCOPES:
        raise UsageError(f"--scope: unknown scope {name!r}; known scopes: {', '.join(SCOPES)}")
    return SCOPES[name]


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def share_of_memory(jobs: int) -> int | None:
    """Three quarters of the machine's memory, shared by ``jobs`` workers: what an exhaustive
    search may use before it stops and says ``unknown``."""
    total = physical_memory()
    return None if total is None else int(0.75 * total / max(1, jobs))
