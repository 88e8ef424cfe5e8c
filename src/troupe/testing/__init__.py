"""Testing helpers: ``TestProbe``, schedule exploration, and the pytest plugin's fixtures.

The plugin registers itself through the ``pytest11`` entry point when
troupe is installed: the fixtures ``system``, ``probe`` and
``assert_no_dead_letters``, the ``explore`` marker and the
``--troupe-seed`` option are then available in every test.
"""

from .._util import fixup_module_metadata as _fixup_module_metadata
from ._explore import explore as explore
from ._explore import random as random
from ._explore_errors import ExploreError as ExploreError
from ._explore_errors import ExploreSummary as ExploreSummary
from ._explore_errors import ScheduleFailure as ScheduleFailure
from ._explore_errors import ScheduleHang as ScheduleHang
from ._inject import inject_failure as inject_failure
from ._probe import TestProbe as TestProbe

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
