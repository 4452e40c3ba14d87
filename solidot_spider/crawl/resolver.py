"""DNS overrides for the crawler, like curl's ``--resolve``.

``SOLIDOT_RESOLVE=solidot.test=127.0.0.1`` makes ``www.solidot.test``,
``linux.solidot.test`` and every other name under ``solidot.test`` resolve to
127.0.0.1 inside the crawler, so the offline replica can be crawled under the
site's own host names without editing /etc/hosts. Other names go to Scrapy's
normal caching resolver.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase


def parse_resolve(spec: str | Sequence[str] | None) -> dict[str, str]:
    """Parse ``"DOMAIN=ADDRESS,DOMAIN2=ADDRESS2"`` into a mapping.

    >>> parse_resolve("solidot.test=127.0.0.1")
    {'solidot.test': '127.0.0.1'}
    """
    if not spec:
        return {}
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    mapping: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        domain, sep, address = item.partition("=")
        domain, address = domain.strip().lower().rstrip("."), address.strip()
        if not sep or not domain or not address:
            raise ValueError(f"SOLIDOT_RESOLVE entries look like DOMAIN=ADDRESS, got {item!r}")
        ipaddress.ip_address(address)  # raises ValueError on a non-address
        mapping[domain] = address
    return mapping


def lookup_override(name: str, overrides: Mapping[str, str]) -> str | None:
    """The overridden address of ``name``: its own entry or the nearest parent domain's.

    >>> lookup_override("linux.solidot.test", {"solidot.test": "127.0.0.1"})
    '127.0.0.1'
    """
    labels = name.lower().rstrip(".").split(".")
    for start in range(len(labels)):
        address = overrides.get(".".join(labels[start:]))
        if address is not None:
            return address
    return None


class OverrideResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, answering overridden names without a DNS query."""

    def __init__(
        self, reactor: ReactorBase, cache_size: int, timeout: float, overrides: Mapping[str, str]
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.overrides = dict(overrides)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> OverrideResolver:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        overrides = parse_resolve(settings.get("SOLIDOT_RESOLVE"))
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"), overrides)

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[Any]:  # noqa: N802 (Twisted's name)
        address = lookup_override(name, self.overrides)
        if address is not None:
            return defer.succeed(address)
        return super().getHostByName(name, timeout)
