"""Requests as JSON: what the spider makes round-trips, anything but plain data is refused, and the
stock scrapy-redis queues take the serializer too."""

from __future__ import annotations

import datetime
import json
import pickle

import pytest
import redis
import scrapy
from news_spider import NewsSpider
from scrapy.http import FormRequest
from scrapy_redis.queue import PriorityQueue as StockPriorityQueue

from scrapy_sharedcrawl import serialization

# -- serialization ------------------------------------------------------------------


def test_the_spiders_requests_round_trip_as_json(spider: NewsSpider) -> None:
    story = spider.story_request(80222, categories=["linux", "科技"], from_range=True)
    listing = spider.list_request(spider.home_url())
    retry = story.replace(
        dont_filter=True, priority=story.priority - 1, meta={**story.meta, "retry_times": 2}
    )
    form = FormRequest(
        "http://www.news.test/search",
        formdata={"q": "内核"},
        callback=spider.parse_list,
        headers={"Referer": "http://www.news.test/", "X-Raw": b"\xff\x00"},
        cookies={"session": "1"},
        meta={"tuple": (1, 2), "ints": {1: "one"}, "$b": "looks like a tag", "raw": b"\x80abc"},
    )
    other = NewsSpider.from_crawler(spider.crawler)  # same class, another instance
    elsewhere = scrapy.Request("http://x.test/", callback=other.parse_list)
    for request in (story, listing, retry, form, elsewhere):
        # built without listing the spider's attributes, the same dict as Scrapy's own to_dict
        assert serialization.request_to_dict(request, spider) == request.to_dict(spider=spider)
    for request in (story, listing, retry, form):
        payload = serialization.request_to_bytes(request, spider)
        assert b"pickle" not in payload and payload.startswith(b"{")
        back = serialization.request_from_bytes(payload, spider)
        assert type(back) is type(request)
        for name in ("url", "method", "body", "cookies", "cb_kwargs", "priority", "dont_filter", "encoding"):
            assert getattr(back, name) == getattr(request, name), name
        assert back.callback == request.callback and back.errback == request.errback
        assert dict(back.headers) == dict(request.headers)
        expected_meta = {k: list(v) if isinstance(v, tuple) else v for k, v in request.meta.items()}
        assert back.meta == expected_meta  # tuples come back as lists
    assert serialization.request_from_bytes(
        serialization.request_to_bytes(story, spider), spider
    ).callback.__name__ == ("parse_story")
    assert len(serialization.request_to_bytes(story, spider)) < 240  # defaults left out


def test_anything_but_plain_data_is_refused(spider: NewsSpider) -> None:
    story = spider.story_request(80222)
    with pytest.raises(
        serialization.UnserializableRequest, match=r"\['meta'\]\['when'\] is a datetime\.date"
    ):
        serialization.request_to_bytes(story.replace(meta={"when": datetime.date(2025, 1, 1)}), spider)
    with pytest.raises(serialization.UnserializableRequest, match="NaN"):
        serialization.request_to_bytes(story.replace(meta={"x": float("nan")}), spider)
    with pytest.raises(ValueError):  # a callback that isn't a spider method can't be named
        serialization.request_to_bytes(scrapy.Request("http://x.test/", callback=lambda r: None), spider)

    good = json.loads(serialization.request_to_bytes(story, spider))
    hostile = [
        pickle.dumps(story.to_dict(spider=spider)),  # pickle is not JSON: never unpickled
        json.dumps({**good, "_class": "subprocess.Popen"}).encode(),  # a class is never imported…
        json.dumps({**good, "_class": "os.system"}).encode(),  # …nor anything but a Request subclass
        json.dumps({**good, "callback": "__init__"}).encode(),  # only public names
        json.dumps({**good, "callback": "os.system"}).encode(),
        json.dumps({**good, "errback": "no_such_method"}).encode(),  # only the spider's methods
        b'{"url": "http://x.test/", "priority": NaN}',
        b"[1, 2]",
    ]
    for payload in hostile:
        with pytest.raises(serialization.UnserializableRequest):
            serialization.request_from_bytes(payload, spider)


def test_stock_scrapy_redis_queues_take_the_serializer(redis_url: str, spider: NewsSpider) -> None:
    stock = StockPriorityQueue(
        redis.Redis.from_url(redis_url), spider, "%(spider)s:stock", serializer=serialization
    )
    stock.push(spider.story_request(80222, categories=["linux"]))
    back = stock.pop()
    assert (
        back is not None
        and back.callback == spider.parse_story
        and back.cb_kwargs == {"categories": ["linux"]}
    )
