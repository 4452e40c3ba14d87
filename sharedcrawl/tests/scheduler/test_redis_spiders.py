"""scrapy-redis's own spiders on the shared scheduler, unchanged, and the start-URLs key's edges.

The spiders here subclass the installed ``scrapy_redis.spiders`` classes and Scrapy's ``CrawlSpider``
as their users do; every request goes through a real shared queue on a private redis-server and comes
back as the worker would crawl it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis
import scrapy
from scrapy import signals
from scrapy.http import FormRequest
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule
from scrapy.utils.test import get_crawler
from scrapy_redis.spiders import RedisCrawlSpider, RedisSpider

from scrapy_sharedcrawl.addon import SHARED_SETTINGS
from scrapy_sharedcrawl.admission import RefusedRequest, RequestPolicy
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.redis_spiders import take_over
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.serialization import UnserializableRequest
from scrapy_sharedcrawl.start_urls import StartUrls

SITE = "http://pages.test:8080"


class FeedSpider(RedisSpider):
    """A RedisSpider as scrapy-redis's README writes one, with a key of its own."""

    name = "feed"
    allowed_domains = ("pages.test",)
    redis_key = "feed_urls:queue"
    redis_batch_size = 2

    def parse(self, response: Any) -> Any:
        yield {"url": response.url}


class RulesSpider(RedisCrawlSpider):
    name = "rules"
    allowed_domains = ("pages.test",)
    rules = (
        Rule(LinkExtractor(allow=r"/page/"), callback="parse_page", follow=True),
        Rule(LinkExtractor(allow=r"/about"), follow=True),
    )

    def parse_page(self, response: Any) -> Any:
        yield {"url": response.url}


class PlainCrawlSpider(CrawlSpider):
    name = "plain"
    allowed_domains = ("pages.test",)
    start_urls = (f"{SITE}/",)
    rules = (Rule(LinkExtractor(), callback="parse_item", follow=True),)

    def parse_item(self, response: Any) -> Any:
        yield {"url": response.url}


class LinksSpider(scrapy.Spider):
    name = "links"
    allowed_domains = ("pages.test",)

    def parse(self, response: Any) -> Any:
        yield {"url": response.url}


def make(spider_class: type[scrapy.Spider], redis_url: str, **settings: Any) -> scrapy.Spider:
    crawler = get_crawler(spider_class, {"REDIS_URL": redis_url, **SHARED_SETTINGS, **settings})
    spider = spider_class.from_crawler(crawler)
    crawler.spider = spider
    return spider


def round_trip(spider: scrapy.Spider, request: scrapy.Request) -> scrapy.Request:
    """``request`` pushed to the spider's shared queue and leased back, as another worker gets it."""
    queue = LeasedPriorityQueue(redis.Redis.from_url(spider.settings["REDIS_URL"]), spider)
    queue.server.flushall()
    assert queue.push(request)
    popped = queue.pop("worker", 30)
    assert not popped.undecodable, popped.undecodable
    ((_, back),) = popped.leased
    return back


def test_a_redis_spiders_key_batch_and_encoding_come_from_the_spider(redis_url: str) -> None:
    spider = make(FeedSpider, redis_url, REDIS_START_URLS_BATCH_SIZE=50)
    feed = StartUrls.from_settings(redis.Redis.from_url(redis_url), spider, spider.settings)
    assert (feed.key, feed.kind, feed.batch) == ("feed_urls:queue", "list", 2)
    # RedisSpider's default key formats the spider's name as scrapy-redis does
    rules = make(RulesSpider, redis_url)
    assert (
        StartUrls.from_settings(redis.Redis.from_url(redis_url), rules, rules.settings).key
        == "rules:start_urls"
    )


def test_the_scrapy_redis_data_formats_become_the_requests_its_spider_makes(redis_url: str) -> None:
    spider = make(FeedSpider, redis_url)
    server = redis.Redis.from_url(redis_url)
    server.flushall()
    feed = StartUrls.from_settings(server, spider, spider.settings)
    form = {"url": f"{SITE}/search", "method": "post", "meta": {"job-id": "x1"}, "q": "linux"}
    server.rpush(feed.key, f"{SITE}/page/1".encode(), json.dumps(form).encode())
    queue = LeasedPriorityQueue(server, spider)

    requests = feed.requests(feed.read(), check=queue.encode)

    plain, post = (round_trip(spider, request) for request in requests)
    assert type(plain) is FormRequest and plain.method == "GET" and plain.dont_filter
    assert plain.url == f"{SITE}/page/1" and plain.meta.get("is_start_request") is True
    assert type(post) is FormRequest and post.method == "POST" and post.body == b"q=linux"
    assert post.meta["job-id"] == "x1" and post.dont_filter


