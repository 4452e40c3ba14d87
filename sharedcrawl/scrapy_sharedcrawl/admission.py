"""What a request of the shared queue may be: the spider's own callbacks, on its site, with plain meta.

:class:`RequestPolicy`, built from the spider, checks a request dict (callback, URL and host, meta,
method, class, ``dont_filter``); pushing refuses what it refuses, and a popped payload it refuses
goes to the dead-letter hash with its reason (:mod:`.serialization` ensures nothing is executed).

Design notes: docs/framework-design.md#admission.
"""

from __future__ import annotations

import codecs
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Spider
from scrapy.spiders import CrawlSpider
from w3lib.url import safe_url_string

from scrapy_sharedcrawl.redis_spiders import is_redis_spider
from scrapy_sharedcrawl.serialization import CRAWL_SPIDER_DISPATCH, UnserializableRequest

#: Longest URL accepted (browsers and servers commonly stop around 8 kB).
MAX_URL_LENGTH = 8192
#: Largest payload accepted, in bytes (a story request is about 200).
MAX_PAYLOAD_BYTES = 64 * 1024
METHODS = frozenset({"GET", "HEAD"})
#: Characters no canonical URL holds: a backslash (read as "/" by w3lib and browsers, as part of
#: the user name by ``urlsplit``), spaces and controls (dropped or escaped by w3lib).
NON_CANONICAL = re.compile(r"[\\\x00-\x20\x7f]")
FORM_REQUEST = "scrapy.http.request.form.FormRequest"
#: Meta keys by which Scrapy, its middlewares and the common plugins steer a download (proxy, slot,
#: robots.txt, cookies, timeouts, size limits, rendering): never a spider's own data. A spider whose
#: meta is free (a scrapy-redis spider) may carry any other key, but these only as :data:`SCRAPY_META`
#: and ``shared_meta`` allow them.
CONTROL_META = re.compile(
    r"^(?:_|dont_|download_|ftp_|handle_httpstatus|max_retry|redirect_|retry_|depth|proxy|bindaddress"
    r"|cookiejar|referrer_policy|allow_offsite|is_start_request|splash|playwright|zyte|impersonate"
    r"|crawlera|autoextract|cache|verbatim_url$|rule$|link_text$)"
)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, str) and len(item) <= MAX_URL_LENGTH for item in value
    )


def _statuses(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599 for item in value
    )


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _reasons(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    )


#: Meta keys Scrapy's own components carry over from one try of a request to the next, and the
#: check of each value. Everything else Scrapy puts in meta is set again on every try.
SCRAPY_META: dict[str, Callable[[Any], bool]] = {
    "depth": _count,
    "retry_times": _count,
    "redirect_times": _count,
    "redirect_ttl": _count,
    "redirect_urls": _strings,
    "redirect_reasons": _reasons,
    "handle_httpstatus_list": _statuses,
    "dont_retry": _flag,
    "dont_redirect": _flag,
    "is_start_request": _flag,
}


