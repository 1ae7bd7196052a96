"""What the subcommands share: the one-line usage error, argument types, the exporter and scope
arguments, progress on stderr, the memory default of the exhaustive searches."""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Sequence

from model.catalog import CATALOG
from model.files import exists
from model.policy import PolicyError, load_policy_file
from model.scope import SCOPES

from ..engines.explicit import physical_memory
from ..judge import breaks_problem, split_exportable

__all__ = ["UsageError", "Parser", "whole_number", "seconds", "seed_arg", "memory_size", "resolve_exporters",
           "warn_not_exportable", "scope_arg", "progress", "share_of_memory", "EXAMPLES", "STEPS", "DEPTH", "STATES", "JOBS", "RADIUS",
           "SHOWN", "SECONDS", "TIMEOUT"]


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def whole_number(least: int, most: int, noun: str = "a count"):
    """An argument type: a whole number from ``least`` to ``most`` (``noun`` names it in the
    error, which gives the accepted range)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not least <= v <= most:
            raise argparse.ArgumentTypeError(f"expected {noun}: a whole number from {least:,} to {most:,}, "
                                             f"got {_shown(text)}")
        return v
    return parse


def seconds(least: float, most: float, noun: str = "a number of seconds"):
    """An argument type: a number of seconds (a decimal) above ``least`` and at most ``most``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not least < v <= most:   # (NaN fails every comparison)
            raise argparse.ArgumentTypeError(f"expected {noun} above {least:g} and at most {most:,g}, got {_shown(text)}")
        return v
    return parse


def _shown(text: str) -> str:
    """An argument as an error message quotes it: at most 40 characters."""
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


# The accepted range of every count of the command line, in one place (the help of each option
# says it): wide enough for any run that can end, narrow enough that a typo (an extra digit, a
# negative number, 10**23) is caught before a run starts.
EXAMPLES = whole_number(1, 1_000_000, "a number of examples")
STEPS = whole_number(1, 10_000, "a number of steps")
DEPTH = whole_number(1, 64, "a depth")
STATES = whole_number(1, 10**12, "a number of states")
JOBS = whole_number(1, 1024, "a number of worker processes")
RADIUS = whole_number(1, 100, "a number of steps")
SHOWN = whole_number(0, 10_000, "a number of traces")
MAX_SECONDS = 10**6       # 11.6 days, longer than any run of ours; Z3 counts its timeout in 32-bit milliseconds
SECONDS = whole_number(1, MAX_SECONDS, "a number of seconds")
TIMEOUT = seconds(0, MAX_SECONDS)
SEED_RANGE = (-2**63, 2**64 - 1)


def seed_arg(text: str) -> int:
    """``--seed``: an integer of 64 bits, signed or not."""
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or not SEED_RANGE[0] <= v <= SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"expected an integer seed from -2**63 to 2**64-1, got {_shown(text)}")
    return v


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_MAX_MEMORY = 2**50      # 1024T


def memory_size(text: str) -> int:
    """``512M``, ``8G``, ``1.5G`` or a number of bytes, from 1M to 1024T."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    try:
        v = float(t[:-1] if unit else t) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 8G, got {_shown(text)}") from None
    if not 2**20 <= v <= _MAX_MEMORY:    # (NaN fails both)
        raise argparse.ArgumentTypeError(f"expected a size from 1M to 1024T, got {_shown(text)}")
    return int(v)


def resolve_exporters(names: Sequence[str] | None, revision: str):
    """Catalog names or policy TOML files -> policies (default: the whole catalog; the policies
    the revision cannot export are then listed by the run, never run: ``not_exportable``)."""
    if not names:
        return list(CATALOG.values())
    out = []
    source: dict[str, str] = {}     # policy name -> where it came from (for a duplicate's message)
    for n in names:
        if n in CATALOG:
            out.append(CATALOG[n])
            where = "the catalog"
        elif n.endswith(".toml") or os.sep in n or exists(n):
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


def warn_not_exportable(exporters, revision: str) -> None:
    """One line on stderr for each policy that names ``revision`` (a policy file names every
    revision unless its ``revisions`` say otherwise) but whose ops that revision's
    ``dma_buf_export()`` refuses: nothing of it can be checked there, an outcome not as expected
    (exit 1). The catalog's policies name only the revisions that can export them."""
    for n in split_exportable(exporters, revision)[1]:
        if not n.declared:
            progress(n.sentence(f"nothing of it can be checked at {n.revision} (exit 1): "
                                + (f"--revision {n.exportable_at[0]} checks it" if n.exportable_at
                                   else "no modelled revision exports it")))


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
