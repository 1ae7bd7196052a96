"""``campaign --cluster``: a real Dask scheduler and two workers on loopback (started and stopped
here, from this checkout) run a small campaign whose report equals the local one."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from properties.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def untimed(path: Path) -> dict:
    report = json.loads(path.read_text())
    report.pop("seconds")
    for r in report["results"]:
        r["evidence"].pop("seconds", None)
    return report


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    try:
        from distributed import Client
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dask.distributed is not installed: pip install -e '.[dev]'")
        pytest.skip("dask.distributed is not installed (pip install -e '.[cluster]')")
    logs = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = []

    def start(name: str, args: list[str]) -> None:
        log = open(logs / f"{name}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                            "--no-dashboard"])
        for i in range(2):
            start(f"worker{i}", ["distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads",
                                 "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"])
        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the Dask cluster did not start: " + " | ".join(
                        f.read_text()[-300:] for f in sorted(logs.iterdir())))
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):   # the workers, then the scheduler
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_cluster_report_equals_the_local_one(scheduler, tmp_path, capsys):
    args = ["campaign", "--engine", "hypothesis", "--exporter", "broken-end-keeps-pin", "--exporter", "coherent", "--scope", "tiny",
            "--examples", "12", "--steps", "10", "--seed", "5", "--database", "none"]
    assert main([*args, "--cluster", scheduler, "--json", str(tmp_path / "cluster.json")]) in (0, 1)
    err = capsys.readouterr().err
    assert f"on 2 Dask worker threads at {scheduler}" in err
    assert main([*args, "--jobs", "1", "--json", str(tmp_path / "local.json")]) in (0, 1)
    cluster, local = untimed(tmp_path / "cluster.json"), untimed(tmp_path / "local.json")
    assert cluster == local
    assert any(r["verdict"] == "violated" for r in local["results"])


def test_cluster_errors_are_one_line(scheduler, capsys):
    assert main(["campaign", "--exporter", "coherent", "--cluster", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "--cluster http://127.0.0.1:1: expected tcp://HOST:PORT of a Dask scheduler"]
    from properties.runs.cluster import ClusterError, DaskWorkers
    with pytest.raises(ClusterError, match="cannot reach the scheduler"):
        DaskWorkers(f"tcp://127.0.0.1:{_free_port()}", timeout=2)