def test_a_json_entry_cannot_steer_the_download_through_its_meta(redis_url: str) -> None:
    spider = make(FeedSpider, redis_url)
    request = spider.make_request_from_data(
        json.dumps({"url": f"{SITE}/1", "meta": {"proxy": "http://attacker:1", "tag": 3}}).encode()
    )
    back = round_trip(spider, request)
    assert back.meta.get("tag") == 3 and "proxy" not in back.meta  # kept: data; dropped: a control
    policy = RequestPolicy.for_spider(spider)
    with pytest.raises(RefusedRequest) as refused:
        policy.check({"url": f"{SITE}/1", "meta": {"download_slot": "fresh"}})
    assert refused.value.reason == "meta"


def test_a_redis_crawl_spiders_rule_requests_travel_with_their_rule(redis_url: str) -> None:
    spider = make(RulesSpider, redis_url)
    response = scrapy.http.HtmlResponse(
        f"{SITE}/",
        body=b'<a href="/page/2">two</a><a href="/about">about</a>',
        request=scrapy.Request(f"{SITE}/"),
    )
    made = list(spider._requests_to_follow(response))  # what its rules make of a page
    assert [request.meta["rule"] for request in made] == [0, 1]

    backs = [round_trip(spider, request) for request in made]

    assert [back.callback.__name__ for back in backs] == ["_callback", "_callback"]  # type: ignore[union-attr]
    assert [(back.meta["rule"], back.meta["link_text"]) for back in backs] == [(0, "two"), (1, "about")]
    policy = RequestPolicy.for_spider(spider)
    with pytest.raises(RefusedRequest):  # no third rule
        policy.check({"url": f"{SITE}/x", "callback": "_callback", "meta": {"rule": 2}})
    with pytest.raises(RefusedRequest):  # a CrawlSpider helper, not a callback
        policy.check({"url": f"{SITE}/x", "callback": "parse_with_rules"})


def test_a_plain_crawl_spiders_start_urls_and_rules_are_admitted(redis_url: str) -> None:
    spider = make(PlainCrawlSpider, redis_url)
    policy = RequestPolicy.for_spider(spider)
    policy.check({"url": f"{SITE}/", "dont_filter": True, "meta": {"is_start_request": True}})
    policy.check({"url": f"{SITE}/a", "callback": "_callback", "errback": "_errback", "meta": {"rule": 0}})
    with pytest.raises(UnserializableRequest):  # other private names still never travel
        round_trip(spider, scrapy.Request(f"{SITE}/a", callback=spider._requests_to_follow))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254\\@pages.test/story?sid=5",  # w3lib turns "\" into "/": the host is the IP
        "http://pages.test\t.evil.example/",
        "http://pages.test /x",
        "http://pages.test:99999/",
        "http://evil.example%2F@pages.test/",  # fine by urlsplit, but not on an allowed host once quoted
    ],
)
def test_a_url_is_judged_as_scrapy_will_fetch_it(redis_url: str, url: str) -> None:
    policy = RequestPolicy.for_spider(make(LinksSpider, redis_url))
    try:
        policy.check({"url": url})
    except RefusedRequest as refused:
        assert refused.reason in {"url", "host"}
    else:  # admitted: then Scrapy fetches it on an allowed host
        from urllib.parse import urlsplit

        assert urlsplit(scrapy.Request(url).url).hostname == "pages.test"


def test_dont_filter_travels_only_on_start_requests_retries_or_when_declared(redis_url: str) -> None:
    spider = make(LinksSpider, redis_url)
    policy = RequestPolicy.for_spider(spider)
    with pytest.raises(RefusedRequest) as refused:
        policy.check({"url": f"{SITE}/a", "dont_filter": True})
    assert refused.value.reason == "dont_filter"
    policy.check({"url": f"{SITE}/a", "dont_filter": True, "meta": {"is_start_request": True}})
    policy.check({"url": f"{SITE}/a", "dont_filter": True, "meta": {"retry_times": 1}})
    LinksSpider.shared_dont_filter = True  # type: ignore[attr-defined]
    try:
        RequestPolicy.for_spider(spider).check({"url": f"{SITE}/a", "dont_filter": True})
    finally:
        del LinksSpider.shared_dont_filter  # type: ignore[attr-defined]


