"""spec/claims.md: text in double quotes is the kernel's, verbatim (found in the project's corpus,
whitespace aside), and every word of the project's own is marked as its reading (``Reading:``);
the runtime readers show the label."""
import json
import re

from properties.claims import READING, load_claims, marking_problem
from properties.cli import main
from properties.report.sources import quote_in_corpus


def test_every_row_keeps_the_convention():
    claims = load_claims()
    assert len(claims) > 40
    problems = {cid: marking_problem(c.text) for cid, c in claims.items()}
    assert {k: v for k, v in problems.items() if v} == {}
    missing = [(cid, q) for cid, c in claims.items() for q in re.findall(r'"([^"]*)"', c.text)
               if not quote_in_corpus(q)]
    assert missing == []
    # BEGIN-ERRORS: the kernel's Returns paragraph, and the project's "nothing half-done" as a reading
    be = claims["BEGIN-ERRORS"]
    assert "-ERESTARTSYS or -EINTR when the call has been interrupted and needs to be restarted." in be.quotes[0]
    assert "half-done" in be.reading and "half-done" not in be.kernel


def test_the_checks_can_fail():
    # the old BEGIN-ERRORS row: the project's words unmarked
    old = ("Returns 0 or a negative errno; can fail when the backing storage can't be allocated; -ERESTARTSYS "
           "or -EINTR when interrupted, and the call must be restarted. A failed begin must leave nothing half-done.")
    assert "not marked as the project's reading" in marking_problem(old)
    assert "not marked" in marking_problem('kmap calls "need to always succeed."')
    assert marking_problem('"a" Reading: b Reading: c') and marking_problem('"unclosed')
    assert marking_problem('"need to always succeed." Reading: "these calls" are kmap calls.') is None
    # a quote of the project's own wording is not in the corpus
    assert not quote_in_corpus("the call must be restarted")
    assert not quote_in_corpus("A failed begin must leave nothing half-done.")
    assert quote_in_corpus("needs  to be\n restarted")            # whitespace aside


def test_the_claims_command_shows_the_reading(capsys, tmp_path):
    assert main(["claims", "BEGIN-ERRORS", "LIFE-RELEASE", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert f"{READING} `ops->release`" in out and '"0 on success' in out
    rows = {r["id"]: r for r in json.loads((tmp_path / "c.json").read_text())["claims"]}
    assert rows["LIFE-RELEASE"]["kernel"] == [] and rows["LIFE-RELEASE"]["reading"].startswith("`ops->release`")
    assert rows["BEGIN-ERRORS"]["kernel"][0].startswith("0 on success") and "half-done" in rows["BEGIN-ERRORS"]["reading"]
