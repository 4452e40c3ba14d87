"""Fuzz the admission of queued URLs: every URL the policy admits is, once Scrapy has normalised it
(``scrapy.Request``, w3lib's ``safe_url_string``), on an allowed host; whatever it refuses is refused
with a reason. The oracle is Scrapy's own ``Request`` and ``urlsplit``, not the policy.

Derandomized in CI; ``FUZZ_EXAMPLES=5000`` (and ``FUZZ_SEED=N``) run a longer campaign.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import scrapy
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from scrapy_sharedcrawl.admission import RefusedRequest, RequestPolicy

ALLOWED = "pages.test"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
SEED = os.environ.get("FUZZ_SEED")


class Spider(scrapy.Spider):
    name = "fuzz"
    allowed_domains = (ALLOWED,)


POLICY = RequestPolicy.for_spider(Spider())

#: Hosts allowed and not, and the separators URL parsers disagree on (a backslash is a path for
#: browsers and w3lib, part of the user name for ``urlsplit``; controls and spaces are dropped…).
_HOSTS = st.sampled_from(
    [
        ALLOWED,
        f"www.{ALLOWED}",
        "evil.example",
        "169.254.169.254",
        "127.0.0.1",
        f"{ALLOWED}.evil",
        "",
        "[::1]",
    ]
)
_SEPARATORS = st.sampled_from(
    ["\\@", "\\", "@", "%40", "%5C@", ":@", "\t", "\n", " ", "\x00", "#@", "?@", "/@", "%2F@", ".", ":80@",
     ":99999", "\u3002", "\uff0e", "/"]
)  # fmt: skip
_SCHEMES = st.sampled_from(["http://", "https://", "HTTP://", "//", "http:\\\\", "ftp://", "http:/"])
_TAILS = st.sampled_from(["", "/", "/story?sid=1", "\\x", "#x", "?a=@b"])
#: A scheme, two hosts around a separator (or one host), a path; and any text at all.
URLS = (
    st.tuples(_SCHEMES, _HOSTS, _SEPARATORS, _HOSTS, _TAILS).map("".join)
    | st.tuples(_SCHEMES, _HOSTS, _TAILS).map("".join)
    | st.text(max_size=60)
)


def allowed_host(host: str | None) -> bool:
    return host is not None and (host == ALLOWED or host.endswith(f".{ALLOWED}"))


@seed(int(SEED or 0))
@settings(max_examples=EXAMPLES, derandomize=SEED is None, deadline=None, database=None)
@given(url=URLS)
def test_an_admitted_url_is_fetched_on_an_allowed_host(url: str) -> None:
    try:
        POLICY.check({"url": url})
    except RefusedRequest as refused:
        assert refused.reason in {"url", "host"}
        return
    fetched: Any = scrapy.Request(url)  # what a worker builds from the payload, and fetches
    assert allowed_host(urlsplit(fetched.url).hostname), (url, fetched.url)
