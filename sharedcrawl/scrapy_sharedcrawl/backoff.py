"""Slow down for a host that is struggling: honour Retry-After, back off on errors.

:class:`HostBackoffMiddleware` pauses a host's downloader slot for the Retry-After of a 429/503
(capped) or an exponentially growing time after a run of errors, and announces each pause with the
:data:`host_paused` signal (:mod:`.cluster_rate` shares it with every worker).

Design notes: docs/framework-design.md#backoff.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic

from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError
from scrapy.http import Request, Response
from scrapy.settings import BaseSettings
from twisted.internet.error import DNSLookupError

from scrapy_sharedcrawl.compat import pause_download_slot
from scrapy_sharedcrawl.config import float_setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS

logger = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
#: Sent (with ``request``, ``seconds`` and ``reason``) whenever this middleware decides to pause the
#: request's host: ``seconds`` already capped by RETRY_AFTER_MAX / HOST_BACKOFF_MAX.
#: Handlers must be quick and synchronous.
host_paused = object()
BACKOFF_STATUSES = frozenset({500, 502, 503, 504, 522, 524})
#: What a download raises when the host's name does not resolve (Scrapy's, or Twisted's beneath it).
RESOLVE_ERRORS = (CannotResolveHostError, DNSLookupError)
#: Failures to resolve in a row, on one host, after which "no host resolves" is said (the first
#: round of retries: by then every host the crawl started with has been tried once).
NO_HOST_RESOLVES_AFTER = 2


_DELTA_SECONDS = re.compile(r"[0-9]+", re.ASCII)
#: Longest delta-seconds read (more digits are still "very long": the pause is capped anyway).
_DELTA_DIGITS_MAX = 12


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: ASCII delta-seconds or an HTTP date; None when
    absent or anything else (``３``, ``٣`` and ``²`` are digits to Python, not to HTTP).

    >>> parse_retry_after(b"3")
    3.0
    >>> parse_retry_after("３") is None
    True
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip(" \t")
    if _DELTA_SECONDS.fullmatch(text):
        return float(text) if len(text) <= _DELTA_DIGITS_MAX else 10.0**_DELTA_DIGITS_MAX
    if not text.isascii() or not any(c.isalpha() for c in text):
        return None  # an HTTP date names its month; no digits-only or non-ASCII junk
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
    except OverflowError:
        return None


def backoff_settings(settings: BaseSettings) -> tuple[float, float, float]:
    """``RETRY_AFTER_MAX``, ``HOST_BACKOFF_BASE`` and ``HOST_BACKOFF_MAX`` (s), checked at start-up
    (SettingError): nan or inf here would make every pause (and so every request) fail."""
    retry_after_max = float_setting(
        settings,
        "RETRY_AFTER_MAX",
        DEFAULTS["RETRY_AFTER_MAX"],
        at_least=0,
        meaning="seconds; 0: ignore Retry-After",
    )
    backoff_base = float_setting(
        settings,
        "HOST_BACKOFF_BASE",
        DEFAULTS["HOST_BACKOFF_BASE"],
        at_least=0,
        meaning="seconds; 0: no pause after errors",
    )
    backoff_max = float_setting(
        settings, "HOST_BACKOFF_MAX", DEFAULTS["HOST_BACKOFF_MAX"], at_least=0, meaning="seconds"
    )
    return retry_after_max, backoff_base, backoff_max


class HostBackoffMiddleware:
    """Pause a host's downloader slot on Retry-After and on runs of failures."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.retry_after_max, self.backoff_base, self.backoff_max = backoff_settings(settings)
        self._bad_retry_after_logged = False
        self._failures: dict[str, int] = {}
        self._paused_until: dict[str, float] = {}
        #: Whether any host has answered (so names resolve), and the hosts that did not resolve.
        self._resolved_any = False
        self._unresolved: dict[str, int] = {}
        self._no_host_resolves_logged = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostBackoffMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        self._resolved_any = True
        slot_key = self._slot_key(request)
        retry_after = None
        if response.status in RETRY_AFTER_STATUSES:
            header = response.headers.get(b"Retry-After")
            retry_after = parse_retry_after(header)
            if header is not None and retry_after is None:
                self._bad_retry_after(request, header)
        if retry_after is not None:
            self.crawler.stats.inc_value("backoff/retry_after")
            seconds = min(retry_after, self.retry_after_max)
            self._pause(request, slot_key, seconds, f"Retry-After ({response.status})")
        elif response.status in BACKOFF_STATUSES or response.status == 429:
            self._failed(request, slot_key, f"HTTP {response.status}")
        else:
            self._failures.pop(slot_key, None)
        return response

    def _bad_retry_after(self, request: Request, header: bytes) -> None:
        """A Retry-After that is neither ASCII delta-seconds nor an HTTP date: the normal backoff
        applies; counted, logged the first time."""
        self.crawler.stats.inc_value("backoff/bad_retry_after")
        if not self._bad_retry_after_logged:
            self._bad_retry_after_logged = True
            logger.warning(
                "Unreadable Retry-After %r from %s: backing off as after an error instead; later ones "
                "are only counted (stats backoff/bad_retry_after)",
                header[:100],
                request.url,
            )

    def process_exception(self, request: Request, exception: Exception) -> None:
        slot_key = self._slot_key(request)
        quiet = False
        if isinstance(exception, RESOLVE_ERRORS):
            self.crawler.stats.inc_value("backoff/resolve_errors")
            quiet = self._unresolved_host(slot_key)
        else:
            self._resolved_any = True  # a connection error: the name resolved
        self._failed(request, slot_key, type(exception).__name__, quiet)

    def _unresolved_host(self, slot_key: str) -> bool:
        """Note a host that did not resolve; True while no host has (its pause is then not logged:
        one line says that no host resolves)."""
        if self._resolved_any:
            return False
        count = self._unresolved[slot_key] = self._unresolved.get(slot_key, 0) + 1
        if count >= NO_HOST_RESOLVES_AFTER and not self._no_host_resolves_logged:
            self._no_host_resolves_logged = True
            hosts = list(self._unresolved)  # in the order they were tried: the start page first
            shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
            logger.error(
                "No host of the crawl resolves (%d tried: %s): no network, or no DNS? Nothing can be "
                "fetched until their names resolve; the requests are retried, then given up",
                len(hosts),
                shown,
            )
        return True

    def _failed(self, request: Request, slot_key: str, why: str, quiet: bool = False) -> None:
        count = self._failures.get(slot_key, 0) + 1
        self._failures[slot_key] = count
        self.crawler.stats.inc_value("backoff/errors")
        # the exponent is capped: 2 ** 1100 is too large a float after a long enough run of errors
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** min(count - 1, 64))
        self._pause(request, slot_key, delay, f"{why}, {count} in a row", quiet)

    def _slot_key(self, request: Request) -> str:
        engine = self.crawler.engine
        assert engine is not None
        return engine.downloader.get_slot_key(request)

    def _pause(self, request: Request, slot_key: str, seconds: float, why: str, quiet: bool = False) -> None:
        """Hold the slot's queue for ``seconds`` (a longer pause already set wins); announce it (and
        log it, unless ``quiet``)."""
        if seconds <= 0:
            return
        resume_at = monotonic() + seconds
        if resume_at <= self._paused_until.get(slot_key, 0.0):
            return
        self.crawler.signals.send_catch_log(host_paused, request=request, seconds=seconds, reason=why)
        engine = self.crawler.engine
        assert engine is not None
        downloader = engine.downloader
        slot = downloader.slots.get(slot_key)
        if slot is None:
            return
        self._paused_until[slot_key] = resume_at
        self.crawler.stats.inc_value("backoff/pauses")
        self.crawler.stats.inc_value("backoff/paused_ms", round(seconds * 1000))
        logger.log(
            logging.DEBUG if quiet else logging.INFO, "Pausing %s for %.1f s: %s", slot_key, seconds, why
        )
        pause_download_slot(downloader, slot, seconds)  # Scrapy has no public "pause slot" call
