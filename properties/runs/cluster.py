"""Runner tasks on a Dask distributed cluster:
``campaign --cluster tcp://SCHEDULER:PORT`` submits each task (``properties.runs.runner.run_task``)
to the scheduler, which runs it on a worker; the merge is the same as for local workers, so the
report equals a local one for the same seed and budget.

Every worker must import the same dmabuf-check and the same Hypothesis as this process (same
checkout or the same installed version): a task's result depends on both. On connecting, each
worker is asked for a digest of the model/ and properties/ sources and its Hypothesis version, and
a worker that differs is refused, since its results could not be merged. The example database
spec is passed to the workers as it is: a directory is then a directory on each worker, so a
cluster shares counterexamples only through ``--database redis://HOST:PORT/N``.

:func:`loopback_cluster` starts a scheduler and workers on 127.0.0.1 from this checkout, for the
tests and benchmarks of the cluster paths (campaigns and the distributed search).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import queue
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import hypothesis

from .runner import Task, run_task

__all__ = ["ClusterError", "DaskWorkers", "identity", "loopback_cluster", "free_port"]


class ClusterError(RuntimeError):
    """A ``--cluster`` that cannot be used; the message is one line."""


@functools.lru_cache(maxsize=1)
def identity() -> tuple[str, str]:
    """(digest of the model and properties sources, Hypothesis version) of this process, taken
    once, when the modules a task runs are imported: a worker started before the checkout
    changed keeps the digest of the code it runs, and is refused."""
    for name in ("properties.runs.runner", "properties.runs.shards", "properties.engines.hypothesis_engine",
                 "properties.runs.database"):
        importlib.import_module(name)
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for pkg in ("model", "properties"):
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16], hypothesis.__version__


class DaskWorkers:
    """Submits tasks to a Dask scheduler; finished futures are gathered by the runner."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        parts = urlsplit(address)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise ClusterError(f"--cluster {address}: expected tcp://HOST:PORT of a Dask scheduler")
        try:
            from distributed import Client  # optional: the cluster extra, needed only with --cluster
        except ImportError:
            raise ClusterError(f"--cluster {address}: dask.distributed is not installed "
                               f"(pip install 'dmabuf-check[cluster]')") from None
        try:
            self.client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"--cluster {address}: cannot reach the scheduler: {e}") from None
        try:
            self.capacity = self._check(address)
        except BaseException:
            self.client.close()
            raise
        self.results: queue.Queue = queue.Queue()
        self.token = uuid.uuid4().hex[:8]
        self.futures: dict[int, object] = {}

    def _check(self, address: str) -> int:
        threads = self.client.nthreads()
        if not threads:
            raise ClusterError(f"--cluster {address}: the scheduler has no workers")
        mine = identity()
        try:
            theirs = self.client.run(identity)
        except Exception as e:  # noqa: BLE001 - whatever the worker raised, in one line
            raise ClusterError(f"--cluster {address}: a worker cannot run dmabuf-check "
                               f"({type(e).__name__}: {e}); start the workers from the same "
                               f"checkout or installation") from None
        for worker, ident in sorted(theirs.items()):
            if tuple(ident) != mine:
                raise ClusterError(f"--cluster {address}: worker {worker} runs a different dmabuf-check "
                                   f"or Hypothesis (source {ident[0]}, Hypothesis {ident[1]}; here "
                                   f"{mine[0]}, {mine[1]})")
        return sum(threads.values())

    def submit(self, task: Task) -> None:
        fut = self.client.submit(run_task, task, key=f"dmabuf-check-{self.token}-{task.index}", pure=False)
        self.futures[task.index] = fut
        fut.add_done_callback(lambda f, i=task.index: self.results.put(_Done(i, f)))

    def get(self, timeout: float):
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            return None

    def collect(self, done: "_Done"):
        """The task's result (raises what the task raised)."""
        self.futures.pop(done.index, None)
        return done.future.result()

    def examples(self) -> int | None:
        return None

    def stop(self, cancel: bool) -> None:
        """Cancel what is left (a task already running on a worker finishes there and is
        dropped) and disconnect."""
        try:
            if cancel and self.futures:
                self.client.cancel(list(self.futures.values()))
        finally:
            self.client.close()


class _Done:
    """A finished Dask future; the runner gathers its result."""

    def __init__(self, index: int, future) -> None:
        self.index = index
        self.future = future


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def loopback_cluster(workers: int = 2, logs: Path | None = None, timeout: float = 90.0) -> Iterator[str]:
    """A Dask scheduler and ``workers`` single-threaded workers on 127.0.0.1, started from this
    checkout (processes of their own, no nanny) and stopped on exit; yields the scheduler's
    address. Raises ``RuntimeError`` (with the end of the logs) if they do not start."""
    from distributed import Client  # reason: optional dependency (the cluster extra)
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs: list[subprocess.Popen] = []
    outs: list[Any] = []

    def start(name: str, args: list[str]) -> None:
        out = open(logs / f"{name}.log", "w") if logs is not None else subprocess.DEVNULL
        outs.append(out)
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=root, env=env, stdout=out,
                                      stderr=subprocess.STDOUT))

    try:
        start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                            "--no-dashboard"])
        for i in range(workers):
            start(f"worker{i}", ["distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads",
                                 "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"])
        deadline = time.monotonic() + timeout
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    tail = (" | ".join(f.read_text()[-300:] for f in sorted(logs.iterdir()))
                            if logs is not None else "no logs kept")
                    raise RuntimeError(f"the Dask cluster did not start: {tail}") from None
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
        for out in outs:
            if out is not subprocess.DEVNULL:
                out.close()
