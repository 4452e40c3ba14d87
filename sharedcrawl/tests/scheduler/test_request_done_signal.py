"""``request_done`` reaches whoever listens, and costs nothing per page when nobody does."""

from __future__ import annotations

from typing import cast

import pytest
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.lease_ledger import LeaseLedger
from scrapy_sharedcrawl.signals import request_done


def finish(ledger: LeaseLedger, url: str) -> Request:
    request = Request(url)
    ledger.in_progress[request] = url.rsplit("/", 1)[-1]
    ledger.request_done(request)
    return request


def test_request_done_is_sent_only_while_something_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    crawler = get_crawler(Spider)
    assert crawler.stats is not None
    queue = cast(LeasedPriorityQueue, None)  # request_done never reaches Redis
    ledger = LeaseLedger(queue, crawler.signals, crawler.stats, "worker-1", 60.0)
    sent: list[object] = []
    send = crawler.signals.send_catch_log
    monkeypatch.setattr(
        crawler.signals, "send_catch_log", lambda signal, **kw: sent.append(signal) or send(signal, **kw)
    )
    finish(ledger, "http://example.test/1")
    assert sent == []  # nobody listens: not even Scrapy's catch-and-log machinery runs

    heard: list[Request] = []

    def note(request: Request) -> None:
        heard.append(request)

    crawler.signals.connect(note, signal=request_done)  # e.g. a store's WriteMarks, connected later
    second = finish(ledger, "http://example.test/2")
    assert heard == [second] and sent == [request_done]
    crawler.signals.disconnect(note, signal=request_done)
    finish(ledger, "http://example.test/3")
    assert heard == [second] and sent == [request_done]
    assert [request_id for request_id, _ in ledger.done] == ["1", "2", "3"]  # each acknowledged later
