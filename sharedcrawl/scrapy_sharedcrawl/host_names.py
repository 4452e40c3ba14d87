"""The name a shared crawl gives a request's host: one name for the queue's keys and the rate limiter's.

The shared queue (:mod:`.queue`) keeps a host's requests under its name and, at each pop, reads the
cluster rate limiter's hash of that host (:mod:`.cluster_rate`: its pace, its pause); both name a host
here, so a pause the limiter records is the one the queue's pop sees, whatever characters the host has.

Design notes: docs/framework-design.md#host_names.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from scrapy import Request
from scrapy.utils.httpobj import urlparse_cached

#: Characters a host's name keeps as they are (others are %-escaped: the queue's scripts parse its
#: entries at spaces and ``|``).
_SAFE = re.compile(r"[A-Za-z0-9.\-_:\[\]]*")


def host_name(hostname: str) -> str:
    """``hostname`` (as ``urlsplit`` gives it: lower case, no port) as the crawl names it: unchanged
    when made of letters, digits and ``.-_:[]``, every other character %-escaped.

    >>> host_name("www.example.org"), host_name("::1"), host_name("a|b c")
    ('www.example.org', '::1', 'a%7Cb%20c')
    """
    return hostname if _SAFE.fullmatch(hostname) else quote(hostname, safe=".-_:[]")


def queue_host(url: str) -> str:
    """The host whose queue a request of ``url`` waits in, and whose limiter paces it.

    >>> queue_host("https://WWW.Example.org:8443/page?id=1"), queue_host("data:,x")
    ('www.example.org', '')
    """
    return host_name(urlsplit(url).hostname or "")


def request_host(request: Request) -> str:
    """:func:`queue_host` of ``request``'s URL (parsed once per request, as Scrapy caches it)."""
    return host_name(urlparse_cached(request).hostname or "")
