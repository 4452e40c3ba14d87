"""The downloader middleware that records every fetch in WARC files (on when ``WARC_DIR`` is set).

:class:`WarcRecorder` (installed by the add-on just below the HTTP cache) appends each fetch's
response, metadata and request records as the network gave them, and makes them durable on
:data:`~scrapy_sharedcrawl.signals.ack_barrier`, before the shared crawl acknowledges the request.

Design notes: docs/framework-design.md#warc-recorder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import re
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from scrapy_sharedcrawl import signals as scheduling_signals
from scrapy_sharedcrawl.config import SettingError, bool_setting, int_setting, setting
from scrapy_sharedcrawl.defaults import SETTINGS
from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.warc.writer import WarcFiles, safe_host

try:
    from scrapy_sharedcrawl.warc import records
except ImportError as error:  # warcio (or a part of it): needed only when recording is on
    WARCIO_MISSING: ImportError | None = error
else:
    WARCIO_MISSING = None

logger = logging.getLogger(__name__)

#: The recorder's settings, declared with their defaults in :mod:`scrapy_sharedcrawl.defaults`.
WARC_SETTINGS = tuple(name for name in SETTINGS if name.startswith("WARC_"))
#: What to install for recording, named when it is missing.
WARCIO_REQUIREMENT = "scrapy-sharedcrawl[warc]"  # warcio>=1.7,<2

#: Payload digests remembered for revisit records (≈ 150 bytes each); the oldest are forgotten first.
REVISIT_MEMORY = 200_000

STATS_PREFIX = "warc/"

#: Scrapy's settings named in each file's warcinfo (how the pages were fetched), besides the framework's
#: and every setting the project or the operator gave (settings.py, the environment, ``-s``).
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
#: Words in a setting's name that make its value a secret (stored as ``***``).
_SECRET_NAMES = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "API_KEY", "APIKEY", "PRIVATE_KEY")
#: What a file name prefix may hold (it is part of a path).
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def distribution_of(module: str, distributions: Mapping[str, list[str]]) -> str:
    """``name/version`` of the installed distribution that holds ``module``'s top-level package
    (``links_project.settings`` → ``links-project/1.0``), or the package's name when none does;
    ``distributions`` is :func:`importlib.metadata.packages_distributions` (slow: read once)."""
    package = module.split(".")[0]
    for name in distributions.get(package) or []:
        try:
            return f"{name}/{version(name)}"
        except PackageNotFoundError:
            continue
    return package


def software(settings: BaseSettings) -> str:
    """The warcinfo ``software`` field: the project (its distribution and version where installed),
    then the framework and the libraries that wrote the records. Read at start-up, not mid-crawl."""
    project = os.environ.get("SCRAPY_SETTINGS_MODULE") or str(settings.get("BOT_NAME") or "scrapy")
    distributions = packages_distributions()
    return (
        f"{distribution_of(project, distributions)} "
        f"(scrapy_sharedcrawl from {distribution_of(__name__, distributions)}; "
        f"Scrapy/{scrapy.__version__}; warcio/{version('warcio')}; Python/{platform.python_version()})"
    )


def settings_fields(settings: BaseSettings) -> list[tuple[str, str]]:
    """``setting: NAME=VALUE`` fields for the warcinfo record, credentials redacted: every setting
    given by the project or the operator, the framework's, and Scrapy's that say how pages were fetched.

    >>> given = BaseSettings({"REDIS_URL": "redis://:pw@h:6379/0", "MY_API_PASSWORD": "pw"}, "project")
    >>> settings_fields(given)
    [('setting', 'MY_API_PASSWORD=***'), ('setting', 'REDIS_URL=redis://***@h:6379/0')]
    """
    names = sorted(
        name
        for name in settings.attributes
        if name in SETTINGS
        or name in _INFO_SCRAPY
        or (settings.getpriority(name) or 0) >= SETTINGS_PRIORITIES["project"]
    )
    fields = []
    for name in names:
        value = settings.get(name)
        if isinstance(value, dict | list | tuple | set | BaseSettings):
            continue
        shown = "***" if any(word in name for word in _SECRET_NAMES) else redact_uri(str(value))
        fields.append(("setting", f"{name}={shown}"))
    return fields


def warcinfo_fields(settings: BaseSettings, spider_name: str, made_by: str) -> list[tuple[str, str]]:
    """Who wrote the file and how: the software (``made_by``), the host, the settings."""
    return [
        ("software", made_by),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ("hostname", safe_host()),
        ("isPartOf", spider_name),
        ("description", f"every fetch of the {spider_name} crawl, as fetched"),
        ("robots", "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore"),
        ("http-header-user-agent", str(settings.get("USER_AGENT") or "")),
        ("pid", str(os.getpid())),
        *settings_fields(settings),
    ]


def file_prefix(settings: BaseSettings) -> str:
    """``WARC_PREFIX``, checked (it is part of a file name), or the project's ``BOT_NAME`` made safe."""
    given = str(setting(settings, "WARC_PREFIX", SETTINGS)).strip()
    if not given:
        return safe_host(str(settings.get("BOT_NAME") or "crawl"))[:100]
    if not _PREFIX.fullmatch(given):
        raise SettingError(
            f"WARC_PREFIX must be 1 to 100 letters, digits, '_', '.' or '-' (it starts every file name), "
            f"got {redact_uri(given)[:200]!r}"
        )
    return given