def test_an_entry_that_makes_no_request_is_dropped_and_the_intake_goes_on(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make(FeedSpider, redis_url)  # its meta is free: the deep part travels
    server = redis.Redis.from_url(redis_url)
    server.flushall()
    feed = StartUrls.from_settings(server, spider, spider.settings)
    too_deep = b'{"url": "%s/deep", "meta": {"x": %s%s}}' % (SITE.encode(), b"[" * 3000, b"]" * 3000)
    entries = [too_deep, f"{SITE}/1".encode(), b"\\\\no url", f"{SITE}/2".encode()]
    queue = LeasedPriorityQueue(server, spider)

    with caplog.at_level(logging.WARNING):
        made = feed.requests(entries, check=queue.encode)
        feed.requests(entries, check=queue.encode)  # the same again: counted, not logged again

    assert [request.url for request in made] == [f"{SITE}/1", f"{SITE}/2"]
    stats = spider.crawler.stats.get_stats()
    dropped = {key: value for key, value in stats.items() if key.startswith("scheduler/start_urls/invalid/")}
    assert sum(dropped.values()) == 4 and len(dropped) == 2, dropped
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 2


@pytest.mark.parametrize("kind", ["set", "zset"])
def test_a_set_or_sorted_set_key_is_read_as_scrapy_redis_reads_it(redis_url: str, kind: str) -> None:
    setting = {"set": "REDIS_START_URLS_AS_SET", "zset": "REDIS_START_URLS_AS_ZSET"}[kind]
    spider = make(LinksSpider, redis_url, **{setting: True})
    server = redis.Redis.from_url(redis_url)
    server.flushall()
    feed = StartUrls.from_settings(server, spider, spider.settings)
    if kind == "set":
        server.sadd(feed.key, f"{SITE}/a", f"{SITE}/b")
    else:
        server.zadd(feed.key, {f"{SITE}/low": 1, f"{SITE}/high": 9})

    entries = feed.read()
    urls = [request.url for request in feed.requests(entries)]
    feed.remove(entries)

    if kind == "zset":
        assert urls == [f"{SITE}/high", f"{SITE}/low"]  # highest score first
    else:
        assert sorted(urls) == [f"{SITE}/a", f"{SITE}/b"]
    assert server.exists(feed.key) == 0


def test_a_key_of_the_wrong_type_is_one_line_and_the_crawl_goes_on(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make(LinksSpider, redis_url)
    server = redis.Redis.from_url(redis_url)
    server.flushall()
    feed = StartUrls.from_settings(server, spider, spider.settings)
    server.sadd(feed.key, f"{SITE}/a")  # a set, where this crawl reads a list

    with caplog.at_level(logging.ERROR):
        assert feed.read() == [] and feed.read() == []

    (line,) = [record.getMessage() for record in caplog.records]
    assert feed.key in line and "for a set: REDIS_START_URLS_AS_SET=True" in line
    assert spider.crawler.stats.get_value("scheduler/start_urls/wrong_type") == 2
    server.delete(feed.key)
    server.rpush(feed.key, f"{SITE}/a")
    assert feed.read() == [f"{SITE}/a".encode()]  # mended: read again


def test_the_scheduler_takes_over_a_redis_spiders_idle_reading(redis_url: str) -> None:
    spider = make(FeedSpider, redis_url, MAX_IDLE_TIME_BEFORE_CLOSE=7)
    before = spider.crawler.signals.send_catch_log(signals.spider_idle, spider=spider)
    mode = take_over(spider.crawler, spider)
    after = spider.crawler.signals.send_catch_log(signals.spider_idle, spider=spider)

    assert mode is not None and (mode.continuous, mode.wait_for_seed) == (False, 7)
    assert spider.spider_idle in [receiver for receiver, _ in before]  # type: ignore[attr-defined]
    assert spider.spider_idle not in [receiver for receiver, _ in after]  # type: ignore[attr-defined]
    other = make(FeedSpider, redis_url)
    forever = take_over(other.crawler, other)
    assert forever is not None and forever.continuous
    links = make(LinksSpider, redis_url)
    assert take_over(links.crawler, links) is None


def test_an_opened_scheduler_runs_a_redis_spider_continuously_by_default(redis_url: str) -> None:
    spider = make(FeedSpider, redis_url)
    scheduler = LeasingScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    assert scheduler.finisher.continuous
    assert scheduler.heartbeat.start_urls.key == "feed_urls:queue"
