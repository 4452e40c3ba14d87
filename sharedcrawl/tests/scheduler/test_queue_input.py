"""The shared queue is input, not trusted code: what a worker does with whatever it finds in Redis.

Real Redis throughout (a private redis-server); payloads are written into the queue's keys as
anyone with access to Redis could write them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import scrapy
from conftest import make_spider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from news_spider import NewsSpider

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.connection import redis_trouble, warn_unless_noeviction
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.testing.processes import wait_for
from scrapy_sharedcrawl.testing.redis_server import RedisServer
from scrapy_sharedcrawl.testing.scheduling import open_scheduler
from scrapy_sharedcrawl.testing.scheduling import plant as plant_member

SITE = "http://www.news.test:8080"


def plant(queue: LeasedPriorityQueue, request_id: str, payload: bytes | None) -> None:
    """Put ``payload`` into the queue under ``request_id`` as a stranger with Redis access would (a
    member ``"<id> <payload>"``; without a payload, a member that is only an id)."""
    member = request_id.encode() if payload is None else request_id.encode() + b" " + payload
    plant_member(queue.server, queue.named, member)


def _encode(spider: NewsSpider, request: scrapy.Request) -> bytes:
    scheduler_queue = LeasedPriorityQueue(redis.Redis(), spider)  # encoding needs no connection
    return scheduler_queue.encode(request).payload


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("file URL", {"url": "file:///etc/passwd"}, "url"),
    ("cloud metadata", {"url": "http://169.254.169.254/latest/meta-data/"}, "host"),
    ("another site", {"url": "http://evil.example/story?sid=1"}, "host"),
    ("look-alike host", {"url": "http://www.news.test.evil.example/story?sid=1"}, "host"),
    ("proxy", {"meta": {"proxy": "http://attacker:8080"}}, "meta"),
    ("proxy among meta changes", {"meta+": {"proxy": "http://attacker:8080"}}, "meta"),
    ("start flag of the wrong kind", {"start": "yes"}, "payload"),
    ("robots off", {"meta": {"dont_obey_robotstxt": True}}, "meta"),
    ("politeness off", {"meta": {"download_slot": "fresh"}}, "meta"),
    ("retry count of the wrong kind", {"meta": {"retry_times": "many"}}, "meta"),
    ("a public method", {"callback": "start_requests_for"}, "callback"),
    ("a private method", {"callback": "_count_drop"}, "payload"),  # not even a public name
    ("foreign errback", {"errback": "close"}, "callback"),
    ("unknown argument", {"cb_kwargs": {"categories": [], "evil": 1}}, "cb_kwargs"),
    ("POST", {"method": "POST"}, "method"),
    ("method of the wrong kind", {"method": ["GET"]}, "method"),
    ("class of the wrong kind", {"_class": {"a": 1}}, "payload"),
    ("another class", {"_class": "scrapy.http.request.form.FormRequest"}, "class"),
    ("unknown encoding", {"encoding": "no-such-codec"}, "encoding"),
]


@pytest.mark.parametrize(("what", "change", "reason"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_hostile_payload_goes_to_the_dead_letters_with_its_reason(
    redis_url: str, what: str, change: dict[str, Any], reason: str
) -> None:
    spider = make_spider(redis_url)
    scheduler = open_scheduler(spider)
    payload = {**serialization.long_keys(json.loads(_encode(spider, spider.story_request(80222)))), **change}
    plant(scheduler.queue, "hostile", json.dumps(payload).encode())
    scheduler.enqueue_request(spider.story_request(80221))
    assert scheduler.push_unsent()

    request = scheduler.next_request()  # the good one; the hostile one never reaches the engine
    while scheduler.next_request() is not None:
        pass

    assert request is not None and request.url.endswith("sid=80221")
    dead = scheduler.server.hget(scheduler.queue.dead_key, "hostile")
    assert dead is not None and dead.decode().startswith(f"{reason}: "), dead
    assert scheduler.stats.get_value(f"scheduler/dead/{reason}") == 1
    # never retried: gone from the queue, the payloads and the leases
    assert "hostile" not in [request_id for request_id, _ in scheduler.queue.queued()]
    assert not scheduler.server.hexists(scheduler.queue.payloads_key, "hostile")
    assert scheduler.queue.leased_count() == 1  # only the good one


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 5000 + b"]" * 5000,  # nests deeper than any parser's recursion
        b'{"url": "' + b"x" * 70_000 + b'"}',  # over the size limit
        b"\xff\xfe not json",
        b'{"url": "http://www.news.test/", "encoding": "rot13"}',  # a codec, but not text
        b'{"url": ["not", "a", "string"]}',
        b'{"url": "http://[::1", "callback": "parse_story"}',
    ],
    ids=["nested", "huge", "binary", "rot13", "url-list", "bad-url"],
)
def test_an_undecodable_payload_never_stalls_the_worker(redis_url: str, payload: bytes) -> None:
    spider = make_spider(redis_url)
    scheduler = open_scheduler(spider)
    plant(scheduler.queue, "broken", payload)
    scheduler.enqueue_request(spider.story_request(80221))
    assert scheduler.push_unsent()

    handed = [scheduler.next_request(), scheduler.next_request()]

    assert [r.url for r in handed if r is not None] == [f"{SITE}/story?sid=80221"]
    assert scheduler.server.hexists(scheduler.queue.dead_key, "broken")
    assert scheduler.stats.get_value("scheduler/dead") == 1
    assert len(scheduler.queue) == 0 and scheduler.queue.leased_count() == 1


def test_a_request_for_another_site_is_not_queued(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    spider = make_spider(redis_url)
    scheduler = open_scheduler(spider)
    dropped: list[str] = []

    def on_dropped(request: scrapy.Request, spider: scrapy.Spider) -> None:
        dropped.append(request.url)

    spider.crawler.signals.connect(on_dropped, signal=scrapy.signals.request_dropped)
    foreign = scrapy.Request("http://evil.example/story?sid=1", callback=spider.parse_story)

    with caplog.at_level(logging.WARNING):
        assert scheduler.enqueue_request(foreign) is False
        assert scheduler.enqueue_request(foreign.replace(url="http://evil.example/2")) is False

    assert dropped == ["http://evil.example/story?sid=1", "http://evil.example/2"]
    assert scheduler.stats.get_value("scheduler/refused/host") == 2
    assert caplog.text.count("not queued (host:") == 1  # logged once per reason
    assert len(scheduler) == 0


def test_only_meta_that_travels_is_pushed(redis_url: str) -> None:
    spider = make_spider(redis_url)
    scheduler = open_scheduler(spider)
    story = spider.story_request(80222)
    retried = story.replace(
        meta={**story.meta, "retry_times": 2, "download_timeout": 30, "proxy": "http://p:1"}
    )
    scheduler.enqueue_request(retried)
    assert scheduler.push_unsent()

    back = scheduler.next_request()

    assert back is not None
    assert back.meta == {"handle_httpstatus_list": [404], "from_range": False, "retry_times": 2}


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzzed_payloads_decode_to_allowed_requests_or_go_to_the_dead_letters(
    redis_srv: RedisServer, data: st.DataObject
) -> None:
    redis_srv.start()
    spider = make_spider(redis_srv.url)
    queue = LeasedPriorityQueue(redis.Redis.from_url(redis_srv.url), spider)
    queue.server.flushall()
    good = json.loads(_encode(spider, spider.story_request(80222)))
    payload = data.draw(payloads(good), label="payload")
    plant(queue, "fuzzed", payload)

    popped = queue.pop("fuzz-worker", 30)

    if popped.leased:
        ((_, request),) = popped.leased
        # what came through is a request of the site, by the rules written out here (not the policy's
        # own check): its host, method, callbacks, meta keys and class
        parts = urlsplit(request.url)
        assert parts.scheme in ("http", "https")
        assert parts.hostname == "news.test" or str(parts.hostname).endswith(".news.test"), request.url
        assert request.method in ("GET", "HEAD")
        for callback in (request.callback, request.errback):
            assert callback is None or (callback.__self__ is spider and callback.__name__ in CALLBACKS)
        assert set(request.meta) <= TRAVELLING_META, request.meta
        assert type(request) is scrapy.Request
        # past the duplicate filter (and the offsite one) only as a start request or a retry
        assert (
            not request.dont_filter
            or request.meta.get("is_start_request") is True
            or request.meta["retry_times"]
        )
    else:
        ((request_id, reason),) = popped.undecodable
        assert request_id == "fuzzed" and reason.split(":", 1)[0] in REASONS
        assert queue.bury("fuzz-worker", request_id, reason)  # the scheduler's next step: never seen again
        assert queue.pop("fuzz-worker", 30).leased == [] and queue.leased_count() == 0


REASONS = {
    "payload",
    "url",
    "host",
    "meta",
    "callback",
    "cb_kwargs",
    "method",
    "class",
    "encoding",
    "size",
    "dont_filter",
}
#: The reference the fuzzed requests are checked against, written out (the module docstring of
#: scrapy_sharedcrawl.admission says the same in words): the solidot spider's shared callbacks, and
#: the meta keys that travel with a request, Scrapy's own and the spider's.
CALLBACKS = {"parse_list", "parse_rss", "parse_story", "story_failed"}
TRAVELLING_META = {
    "depth",
    "retry_times",
    "redirect_times",
    "redirect_ttl",
    "redirect_urls",
    "redirect_reasons",
    "handle_httpstatus_list",
    "dont_retry",
    "dont_redirect",
    "is_start_request",
    "from_range",
}

_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "url",
        "callback",
        "errback",
        "meta",
        "cb_kwargs",
        "method",
        "_class",
        "encoding",
        "headers",
        "body",
        "priority",
        "dont_filter",
        "flags",
        "cookies",
    ]
)
_values = st.one_of(
    _json,
    st.sampled_from(
        [
            "file:///etc/passwd",
            "http://127.0.0.1:6379/",
            "http://www.news.test:8080/story?sid=1",
            "https://linux.news.test/",
            "parse_story",
            "parse_list",
            "story_failed",
            "__class__",
            "start",
            "GET",
            "HEAD",
            {"proxy": "http://x"},
            {"retry_times": 1},
            {"categories": []},
            {"$b": "raw"},
            {"$map": [[1, 2]]},
            "latin-1",
        ]
    ),
)


@st.composite
def payloads(draw: st.DrawFn, good: dict[str, Any]) -> bytes:
    """A good request's JSON with keys changed, added or removed; or random bytes; or random JSON."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    payload = dict(good)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(_keys)
        if draw(st.booleans()) and key in payload:
            del payload[key]
        else:
            payload[key] = draw(_values)
    return json.dumps(payload).encode()


