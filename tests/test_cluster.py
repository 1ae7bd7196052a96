"""``campaign --cluster``: a real Dask scheduler and two workers on loopback (started and stopped
here, from this checkout) run a small campaign whose report equals the local one."""
import json
import os
from pathlib import Path

import pytest

from properties.cli import main
from properties.runs.cluster import free_port, loopback_cluster


def untimed(path: Path) -> dict:
    report = json.loads(path.read_text())
    report.pop("seconds")
    for r in report["results"]:
        r["evidence"].pop("seconds", None)
    return report


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dask.distributed is not installed: pip install -e '.[dev]'")
        pytest.skip("dask.distributed is not installed (pip install -e '.[cluster]')")
    with loopback_cluster(2, logs=tmp_path_factory.mktemp("dask")) as address:
        yield address


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
        DaskWorkers(f"tcp://127.0.0.1:{free_port()}", timeout=2)
