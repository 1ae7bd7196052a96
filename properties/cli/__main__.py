"""``python -m properties.cli``: the ``dmabuf-check`` command."""
import sys

from .app import main

sys.exit(main())
