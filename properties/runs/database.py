"""Where counterexamples are kept between runs: a Hypothesis
example database that the Hypothesis engine saves every failing example into and replays first
on the next run (``Phase.reuse``).

``--database`` names it: a directory path; ``redis://HOST:PORT/N`` for a Redis server that
processes and machines share (``hypothesis.extra.redis``); or ``none``. Without the option,
``$DMABUF_CHECK_DATABASE`` names it if set (a test suite sets it to ``none``), else it is a
directory in the project's cache (``.cache/hypothesis`` in the checkout, or
``$DMABUF_CHECK_CACHE/hypothesis``).

Examples are stored under one key per exporter policy (its name and every knob), scope, revision
and property group (``database_key``): the property list is left out of the key on purpose, so
that adding a property to the catalog does not orphan what was found. The database is wrapped in
``KeepFailures``, which refuses Hypothesis's deletes from that key: the engine re-runs with the
properties already violated switched off, and in such a pass a stored example that violates only
a switched-off property is no longer a failure, which Hypothesis would take as a bug fixed and
delete. A stored example that no longer fails at all is kept too (it costs one short replay per
run); delete the directory, or ``FLUSHDB`` the Redis database, to start afresh.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import astuple
from datetime import timedelta
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from model.policy import ExporterPolicy, KNOBS
from model.scope import Scope

__all__ = ["DatabaseError", "ENV", "DATABASE_ENV", "default_spec", "cache_dir", "default_directory",
           "database_key", "open_database", "describe", "KeepFailures", "REDIS_EXPIRY"]

ENV = "DMABUF_CHECK_CACHE"
DATABASE_ENV = "DMABUF_CHECK_DATABASE"
# Redis drops a key that nobody fetched or saved for this long (Hypothesis's default is 8 days,
# too short for a policy that is checked once per merge window).
REDIS_EXPIRY = timedelta(days=180)


class DatabaseError(ValueError):
    """A ``--database`` that cannot be used; the message is one line naming it and the problem."""


def cache_dir() -> Path:
    """The project's cache: ``$DMABUF_CHECK_CACHE``, else ``.cache`` in the checkout (the folder
    holding pyproject.toml), else ``~/.cache/dmabuf-check`` for an installed copy."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / ".cache"
    return Path.home() / ".cache" / "dmabuf-check"


def default_directory() -> Path:
    return cache_dir() / "hypothesis"


def default_spec() -> str:
    """The database of a campaign run without ``--database``: ``$DMABUF_CHECK_DATABASE``, else
    ``""`` (the default directory)."""
    return os.environ.get(DATABASE_ENV, "")


def database_key(policy: ExporterPolicy, scope: Scope, revision: str, group: str = "all") -> bytes:
    """The Hypothesis database key of one exporter policy's runs: readable, with a digest of
    every knob and scope bound so that a changed policy file gets a key of its own."""
    ident = repr((policy.name, tuple((k, getattr(policy, k)) for k in sorted(KNOBS)), astuple(scope),
                  revision, group))
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return f"dmabuf-check/{revision}/{scope.name}/{policy.name}/{group}/{digest}".encode()


def _is_primary(key: bytes) -> bool:
    return not key.endswith((b".secondary", b".pareto"))


class KeepFailures(ExampleDatabase):
    """Forwards to a database, but never deletes a stored failing example (see the module
    docstring), and keeps nothing else: Hypothesis's secondary and Pareto corpora (examples
    that once failed before a smaller one was found, examples on the targets' Pareto front)
    are neither stored nor fetched."""

    def __init__(self, inner: ExampleDatabase) -> None:
        super().__init__()
        self.inner = inner

    def __repr__(self) -> str:
        return f"KeepFailures({self.inner!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepFailures) and self.inner == other.inner

    def __hash__(self) -> int:
        return hash(("KeepFailures", id(self.inner)))

    def save(self, key: bytes, value: bytes) -> None:
        if _is_primary(key):
            self.inner.save(key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.inner.fetch(key) if _is_primary(key) else iter(())

    def delete(self, key: bytes, value: bytes) -> None:
        pass

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.save(dest, value)  # a smaller example replaced this one: keep both


_OPEN: dict[str, ExampleDatabase | None] = {}


def open_database(spec: str | None) -> ExampleDatabase | None:
    """The database that ``spec`` names (see the module docstring); opened once per process.
    Raises ``DatabaseError`` with a one-line message for a spec that cannot be used."""
    spec = spec or ""
    key = spec or str(default_directory())
    if key not in _OPEN:
        _OPEN[key] = _open(spec)
    return _OPEN[key]


def _open(spec: str) -> ExampleDatabase | None:
    if spec.lower() in ("none", "off"):
        return None
    if spec.startswith("redis://"):
        return KeepFailures(_open_redis(spec))
    if "://" in spec:
        raise DatabaseError(f"--database {spec}: unknown scheme {spec.split('://')[0]!r}; give a "
                            f"directory, redis://HOST:PORT/N or none")
    path = Path(spec) if spec else default_directory()
    if path.exists() and not path.is_dir():
        raise DatabaseError(f"--database {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not spec:
            # like .pytest_cache: the cache keeps itself out of version control
            ignore = path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by dmabuf-check\n*\n", encoding="utf-8")
    except OSError as e:
        raise DatabaseError(f"--database {path}: cannot create the directory: {e.strerror}") from None
    return KeepFailures(DirectoryBasedExampleDatabase(str(path)))


def _open_redis(url: str) -> ExampleDatabase:
    parts = urlsplit(url)
    spec = describe(url)
    try:
        port = parts.port or 6379
    except ValueError:
        raise DatabaseError(f"--database {spec}: the port is not a number") from None
    host = parts.hostname
    if not host:
        raise DatabaseError(f"--database {spec}: no host; expected redis://HOST:PORT/N")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise DatabaseError(f"--database {spec}: the database number {path!r} is not a number")
    try:
        import redis  # optional: the cluster extra, needed only for a redis:// database
        from hypothesis.extra.redis import RedisExampleDatabase  # optional: needs redis
    except ImportError:
        raise DatabaseError(f"--database {spec}: the redis Python package is not installed "
                            f"(pip install 'dmabuf-check[cluster]')") from None
    client = redis.Redis(host=host, port=port, db=int(path or 0), password=parts.password,
                         socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except redis.RedisError as e:
        raise DatabaseError(f"--database {spec}: cannot reach Redis: {e}") from None
    return RedisExampleDatabase(client, expire_after=REDIS_EXPIRY)


def describe(spec: str | None) -> str:
    """What ``spec`` names, for messages (a Redis password left out)."""
    if not spec:
        return str(default_directory())
    if spec.startswith("redis://") and "@" in spec:
        return "redis://" + spec.split("@", 1)[1]
    return spec
