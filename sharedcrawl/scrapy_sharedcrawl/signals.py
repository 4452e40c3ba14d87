"""Signals of the shared scheduler (connect with ``crawler.signals.connect``)."""

from __future__ import annotations

#: Sent by :class:`~scrapy_sharedcrawl.scheduler.LeasingScheduler` (with ``scheduler`` and ``requests``,
#: the batch's finished requests in the order they finished) before it acknowledges them, which removes
#: them from Redis for good. A component that holds items in memory before writing them (a batching
#: store) makes them durable here; the handler may be ``async def``. It either returns None once every
#: item it received so far is durable (a handler without a ``requests`` parameter: the only way), or
#: returns the requests of the batch whose own items are not durable yet: those stay leased (renewed)
#: and are asked about again next batch, and the rest are acknowledged now — with a store that lags,
#: acknowledgements follow its writes request by request (see :class:`~.durability.WriteMarks`).
#: A handler that raises postpones the whole batch (the requests stay leased and are renewed
#: meanwhile); raising :class:`AckPostponed` does so without a traceback in the log.
#: Feed exports need nothing: the scheduler flushes their files itself.
ack_barrier = object()

#: Sent (with ``scheduler`` and ``urls``, the URLs of the requests just acknowledged) right after
#: a batch of acknowledgements succeeded: their work is durable and they will not be redone. A
#: component that records "already done" state shared between workers (the dedupe pipeline's
#: content hashes) must record it for these URLs only now: recorded earlier, a worker killed
#: before acknowledging would leave the state saying "done" for a request that is redone — and
#: then wrongly skipped. Handlers must be quick and synchronous (start a task for slow work).
requests_acknowledged = object()

#: Sent (with ``spider``) once every one of a spider's own start requests is in the scheduler:
#: by the shared crawl's start middleware (:mod:`.start`) when ``start()`` made any request, so
#: a spider needs to know nothing of it. A worker that seeded a shared crawl with its own
#: arguments then marks the crawl as seeded (see :mod:`~scrapy_sharedcrawl.finishing`): marked
#: earlier, another worker could find the queue empty and the crawl "finished" before the seed
#: was in.
start_requests_scheduled = object()


#: Sent (with ``request``) when the engine is finished with a request leased from Redis: its callback's
#: items went through the pipelines and the requests it found are in the scheduler. A component that
#: makes items durable later notes here where this request's items stand (see
#: :class:`~.durability.WriteMarks`), to answer :data:`ack_barrier` for it. Once per page: quick and
#: synchronous.
request_done = object()


#: Sent (with ``request``, ``key``, ``value``) by a component that would push ``value`` to the Redis
#: list ``key`` for the crawl of ``request`` (the items of :mod:`~scrapy_sharedcrawl.item_outbox`).
#: The shared scheduler answers True when ``request`` is one of its leases in progress: it then
#: pushes the value with the request's acknowledgement, in one atomic step, so the value is in Redis
#: exactly when the request is done (a worker killed before acknowledging pushes nothing; the
#: worker that crawls the request again does). Any other answer: push it yourself.
hold_output = object()


class AckPostponed(Exception):
    """Raised by an :data:`ack_barrier` handler whose items are not durable yet (an expected
    condition, e.g. the database is away): the batch waits for the next try, no traceback logged."""
