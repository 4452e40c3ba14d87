"""A resolver for crawls that must behave as on a machine without network or DNS: every name fails
to resolve, as it does offline (Twisted's DNSLookupError), and no DNS query leaves the process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError


class NoDNS(CachingThreadedResolver):
    """``TWISTED_DNS_RESOLVER = "offline_resolver.NoDNS"`` (with ``tests/`` on ``PYTHONPATH``)."""

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[Any]:  # noqa: N802
        return defer.fail(DNSLookupError(f"{name}: Name or service not known (offline)"))
