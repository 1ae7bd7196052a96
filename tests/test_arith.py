"""Bit-precise checks of the kernel's mmap arithmetic: the answers, their witnesses re-checked in
plain Python 64-bit arithmetic, and the model's own check against the kernel's."""
import json

import pytest

from model.scope import SCOPES
from properties.cli import main
from properties.engines.arith import PAGE_SHIFT, check_all, model_agreement

M64 = (1 << 64) - 1


def _int(v):
    return int(v, 16) if isinstance(v, str) else v


@pytest.fixture(scope="module")
def findings():
    return {f.id: f for f in check_all(timeout=60)}


def test_every_question_is_answered(findings):
    assert all(f.answer in ("proved", "reachable") for f in findings.values()), \
        {k: f.answer for k, f in findings.items() if f.answer not in ("proved", "reachable")}


def test_user_mappings_cannot_wrap_on_x86_64(findings):
    assert findings["user-no-wrap-4level"].answer == "proved"
    assert findings["user-no-wrap-5level"].answer == "proved"


def test_the_size_check_alone_accepts_a_wrapped_sum(findings):
    w = {k: _int(v) for k, v in findings["check-alone-misses-wrap"].witness.items()}
    total = w["pgoff"] + w["vma_pages"]
    assert total > M64                                   # the sum wraps ...
    assert not (total & M64) > (w["size"] >> PAGE_SHIFT)  # ... and the 64-bit check accepts it


def test_flooring_hides_the_partial_last_page(findings):
    assert findings["floor-refuses-whole-buffer"].answer == "proved"
    assert findings["floor-hides-last-page"].answer == "proved"
    w = findings["floor-example"].witness
    assert w["vm_pgoff"] + w["vma_pages"] > w["size"] >> PAGE_SHIFT


def test_dma_buf_mmap_returns_and_leftovers(findings):
    assert findings["internal-eoverflow-exactly-on-wrap"].answer == "proved"
    w = {k: _int(v) for k, v in findings["internal-eoverflow-example"].witness.items()}
    assert w["pgoff"] + w["vma_pages"] > M64
    assert findings["internal-einval-unchanged"].answer == "proved"
    w = {k: _int(v) for k, v in findings["internal-failure-leaves-pgoff"].witness.items()}
    assert w["vm_pgoff_after"] == w["pgoff"] != w["old_vm_pgoff"]
    assert w["pgoff"] + w["vma_pages"] <= w["size"] >> PAGE_SHIFT   # it got past both checks
    assert findings["internal-failure-always-pgoff"].answer == "proved"


def test_the_model_check_agrees_inside_its_scope_and_only_wraps_differ(findings):
    for s in SCOPES:
        assert findings[f"model-agrees-{s}"].answer == "proved"
    assert findings["model-agrees-without-wrap"].answer == "proved"
    w = {k: _int(v) for k, v in findings["model-disagrees-on-wrap"].witness.items()}
    exact = w["vm_pgoff"] + w["vma_pages"]
    assert exact > M64 and (exact > w["pages"]) != ((exact & M64) > w["pages"])


def test_a_model_without_the_size_check_disagrees():
    f = model_agreement(SCOPES["small"], policy="mutant-no-size-check")
    assert f.answer == "refuted" and f.witness["kernel"] and not f.witness["model"]


def test_cli_prove_arith(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["prove", "--only", "arith", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {f["id"] for f in data["arith"]} >= {"user-no-wrap-4level", "internal-failure-leaves-pgoff"}
    assert "Bit-precise mmap arithmetic" in capsys.readouterr().out
