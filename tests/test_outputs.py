"""Output paths: checked before any work starts (exit 2, one line), written atomically, and a
writer that replaces nothing but a regular file (a symbolic link is written through)."""
import os
import subprocess
import sys
import time

import pytest

from properties.report.atomic import output_problem, write_report


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "properties.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["campaign", "--exporter", "reference", "--json", "{dir}"], "--json {dir}: exists and is not a regular file"),
    (["campaign", "--exporter", "reference", "--json", "/dev/null"], "--json /dev/null: exists and is not a regular file"),
    (["campaign", "--exporter", "reference", "--json", "{file}/r.json"], "cannot write in {file}"),
    (["campaign", "--exporter", "reference", "--traces", "{file}"], "--traces {file}: exists and is not a folder"),
    (["explore", "--exporter", "reference", "--scope", "tiny", "--json", "{dir}"], "exists and is not a regular file"),
    (["explore", "--exporter", "reference", "--scope", "tiny", "--graph", "{dir}"], "exists and is not a regular file"),
    (["prove", "--exporter", "reference", "--smt2", "{file}"], "--smt2 {file}: exists and is not a folder"),
    (["review", "--out", "{file}"], "--out {file}: exists and is not a folder"),
    (["litmus", "--json", "{dir}"], "exists and is not a regular file"),
])
def test_a_bad_output_path_stops_the_run_before_it_starts(tmp_path, args, needle):
    f = tmp_path / "a-file"
    f.write_text("keep me\n")
    fill = {"dir": str(tmp_path), "file": str(f)}
    t = time.monotonic()
    r = run_cli(*[a.format(**fill) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle.format(**fill) in lines[0], r.stderr
    assert time.monotonic() - t < 20          # refused up front (the runs themselves take minutes)
    assert f.read_text() == "keep me\n"


def test_output_problem_accepts_new_paths_and_creates_their_folders(tmp_path):
    assert output_problem(tmp_path / "a" / "b" / "r.json") is None
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    assert output_problem(tmp_path / "d", folder=True) is None and (tmp_path / "d").is_dir()


def test_the_writer_writes_through_a_symbolic_link_and_refuses_a_device(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_report({"a": 1}, link)
    assert link.is_symlink() and '"a": 1' in real.read_text()
    with pytest.raises(ValueError):
        write_report({"a": 1}, "/dev/null")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    with pytest.raises(IsADirectoryError):
        write_report({"a": 1}, tmp_path)
