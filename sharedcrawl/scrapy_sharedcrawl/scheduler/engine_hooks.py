"""What the scheduler needs from Scrapy's engine beyond the scheduler interface.

Three things, each through :mod:`.compat` (Scrapy 2.19 has no public API for them):
knowing when the engine is finished with a request (every path ends in the engine
slot's ``remove_request``, after the callback's items and requests went through,
an errback ran, or the downloader replaced the request), waking the engine when
Redis is back or work appeared (rather than at its next 5 s heartbeat), and a
heartbeat of the scheduler's own (acknowledgements, lease renewal, idle polls),
one tick at a time (the next at once, after the engine ran, when a tick leaves work).
Outside a running crawl (tests, tools) there is no engine and :meth:`EngineHooks.attach`
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.asyncio import call_later, create_looping_call
from scrapy.utils.defer import deferred_from_coro

from scrapy_sharedcrawl.compat import on_request_finished, running_engine, wake_engine

logger = logging.getLogger(__name__)


class EngineHooks:
    """The running engine's "request finished" hook, its wake-up call, and the scheduler's heartbeat."""

    def __init__(
        self,
        crawler: Crawler,
        request_done: Callable[[Request], None],
        tick: Callable[[], Coroutine[Any, Any, None]],
        interval: float,
    ) -> None:
        self.crawler = crawler
        self._request_done = request_done
        self._tick = tick
        self.interval = interval
        self._slot: Any = None
        self._ticker: Any = None
        self._ticking = False
        self._stopped = False
        #: Another tick is asked for as soon as the one running ends (:meth:`tick_again`).
        self._again = False

    @property
    def attached(self) -> bool:
        return self._slot is not None

    def attach(self) -> bool:
        """Hook into the running engine and start the heartbeat; False when no engine runs."""
        engine = running_engine(self.crawler)
        if engine is None:
            return False
        self._slot = on_request_finished(engine, self._request_done)
        self._ticker = create_looping_call(self._tick_soon)
        self._ticker.start(self.interval, now=False)
        return True

    def wake(self, delay: float = 0.0) -> None:
        """Ask the engine for requests now, or in ``delay`` s (a host of the queue is due then)."""
        wake_engine(self._slot, delay)

    def tick_now(self) -> None:
        """Run a tick now rather than at the next interval (unless one is running, or none will)."""
        if self._ticker is not None:
            self._tick_soon()

    def tick_again(self) -> None:
        """Run another tick once the one running ended and the reactor served what waits (the engine's
        calls, downloads), rather than at the next interval: work is left for it (unless none will run)."""
        if self._ticker is None or self._stopped:
            return
        if self._ticking:
            self._again = True
        else:
            call_later(0, self._tick_soon)

    def stop(self) -> None:
        """No more ticks (a tick running now finishes)."""
        self._stopped = True
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()

    def _tick_soon(self) -> None:
        if self._ticking or self._stopped:
            return
        self._ticking = True

        def done(result: object) -> object:
            self._ticking = False
            if self._again:
                self._again = False
                call_later(0, self._tick_soon)
            return result

        deferred_from_coro(self._tick()).addBoth(done).addErrback(
            lambda failure: logger.error("Scheduler heartbeat failed: %s", failure.getErrorMessage())
        )
