"""The downloader middleware that records every fetch in WARC files (on when ``SOLIDOT_WARC_DIR`` is set).

It sits just below the HTTP cache (890), so it sees each response as the
network gave it, before decompression, charset correction, redirects and
retries act: every fetch is kept, a 503 or a truncated page included (a web
archive records what the site answered, not only what the crawl used).
Responses served from Scrapy's HTTP cache are not recorded again.

Per fetch, appended at once: a ``response`` record (or a ``revisit`` when this
worker already stored an identical payload, ``SOLIDOT_WARC_REVISITS``), a
``metadata`` record with what the crawl knew of the fetch
(:func:`.records.crawl_context`), and the ``request`` record, last. One file
per worker process (:mod:`.writer`), rotated at ``SOLIDOT_WARC_MAX_SIZE``.
Credentials are masked (:mod:`.records`); cookies too, unless ``SOLIDOT_WARC_COOKIES``.

**Durable before acknowledged**: the records of a response are appended before
its callback runs, so before its request can be done; the shared scheduler's
:data:`~scrapy_sharedcrawl.signals.ack_barrier` then makes everything written so
far durable (flush, then fsync off the reactor thread) before it acknowledges.
A worker killed at any moment thus leaves no acknowledged request without its
records. A write that fails (disk full) stops acknowledgements and closes the
worker: its requests stay leased and are crawled again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections import OrderedDict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl import signals as scheduling_signals
from scrapy_sharedcrawl.config import int_setting, setting
from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.warc import records
from solidot_spider.warc.writer import WarcFiles, safe_host

logger = logging.getLogger(__name__)

#: Every setting of the recorder with its default (``SOLIDOT_WARC_DIR`` empty: off).
DEFAULTS: dict[str, Any] = {
    "SOLIDOT_WARC_DIR": "",
    "SOLIDOT_WARC_PREFIX": "solidot",
    "SOLIDOT_WARC_MAX_SIZE": 1_000_000_000,
    "SOLIDOT_WARC_REVISITS": True,
    "SOLIDOT_WARC_COOKIES": False,
}

#: Payload digests remembered for revisit records (≈ 150 bytes each); the oldest are forgotten first.
REVISIT_MEMORY = 200_000

STATS_PREFIX = "solidot/warc/"

#: Settings named in each file's warcinfo (values with credentials redacted): how the pages were fetched.
_INFO_PREFIXES = ("SOLIDOT_", "REDIS_", "MONGO_", "SCHEDULER_")
_INFO_SCRAPY = (
    "BOT_NAME",
    "USER_AGENT",
    "ROBOTSTXT_OBEY",
    "AUTOTHROTTLE_ENABLED",
    "AUTOTHROTTLE_START_DELAY",
    "AUTOTHROTTLE_TARGET_CONCURRENCY",
    "DOWNLOAD_DELAY",
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_MAXSIZE",
    "RETRY_TIMES",
    "COOKIES_ENABLED",
)
_SECRET_NAMES = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL")


def crawler_version() -> str:
    try:
        return version("solidot-crawler")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown"


def settings_fields(settings: BaseSettings) -> list[tuple[str, str]]:
    """``setting: NAME=VALUE`` fields for the warcinfo record, credentials redacted.

    >>> from scrapy.settings import Settings
    >>> settings_fields(Settings({"REDIS_URL": "redis://:pw@h:6379/0", "SOLIDOT_X_PASSWORD": "pw"}))
    [('setting', 'REDIS_URL=redis://***@h:6379/0'), ('setting', 'SOLIDOT_X_PASSWORD=***')]
    """
    names = sorted(
        name for name in settings.attributes if name.startswith(_INFO_PREFIXES) or name in _INFO_SCRAPY
    )
    fields = []
    for name in names:
        value = settings.get(name)
        if isinstance(value, dict | list | tuple | set):
            continue
        shown = "***" if any(word in name for word in _SECRET_NAMES) else redact_uri(str(value))
        fields.append(("setting", f"{name}={shown}"))
    return fields


def warcinfo_fields(settings: BaseSettings, spider_name: str) -> list[tuple[str, str]]:
    """Who wrote the file and how: the crawler, its version, the host, the settings."""
    software = (
        f"solidot-crawler/{crawler_version()} (Scrapy/{scrapy.__version__}; "
        f"warcio/{version('warcio')}; Python/{platform.python_version()})"
    )
    return [
        ("software", software),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ("hostname", safe_host()),
        ("isPartOf", spider_name),
        ("description", "solidot-crawler: every fetch of a crawl of solidot.org, as fetched"),
        ("robots", "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore"),
        ("http-header-user-agent", str(settings.get("USER_AGENT") or "")),
        ("pid", str(os.getpid())),
        *settings_fields(settings),
    ]


class WarcRecorder:
    """Records every fetched response with its request; see the module's docstring."""

    def __init__(
        self,
        crawler: Crawler,
        directory: Path,
        prefix: str,
        max_size: int,
        revisits: bool,
        cookies: bool = False,
    ) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self.revisits = revisits
        #: Header values never stored: credentials always, cookies unless kept.
        self.masked = records.CREDENTIAL_HEADERS if cookies else records.MASKED_HEADERS
        self._seen: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        self._failed: str | None = None
        self._info: list[tuple[str, str]] | None = None
        self._closing: asyncio.Future[None] | None = None
        self.files = WarcFiles(directory, prefix, max_size, self._warcinfo)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcRecorder:
        settings = crawler.settings
        directory = str(setting(settings, "SOLIDOT_WARC_DIR", DEFAULTS)).strip()
        if not directory:
            raise NotConfigured  # off: no warning on every crawl without WARC
        recorder = cls(
            crawler,
            Path(directory),
            str(setting(settings, "SOLIDOT_WARC_PREFIX", DEFAULTS)),
            int_setting(
                settings, "SOLIDOT_WARC_MAX_SIZE", DEFAULTS["SOLIDOT_WARC_MAX_SIZE"], at_least=100_000
            ),
            settings.getbool("SOLIDOT_WARC_REVISITS", DEFAULTS["SOLIDOT_WARC_REVISITS"]),
            settings.getbool("SOLIDOT_WARC_COOKIES", DEFAULTS["SOLIDOT_WARC_COOKIES"]),
        )
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(recorder.ack_barrier, signal=scheduling_signals.ack_barrier)
        logger.info("Recording every fetch in WARC files in %s", directory)
        return recorder

    # -- recording -------------------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Response:
        if "cached" in response.flags or self._failed:
            return response
        date = records.warc_date(datetime.now(UTC))
        try:
            data = self._serialize(request, response, date)
            self.files.append(data)
        except OSError as error:
            self._fail(error)
            return response
        self.stats.inc_value(STATS_PREFIX + "responses")
        self.stats.inc_value(STATS_PREFIX + "bytes", len(data))
        return response

    def _serialize(self, request: Request, response: Response, date: str) -> bytes:
        """The gzip members of one fetch: response (or revisit), request, metadata."""
        record = records.response_record(response, date, self.masked)
        digest = records.payload_digest(record)
        earlier = self._seen.get(digest) if self.revisits else None
        if earlier is not None:
            record = records.revisit_record(response, date, digest, earlier, self.masked)
            self.stats.inc_value(STATS_PREFIX + "revisits")
        elif self.revisits:
            uri = records.without_userinfo(response.url)
            self._seen[digest] = (uri, date, records.record_id(record))
            if len(self._seen) > REVISIT_MEMORY:
                self._seen.popitem(last=False)
        response_id = records.record_id(record)
        members = [records.serialize(record)]
        context = records.crawl_context(request)
        if context:
            members.append(
                records.serialize(records.metadata_record(response.url, date, response_id, context))
            )
        # the request comes last: a reader knows a fetch is whole when its request record is there
        members.append(records.serialize(records.request_record(request, date, response_id, self.masked)))
        return b"".join(members)

    def _warcinfo(self, filename: str) -> bytes:
        if self._info is None:
            spider = self.crawler.spider
            self._info = warcinfo_fields(self.crawler.settings, spider.name if spider else "")
        self.stats.inc_value(STATS_PREFIX + "files")
        logger.info("WARC file %s started", filename)
        return records.serialize(records.warcinfo_record(filename, self._info))

    def _fail(self, error: OSError) -> None:
        """A write failed: nothing more is acknowledged, and the worker closes (fail closed)."""
        name = type(error).__name__
        self.stats.inc_value(STATS_PREFIX + f"errors/{name}")
        if self._failed:
            return  # the same trouble again (closing the file): logged already
        self._failed = f"{name}: {error}"
        logger.error(
            "Cannot write WARC records in %s (%s): stopping this worker; its unacknowledged requests "
            "stay leased and are crawled again",
            self.files.directory,
            self._failed,
        )
        engine = self.crawler.engine
        if engine is not None and self._closing is None:
            self._closing = asyncio.ensure_future(engine.close_spider_async(reason="warc_error"))

    # -- durability ------------------------------------------------------------------

    async def ack_barrier(self, scheduler: Any = None) -> None:
        """Return once every record written so far is flushed and fsynced (before acknowledgements)."""
        if self._failed:
            raise scheduling_signals.AckPostponed(f"WARC records could not be written ({self._failed})")
        try:
            # records wait in a 1 MiB buffer: a full disk is most often first seen here, in the flush
            handle = self.files.sync_handle()
            if handle is None:
                return
            await asyncio.to_thread(_fsync_and_close, handle)
        except OSError as error:
            self._fail(error)
            why = f"WARC records could not be written ({self._failed})"
            raise scheduling_signals.AckPostponed(why) from error
        self.stats.inc_value(STATS_PREFIX + "syncs")

    def spider_closed(self) -> None:
        try:
            self.files.close_file()
        except OSError as error:
            self._fail(error)
            return
        for path in self.files.completed:
            logger.info("WARC file %s complete", path)


def _fsync_and_close(handle: int) -> None:
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
