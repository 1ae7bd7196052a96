"""The claim catalog, read from ``spec/claims.md`` (the project's own copy of the claims of the
seed documentation, with IDs, sources and short quotes), and the claims not modelled, with why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Claim", "load_claims", "CLAIMS_FILE", "NOT_MODELLED"]

CLAIMS_FILE = Path(__file__).resolve().parent.parent / "spec" / "claims.md"

_ROW = re.compile(r"^\|\s*([A-Z][A-Z0-9-]+)\s*\|\s*([^|]*)\|\s*(.*)\|\s*([^|]*)\|\s*$")


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    text: str
    who: str
    section: str

    @property
    def revision(self) -> str:
        return "v5.12" if self.id.startswith("M-") else "v4.11"


@lru_cache(maxsize=1)
def load_claims(path: Path = CLAIMS_FILE) -> dict[str, Claim]:
    out: dict[str, Claim] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = _ROW.match(line)
        if m and m.group(1) != "ID":
            out[m.group(1)] = Claim(m.group(1), m.group(2).strip(), m.group(3).strip(), m.group(4).strip(), section)
    return out


# Claims of the v4.11 documentation that no property formalises, and why.
NOT_MODELLED: dict[str, str] = {
    "KCPU-RANGE-UB": "begin_cpu_access has taken no range since v4.6 ('dma-buf: Remove range-based "
                     "flush'); the sentence refers to arguments that no longer exist at v4.11, so "
                     "there is no range to model. It is a documentation drift finding.",
    "MMAP-INTERNAL-OVERFLOW": "kernel-internal dma_buf_mmap() is not an action of the model (no "
                              "importer forwards its own mmap); its 64-bit checks are a bit-precise "
                              "arithmetic question for the Z3 engine.",
    "MMAP-REDIRECT-ONLY": "a design assumption ('redirecting the initial mmap is all that's needed'), "
                          "not a rule a state or step can break; its tension with MMAP-ZAP-ALL shows "
                          "in P-ZAP-ALL and P-ZAP-OWN-FILE (an exporter faking coherency must zap PTEs, "
                          "for which the interface offers nothing).",
    "FIXME-NO-KMAP-USERS": "a statement about which kernel callers existed in 2016; the FIXME's "
                           "question with and without kmap users is a policy-synthesis query for "
                           "the Z3 engine, not a property of one policy.",
}
