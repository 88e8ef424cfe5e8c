"""``python -m troupe.cli``."""

import sys

from . import main

if __name__ == "__main__":  # worker processes re-import the main module
    sys.exit(main())
