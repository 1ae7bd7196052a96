"""The command line: bad input exits 2 with one line and no traceback; a small campaign writes a
report with every field of docs/interface.md."""
import json
import subprocess
import sys

import pytest

from properties.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "properties.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["campaign", "--exporter", "no-such-driver"], "unknown exporter 'no-such-driver'"),
    (["campaign", "--scope", "huge"], "unknown scope 'huge'"),
    (["campaign", "--examples", "many"], "a whole number from 1 to 1,000,000, got 'many'"),
    (["campaign", "--examples", "0"], "argument --examples: expected a number of examples: a whole number from 1 to 1,000,000"),
    (["campaign", "--steps", str(10**23)], "argument --steps: expected a number of steps: a whole number from 1 to 10,000"),
    (["prove", "--depth", "0"], "argument --depth: expected a depth: a whole number from 1 to 64"),
    (["campaign", "--frobnicate"], "unrecognized arguments"),
    (["campaign", "--revision", "v9"], "invalid choice"),
    ([], "a command is needed"),
])
def test_bad_usage_exits_2_with_one_line(args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_malformed_policy_file_exits_2_naming_the_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text('name = "x"\n[knobs]\nbegin_pins = "yes"\n')
    r = run_cli("campaign", "--exporter", str(f))
    assert r.returncode == 2
    assert str(f) in r.stderr and "begin_pins" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content,needle", [
    (b'name = "x"\nbreaks = ["DEV-COHERENT-HANDOF"]\n', "unknown claim 'DEV-COHERENT-HANDOF' (did you mean DEV-COHERENT-HANDOFF?)"),
    (b'name = "x"\nbreaks = ["NO-SUCH-CLAIM"]\n', "unknown claim 'NO-SUCH-CLAIM'"),
    (b'name = "x"\nbreaks = ["MMAP-REDIRECT-ONLY"]\n', "no property formalises claim 'MMAP-REDIRECT-ONLY'"),
    (b'name = "x\xff"\n', "not UTF-8 text: byte 0xff at offset 9"),
])
def test_policy_file_with_a_bad_break_or_bad_bytes_exits_2(tmp_path, content, needle):
    """A typo in ``breaks`` would otherwise be a claim expected to hold, and pass silently."""
    f = tmp_path / "p.toml"
    f.write_bytes(content)
    r = run_cli("campaign", "--exporter", str(f), "--engine", "z3", "--depth", "1")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(f) in lines[0] and needle in lines[0], r.stderr


def test_policy_breaks_may_name_claims_and_properties(tmp_path):
    from model.policy import load_policy_file
    from properties.judge import breaks_problem
    f = tmp_path / "p.toml"
    f.write_text('name = "x"\nbreaks = ["DEV-COHERENT-HANDOFF", "P-DEVICE-HANDOFF"]\n')
    assert breaks_problem(load_policy_file(f)) is None
    from model.catalog import CATALOG
    assert {n: breaks_problem(p) for n, p in CATALOG.items() if breaks_problem(p)} == {}


def test_an_internal_error_exits_3_with_one_line_naming_the_traceback_file(monkeypatch, capsys):
    """Exit 1 means "not as expected"; a crash of ours must be told apart from it."""
    import argparse

    import properties.cli.app as app

    def boom(a):
        raise RuntimeError("a bug")

    class P:
        def parse_args(self, argv):
            return argparse.Namespace(command="campaign", func=boom)

    monkeypatch.setattr(app, "build_parser", lambda: P())
    assert app.main(["campaign"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error (RuntimeError: a bug)" in err[0], err
    path = err[0].rsplit(" ", 1)[1]
    text = open(path, encoding="utf-8").read()
    assert "Traceback" in text and "in boom" in text


def test_policy_names_are_told_apart(tmp_path):
    """A file named like a catalog exporter, or two files of one name, would mix in the report."""
    same = tmp_path / "r.toml"
    same.write_text('name = "reference"\n')
    a1, a2 = tmp_path / "a1.toml", tmp_path / "a2.toml"
    a1.write_text('name = "a"\n')
    a2.write_text('name = "a"\n')
    for args, needle in ((["--exporter", str(same)], "name 'reference' is a catalog exporter's"),
                         (["--exporter", str(a1), "--exporter", str(a2)],
                          f"two policies named 'a', from {a1} and from {a2}"),
                         (["--exporter", "vgem", "--exporter", "vgem"], "'vgem' given twice")):
        r = run_cli("campaign", *args)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
        assert needle in r.stderr, r.stderr


def test_small_campaign_writes_the_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["campaign", "--exporter", "omapdrm", "--exporter", "coherent", "--scope", "tiny",
                 "--examples", "150", "--jobs", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["schema"] == "dmabuf-check.report/1" and report["command"] == "campaign"
    assert report["revision"] == "v4.11" and report["scope"]["name"] == "tiny" and report["seed"] == 1
    keys = {"property", "claims", "party", "kind", "exporter", "engine", "verdict", "expected", "evidence", "trace"}
    for r in report["results"]:
        assert keys <= set(r)
        assert r["verdict"] in ("holds", "violated", "unknown", "proved")
    pin = [r for r in report["results"] if r["exporter"] == "omapdrm" and r["property"] == "P-NO-USER-PIN"][0]
    assert pin["verdict"] == "violated" and pin["expected"] == "violated"
    assert pin["trace"][-1]["action"] == "ioctl_sync"
    assert code == (1 if report["mismatches"] else 0)
    printed = capsys.readouterr().out
    assert "P-NO-USER-PIN" in printed and "ioctl_sync(fd=0, flags=DMA_BUF_SYNC_START|" in printed


def test_exporters_lists_the_catalog(capsys):
    assert main(["exporters", "--knobs"]) == 0
    out = capsys.readouterr().out
    assert "omapdrm:" in out and "begin_pins = true | false" in out


def test_reports_are_written_atomically_with_ordinary_permissions(tmp_path):
    """No temporary file is left, and the file is readable as one written by open() would be
    (``tempfile.mkstemp`` alone would make it owner-only)."""
    import os

    from properties.report.atomic import write_text_atomic
    from properties.report.atomic import write_report

    old = os.umask(0o022)
    try:
        write_report({"a": 1}, tmp_path / "r" / "report.json")
        write_text_atomic(tmp_path / "t.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "r" / "report.json").read_text() == '{\n "a": 1\n}\n'
    assert oct((tmp_path / "r" / "report.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "t.txt").stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["r", "report.json", "t.txt"]


def test_campaign_shortest_marks_every_trace(tmp_path, capsys):
    import json

    from properties.cli import main

    out = tmp_path / "c.json"
    rc = main(["campaign", "--scope", "tiny", "--exporter", "omapdrm", "--jobs", "1", "--examples", "40",
               "--database", "none", "--shortest", "--json", str(out)])
    assert rc in (0, 1)
    traced = [r for r in json.loads(out.read_text())["results"] if r["trace"]]
    assert traced and all(r["evidence"]["shortest"] is True for r in traced)
    assert all(r["evidence"]["trace_length"] <= r["evidence"]["shrunk_length"] for r in traced
               if "trace_length" in r["evidence"])
    assert "--shortest" in capsys.readouterr().err
    assert main(["campaign", "--shortest", "--shortest-states", "0"]) == 2
