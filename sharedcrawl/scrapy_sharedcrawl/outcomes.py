"""What every page came to: exactly one ``outcome/<name>`` per response received, for any project.

:class:`PageOutcomes` (a spider middleware) counts one outcome per response, so the ``outcome/…``
stats add up to ``response_received_count``; a project names its own with :func:`note_outcome`.
:class:`UnfetchedRequests` counts the requests that got no response (``unfetched/…``) beside them.

Design notes: docs/framework-design.md#outcomes.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, IgnoreRequest
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.spidermiddlewares.httperror import HttpError, HttpErrorMiddleware

logger = logging.getLogger(__name__)

OUTCOME_PREFIX = "outcome/"
UNFETCHED_PREFIX = "unfetched/"
#: Scrapy's count of offsite requests (shown as the ``offsite`` kind of unfetched requests).
OFFSITE_STAT = "offsite/filtered"
#: Where the add-on puts the two components: next to the engine (see the module docstring).
SPIDER_ORDER, DOWNLOADER_ORDER = 0, 1
#: Longest outcome name kept (labels of /metrics and the time series).
NAME_MAX = 60
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_./-]+")

#: The component counting each crawler's outcomes, for :func:`note_outcome`.
_TRACKERS: weakref.WeakKeyDictionary[Crawler, PageOutcomes] = weakref.WeakKeyDictionary()


def outcome_name(name: object) -> str:
    """``name`` as an outcome label: ``[A-Za-z0-9_./-]``, at most :data:`NAME_MAX` characters."""
    cleaned = _NOT_LABEL.sub("_", str(name)).strip("_/")[:NAME_MAX]
    return cleaned or "unnamed"


def note_outcome(crawler: Crawler, target: Response | Any, name: str) -> None:
    """What the page behind ``target`` (its response, or an item it yielded) came to, in the project's
    words; the first name noted for a page wins. Nothing happens for a page no longer followed."""
    tracker = _TRACKERS.get(crawler)
    if tracker is not None:
        tracker.note(target, name)


def drop_with_reason(error: DropItem, reason: str) -> DropItem:
    """``error`` carrying ``reason`` (its page's outcome is then ``dropped/<reason>``)."""
    error.outcome_reason = outcome_name(reason)  # type: ignore[attr-defined]
    return error


def drop_reason(error: BaseException | None) -> str:
    """The reason a DropItem carries (:func:`drop_with_reason`), else ``unnamed``."""
    reason = getattr(error, "outcome_reason", None)
    return reason if isinstance(reason, str) and reason else "unnamed"


@dataclass(slots=True)
class _Page:
    """One response on its way through the spider and the pipelines."""

    response: Response
    filtered: bool = False  # HttpErrorMiddleware filters it
    error: bool = False
    note: str | None = None
    iterating: bool = False  # its output is being read
    output_done: bool = False
    pending: int = 0  # items in the pipelines
    scraped: int = 0
    item_failed: bool = False
    drop: str | None = None
    requests: int = 0

    def outcome(self) -> str:
        if self.filtered:
            return f"http_{self.response.status}"
        if self.error:
            return "spider_error"
        if self.note:
            return self.note
        if self.scraped:
            return "items"
        if self.item_failed:
            return "item_error"
        if self.drop:
            return f"dropped/{self.drop}"
        return "links" if self.requests else "nothing"


class PageOutcomes:
    """Counts one ``outcome/<name>`` per response received (the module docstring says which)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats = crawler.stats
        middlewares = crawler.settings.getwithbase("SPIDER_MIDDLEWARES")
        enabled = all(
            value is not None
            for key, value in middlewares.items()
            if key in (HttpErrorMiddleware, "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware")
        )
        #: Asked (never run as a middleware) whether Scrapy filters a response: HttpError or not.
        self.httperror = HttpErrorMiddleware.from_crawler(crawler) if enabled else None
        self.pages: dict[Response, _Page] = {}
        #: Responses already counted: an exception Scrapy reports after their output ended counts no more.
        self.counted: weakref.WeakSet[Response] = weakref.WeakSet()
        self.items: dict[int, _Page] = {}  # id(item) → its page, while in the pipelines

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageOutcomes:
        tracker = cls(crawler)
        _TRACKERS[crawler] = tracker
        crawler.signals.connect(tracker.response_received, signal=signals.response_received)
        crawler.signals.connect(tracker.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(tracker.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(tracker.item_error, signal=signals.item_error)
        crawler.signals.connect(tracker.spider_closed, signal=signals.spider_closed)
        return tracker

    # -- following a page ----------------------------------------------------------------

    def _page(self, response: Response) -> _Page:
        page = self.pages.get(response)
        if page is None:
            page = _Page(response)
            if response not in self.counted:
                self.pages[response] = page  # else a page of its own, never counted again
        return page

    def response_received(self, response: Response, request: Request) -> None:
        """A response no callback will see (robots.txt, ``engine.download``) is counted at once."""
        if request.callback is NO_CALLBACK:
            self._count("robots_txt" if request.url.endswith("/robots.txt") else "download")

    def process_spider_input(self, response: Response) -> None:
        page = self._page(response)
        if self.httperror is not None:
            try:
                self.httperror.process_spider_input(response)
            except HttpError:
                page.filtered = True

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        page = self._page(response)
        page.iterating = True
        try:
            for element in result:
                self._saw(page, element)
                yield element
        except Exception:
            page.error = True
            raise
        finally:
            self._output_done(page)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        page = self._page(response)
        page.iterating = True
        try:
            async for element in result:
                self._saw(page, element)
                yield element
        except Exception:
            page.error = True
            raise
        finally:
            self._output_done(page)

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        page = self._page(response)
        if not isinstance(exception, HttpError):
            page.error = True
        if not page.iterating:  # the callback raised before any output: none will come
            self._output_done(page)

    def _saw(self, page: _Page, element: Any) -> None:
        if isinstance(element, Request):
            page.requests += 1
        elif element is not None:
            page.pending += 1
            self.items[id(element)] = page

    def _output_done(self, page: _Page) -> None:
        page.output_done = True
        self._maybe_count(page)

    def note(self, target: Any, name: str) -> None:
        page = self.pages.get(target) if isinstance(target, Response) else self.items.get(id(target))
        if page is not None and page.note is None:
            page.note = outcome_name(name)

    # -- its items -----------------------------------------------------------------------

    def _item_done(self, item: Any, response: Response | None) -> _Page | None:
        page = self.items.pop(id(item), None)
        if page is None and response is not None:
            page = self.pages.get(response)
        if page is not None:
            page.pending -= 1
        return page

    def item_scraped(self, item: Any, response: Response | None) -> None:
        if (page := self._item_done(item, response)) is not None:
            page.scraped += 1
            self._maybe_count(page)

    def item_dropped(self, item: Any, response: Response | None, exception: BaseException) -> None:
        if (page := self._item_done(item, response)) is not None:
            page.drop = page.drop or drop_reason(exception)
            self._maybe_count(page)

    def item_error(self, item: Any, response: Response | None) -> None:
        if (page := self._item_done(item, response)) is not None:
            page.item_failed = True
            self._maybe_count(page)

    # -- counting ------------------------------------------------------------------------

    def _maybe_count(self, page: _Page) -> None:
        if page.output_done and page.pending <= 0 and self.pages.pop(page.response, None) is not None:
            self.counted.add(page.response)
            self._count(page.outcome())

    def _count(self, name: str) -> None:
        self.stats.inc_value(f"{OUTCOME_PREFIX}{name}")

    def spider_closed(self) -> None:
        """Pages still followed at the end (an item never reported back) get what they came to so far."""
        for page in list(self.pages.values()):
            page.output_done, page.pending = True, 0
            self._maybe_count(page)
        self.items.clear()


class UnfetchedRequests:
    """Counts ``unfetched/<kind>``: requests that ended with an exception no other middleware took."""

    def __init__(self, crawler: Crawler) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> UnfetchedRequests:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        kind = unfetched_kind(exception)
        if kind != "offsite":  # Scrapy counts those (offsite/filtered), mostly before any download
            self.stats.inc_value(f"{UNFETCHED_PREFIX}{kind}")


def unfetched_kind(exception: BaseException) -> str:
    """``robots_forbidden``, ``offsite``, ``ignored`` (Scrapy's IgnoreRequest, told apart by its
    message) or ``failed/<error>``."""
    if isinstance(exception, IgnoreRequest):
        message = str(exception)
        if message.startswith("Forbidden by robots.txt"):
            return "robots_forbidden"
        if message.startswith("Filtered offsite request"):
            return "offsite"
        return "ignored"
    return f"failed/{outcome_name(type(exception).__name__)}"


def outcomes_of(stats: dict[str, int | float]) -> dict[str, int]:
    """The ``outcome/…`` counters of a stats dict by name, largest first."""
    return _under(stats, OUTCOME_PREFIX)


def unfetched_of(stats: dict[str, int | float]) -> dict[str, int]:
    """The ``unfetched/…`` counters of a stats dict by kind, and ``offsite`` (Scrapy's ``offsite/filtered``:
    its middleware drops them when they are scheduled, where no middleware of ours sees them), largest
    first."""
    return _under({**stats, f"{UNFETCHED_PREFIX}offsite": stats.get(OFFSITE_STAT, 0)}, UNFETCHED_PREFIX)


def _under(stats: dict[str, int | float], prefix: str) -> dict[str, int]:
    found = {
        name.removeprefix(prefix): int(value) for name, value in stats.items() if name.startswith(prefix)
    }
    return dict(sorted(((k, v) for k, v in found.items() if v), key=lambda kv: (-kv[1], kv[0])))
