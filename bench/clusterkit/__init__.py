"""The processes of ``bench/cluster.py``: each contender's roles, run as separate OS processes.

The orchestrator (``bench/cluster.py``, on trio) starts one nats-server and,
for every run, the processes a workload needs, each as
``python -m clusterkit MODULE FUNCTION JSON``: ``FUNCTION`` of
``clusterkit.MODULE`` called with the JSON object's keyword arguments (see
[`__main__`][clusterkit.__main__]). A role talks back in JSON lines on its
stdout ([`report()`][clusterkit.common.report]); its errors go to stderr,
which the orchestrator shows if the role fails.

The roles, the same for every contender that has the workload:

- ``subscriber(url, n)``: subscribes to [`TELL_SUBJECT`][clusterkit.common.TELL_SUBJECT],
  reports ``{"ready": true}``, counts ``n`` messages, then reports
  ``{"end": T, "count": n}`` (``T`` on [`now()`][clusterkit.common.now],
  when the count reached ``n``). On SIGTERM it reports what it counted so far
  (``"end": null``) and exits: the orchestrator sends one when the count stalls.
- ``publisher(url, n)``: publishes ``n`` [`PAYLOAD`][clusterkit.common.PAYLOAD]s
  without waiting for each, then reports ``{"start": T0, "done": T1, "count": n}``
  (``T0`` taken just before the first publish).
- ``responder(url)``: answers requests on [`ASK_SUBJECT`][clusterkit.common.ASK_SUBJECT]
  with [`answer(count)`][clusterkit.common.answer], its count so far; reports
  ``{"ready": true}``, and ``{"count": answered}`` on SIGTERM.
- ``requester(url, n)``: one warm-up request, then ``n`` requests one after the
  other; reports ``{"start", "end", "count"}``, where ``count`` is the last
  answer's count less the warm-up's (so ``n`` when every answer came, in turn).
- ``pool_worker(url, cost)``: a member of the queue group
  [`POOL_QUEUE`][clusterkit.common.POOL_QUEUE] on
  [`POOL_SUBJECT`][clusterkit.common.POOL_SUBJECT]; each item is
  [`burn(cost)`][clusterkit.common.burn], answered with the result; reports
  ``{"ready": true}``, and ``{"count": handled}`` on SIGTERM.
- ``pool_client(url, n, cost, window)``: sends ``n`` items, at most ``window``
  unanswered at a time, checks every answer, reports ``{"start", "end", "count"}``.

Modules: [`common`][clusterkit.common] (payload, subjects, clock, reports),
[`on_nats`][clusterkit.on_nats] (raw nats-py on asyncio),
[`bridge`][clusterkit.bridge] and [`on_bridge`][clusterkit.on_bridge] (nats-py
driven from trio through an asyncio thread), [`on_native`][clusterkit.on_native]
(troupe's trio-native NATS client, no actors), [`on_troupe`][clusterkit.on_troupe]
(troupe.cluster: actors registered under names, ``RemoteRef``), [`on_thespian`][clusterkit.on_thespian]
(Thespian's ``multiprocTCPBase``, no NATS), [`children`][clusterkit.children]
(the orchestrator's side: starting roles and reading their reports).
"""
