"""Serving the replica over HTTP with Twisted web, with faults injected and counted.

``/__replica__/stats`` answers JSON (requests, by status, injected faults) so
tests can compare a crawler's stats with what the site really did, and
``arrivals``: per host name, the last :data:`ARRIVALS_KEPT` requests as
``[arrival time (Unix s), status, path]`` (status 0: connection reset), so
politeness tests measure the rate the site really saw. Only the site's own
hosts (``www``, the categories and the bare domain) are kept apart; requests
for any other ``Host`` share one :data:`OTHER_HOSTS` entry, so a client
sending a new Host each time can't grow the server's memory. Access logging
is off: a benchmark's server should not spend its time writing logs.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict, deque
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from twisted.internet import reactor as _reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from solidot_replica import render
from solidot_replica.faults import Decision, Fault, FaultInjector
from solidot_replica.model import Replica
from solidot_replica.pages import Page, SitePages
from solidot_spider.site.urls import CATEGORIES

STATS_PATH = "/__replica__/stats"
REASONS = {200: b"OK", 404: b"Not Found", 429: b"Too Many Requests", 500: b"Internal Server Error"}
REASONS[503] = b"Service Unavailable"
#: Requests remembered per host for ``arrivals`` (the oldest are forgotten).
ARRIVALS_KEPT = 10_000
#: The ``arrivals`` entry of every request whose Host is not one of the site's.
OTHER_HOSTS = "(other)"
#: Twisted's reactor module is typed as interfaces mypy can't bind; use it untyped.
reactor: Any = _reactor


class ReplicaResource(Resource):
    """Every path of every host: routed by :class:`SitePages`, then faulted by the injector."""

    isLeaf = True  # noqa: N815 (Twisted's name)

    def __init__(self, replica: Replica, crawl_delay: float | None = None) -> None:
        super().__init__()
        self.pages = SitePages(replica)
        self.faults = FaultInjector(replica.config.faults)
        self.statuses: Counter[int] = Counter()
        self.requests = 0
        self.arrivals: defaultdict[str, deque[tuple[float, int, str]]] = defaultdict(
            lambda: deque(maxlen=ARRIVALS_KEPT)
        )
        domain = replica.config.domain.lower()
        #: The host names ``arrivals`` keeps apart; every other Host counts as OTHER_HOSTS.
        self.site_hosts = frozenset({domain, f"www.{domain}", *(f"{label}.{domain}" for label in CATEGORIES)})
        self.robots = render.robots_txt(crawl_delay).encode()
        self._truncate_random = random.Random(f"truncate:{replica.config.faults.seed}")

    def render_HEAD(self, request: Request) -> bytes | int:  # noqa: N802
        return self.render_GET(request)

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802
        path = request.path.decode("utf-8", "replace")
        if path == STATS_PATH:
            return self._json(request, self.stats())
        self.requests += 1
        arrived = time.time()
        host = (request.getHeader("host") or "www").strip()
        query = tuple(parse_qsl(request.uri.decode("utf-8", "replace").partition("?")[2]))
        page = self.pages.answer(host, path, query)
        if page.kind == "malformed":
            self.faults.count_malformed()
        if page.kind == "robots":
            return self._send(request, replace(page, body=self.robots), Decision(), arrived)
        decision = self.faults.decide(is_page=page.status == 200, is_story=page.kind == "story")
        if decision.resets:
            self._arrived(request, arrived, 0)
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
            return NOT_DONE_YET
        if decision.delay:
            finished: list[object] = []

            def gone(result: object) -> None:
                finished.append(result)

            request.notifyFinish().addBoth(gone)
            reactor.callLater(decision.delay, self._send_later, request, page, decision, finished, arrived)
            return NOT_DONE_YET
        return self._send(request, page, decision, arrived)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.statuses.items())},
            "faults": dict(self.faults.counts),
            "arrivals": {host: [list(entry) for entry in seen] for host, seen in self.arrivals.items()},
        }

    def _arrived(self, request: Request, arrived: float, status: int) -> None:
        host = (request.getHeader("host") or "www").strip().lower().rsplit(":", 1)[0]
        if host not in self.site_hosts:
            host = OTHER_HOSTS
        self.arrivals[host].append((arrived, status, request.path.decode("utf-8", "replace")))

    def _send_later(
        self, request: Request, page: Page, decision: Decision, finished: list[object], arrived: float
    ) -> None:
        if finished:  # the client gave up (a timeout) and closed the connection
            return
        request.write(self._send(request, page, decision, arrived))
        request.finish()

    def _send(self, request: Request, page: Page, decision: Decision, arrived: float) -> bytes:
        status, body, charset = page.status, page.body, "utf-8"
        if decision.fault in (Fault.ERROR_BURST, Fault.THROTTLE):
            status, body = decision.status, b"<html><body><h1>Service busy</h1></body></html>\n"
            if decision.fault is Fault.THROTTLE:
                request.setHeader(b"retry-after", str(self.faults.config.retry_after).encode())
        elif decision.fault is Fault.TRUNCATE:
            body = self._truncated(body)
        elif decision.fault is Fault.WRONG_CHARSET:
            charset = "iso-8859-1"
        self.statuses[status] += 1
        self._arrived(request, arrived, status)
        request.setResponseCode(status, REASONS.get(status))
        request.setHeader(b"content-type", f"{page.media_type}; charset={charset}".encode())
        request.setHeader(b"content-length", str(len(body)).encode())
        return body

    def _truncated(self, body: bytes) -> bytes:
        """Cut a story page after its title and before ``</html>`` (Content-Length then matches)."""
        start = body.find(b"</h2>", body.find(b'id="center"')) + 5
        end = body.rfind(b"</html>")
        return body[: self._truncate_random.randrange(start, end)]

    def _json(self, request: Request, data: dict[str, Any]) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(data).encode()


class QuietSite(Site):
    """A Twisted web site that writes no access log."""

    def log(self, request: Any) -> None:
        return None


def listen(
    replica: Replica, host: str = "127.0.0.1", port: int = 0, crawl_delay: float | None = None
) -> tuple[Any, ReplicaResource]:
    """Start serving ``replica`` on ``host:port`` (0: a free port) in the running reactor.

    ``crawl_delay``: robots.txt asks for that many seconds between requests.
    """
    resource = ReplicaResource(replica, crawl_delay)
    site = QuietSite(resource)
    site.displayTracebacks = False
    listening = reactor.listenTCP(port, site, interface=host)
    return listening, resource
