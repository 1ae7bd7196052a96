"""The command line ``dmabuf-check`` (docs/interface.md, "Command line"): a thin layer over the
library. ``app`` builds the parser and runs a command; one module per subcommand; ``common``
holds what they share. No module outside this package imports it (tests/test_imports.py)."""
from .app import main

__all__ = ["main"]
