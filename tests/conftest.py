"""Test isolation: campaigns run by the tests neither read nor write the developer's example
database (.cache/hypothesis); tests that need a database make their own."""
import pytest


@pytest.fixture(autouse=True)
def _no_shared_example_database(monkeypatch):
    monkeypatch.setenv("DMABUF_CHECK_DATABASE", "none")
