"""``python -m troupe.cli``."""

import sys

from . import main

sys.exit(main())
