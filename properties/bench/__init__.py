"""Benchmarks, not tests: figures to record (``make bench``, ``bench-explicit``, ``bench-z3``,
``bench-scale``, ``bench-power``); each module is run with ``python -m properties.bench.NAME``.
Nothing in the library imports them (tests/test_imports.py)."""
