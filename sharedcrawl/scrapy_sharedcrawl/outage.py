"""Saying things once: a dependency's outages, and repeated drops of one kind.

A crawl of days meets the same trouble many times. What an operator needs in the log
is one line when a server goes away (with what the component does meanwhile), one
when it is back (after how long), and one line per *kind* of dropped request or item,
with the rest counted in the stats. :class:`Outage` and :class:`OncePerReason` are that
habit, written once for every component (scheduler, shared stats, worker registry,
host pacing, and the project's pipelines).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from scrapy.statscollectors import StatsCollector


class Outage:
    """Whether a server is reachable, when to try it again (doubling pauses, capped), and the two log
    lines of an outage.

    ``gone`` and ``back`` are ``str.format`` templates; they get ``where``, ``error`` (the exception's
    type name), ``pause`` (s before the next try), ``seconds`` (the outage's length, in ``back``),
    and whatever the caller passes to :meth:`failed` / :meth:`recovered`. Calls are not attempted
    while :meth:`may_try` is False: a dead server costs one failed call per pause.
    """

    def __init__(
        self,
        where: str,
        *,
        gone: str,
        back: str,
        logger: logging.Logger,
        retry_base: float = 0.5,
        retry_max: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self.gone, self.back = gone, back
        self.logger = logger
        self.retry_base, self.retry_max = retry_base, retry_max
        self._clock = clock
        #: When the current outage began (None: reachable).
        self.since: float | None = None
        self.retry_at = 0.0
        self.attempts = 0
        #: Outages so far.
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def may_try(self) -> bool:
        """True when the server is up, or when a failed one is due for another try."""
        return self.since is None or self._clock() >= self.retry_at

    def failed(self, error: BaseException, **details: Any) -> bool:
        """A call failed for want of the server: back off; log the outage's first failure. True if first."""
        now = self._clock()
        self.attempts += 1
        pause = min(self.retry_max, self.retry_base * 2 ** (self.attempts - 1))
        self.retry_at = now + pause
        if self.since is not None:
            return False
        self.since = now
        self.outages += 1
        self.logger.warning(
            self.gone.format(where=self.where, error=type(error).__name__, pause=pause, **details)
        )
        return True

    def recovered(self, **details: Any) -> float | None:
        """A call succeeded: end the outage, if any, with one line. The outage's length (s), or None."""
        if self.since is None:
            return None
        seconds = self._clock() - self.since
        self.since, self.attempts, self.retry_at = None, 0, 0.0
        self.logger.info(self.back.format(where=self.where, seconds=seconds, **details))
        return seconds


class OncePerReason:
    """Count every occurrence as ``<prefix><reason>``; log only the first of each reason.

    The first line says that later ones are only counted, and under which stat, so the
    log stays readable when a million requests are refused for one cause.
    """

    def __init__(
        self, stats: StatsCollector | None, prefix: str, logger: logging.Logger, level: int = logging.WARNING
    ) -> None:
        self.stats = stats
        self.prefix = prefix
        self.logger = logger
        self.level = level
        self.seen: set[str] = set()

    def __call__(
        self, reason: str, message: str, *args: Any, count: int = 1, exc_info: BaseException | None = None
    ) -> bool:
        """Count ``reason``; log ``message % args`` (plus where the rest are counted, and ``exc_info``'s
        traceback if given) if it is the first of its reason. True if it logged."""
        stat = f"{self.prefix}{reason}"
        if self.stats is not None:
            self.stats.inc_value(stat, count)
        if reason in self.seen:
            return False
        self.seen.add(reason)
        self.logger.log(
            self.level, f"{message}; later ones are only counted (stats {stat})", *args, exc_info=exc_info
        )
        return True
