"""The ``solidot`` spider: discovers stories and turns each story page into one item."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import scrapy
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Response, TextResponse
from scrapy.utils.asyncio import run_in_thread
from twisted.python.failure import Failure

from scrapy_sharedcrawl.config import int_setting, is_shared_crawl
from scrapy_sharedcrawl.outage import OncePerReason
from scrapy_sharedcrawl.outcomes import note_outcome
from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.listed import ListedFilter
from solidot_spider.archive.mongo import StoreError
from solidot_spider.archive.schedule import Due
from solidot_spider.archive.selection import RefreshPicker, pick_and_claim
from solidot_spider.crawl.signals import story_missing
from solidot_spider.defaults import SETTINGS
from solidot_spider.site.discovery import DEFAULT_MAX_DAYS, DEFAULT_MAX_SIDS, Discovery
from solidot_spider.site.parsing import MalformedPage, is_truncated, parse_list_page, parse_rss, parse_story
from solidot_spider.site.urls import CATEGORIES, SiteMap, story_sid

logger = logging.getLogger(__name__)

#: Story pages outrank list pages so items flow while discovery goes on.
STORY_PRIORITY = 10


class SolidotSpider(scrapy.Spider):
    """Crawl Solidot: ``-a since=YYYY-MM-DD -a until=YYYY-MM-DD``, ``-a sids=A-B``, the latest, or
    ``-a refresh=true``: the stored stories due for a re-fetch (needs ``MONGO_URI``).

    In a shared crawl (``REDIS_URL`` set) a worker started without any of these
    arguments seeds nothing: it takes its work from the shared queue, which
    ``solidot-crawl seed`` fills. Given arguments, it seeds the shared crawl
    with them (deduplicated against what the crawl has seen) and then works
    like the others.
    """

    name = "solidot"
    #: What a request read from the shared queue may name (scrapy_sharedcrawl/admission.py): these callbacks
    #: and errbacks, and this meta key besides the ones Scrapy carries from try to try.
    shared_callbacks = frozenset({"parse_list", "parse_rss", "parse_story", "story_failed"})
    #: (``solidot_from_range``: what ``sid_range`` was called by requests queued before 2026-12.)
    shared_meta = frozenset({"sid_range", "solidot_from_range"})
    #: What a story request (most of the queue) has, left out of its payload in the shared queue.
    shared_request_defaults: ClassVar[dict[str, Any]] = {
        "callback": "parse_story",
        "errback": "story_failed",
        "priority": STORY_PRIORITY,
        "meta": {"handle_httpstatus_list": [404], "sid_range": False},
        "cb_kwargs": {"categories": []},
    }
    #: Set from SOLIDOT_BASE_URL in :meth:`from_crawler`: the site's domain (every host under it).
    allowed_domains: list[str]
    site: SiteMap
    truncated_retries: int

    def __init__(
        self,
        since: str | None = None,
        until: str | None = None,
        sids: str | None = None,
        latest: str | None = None,
        refresh: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.discovery = Discovery.from_arguments(
            since=since, until=until, sids=sids, latest=latest, refresh=refresh
        )
        #: The crawl's scope was given (without arguments the scope defaults to the latest stories).
        self.scope_given = any(value is not None for value in (since, until, sids, latest, refresh))
        self._drops: OncePerReason | None = None  # built at the first drop: the crawler is set by then
        self._listed: ListedFilter | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SolidotSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        # the scope's size, checked before a single request exists (a worker's start-up, `seed`)
        spider.discovery.check_limits(
            int_setting(settings, "SOLIDOT_MAX_SIDS", DEFAULT_MAX_SIDS, at_least=1),
            int_setting(settings, "SOLIDOT_MAX_DAYS", DEFAULT_MAX_DAYS, at_least=1),
        )
        spider.site = SiteMap.from_base_url(settings.get("SOLIDOT_BASE_URL"))
        # Scrapy's OffsiteMiddleware drops any request for a host outside the site (and its subdomains)
        spider.allowed_domains = spider.site.allowed_domains()
        spider.truncated_retries = int_setting(
            settings,
            "SOLIDOT_TRUNCATED_RETRIES",
            SETTINGS["SOLIDOT_TRUNCATED_RETRIES"],
            at_least=0,
            at_most=100,
        )
        if spider.discovery.refresh:
            RefreshPicker.check(settings)  # MONGO_URI and the policy's settings, before anything runs
        return spider

    # -- discovery ---------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if is_shared_crawl(self.crawler.settings) and not self.scope_given:
            logger.info(
                "Shared crawl without -a since/until/sids/latest: this worker seeds nothing and takes its "
                "requests from the shared queue (fill it with `solidot-crawl seed`)"
            )
            return
        for request in self.start_requests_for(self.discovery):
            yield request
        if self.discovery.refresh:
            try:
                due, backfilled = await run_in_thread(pick_and_claim, self.crawler.settings)
            except StoreError as error:
                self.crawler.stats.inc_value("solidot/refresh/store_unreachable")
                logger.error(
                    "Refresh: nothing picked, MongoDB unreachable (%s): %s",
                    type(error).__name__,
                    redact_uri(str(error))[:200],
                )
                due, backfilled = Due([], [], False, datetime.now(UTC)), 0
            stats = self.crawler.stats
            stats.set_value("solidot/refresh/picked_stories", len(due.stories))
            stats.set_value("solidot/refresh/picked_gaps", len(due.gaps))
            if backfilled:
                stats.set_value("solidot/refresh/backfilled", backfilled)
            for request in self.refresh_requests(due.sids):
                yield request

    def start_requests_for(self, discovery: Discovery) -> Iterator[scrapy.Request]:
        """The first requests of a crawl with this scope (also used by seeding tools)."""
        if discovery.latest:
            # of the stories these list, only the new or due ones, unless latest=all (archive/listed.py)
            due_only = {} if discovery.latest_all else {"due_only": True}
            yield self.list_request(self.site.home(), due_only)
            for category in CATEGORIES:
                yield self.list_request(self.site.category_home(category), due_only)
            yield scrapy.Request(self.site.rss(), callback=self.parse_rss, cb_kwargs=due_only)
        for day in discovery.days():
            yield self.list_request(self.site.day_archive(day))
        for sid in discovery.sids():
            yield self.story_request(sid, from_range=True)

    def refresh_requests(self, sids: Iterable[int]) -> Iterator[scrapy.Request]:
        """Story requests for a refresh: past the duplicate filter (a persistent shared crawl has seen
        every URL before), a 404 counted as a gap."""
        for sid in sids:
            yield self.story_request(sid, from_range=True, dont_filter=True)

    def list_request(self, url: str, cb_kwargs: dict[str, Any] | None = None) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_list, cb_kwargs=cb_kwargs or {})

    def story_request(
        self,
        sid: int,
        categories: list[str] | None = None,
        from_range: bool = False,
        dont_filter: bool = False,
    ) -> scrapy.Request:
        return scrapy.Request(
            self.site.story_url(sid),
            callback=self.parse_story,
            errback=self.story_failed,
            priority=STORY_PRIORITY,
            dont_filter=dont_filter,
            cb_kwargs={"categories": categories or []},
            # sid ranges cross gaps: their 404s are expected and counted, not errors
            meta={"handle_httpstatus_list": [404], "sid_range": from_range},
        )

    async def parse_list(self, response: Response, due_only: bool = False) -> AsyncIterator[scrapy.Request]:
        """The stories a list page names (with ``due_only``, a --latest page's: the new or due ones)."""
        if not self._is_complete_html(response, "list"):
            for request in self._retry_truncated(response):
                yield request
            return
        entries = parse_list_page(self._text(response), response.url, self.site)
        note_outcome(self.crawler, response, "list_page")
        self.crawler.stats.inc_value("solidot/list_pages")
        if not entries:
            self.crawler.stats.inc_value("solidot/list_pages_empty")
        wanted = set(await self.listed.wanted([entry.sid for entry in entries])) if due_only else None
        for entry in entries:
            if wanted is None or entry.sid in wanted:
                yield self.story_request(entry.sid, categories=entry.categories)

    async def parse_rss(self, response: Response, due_only: bool = False) -> AsyncIterator[scrapy.Request]:
        sids = parse_rss(self._text(response))
        note_outcome(self.crawler, response, "feed")
        self.crawler.stats.inc_value("solidot/rss_items", len(sids))
        for sid in await self.listed.wanted(sids) if due_only else sids:
            yield self.story_request(sid)

    def closed(self, reason: str) -> None:
        if self._listed is not None:
            self._listed.close()

    @property
    def listed(self) -> ListedFilter:
        """Which listed stories a --latest crawl fetches, from the store (built at first use)."""
        if self._listed is None:
            assert self.crawler.stats is not None
            self._listed = ListedFilter(self.crawler.settings, self.crawler.stats)
        return self._listed

    # -- stories -----------------------------------------------------------------

    def parse_story(self, response: Response, categories: list[str]) -> Iterable[Any]:
        """The story (or a retry of a cut-off page), in a list: the callback is no generator.

        Scrapy checks a generator callback for a ``return value`` by reading its source
        with ``ast``, cached only while a bound method of it is alive: about once per
        response here, 5 % of a crawl's CPU. A plain function is not checked.
        """
        return list(self._story_output(response, categories))

    def _story_output(self, response: Response, categories: list[str]) -> Iterator[Any]:
        stats = self.crawler.stats
        if response.status == 404:
            from_range = response.meta.get("sid_range") or response.meta.get("solidot_from_range")
            key = "gap" if from_range else "missing"
            stats.inc_value(f"solidot/story_{key}")
            note_outcome(self.crawler, response, f"story_{key}")
            if key == "missing":
                logger.warning("Story listed but not found (404): %s", response.url)
            sid = story_sid(response.url)
            if sid is not None:  # the store records it, to try again later (SOLIDOT_REFRESH_GAP_*)
                self.crawler.signals.send_catch_log(signal=story_missing, sid=sid)
            return
        if not self._is_complete_html(response, "story"):
            yield from self._retry_truncated(response)
            return
        try:
            story = parse_story(
                self._text(response),
                response.url,
                self.site,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
        except MalformedPage as error:
            self._count_drop(error.reason, response)
            return
        story.categories = categories
        stats.inc_value("solidot/stories")
        yield story

    def story_failed(self, failure: Failure) -> None:
        """A story request that failed for good (retries spent, DNS, refused…)."""
        request = failure.request  # type: ignore[attr-defined]
        reason = failure.type.__name__ if failure.type else "unknown"
        self.crawler.stats.inc_value(f"solidot/story_failed/{reason}")
        logger.error("Story sid=%s lost: %s", story_sid(request.url), failure.getErrorMessage())

    # -- helpers -----------------------------------------------------------------

    def _is_complete_html(self, response: Response, kind: str) -> bool:
        if is_truncated(response.body):
            self.crawler.stats.inc_value(f"solidot/truncated/{kind}")
            return False
        return True

    def _retry_truncated(self, response: Response) -> Iterator[scrapy.Request]:
        assert response.request is not None
        retry = get_retry_request(
            response.request,
            spider=self,
            reason="truncated_html",
            max_retry_times=self.truncated_retries,
        )
        if retry is not None:
            note_outcome(self.crawler, response, "retried/truncated_html")
            yield retry
        else:
            self._count_drop("truncated_html", response)

    def _count_drop(self, reason: str, response: Response) -> None:
        """A page that yields no item: counted per reason (and as its outcome), logged once per reason."""
        note_outcome(self.crawler, response, f"dropped/{reason}")
        if self._drops is None:
            self._drops = OncePerReason(self.crawler.stats, "solidot/dropped/", logger)
        url = response.url
        self._drops(reason, "Dropped a page (%s), sid=%s: %s", reason, story_sid(url), url)

    @staticmethod
    def _text(response: Response) -> str:
        if isinstance(response, TextResponse):
            return response.text
        return response.body.decode("utf-8", errors="replace")
