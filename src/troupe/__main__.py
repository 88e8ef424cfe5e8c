"""``python -m troupe``: the same as the ``troupe`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # worker processes re-import the main module
    sys.exit(main())
