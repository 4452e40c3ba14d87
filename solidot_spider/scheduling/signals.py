"""Signals of the shared scheduler (connect with ``crawler.signals.connect``)."""

from __future__ import annotations

#: Sent by :class:`~solidot_spider.scheduling.scheduler.LeasingScheduler` (with ``scheduler``)
#: before it acknowledges a batch of finished requests, which removes them from Redis for good.
#: A component that holds items in memory before writing them (a batching store) must return
#: only once every item it received so far is durable; it may be ``async def``. A handler that
#: raises postpones the acknowledgement (the requests stay leased and are renewed meanwhile).
#: Feed exports need nothing: the scheduler flushes their files itself.
ack_barrier = object()

#: Sent (with ``scheduler`` and ``urls``, the URLs of the requests just acknowledged) right after
#: a batch of acknowledgements succeeded: their work is durable and they will not be redone. A
#: component that records "already done" state shared between workers (the dedupe pipeline's
#: content hashes) must record it for these URLs only now: recorded earlier, a worker killed
#: before acknowledging would leave the state saying "done" for a request that is redone — and
#: then wrongly skipped. Handlers must be quick and synchronous.
requests_acknowledged = object()
