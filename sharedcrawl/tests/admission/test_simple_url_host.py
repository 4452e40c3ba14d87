"""The admission's one-regex host reader gives what ``urlsplit`` gives, on hostile input; and a payload
read from Redis is admitted only on an allowed host of the URL the request was built with.

:func:`~scrapy_sharedcrawl.admission.scheme_and_host` reads simple URLs with a regex and hands any
other to ``urlsplit``: on every URL, simple or not, its answer (scheme, host, or ``ValueError``) must
be ``urlsplit``'s. Derandomized in CI; ``FUZZ_EXAMPLES=N`` (and ``FUZZ_SEED=S``) run a longer campaign.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import scrapy
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from test_fuzz_admitted_urls import EXAMPLES, SEED, URLS, Spider, allowed_host

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.admission import _SIMPLE_URL, RefusedRequest, scheme_and_host
from scrapy_sharedcrawl.queue import LeasedPriorityQueue

FUZZ = settings(max_examples=EXAMPLES, derandomize=SEED is None, deadline=None, database=None)

#: Pieces of URLs, simple and not: what the regex must either read exactly as urlsplit or leave to it.
_PIECES = st.sampled_from(
    ["http", "https", "HTTP", "Https", "ftp", ":", "//", "/", "a", "B", "0", "9", "-", "_", ".", "..",
     "example.org", "Example.ORG", ":80", ":0", ":65535", ":65536", ":99999", ":08080", ":", "::", "@",
     "user:pw@", "[::1]", "[", "]", "?", "#", "%41", "%", "\t", "\n", " ", "\\", "\x00", "\u0661",
     "\uff10", "\u0130", "é", ";", ",", "+", "~", "!", "$"]
)  # fmt: skip
URL_LIKE = (
    st.lists(_PIECES, max_size=12).map("".join)
    | st.tuples(st.sampled_from(["http://", "https://"]), st.lists(_PIECES, max_size=8).map("".join)).map(
        "".join
    )
    | URLS
)


def by_urlsplit(url: str) -> tuple[str, str | None] | type[ValueError]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return ValueError
    return parts.scheme, parts.hostname


def by_reader(url: str) -> tuple[str, str | None] | type[ValueError]:
    try:
        return scheme_and_host(url)
    except ValueError:
        return ValueError


@seed(int(SEED or 0))
@FUZZ
@given(url=URL_LIKE)
def test_the_host_reader_reads_what_urlsplit_reads(url: str) -> None:
    assert by_reader(url) == by_urlsplit(url), url


def test_the_regex_takes_the_common_urls() -> None:
    """Not a fallback in disguise: the URLs a crawl makes are read by the regex."""
    for url in [
        "http://127.0.0.1:8080/page/12",
        "https://www.solidot.org/story?sid=80222",
        "https://Example.org",
        "http://a-b.example_x.org:0/?q=1#f",
    ]:
        assert _SIMPLE_URL.match(url), url
        assert by_reader(url) == by_urlsplit(url)


QUEUE = LeasedPriorityQueue(redis.Redis(), Spider())  # no command is sent: decoding only


@seed(int(SEED or 0))
@FUZZ
@given(url=URLS)
def test_a_payload_is_admitted_only_on_an_allowed_host_of_the_request_built_from_it(url: str) -> None:
    payload = serialization.dumps({"url": url})
    try:
        request: Any = QUEUE._decode_request(payload)
    except RefusedRequest as refused:
        assert refused.reason in {"url", "host"}, refused
        return
    assert allowed_host(urlsplit(request.url).hostname), (url, request.url)
    assert request.url == scrapy.Request(url).url  # built as Scrapy builds it from the same URL


class FreeMetaSpider(Spider):
    name = "free"
    shared_free_meta = True  # as a scrapy-redis spider: any plain meta key travels


def test_verbatim_url_is_a_control_key_so_the_host_checked_is_the_one_fetched() -> None:
    """Scrapy keeps a request's URL as written when its meta says ``verbatim_url``: a payload must not
    choose that, or the URL fetched would be one no check read."""
    queue = LeasedPriorityQueue(redis.Redis(), FreeMetaSpider())
    assert queue.policy.kept_meta({"verbatim_url": True, "tag": "x"}) == {"tag": "x"}
    for url in ("http://pages.test/a b", "http://pages.test/a"):
        payload = serialization.dumps({"url": url, "meta": {"verbatim_url": True}})
        with pytest.raises(RefusedRequest) as refused:
            queue._decode_request(payload)
        assert refused.value.reason in {"url", "meta"}
