"""Which finished requests a writing component has made durable: acknowledgements request by request.

:class:`WriteMarks` notes where each finished request's last write stands and answers the
:data:`~.signals.ack_barrier` question "which of these are not durable yet?", so a batching store
that lags holds back only the requests behind its writes.

Design notes: docs/framework-design.md#durability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scrapy import Request
from scrapy.crawler import Crawler

from scrapy_sharedcrawl.signals import request_done


class WriteMarks:
    """The mark (writes received when it finished) of each finished request not yet known durable."""

    def __init__(self, crawler: Crawler, received: Callable[[], int]) -> None:
        self._received = received
        self._marks: dict[Request, int] = {}
        # Scrapy's signals hold a weak reference: this object lives as long as its owner keeps it
        crawler.signals.connect(self.note, signal=request_done)

    def __len__(self) -> int:
        return len(self._marks)

    def note(self, request: Request) -> None:
        """``request`` is finished: its writes are all among those received so far."""
        self._marks[request] = self._received()

    def last(self, requests: Iterable[Request]) -> int:
        """The writes that must settle for every one of ``requests`` to be durable (0: none). A request
        with no mark is durable: marks are forgotten only once reached, and every request the engine
        finishes is noted (the owner connects while the crawler is built, before any request runs)."""
        return max((self._marks.get(request, 0) for request in requests), default=0)

    def first_pending(self, requests: Iterable[Request], settled: int) -> int | None:
        """The smallest mark above ``settled`` among ``requests`` (None: all durable)."""
        pending = [mark for request in requests if (mark := self._marks.get(request, 0)) > settled]
        return min(pending) if pending else None

    def pending(self, requests: Iterable[Request], settled: int) -> list[Request]:
        """Those of ``requests`` whose writes are not all settled yet; the others are forgotten."""
        waiting = []
        for request in requests:
            mark = self._marks.get(request)
            if mark is None:
                continue
            if mark <= settled:
                del self._marks[request]
            else:
                waiting.append(request)
        return waiting
