"""Testing helpers: ``TestProbe`` and the pytest plugin's fixtures.

The plugin registers itself through the ``pytest11`` entry point when
troupe is installed: the fixtures ``system``, ``probe`` and
``assert_no_dead_letters`` are then available in every test.
"""

from ._probe import TestProbe as TestProbe