# -- Redis that refuses, and Redis that lost data --------------------------------------------------


def test_a_full_redis_holds_new_requests_and_says_why(
    redis_srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_srv.start()
    with redis_srv.client() as admin:
        admin.flushall()
        spider = make_spider(redis_srv.url)
        scheduler = open_scheduler(spider)
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", used + 64 * 1024)
        try:
            # fill Redis to its limit the way data would: writes start failing with OOM
            try:
                for index in range(10_000):
                    admin.set(f"ballast:{index}", "x" * 1024)
            except redis.exceptions.OutOfMemoryError:
                pass
            with caplog.at_level(logging.WARNING):
                held = [scheduler.enqueue_request(spider.story_request(sid)) for sid in (1, 2, 3)]
                assert scheduler.next_request() is None  # refused: held, the engine asks again
                assert scheduler.has_pending_requests()  # and the crawl is not over
            assert held == [True, True, True] and len(scheduler) == 3
            assert re.search(
                r"Redis refuses the crawl's commands at redis://.* 3 requests held locally \(OOM .* — Redis is full: raise maxmemory",
                caplog.text,
            ), caplog.text
            assert caplog.text.count("refuses the crawl's commands") == 1
        finally:
            admin.config_set("maxmemory", 0)
        admin.delete(*[f"ballast:{index}" for index in range(10_000)])
        with caplog.at_level(logging.INFO):
            wait_for(scheduler.try_reconnect, timeout=15, what="Redis taking writes again")
        got = []
        while (request := scheduler.next_request()) is not None:
            got.append(request.url)
        assert sorted(got) == sorted(spider.story_request(sid).url for sid in (1, 2, 3))


def test_a_queued_id_whose_payload_was_evicted_is_counted_and_said(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(redis_url)
    scheduler = open_scheduler(spider)
    plant(scheduler.queue, "evicted", None)
    with caplog.at_level(logging.ERROR):
        assert scheduler.next_request() is None
    assert scheduler.stats.get_value("scheduler/payload_missing") == 1
    assert "1 queued requests had lost their payload" in caplog.text
    assert "maxmemory-policy is not noeviction" in caplog.text


def test_a_redis_that_may_evict_is_warned_about_at_start(
    redis_srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_srv.start()
    with redis_srv.client() as admin:
        try:
            admin.config_set("maxmemory-policy", "allkeys-lru")
            with caplog.at_level(logging.WARNING):
                assert warn_unless_noeviction(redis.Redis.from_url(redis_srv.url), "redis://here")
            assert "maxmemory-policy allkeys-lru" in caplog.text
        finally:
            admin.config_set("maxmemory-policy", "noeviction")
        assert not warn_unless_noeviction(redis.Redis.from_url(redis_srv.url), "redis://here")


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (
            redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
            "Redis is full: raise maxmemory",
        ),
        (redis.ResponseError("BUSY Redis is busy running a script."), "SCRIPT KILL"),
        (
            redis.exceptions.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
            "lacks a permission",
        ),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "read-only replica"),
        (redis.ResponseError("MOVED 3999 127.0.0.1:6381"), "standalone Redis"),
        (
            redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "another program",
        ),
    ],
)
def test_every_refusal_is_named_with_what_to_do(error: Exception, advice: str) -> None:
    assert advice in redis_trouble(error)
