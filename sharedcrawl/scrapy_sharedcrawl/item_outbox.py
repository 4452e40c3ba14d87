"""scrapy-redis's ``RedisPipeline`` on the shared crawl: each item in Redis exactly once.

:class:`AcknowledgedRedisPipeline` (the add-on's swap for the stock pipeline: same key, serializer and
``item_key``) hands each item to the scheduler, which pushes it in the atomic step that acknowledges
its request; :class:`ItemOrigins` notes which request an item came from.

Design notes: docs/framework-design.md#item_outbox.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from weakref import WeakKeyDictionary

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy_redis.pipelines import RedisPipeline

from scrapy_sharedcrawl.signals import hold_output

STATS = "scheduler/items/"
#: Items noted and not yet through the pipeline, at most (the oldest forgotten: pushed at once).
MAX_PENDING = 10_000


class OriginBook:
    """Which request each item not yet through the pipelines came from, for one crawler."""

    def __init__(self, crawler: Crawler) -> None:
        self._requests: OrderedDict[int, Request] = OrderedDict()
        crawler.signals.connect(self.forget, signal=signals.item_dropped)
        crawler.signals.connect(self.forget, signal=signals.item_error)

    def note(self, response: Response, output: Any) -> None:
        if output is None or isinstance(output, Request) or response.request is None:
            return
        self._requests[id(output)] = response.request  # the item is alive until the pipeline pops it
        if len(self._requests) > MAX_PENDING:
            self._requests.popitem(last=False)

    def pop(self, item: Any) -> Request | None:
        """The request ``item`` came from (forgotten now), or None if unknown."""
        return self._requests.pop(id(item), None)

    def forget(self, item: Any, **_: Any) -> None:
        self._requests.pop(id(item), None)


_BOOKS: WeakKeyDictionary[Crawler, OriginBook] = WeakKeyDictionary()


def origins_of(crawler: Crawler) -> OriginBook:
    """The crawler's one :class:`OriginBook`, shared by the middleware and the pipeline."""
    if crawler not in _BOOKS:
        _BOOKS[crawler] = OriginBook(crawler)
    return _BOOKS[crawler]


class ItemOrigins:
    """Spider middleware: notes the request each item of a callback came from, for the pipeline."""

    def __init__(self, book: OriginBook) -> None:
        self.book = book

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemOrigins:
        return cls(origins_of(crawler))

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterator[Any]:
        for output in result:
            self.book.note(response, output)
            yield output

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        async for output in result:
            self.book.note(response, output)
            yield output


class AcknowledgedRedisPipeline(RedisPipeline):
    """``RedisPipeline`` whose pushes ride on the acknowledgement of the item's request."""

    crawler: Crawler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AcknowledgedRedisPipeline:
        pipeline = super().from_crawler(crawler)
        pipeline.crawler = crawler
        return pipeline

    def process_item(self, item: Any, spider: Spider) -> Any:
        crawler = self.crawler
        request = origins_of(crawler).pop(item) if crawler is not None else None
        if crawler is not None and request is not None:
            key = self.item_key(item, spider)
            value = self.serialize(item)
            value = value.encode("utf-8") if isinstance(value, str) else value
            answers = crawler.signals.send_catch_log(hold_output, request=request, key=key, value=value)
            if any(answer is True for _, answer in answers):
                assert crawler.stats is not None
                crawler.stats.inc_value(f"{STATS}held")
                return item
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(f"{STATS}pushed_at_once")
        return super().process_item(item, spider)


def acknowledged_form(pipeline_cls: Any) -> type | None:
    """The pipeline the add-on puts in place of ``pipeline_cls``, or None to leave it as it is.

    scrapy-redis's ``RedisPipeline`` becomes :class:`AcknowledgedRedisPipeline`; a subclass of it that
    changes only its key, serializer or connection (``item_key``, ``serialize``, ``from_settings``…)
    becomes a class of both, so its own ``item_key`` and ``serialize`` still decide what is pushed
    where. A subclass with its own ``process_item`` pushes as it chooses: left alone (None), as is
    anything else.
    """
    if not isinstance(pipeline_cls, type) or not issubclass(pipeline_cls, RedisPipeline):
        return None
    if issubclass(pipeline_cls, AcknowledgedRedisPipeline):
        return None
    if pipeline_cls is RedisPipeline:
        return AcknowledgedRedisPipeline
    own = pipeline_cls.__mro__[: pipeline_cls.__mro__.index(RedisPipeline)]
    if any(name in vars(klass) for klass in own for name in ("process_item", "_process_item")):
        return None
    return type(
        f"Acknowledged{pipeline_cls.__name__}",
        (AcknowledgedRedisPipeline, pipeline_cls),
        {
            "__module__": __name__,
            "__doc__": f"{pipeline_cls.__qualname__}, acknowledged (:func:`acknowledged_form`).",
        },
    )
