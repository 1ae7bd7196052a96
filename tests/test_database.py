"""The example database (properties.runs.database): a counterexample found is stored and replayed
first on the next run, in a directory and through a real Redis server on loopback (started and
stopped here; ``make scale-setup`` installs Debian's redis-server)."""
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from model.catalog import CATALOG
from model.machine import Model
from model.scope import SCOPES
from properties.index import PROPERTIES
from properties.cli import main
from properties.runs.database import DatabaseError, KeepFailures, database_key, open_database
from properties.engines.hypothesis_engine import run_hypothesis

ROOT = Path(__file__).resolve().parents[1]
# A violation that a fresh run finds only after a few dozen examples.
POLICY, PROP = "broken-zap-without-own-file", "P-ZAP-ALL"


def first_run(spec: str | None):
    db = open_database(spec) if spec is not None else None
    vs = run_hypothesis(Model(CATALOG[POLICY], SCOPES["tiny"]), PROPERTIES, examples=40, seed=1, steps=20,
                        max_rounds=1, database=db)
    return next(v for v in vs if v.property == PROP)


def test_keys_tell_policies_scopes_revisions_and_groups_apart():
    p, q = CATALOG["omapdrm"], CATALOG["i915"]
    k = database_key(p, SCOPES["tiny"], "v4.11")
    assert k == database_key(p, SCOPES["tiny"], "v4.11")
    assert k.startswith(b"dmabuf-check/v4.11/tiny/omapdrm/all/")
    others = {database_key(q, SCOPES["tiny"], "v4.11"), database_key(p, SCOPES["small"], "v4.11"),
              database_key(p, SCOPES["tiny"], "v5.12"), database_key(p, SCOPES["tiny"], "v4.11", "invariants")}
    assert k not in others and len(others) == 4


def test_stored_failures_are_never_deleted_and_nothing_else_is_kept(tmp_path):
    db = open_database(str(tmp_path / "db"))
    assert isinstance(db, KeepFailures)
    db.save(b"k", b"x")
    db.delete(b"k", b"x")                      # a pass where its property is switched off
    db.move(b"k", b"k.secondary", b"x")
    db.save(b"k.pareto", b"y")
    assert list(db.fetch(b"k")) == [b"x"] and list(db.fetch(b"k.pareto")) == []


@pytest.mark.parametrize("spec,needle", [
    ("ftp://host/x", "unknown scheme 'ftp'"),
    ("redis://127.0.0.1:notaport/0", "the port is not a number"),
    ("redis://127.0.0.1:6379/zero", "is not a number"),
])
def test_bad_database_specs(spec, needle):
    with pytest.raises(DatabaseError, match=needle):
        open_database(spec)


def test_bad_database_on_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("")
    assert main(["campaign", "--exporter", "coherent", "--scope", "tiny", "--database", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"--database {f}: exists and is not a directory"]


def test_the_database_environment_variable_is_the_default(monkeypatch, capsys):
    monkeypatch.setenv("DMABUF_CHECK_DATABASE", "ftp://host/x")
    assert main(["campaign", "--exporter", "coherent", "--scope", "tiny"]) == 2
    assert "unknown scheme 'ftp'" in capsys.readouterr().err


def test_directory_database_replays_a_counterexample_first(tmp_path):
    spec = str(tmp_path / "db")
    fresh = first_run(spec)
    assert fresh.verdict == "violated" and fresh.evidence["found_after"] >= 10
    assert "replayed" not in fresh.evidence
    assert any((tmp_path / "db").rglob("*"))
    again = first_run(spec)
    assert again.verdict == "violated" and again.evidence["replayed"] is True
    # found by replaying what the first run stored (``replayed``), before any new example
    assert again.evidence["found_after"] < fresh.evidence["found_after"]
    # without a database the run is the one a fresh database gives: replay adds, never changes
    plain = first_run(None)
    assert plain.evidence["found_after"] == fresh.evidence["found_after"] and plain.trace == fresh.trace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: .ci/run must run `make scale-setup`")
        pytest.skip("redis-server is not installed (make scale-setup installs Debian's redis-server)")
    pytest.importorskip("redis", reason="the redis Python package is not installed (pip install -e '.[dev]')")
    import redis

    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, db=3)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/3", client
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_redis_database_is_shared_between_processes(redis_url):
    url, client = redis_url
    # another process finds the counterexample and stores it in Redis ...
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_database import first_run
        v = first_run({url!r})
        print(v.verdict, v.evidence["found_after"])
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    verdict, found_after = r.stdout.split()
    assert verdict == "violated" and int(found_after) >= 10
    keys = client.keys(b"*dmabuf-check/v4.11/tiny/" + POLICY.encode() + b"/*")
    assert keys and all(client.scard(k) >= 1 for k in keys)
    # ... and this one replays it first
    again = first_run(url)
    assert again.verdict == "violated" and again.evidence["replayed"] is True
    assert again.evidence["found_after"] < int(found_after)
