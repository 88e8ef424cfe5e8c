"""The ``troupe`` command line: ``troupe run FILE[:FUNCTION]``."""

from ._main import main as main