class RefusedRequest(UnserializableRequest):
    """A request the policy does not let through the shared queue; ``reason`` is its stat name."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class RequestPolicy:
    """The checks of the module docstring for one spider."""

    callbacks: Mapping[str, frozenset[str]]  # method name → the keyword parameters it takes
    meta: Mapping[str, Callable[[Any], bool]]
    domains: tuple[str, ...]  # lower-case; empty: any host (matched as Scrapy's offsite filter does)
    request_classes: frozenset[str]
    methods: frozenset[str] = METHODS
    #: Whether any request of the spider may skip the duplicate filter (not only starts and retries).
    dont_filter: bool = False
    #: Whether meta keys outside ``meta`` travel too (plain data, not a :data:`CONTROL_META` key).
    free_meta: bool = False

    @classmethod
    def for_spider(cls, spider: Spider) -> RequestPolicy:
        kind = _kind_defaults(spider)
        names = getattr(spider, "shared_callbacks", None)
        if names is None:
            names = [
                name
                for name in dir(type(spider))
                if (name == "parse" or name.startswith("parse_")) and name not in kind.not_callbacks
            ]
        callbacks = {name: _keyword_parameters(getattr(spider, name, None)) for name in names}
        missing = [name for name, parameters in callbacks.items() if parameters is None]
        if missing:
            raise ValueError(f"shared_callbacks of spider {spider.name!r} names no method {missing[0]!r}")
        callbacks.update(kind.callbacks)
        meta = {
            **SCRAPY_META,
            **(kind.meta or {}),
            **{name: _any for name in getattr(spider, "shared_meta", ())},
        }
        classes = {
            "scrapy.http.request.Request",
            *kind.classes,
            *getattr(spider, "shared_request_classes", ()),
        }
        methods = {*METHODS, *kind.methods, *(str(m).upper() for m in getattr(spider, "shared_methods", ()))}
        return cls(
            callbacks={name: parameters for name, parameters in callbacks.items() if parameters is not None},
            meta=meta,
            domains=tuple(str(domain).lower() for domain in getattr(spider, "allowed_domains", None) or ()),
            request_classes=frozenset(classes),
            methods=frozenset(methods),
            dont_filter=bool(getattr(spider, "shared_dont_filter", kind.dont_filter)),
            free_meta=bool(getattr(spider, "shared_free_meta", kind.free_meta)),
        )

    def kept_meta(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a request's meta that travels: allowed keys only (see the module docstring)."""
        return {key: value for key, value in meta.items() if key in self.meta or self._free(key)}

    def _free(self, key: object) -> bool:
        return self.free_meta and isinstance(key, str) and not CONTROL_META.match(key)

    @staticmethod
    def check_size(size: int) -> None:
        """Raise :class:`RefusedRequest` for a payload of more than :data:`MAX_PAYLOAD_BYTES`."""
        if size > MAX_PAYLOAD_BYTES:
            raise RefusedRequest("size", f"payload of {size} bytes (at most {MAX_PAYLOAD_BYTES})")

    def check(self, obj: Mapping[str, Any], url_is_safe: bool = False) -> None:
        """Raise :class:`RefusedRequest` unless the request dict ``obj`` is allowed (its size is
        :meth:`check_size`'s, checked on the payload). ``url_is_safe``: the URL is a live request's,
        already as Scrapy fetches it (``safe_url_string`` is not applied again)."""
        self.check_fields(obj)
        self.check_host(obj["url"], make_safe=not url_is_safe)

    def check_fields(self, obj: Mapping[str, Any]) -> None:
        """:meth:`check` but the URL's host (a payload's URL text is checked here: its host is checked on
        the request built from it, with :meth:`check_host`)."""
        self.check_url_text(obj.get("url"))
        method = obj.get("method", "GET")
        if not isinstance(method, str) or method not in self.methods:
            allowed = ", ".join(sorted(self.methods))
            raise RefusedRequest("method", f"{str(method)[:20]!r} is not one of the spider's ({allowed})")
        if "_class" in obj and (
            not isinstance(obj["_class"], str) or obj["_class"] not in self.request_classes
        ):
            raise RefusedRequest("class", f"request class {str(obj['_class'])[:100]!r} is not allowed")
        encoding = obj.get("encoding", "utf-8")
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise RefusedRequest("encoding", f"{str(encoding)[:40]!r} is not a text encoding") from None
        self._check_callbacks(obj)
        meta = obj.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise RefusedRequest("meta", "meta is not a mapping")
        for key, value in meta.items():
            check = self.meta.get(key) if isinstance(key, str) else None
            if check is None and self._free(key):
                continue  # plain data (the serializer admits nothing else), the spider's own
            if check is None:
                raise RefusedRequest("meta", f"meta key {str(key)[:60]!r} is not allowed")
            if not check(value):
                raise RefusedRequest("meta", f"meta {key!r} has a value of the wrong kind")
        if obj.get("dont_filter") and not (
            self.dont_filter or meta.get("is_start_request") is True or meta.get("retry_times")
        ):
            raise RefusedRequest(
                "dont_filter",
                "dont_filter on a request that is neither a start request nor a retry "
                "(a spider whose own requests skip the filter declares shared_dont_filter = True)",
            )

    @staticmethod
    def check_url_text(url: Any) -> None:
        """The URL as written: a string, not too long, without the characters URL parsers disagree on."""
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            raise RefusedRequest("url", "no URL, or a URL too long")
        if NON_CANONICAL.search(url):
            raise RefusedRequest("url", f"{url[:100]!r} holds a backslash, space or control character")

    def check_host(self, url: str, make_safe: bool = False) -> None:
        """``url``, as ``scrapy.Request`` holds and fetches it (``make_safe``: as it will once made safe
        by w3lib's ``safe_url_string``, as ``scrapy.Request`` makes it), is http(s) on a host of the site."""
        try:
            scheme, host = scheme_and_host(safe_url_string(url) if make_safe else url)
        except ValueError:
            raise RefusedRequest("url", f"{url[:100]!r} is not a URL") from None
        if scheme not in ("http", "https") or not host:
            raise RefusedRequest("url", f"{url[:100]!r} is not an http(s) URL")
        if self.domains and not any(host == domain or host.endswith(f".{domain}") for domain in self.domains):
            raise RefusedRequest(
                "host", f"{host[:100]!r} is not a host of the site ({', '.join(self.domains)})"
            )

    def _check_callbacks(self, obj: Mapping[str, Any]) -> None:
        for key in ("callback", "errback"):
            name = obj.get(key)
            if name is not None and (not isinstance(name, str) or name not in self.callbacks):
                raise RefusedRequest(
                    "callback", f"{key} {str(name)[:60]!r} is not one of the spider's callbacks"
                )
        kwargs = obj.get("cb_kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise RefusedRequest("cb_kwargs", "cb_kwargs is not a mapping")
        if kwargs:
            accepted = self.callbacks.get(obj.get("callback") or "parse", frozenset())
            unknown = [str(name) for name in kwargs if name not in accepted]
            if unknown:
                raise RefusedRequest("cb_kwargs", f"the callback takes no argument {unknown[0][:60]!r}")


#: A simple absolute http(s) URL: lower-case scheme, a host of letters, digits, dots, hyphens and
#: underscores, maybe a port, then the path, query, fragment or the end. What ``urlsplit`` reads
#: from such a URL is plain (``tests/admission/test_simple_url_host.py`` fuzzes the two against each other).
_SIMPLE_URL = re.compile(r"(https?)://([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")


def scheme_and_host(url: str) -> tuple[str, str | None]:
    """``url``'s scheme and host (lower-case) as ``urlsplit`` reads them: one regex for a simple URL (most
    of a crawl's), ``urlsplit`` for any other. Raises ``ValueError`` where ``urlsplit`` or its ``port``
    does (a port out of range is refused as ``scrapy.Request`` refuses it)."""
    match = _SIMPLE_URL.match(url)
    if match is not None and (match[3] is None or int(match[3]) <= 65535):
        return match[1], match[2].lower()
    parts = urlsplit(url)
    parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
    return parts.scheme, parts.hostname


def _any(value: Any) -> bool:
    return True


@dataclass(frozen=True)
class _KindDefaults:
    """What a spider of a class Scrapy or scrapy-redis ships makes by its own code."""

    callbacks: Mapping[str, frozenset[str]]
    not_callbacks: frozenset[str] = frozenset()
    meta: Mapping[str, Callable[[Any], bool]] | None = None
    classes: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()
    dont_filter: bool = False
    free_meta: bool = False


def _kind_defaults(spider: Spider) -> _KindDefaults:
    """The requests a ``CrawlSpider`` (rule requests: ``_callback`` / ``_errback`` with the rule's index
    and the link's text in meta) and a scrapy-redis spider (``make_request_from_data``: a
    ``FormRequest`` with ``dont_filter``, ``POST`` when the entry asks) make without the spider's
    author writing them."""
    callbacks: dict[str, frozenset[str]] = {}
    meta: dict[str, Callable[[Any], bool]] = {}
    not_callbacks: frozenset[str] = frozenset()
    if isinstance(spider, CrawlSpider):
        rules = len(getattr(spider, "rules", ()) or ())
        # the dispatchers take the rule's own cb_kwargs; a queued request can't add any
        callbacks = dict.fromkeys(CRAWL_SPIDER_DISPATCH, frozenset())
        meta = {
            "rule": lambda value: _count(value) and value < rules,
            "link_text": lambda value: isinstance(value, str) and len(value) <= MAX_URL_LENGTH,
        }
        not_callbacks = frozenset({"parse_with_rules"})  # a helper of ``_callback``, not a callback
    redis_spider = is_redis_spider(spider)
    return _KindDefaults(
        callbacks=callbacks,
        not_callbacks=not_callbacks,
        meta=meta,
        classes=frozenset({FORM_REQUEST}) if redis_spider else frozenset(),
        methods=frozenset({"POST"}) if redis_spider else frozenset(),
        dont_filter=redis_spider,
        free_meta=redis_spider,  # make_request_from_data copies the entry's meta, whatever its keys
    )


def _keyword_parameters(method: Any) -> frozenset[str] | None:
    """The names a callback takes as keyword arguments after the response; None if not a method."""
    if not callable(method):
        return None
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]  # after the response
    except (TypeError, ValueError):
        return frozenset()
    names: Iterable[str] = (p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return frozenset(names)
