"""What a request of the shared queue may be: the spider's own callbacks, on its site, with plain meta.

The queue is shared through Redis, and whoever can write to Redis can put any
payload in it. :mod:`.serialization` already makes sure nothing in a payload is
executed or imported; this module makes sure a decoded request can only do what
the spider's own requests do, so a payload can't point a worker elsewhere
(``file://``, an internal address, another site whose page ``parse_story``
would store over a real story), switch off its politeness (``dont_obey_robotstxt``,
``download_slot``), route it through a proxy, or call an arbitrary spider method.

:class:`RequestPolicy` is built from the spider and checks a request dict:

- **callback / errback**: one of the spider's ``shared_callbacks`` (a set of
  method names it declares; without one, ``parse`` and ``parse_*`` methods);
  ``cb_kwargs`` only names the callback's own parameters;
- **URL**: http or https, at most :data:`MAX_URL_LENGTH` characters, on a host of
  the spider's ``allowed_domains`` (the hosts Scrapy's offsite filter lets through);
- **meta**: only :data:`SCRAPY_META` keys (what Scrapy's own middlewares carry from
  one try of a request to the next: depth, retry and redirect counts) and the
  spider's ``shared_meta``, with the types Scrapy gives them;
- **method** GET or HEAD, the class ``scrapy.Request`` (or one of the spider's
  ``shared_request_classes``), a known text encoding, a payload of at most
  :data:`MAX_PAYLOAD_BYTES`.

Pushing, a worker keeps only allowed meta keys (the others, such as
``download_timeout`` or ``proxy``, are set again by the middlewares that own them)
and refuses a request the policy refuses; popping, a payload the policy refuses
was not written by a worker: it goes to the dead-letter hash with its reason.
A seeding tool (:mod:`.seeding`) pushes through the same queue, so it refuses the same.
"""

from __future__ import annotations

import codecs
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Spider

from scrapy_sharedcrawl.serialization import UnserializableRequest

#: Longest URL accepted (browsers and servers commonly stop around 8 kB).
MAX_URL_LENGTH = 8192
#: Largest payload accepted, in bytes (a story request is about 200).
MAX_PAYLOAD_BYTES = 64 * 1024
METHODS = frozenset({"GET", "HEAD"})


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

    @classmethod
    def for_spider(cls, spider: Spider) -> RequestPolicy:
        names = getattr(spider, "shared_callbacks", None)
        if names is None:
            names = [name for name in dir(type(spider)) if name == "parse" or name.startswith("parse_")]
        callbacks = {name: _keyword_parameters(getattr(spider, name, None)) for name in names}
        missing = [name for name, parameters in callbacks.items() if parameters is None]
        if missing:
            raise ValueError(f"shared_callbacks of spider {spider.name!r} names no method {missing[0]!r}")
        meta = {**SCRAPY_META, **{name: _any for name in getattr(spider, "shared_meta", ())}}
        classes = {"scrapy.http.request.Request", *getattr(spider, "shared_request_classes", ())}
        return cls(
            callbacks={name: parameters for name, parameters in callbacks.items() if parameters is not None},
            meta=meta,
            domains=tuple(str(domain).lower() for domain in getattr(spider, "allowed_domains", None) or ()),
            request_classes=frozenset(classes),
        )

    def kept_meta(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a request's meta that travels: allowed keys only (see the module docstring)."""
        return {key: value for key, value in meta.items() if key in self.meta}

    @staticmethod
    def check_size(size: int) -> None:
        """Raise :class:`RefusedRequest` for a payload of more than :data:`MAX_PAYLOAD_BYTES`."""
        if size > MAX_PAYLOAD_BYTES:
            raise RefusedRequest("size", f"payload of {size} bytes (at most {MAX_PAYLOAD_BYTES})")

    def check(self, obj: Mapping[str, Any]) -> None:
        """Raise :class:`RefusedRequest` unless the request dict ``obj`` is allowed (its size is
        :meth:`check_size`'s, checked on the payload)."""
        self._check_url(obj.get("url"))
        method = obj.get("method", "GET")
        if not isinstance(method, str) or method not in METHODS:
            raise RefusedRequest("method", f"{str(method)[:20]!r} is not GET or HEAD")
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
            if check is None:
                raise RefusedRequest("meta", f"meta key {str(key)[:60]!r} is not allowed")
            if not check(value):
                raise RefusedRequest("meta", f"meta {key!r} has a value of the wrong kind")

    def _check_url(self, url: Any) -> None:
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            raise RefusedRequest("url", "no URL, or a URL too long")
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            raise RefusedRequest("url", f"{url[:100]!r} is not a URL") from None
        if parts.scheme not in ("http", "https") or not host:
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


def _any(value: Any) -> bool:
    return True


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
