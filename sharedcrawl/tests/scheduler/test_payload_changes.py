"""A payload leaves out what its spider's ``shared_request_defaults`` say, and gives a meta or cb_kwargs
that shares some of the default's items as its changes (``m+``, ``m-``); a start request's mark is one
flag (``s``). Every request must come back exactly as the whole payload would bring it back, on any data
(hypothesis, derandomized), and a payload written whole, as the previous release wrote them all, reads
as it did. No Redis: encoding and decoding need no connection.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import redis
import scrapy
from hypothesis import given
from hypothesis import strategies as st
from scrapy.utils.test import get_crawler
from test_request_coding_paths import EXAMPLES

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.queue import LeasedPriorityQueue

SITE = "http://example.test"
#: Metas whose keys may be the defaults' or not, their values equal to the defaults' or not (each of a
#: kind the admission policy allows for its key).
FLAGS = st.booleans()
METAS = st.fixed_dictionaries(
    {},
    optional={
        "handle_httpstatus_list": st.sampled_from([[404], [], [404, 500]]),
        "from_range": FLAGS,
        "is_start_request": FLAGS,
        "depth": st.integers(0, 2),
        "rule": st.integers(0, 1),
    },
)
KWARGS = st.fixed_dictionaries(
    {}, optional={"categories": st.sampled_from([[], ["linux"]]), "page": st.integers(0, 1)}
)


class PagesSpider(scrapy.Spider):
    name = "pages"
    allowed_domains = ("example.test",)
    shared_meta = frozenset({"from_range", "rule"})
    shared_request_defaults: ClassVar[dict[str, Any]] = {
        "callback": "parse_page",
        "meta": {"handle_httpstatus_list": [404], "from_range": False},
        "cb_kwargs": {"categories": []},
        "priority": 5,
    }

    def parse_page(self, response: Any, categories: Any = None, page: Any = None) -> None:
        return None


@pytest.fixture(scope="module")
def queue() -> LeasedPriorityQueue:
    spider = PagesSpider.from_crawler(get_crawler(PagesSpider))
    return LeasedPriorityQueue(redis.Redis(), spider)  # no command is sent


def whole(queue: LeasedPriorityQueue, request: scrapy.Request) -> dict[str, Any]:
    """The request dict as a whole payload brings it back (no defaults left out, no flag)."""
    obj = serialization.request_to_dict(request, queue.spider)
    obj["meta"] = queue.policy.kept_meta(obj["meta"])
    back = serialization.loads(serialization.dumps(obj))
    for key, value in serialization._DEFAULTS.items():
        back.setdefault(key, value)
    return back


def as_dict(request: scrapy.Request, spider: scrapy.Spider) -> dict[str, Any]:
    obj = serialization.request_to_dict(request, spider)
    return {key: obj[key] for key in ("url", "callback", "errback", "meta", "cb_kwargs", "priority")}


@EXAMPLES
@given(meta=METAS, cb_kwargs=KWARGS)
def test_a_request_comes_back_as_its_whole_payload_would_bring_it_back(
    queue: LeasedPriorityQueue, meta: dict[str, Any], cb_kwargs: dict[str, Any]
) -> None:
    spider = queue.spider
    request = scrapy.Request(
        f"{SITE}/p", callback=spider.parse_page, meta=meta, cb_kwargs=cb_kwargs, priority=5
    )
    back = queue._decode_request(queue.encode(request).payload)
    expected = whole(queue, request)
    assert as_dict(back, spider) == {key: expected[key] for key in as_dict(back, spider)}


def test_a_meta_sharing_some_defaults_travels_as_its_changes(queue: LeasedPriorityQueue) -> None:
    spider = queue.spider
    rule = scrapy.Request(
        f"{SITE}/p/2",
        callback=spider.parse_page,
        meta={"from_range": False, "depth": 2},
        cb_kwargs={"categories": []},
        priority=5,
    )
    payload = queue.encode(rule).payload
    assert payload == b'{"u":"http://example.test/p/2","m+":{"depth":2},"m-":["handle_httpstatus_list"]}'
    assert queue._decode_request(payload).meta == {"from_range": False, "depth": 2}


def test_a_meta_lacking_a_default_key_and_nothing_else_travels_as_that_key(
    queue: LeasedPriorityQueue,
) -> None:
    request = scrapy.Request(
        f"{SITE}/p/6",
        callback=queue.spider.parse_page,
        meta={"from_range": False},
        cb_kwargs={"categories": []},
    )
    payload = queue.encode(request).payload
    assert payload == b'{"u":"http://example.test/p/6","p":0,"m-":["handle_httpstatus_list"]}'
    assert queue._decode_request(payload).meta == {"from_range": False}


def test_a_seed_is_its_url_its_change_and_the_start_flag(queue: LeasedPriorityQueue) -> None:
    spider = queue.spider
    seed = scrapy.Request(
        f"{SITE}/p/3",
        callback=spider.parse_page,
        meta={"handle_httpstatus_list": [404], "from_range": True, "is_start_request": True},
        cb_kwargs={"categories": []},
        priority=5,
    )
    payload = queue.encode(seed).payload
    assert payload == b'{"u":"http://example.test/p/3","m+":{"from_range":true},"s":1}'
    back = queue._decode_request(payload)
    assert back.meta == seed.meta and back.cb_kwargs == {"categories": []}
    # each request's own meta: changing one changes neither the next one nor the spider's defaults
    back.meta["handle_httpstatus_list"].append(500)
    assert queue._decode_request(payload).meta["handle_httpstatus_list"] == [404]
    assert PagesSpider.shared_request_defaults["meta"] == {
        "handle_httpstatus_list": [404],
        "from_range": False,
    }


def test_a_meta_sharing_nothing_with_the_defaults_travels_whole(queue: LeasedPriorityQueue) -> None:
    request = scrapy.Request(
        f"{SITE}/p/4",
        callback=queue.spider.parse_page,
        meta={"rule": 1},
        cb_kwargs={"categories": []},
        priority=5,
    )
    payload = queue.encode(request).payload
    assert payload == b'{"u":"http://example.test/p/4","m":{"rule":1}}'  # shorter than the changes
    assert queue._decode_request(payload).meta == {"rule": 1}


def test_a_payload_written_whole_by_the_previous_release_reads_as_it_did(queue: LeasedPriorityQueue) -> None:
    """Before changes were written, a meta that differed from the default travelled whole: its missing
    default keys stay missing (no default merged into it)."""
    payload = b'{"u":"http://example.test/p/5","m":{"from_range":true,"is_start_request":true},"k":{"categories":[]}}'
    back = queue._decode_request(payload)
    assert back.meta == {"from_range": True, "is_start_request": True}
    assert back.callback == queue.spider.parse_page and back.priority == 5


@pytest.mark.parametrize(
    "payload",
    [
        b'{"u":"http://example.test/p","s":2}',
        b'{"u":"http://example.test/p","s":true}',
        b'{"u":"http://example.test/p","m":{},"m+":{"depth":1}}',
        b'{"u":"http://example.test/p","m+":["depth"]}',
        b'{"u":"http://example.test/p","m-":"handle_httpstatus_list"}',
        b'{"u":"http://example.test/p","m-":[1]}',
        b'{"u":"http://example.test/p","k+":{"page":1},"k":{}}',
    ],
    ids=[
        "flag-2",
        "flag-true",
        "whole-and-changes",
        "changes-list",
        "absent-text",
        "absent-number",
        "kwargs-both",
    ],
)
def test_changes_that_are_not_what_an_encoder_writes_are_refused(
    queue: LeasedPriorityQueue, payload: bytes
) -> None:
    with pytest.raises(serialization.UnserializableRequest):
        queue._decode_request(payload)


def test_a_forbidden_key_among_the_changes_is_refused_as_in_a_whole_meta(queue: LeasedPriorityQueue) -> None:
    from scrapy_sharedcrawl.admission import RefusedRequest

    with pytest.raises(RefusedRequest, match="proxy"):
        queue._decode_request(b'{"u":"http://example.test/p","m+":{"proxy":"http://attacker:8080"}}')
