"""The lease ledger against a real Redis: an ``ack_barrier`` handler that names the requests whose
items are not durable yet holds back only those; the rest of the batch is acknowledged at once."""

from __future__ import annotations

import asyncio
from typing import Any

from news_spider import NewsSpider
from scrapy import Request

from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.signals import ack_barrier, request_done, requests_acknowledged
from scrapy_sharedcrawl.testing.scheduling import open_scheduler


def lease(scheduler: LeasingScheduler, spider: NewsSpider, sids: list[int]) -> list[Request]:
    for sid in sids:
        scheduler.enqueue_request(spider.story_request(sid))
    requests = []
    while (request := scheduler.next_request()) is not None:
        requests.append(request)
    return requests


def test_only_the_requests_a_handler_names_stay_leased(spider: NewsSpider) -> None:
    scheduler = open_scheduler(spider)
    first, second, third = lease(scheduler, spider, [80220, 80221, 80222])
    finished: list[Request] = []
    acknowledged: list[list[str]] = []
    not_durable: set[Request] = {second}
    asked: list[list[Request]] = []

    def barrier(requests: list[Request]) -> Any:
        asked.append(list(requests))
        return [request for request in requests if request in not_durable]

    def done(request: Request) -> None:
        finished.append(request)

    def announced(urls: list[str]) -> None:
        acknowledged.append(urls)

    spider.crawler.signals.connect(done, signal=request_done)
    spider.crawler.signals.connect(barrier, signal=ack_barrier)
    spider.crawler.signals.connect(announced, signal=requests_acknowledged)
    for request in (first, second, third):
        scheduler.request_done(request)
    assert finished == [first, second, third]  # each announced as it finished

    assert asyncio.run(scheduler.acknowledge()) == 2
    assert asked == [[first, second, third]]
    assert acknowledged == [[first.url, third.url]]
    assert scheduler.queue.leased_count() == 1 and [r for _, r in scheduler.leases.done] == [second]
    assert scheduler.renew_leases() == 1  # the one held back keeps its lease alive
    assert scheduler.stats.get_value("scheduler/acks/held") == 1
    assert scheduler.stats.get_value("scheduler/acks/postponed") is None  # held back, not postponed

    not_durable.clear()
    assert asyncio.run(scheduler.acknowledge()) == 1
    assert asked[-1] == [second] and acknowledged[-1] == [second.url]
    assert scheduler.queue.pending() == (0, 0) and scheduler.stats.get_value("scheduler/acked") == 3


def test_an_answer_that_is_not_a_collection_of_requests_holds_nothing_back(spider: NewsSpider) -> None:
    """A handler answering True, a string or foreign objects (old handlers answer None) holds back
    nothing: only requests it names are kept."""
    scheduler = open_scheduler(spider)
    requests = lease(scheduler, spider, [80221, 80222])
    answers: list[Any] = [True, "not durable", [object(), "x"], {spider.story_request(80222)}]
    for answer in answers:
        spider.crawler.signals.connect(lambda answer=answer: answer, signal=ack_barrier, weak=False)
    for request in requests:
        scheduler.request_done(request)
    assert asyncio.run(scheduler.acknowledge()) == 2  # a new request of the same URL is not one of these
    assert scheduler.queue.pending() == (0, 0)
