"""Dropping an item the same way in every pipeline: a reason, a stat, one log line, DropItem.

Operators need the count of each reason (stats) and one example to look at
(the first drop of each reason is logged with its sid); a log line per item
would bury the crawl's log when, say, a whole re-crawl is unchanged.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from scrapy_sharedcrawl.outage import OncePerReason
from scrapy_sharedcrawl.outcomes import drop_with_reason

_logger = logging.getLogger(__name__)

#: Longest detail kept in a log line or a DropItem message (values can be megabytes).
DETAIL_MAX = 200


def loggable(value: object) -> object:
    """``value`` as a log line can show it: an int past 40 digits by its size, a long text cut.

    ``str()`` of an int over 4,300 digits raises ValueError, and a hostile item's
    sid may be anything: dropping it must not fail on the log line.
    """
    if isinstance(value, int) and value.bit_length() > 132:
        return f"<a {value.bit_length()}-bit integer>"
    if isinstance(value, str) and len(value) > DETAIL_MAX:
        return value[:DETAIL_MAX] + "…"
    return value


class ItemDropper:
    """Drops items for one pipeline stage.

    ``ItemDropper(crawler, "validate").drop("missing_title", sid=42, detail="title is empty")``
    counts ``solidot/validate/dropped/missing_title``, logs the first such drop
    and raises ``DropItem("validate: missing_title (title is empty) sid=42")``.
    """

    def __init__(
        self,
        crawler: Crawler,
        stage: str,
        *,
        stats_prefix: str | None = None,
        log_level: int = logging.WARNING,
        logger: logging.Logger | None = None,
    ) -> None:
        self.crawler = crawler
        self.stage = stage
        self.stats_prefix = stats_prefix if stats_prefix is not None else f"solidot/{stage}/dropped/"
        self.log_level = log_level
        self.logger = logger or _logger
        self._once = OncePerReason(crawler.stats, self.stats_prefix, self.logger, log_level)

    def stat_key(self, reason: str) -> str:
        return self.stats_prefix + reason

    def drop(
        self, reason: str, sid: object, detail: str = "", exc_info: BaseException | None = None
    ) -> NoReturn:
        """Count ``reason``, log it if it is the first of its kind, and raise :class:`DropItem`.

        Scrapy's own per-item "Dropped:" line goes to DEBUG (it prints the
        whole item, body included); the first drop of each reason is logged
        here at ``log_level`` instead, with ``exc_info``'s traceback if given.
        """
        sid = loggable(sid)
        detail = detail if len(detail) <= DETAIL_MAX else detail[:DETAIL_MAX] + "…"
        explained = f"{reason} ({detail})" if detail else reason
        self._once(reason, "%s: dropped story sid=%s: %s", self.stage, sid, explained, exc_info=exc_info)
        # the reason travels with the DropItem: its page's outcome is dropped/<reason>
        raise drop_with_reason(DropItem(f"{self.stage}: {explained} sid={sid}", log_level="DEBUG"), reason)