def file_settings(settings: BaseSettings) -> tuple[str, str, int] | None:
    """``WARC_DIR``, ``WARC_PREFIX`` (:func:`file_prefix`) and ``WARC_MAX_SIZE``, checked
    (SettingError); None while ``WARC_DIR`` is empty (no recording)."""
    directory = str(setting(settings, "WARC_DIR", SETTINGS)).strip()
    if not directory:
        return None
    prefix = file_prefix(settings)
    max_size = int_setting(
        settings, "WARC_MAX_SIZE", SETTINGS["WARC_MAX_SIZE"], at_least=100_000, at_most=10**12
    )
    return directory, prefix, max_size


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
        #: The warcinfo ``software`` field (:func:`software`, looked up once, before the crawl).
        self.made_by = "scrapy_sharedcrawl"
        self.files = WarcFiles(directory, prefix, max_size, self._warcinfo)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcRecorder | WarcUnavailable:
        settings = crawler.settings
        files = file_settings(settings)
        if files is None:
            raise NotConfigured  # off: no warning on every crawl without WARC
        directory, prefix, max_size = files
        revisits = bool_setting(settings, "WARC_REVISITS", SETTINGS["WARC_REVISITS"])
        cookies = bool_setting(settings, "WARC_COOKIES", SETTINGS["WARC_COOKIES"])
        if WARCIO_MISSING is not None:
            return WarcUnavailable(
                crawler, f"WARC_DIR is set but warcio can't be imported ({WARCIO_MISSING})"
            )
        recorder = cls(crawler, Path(directory), prefix, max_size, revisits, cookies)
        recorder.made_by = software(settings)
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
            self._info = warcinfo_fields(self.crawler.settings, spider.name if spider else "", self.made_by)
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


class WarcUnavailable:
    """What the recorder is when recording is asked for but cannot happen (warcio missing): one error
    line naming what to install, and the worker stops before it fetches anything, acknowledging
    nothing (fail closed, as after a failed write: a shared crawl's requests stay for workers that
    record)."""

    def __init__(self, crawler: Crawler, why: str) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.why = why
        crawler.stats.inc_value(STATS_PREFIX + "errors/ImportError")
        logger.error(
            "%s: install it (pip install '%s') or leave WARC_DIR empty; this worker stops without "
            "fetching anything",
            why,
            WARCIO_REQUIREMENT,
        )
        self._closing: asyncio.Future[None] | None = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.ack_barrier, signal=scheduling_signals.ack_barrier)

    def engine_started(self) -> None:
        engine = self.crawler.engine
        if engine is not None and self._closing is None:
            self._closing = asyncio.ensure_future(engine.close_spider_async(reason="warc_unavailable"))

    def process_request(self, request: Request) -> None:
        raise IgnoreRequest(self.why)  # while the worker closes: nothing fetched goes unrecorded

    async def ack_barrier(self, scheduler: Any = None) -> None:
        raise scheduling_signals.AckPostponed(self.why)
