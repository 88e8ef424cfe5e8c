"""``python -m troupe``: the same as the ``troupe`` command."""

from .cli import main

main()
