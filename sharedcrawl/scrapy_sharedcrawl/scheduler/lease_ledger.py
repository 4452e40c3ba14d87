"""The requests this worker holds leases on, from the pop to the acknowledgement.

:class:`LeaseLedger` follows each leased request (prefetched, in progress, done), acknowledges done ones
in batches after :data:`~.signals.ack_barrier`, renews every lease held and releases the unfinished
ones at close; :class:`SeenHere` drops a duplicate of a request queued here without a round trip.

Design notes: docs/framework-design.md#lease_ledger.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection

from pydispatch import dispatcher
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.extensions.feedexport import FeedExporter
from scrapy.signalmanager import SignalManager
from scrapy.statscollectors import StatsCollector

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.prefix import STATS
from scrapy_sharedcrawl.signals import AckPostponed, ack_barrier, request_done, requests_acknowledged

logger = logging.getLogger(__name__)


#: Fingerprints :class:`SeenHere` remembers at most, in two generations of half each: a Python int and
#: its set slot take ≈ 78 bytes (measured with tracemalloc), so at most ≈ 8 MB per worker.
SEEN_HERE_MAX = 100_000


class SeenHere:
    """Fingerprints (their first 64 bits, as the queue's request ids) of requests this worker queued in
    the current crawl: a request found here would be found seen by the shared filter, one round trip
    later. Bounded: when the recent half is full it becomes the older half (a fingerprint found there is
    recent again), so what a crawl keeps finding stays and memory stays under :data:`SEEN_HERE_MAX`."""

    def __init__(self, limit: int = SEEN_HERE_MAX) -> None:
        self.half = max(1, limit // 2)
        self.recent: set[int] = set()
        self.older: set[int] = set()

    def __len__(self) -> int:
        return len(self.recent) + len(self.older)

    @staticmethod
    def key(fingerprint: bytes) -> int:
        return int.from_bytes(fingerprint[:8], "big")

    def seen(self, key: int) -> bool:
        if key in self.recent:
            return True
        if key in self.older:
            self.add(key)
            return True
        return False

    def add(self, key: int) -> None:
        self.recent.add(key)
        if len(self.recent) >= self.half:
            self.older, self.recent = self.recent, set()

    def forget(self) -> None:
        self.recent.clear()
        self.older.clear()


def listened(signals: SignalManager, signal: object) -> bool:
    """Whether anything is connected to ``signal`` (pydispatch's own lookup, a few dict reads): sending
    a signal costs Scrapy's catch-and-log machinery ≈ 10 µs even when nobody listens, and
    :data:`~.signals.request_done` would be sent for every page."""
    return next(dispatcher.getAllReceivers(signals.sender, signal), None) is not None


def feed_flusher(crawler: Crawler) -> Callable[[], None]:
    """What pushes feed-export buffers to the OS, so the items of acknowledged requests survive a
    SIGKILL. Scrapy's feed exporter has no flush API; its slots' files are public attributes."""

    def flush() -> None:
        exporter = crawler.get_extension(FeedExporter)
        for slot in exporter.slots if exporter is not None else ():
            if slot.file is not None and not slot.file.closed:
                slot.file.flush()

    return flush


class LeaseLedger:
    """Leases of one worker by state; acknowledges, renews and releases them.

    It needs the queue holding the leases, the stats and the crawler's signals, nothing of the
    scheduler: ``sender`` is only passed on, as the ``scheduler`` argument the signals
    :data:`~.signals.ack_barrier` and :data:`~.signals.requests_acknowledged` document.
    """

    def __init__(
        self,
        queue: LeasedPriorityQueue,
        signals: SignalManager,
        stats: StatsCollector,
        worker_id: str,
        lease_seconds: float,
        *,
        sender: object = None,
    ) -> None:
        self.queue = queue
        self.signals = signals
        self.stats = stats
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.sender = sender
        #: Flushes feed files before acknowledging (in a running crawl: :func:`feed_flusher`).
        self.flush_feeds: Callable[[], None] | None = None
        self.prefetched: deque[tuple[str, Request]] = deque()  # leased, not handed to the engine yet
        self.in_progress: dict[Request, str] = {}  # handed to the engine, not done yet
        self.done: list[tuple[str, Request]] = []  # done, acknowledgement pending, in finishing order
        #: What a request's crawl produced for Redis (see :meth:`hold_output`), by request in
        #: progress, then by id once done: pushed with the acknowledgement, dropped with the lease.
        self.outputs: dict[Request, list[tuple[str, bytes]]] = {}
        self.done_outputs: dict[str, list[tuple[str, bytes]]] = {}
        self._postponed = False  # acknowledgements wait for an ack_barrier handler
        self.seen_here = SeenHere()

    @property
    def leased(self) -> bool:
        """Whether this worker holds any lease, as far as it knows (done ones wait for their ack)."""
        return bool(self.prefetched or self.in_progress or self.done)

    @property
    def holding(self) -> bool:
        """Whether this worker has requests it has not finished."""
        return bool(self.prefetched or self.in_progress)

    def take(self, leased: list[tuple[str, Request]]) -> None:
        if not self.leased:  # none held since the last pop: the crawl may have ended and started anew
            self.seen_here.forget()
        self.prefetched.extend(leased)

    def hand_out(self) -> Request:
        """The next prefetched request, now in the engine's hands."""
        request_id, request = self.prefetched.popleft()
        self.in_progress[request] = request_id
        self.stats.inc_value(f"{STATS}dequeued/redis")
        self.stats.inc_value(f"{STATS}dequeued")
        return request

    def request_done(self, request: Request) -> None:
        """The engine is finished with ``request``: acknowledge it with the next batch."""
        request_id = self.in_progress.pop(request, None)
        outputs = self.outputs.pop(request, None)
        if request_id is not None:
            self.done.append((request_id, request))
            if outputs:
                self.done_outputs[request_id] = outputs
            if listened(self.signals, request_done):
                self.signals.send_catch_log(signal=request_done, request=request)

    def hold_output(self, request: Request, key: str, value: bytes) -> bool:
        """Keep ``value``, to be pushed to the Redis list ``key`` with ``request``'s acknowledgement (in
        the same atomic step); False if ``request`` is not a lease of this worker in progress."""
        if request not in self.in_progress:
            return False
        self.outputs.setdefault(request, []).append((key, value))
        return True

    async def acknowledge(self) -> int:
        """Barrier, flush feeds, then one Redis call for the done requests that are durable; how many
        were acknowledged. Raises on a connection error, the batch still pending."""
        if not self.done:
            return 0
        batch, self.done = self.done, []
        results = await self.signals.send_catch_log_async(
            signal=ack_barrier,
            scheduler=self.sender,
            requests=[request for _, request in batch],
            dont_log=AckPostponed,
        )
        failed = [result for _, result in results if isinstance(result, BaseException)]
        if failed:
            self.done[:0] = batch
            self.stats.inc_value(f"{STATS}acks/postponed")
            if not self._postponed:  # once per streak: a database outage postpones every tick
                self._postponed = True
                logger.warning(
                    "Acknowledgements postponed: %s (%d requests stay leased, renewed meanwhile)",
                    failed[0],
                    len(self.done),
                )
            return 0
        if self._postponed:
            self._postponed = False
            logger.info("Acknowledgements resumed")
        batch = self._hold_back(batch, [result for _, result in results])
        if not batch:
            return 0
        if self.flush_feeds is not None:
            self.flush_feeds()
        outputs = {
            request_id: self.done_outputs[request_id]
            for request_id, _ in batch
            if request_id in self.done_outputs
        }
        try:
            result = self.queue.ack(self.worker_id, [request_id for request_id, _ in batch], outputs)
        except BaseException:
            self.done[:0] = batch
            raise
        for request_id in outputs:
            del self.done_outputs[request_id]
        self.signals.send_catch_log(
            signal=requests_acknowledged, scheduler=self.sender, urls=[request.url for _, request in batch]
        )
        self.stats.inc_value(f"{STATS}acked", result.acked)
        if result.late:
            self.stats.inc_value(f"{STATS}acked/late", result.late)
        if result.stale:
            self.stats.inc_value(f"{STATS}acked/stale", result.stale)
            self.seen_here.forget()  # leases lost meanwhile: the crawl may have ended without us
        return result.acked + result.late

    def _hold_back(
        self, batch: list[tuple[str, Request]], answers: list[object]
    ) -> list[tuple[str, Request]]:
        """The part of ``batch`` no barrier handler named as not durable yet; the rest goes back to
        :attr:`done` (in front, in order), asked about again with the next batch."""
        waiting: set[Request] = set()
        for answer in answers:
            if isinstance(answer, Collection) and not isinstance(answer, str | bytes):
                waiting.update(request for request in answer if isinstance(request, Request))
        if not waiting:
            return batch
        held = [entry for entry in batch if entry[1] in waiting]
        self.done[:0] = held
        self.stats.inc_value(f"{STATS}acks/held", len(held))
        return [entry for entry in batch if entry[1] not in waiting]

    def renew(self) -> int:
        """Extend every lease this worker holds (prefetched, in progress, awaiting acknowledgement)."""
        ids = [
            *self.in_progress.values(),
            *(request_id for request_id, _ in self.prefetched),
            *(request_id for request_id, _ in self.done),
        ]
        lost = set(self.queue.renew(self.worker_id, ids, self.lease_seconds))
        if lost:
            # another worker may redo these: they will be acknowledged late or counted stale
            self.seen_here.forget()  # and the crawl may have ended meanwhile
            self.stats.inc_value(f"{STATS}leases/lost", len(lost))
            logger.warning(
                "%d leases of this worker expired before renewal (a stall longer than %.0f s?)",
                len(lost),
                self.lease_seconds,
            )
        return len(ids) - len(lost)

    def release_unfinished(self) -> None:
        """Closing: requests never finished, or never started, go back to the queue now."""
        unused = [*self.in_progress.values(), *(request_id for request_id, _ in self.prefetched)]
        if unused:
            released = self.queue.release(self.worker_id, unused)
            self.stats.inc_value(f"{STATS}released", released)
            self.in_progress.clear()
            self.prefetched.clear()
        self.outputs.clear()  # their requests go back to the queue: whoever crawls them makes them again
        self.seen_here.forget()
