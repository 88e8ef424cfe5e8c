"""troupe's web dashboard and HTTP API: Starlette on hypercorn's trio worker.

`serve` attaches a dashboard to a running system (its server runs in the
system's nursery and stops with it); `serve_store` serves a job store alone
(``troupe jobs serve --db PATH``). Needs the ``web`` extra:
``pip install 'trio-troupe[web]'``.
"""

try:
    import hypercorn  # noqa: F401
    import sse_starlette  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("troupe.web needs the 'web' extra: pip install 'trio-troupe[web]'") from exc

from ._errors import WebError as WebError
from ._serve import Dashboard as Dashboard
from ._serve import serve as serve
from ._serve import serve_store as serve_store
