"""A request's cheap way into and out of its JSON payload gives exactly what the general way gives.

:func:`~scrapy_sharedcrawl.serialization.dumps` writes plain data as it is, without the copy
``_encode`` makes, and :func:`~scrapy_sharedcrawl.serialization.loads` skips ``_decode``'s walk when a
payload can hold no tag: the bytes and the request dicts must be the general path's, on any data
(hypothesis, derandomized, as the fuzz tests run), and a tag written as a JSON escape is still a tag.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import redis
import scrapy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.spiders import CrawlSpider, Rule
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.queue import LeasedPriorityQueue

EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class LinkText(str):
    """A link's text as lxml gives it (``_ElementUnicodeResult``): a subclass of str."""


#: Keys as a meta may have them: ordinary names, the tags themselves, and keys JSON can't name.
KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from([serialization.BYTES_TAG, serialization.MAP_TAG, "$", "u"]),
    st.integers(),
)
SCALARS = st.one_of(
    st.none(),
    st.builds(LinkText, st.text(max_size=4)),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(KEYS, inner, max_size=4),
    ),
    max_leaves=20,
)


def general_dumps(obj: dict[str, Any]) -> bytes:
    """What ``dumps`` wrote before its plain-data path: every value through ``_encode``."""
    compact = {
        key: value
        for key, value in obj.items()
        if not (key in serialization._DEFAULTS and value == serialization._DEFAULTS[key])
    }
    encoded = serialization._encode(compact, "request")
    short = {serialization.SHORT_KEYS.get(key, key): value for key, value in encoded.items()}
    return serialization._ENCODER.encode(short).encode("utf-8")


def general_loads(payload: bytes) -> Any:
    """What ``loads`` read before it decoded tags as the JSON is parsed: the parsed JSON walked again."""
    return general_decode(serialization.long_keys(json.loads(payload)))


def general_decode(value: Any) -> Any:
    """The walk ``loads`` made over a parsed payload (the previous release's ``_decode``)."""
    if isinstance(value, list):
        return [general_decode(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and serialization.BYTES_TAG in value:
            return value[serialization.BYTES_TAG].encode("latin-1")
        if len(value) == 1 and serialization.MAP_TAG in value:
            return {general_decode(key): general_decode(item) for key, item in value[serialization.MAP_TAG]}
        return {key: general_decode(item) for key, item in value.items()}
    return value


@EXAMPLES
@given(
    meta=VALUES,
    cb_kwargs=st.dictionaries(st.text(max_size=6), VALUES, max_size=3),
    headers=st.one_of(
        st.dictionaries(st.binary(max_size=6), st.lists(st.binary(max_size=6), max_size=2), max_size=2),
        st.dictionaries(KEYS, VALUES, max_size=2),
    ),
)
def test_dumps_and_loads_give_what_the_general_path_gives(
    meta: Any, cb_kwargs: dict[str, Any], headers: dict[Any, Any]
) -> None:
    obj = {
        "url": "http://example.test/a",
        "headers": headers,
        "meta": {"m": meta},
        "cb_kwargs": cb_kwargs,
        "priority": 3,
    }
    payload = serialization.dumps(obj)
    assert payload == general_dumps(obj)
    assert serialization.loads(payload) == general_loads(payload)


def test_a_tag_written_as_an_escape_is_still_a_tag() -> None:
    """``{"\\u0024b": …}`` is ``{"$b": …}`` to JSON: bytes, as a plain ``$b`` key is."""
    for payload in (
        b'{"u":"http://example.test/","b":{"\\u0024b":"a=1"}}',
        b'{"u":"http://example.test/","m":{"k":{"\\u0024map":[[1,"one"]]}}}',
    ):
        assert serialization.loads(payload) == general_loads(payload)
    assert serialization.loads(b'{"u":"http://example.test/","b":{"\\u0024b":"a=1"}}')["body"] == b"a=1"


class RulesSpider(CrawlSpider):
    name = "rules"
    allowed_domains = ("example.test",)
    rules = (Rule(callback="parse_page", follow=True),)
    shared_request_defaults: ClassVar[dict[str, Any]] = {
        "meta": {"handle_httpstatus_list": [404]},
        "priority": 5,
    }

    def parse_page(self, response: Any) -> None:
        return None


@pytest.fixture
def queue() -> LeasedPriorityQueue:
    spider = RulesSpider.from_crawler(get_crawler(RulesSpider))
    return LeasedPriorityQueue(redis.Redis(), spider)  # no command is sent


def test_a_rule_request_is_encoded_without_the_general_walk(
    queue: LeasedPriorityQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests a crawl makes by the thousand (a rule's, with the Referer Scrapy's middleware sets
    and the spider's defaults) are pushed without ``_encode``'s copy, and come back as they were."""
    spider = queue.spider
    request = scrapy.Request(
        "http://example.test/page/7",
        callback=spider._callback,
        errback=spider._errback,
        headers={"Referer": "http://example.test/page/3"},
        meta={"rule": 0, "link_text": LinkText("page 7"), "depth": 2},
        priority=5,
    )

    def general(*args: Any) -> Any:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(serialization, "_encode", general)
    payload = queue.encode(request).payload
    back = queue._decode_request(payload)
    assert (back.url, back.callback, back.errback, back.priority) == (
        request.url,
        spider._callback,
        spider._errback,
        5,
    )
    assert back.meta == {"rule": 0, "link_text": "page 7", "depth": 2}
    assert back.headers.to_unicode_dict() == {"Referer": "http://example.test/page/3"}


def test_requests_decoded_with_the_spiders_defaults_share_none_of_them(queue: LeasedPriorityQueue) -> None:
    """A default dict or list is each request's own: a middleware changing one request's meta changes
    neither the next request's nor the spider's defaults."""
    request = scrapy.Request("http://example.test/page/1", priority=5, meta={"handle_httpstatus_list": [404]})
    payload = queue.encode(request).payload
    assert payload == b'{"u":"http://example.test/page/1"}'  # all the rest is the spider's defaults
    first, second = queue._decode_request(payload), queue._decode_request(payload)
    assert first.meta == {"handle_httpstatus_list": [404]} and first.priority == 5
    first.meta["handle_httpstatus_list"].append(500)
    first.meta["download_slot"] = "x"
    assert second.meta == {"handle_httpstatus_list": [404]}
    assert RulesSpider.shared_request_defaults["meta"] == {"handle_httpstatus_list": [404]}
