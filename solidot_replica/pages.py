"""Routing: a (host, path, query) to the page the replica answers with.

Host-based like the real site: ``www``, every category subdomain (unknown
labels fall back to www), and links written for whatever host the request
came in on. Rendered pages are cached (LRU), so a crawl that reads each page
once costs one render per page and repeated fetches cost nothing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from html import escape
from urllib.parse import unquote

from solidot_replica import render, timeline
from solidot_replica.model import Replica
from solidot_replica.render import Chrome
from solidot_replica.stories import TOPICS, StoryRecord
from solidot_spider.site.urls import CATEGORIES

HTML = "text/html"
XML = "application/xml"
TEXT = "text/plain"
_DAY_RE = re.compile(r"^\d{8}$", re.ASCII)
_SID_RE = re.compile(r"^\d{1,9}$", re.ASCII)
#: A well-formed Host header: DNS labels, an optional port.
_HOST_RE = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?::[0-9]{1,5})?",
    re.ASCII,
)
#: How far back a topic listing looks (keeps a full-size replica's topic pages cheap).
TOPIC_SCAN = 3000


@dataclass(frozen=True)
class Page:
    """One answer: status, media type, UTF-8 body, and what kind of page it is."""

    status: int
    media_type: str
    body: bytes
    kind: str  # story, malformed, list, rss, robots, other, missing


class SitePages:
    """Answers requests from a :class:`Replica`'s content."""

    def __init__(self, replica: Replica, cache_size: int = 4096) -> None:
        self.replica = replica
        self._cached = lru_cache(maxsize=cache_size)(self._answer)

    def answer(self, host: str, path: str, query: tuple[tuple[str, str], ...]) -> Page:
        """The page for a request's ``Host`` header (as sent: anything), path and query."""
        label, domain = self.host_parts(host)
        return self._cached(label, domain, path, query)

    def host_parts(self, host: str) -> tuple[str, str]:
        """``linux.solidot.test:8080`` → (``linux``, ``solidot.test:8080``); unknown hosts → www.

        The domain ends up in every link of the page, so only a well-formed ``host[:port]`` is
        taken from the request; anything else (markup, spaces, a bad port) is answered as
        ``www`` of the replica's own domain.
        """
        host = host.lower().strip()
        if not _HOST_RE.fullmatch(host):
            return "www", self.replica.config.domain
        name = host.rsplit(":", 1)[0]
        label, _, rest = host.partition(".")
        if name.endswith("." + self.replica.config.domain) and label:
            return label, rest
        return "www", host

    def _answer(self, label: str, domain: str, path: str, query: tuple[tuple[str, str], ...]) -> Page:
        category = label if label in CATEGORIES else None
        # checked by host_parts already; escaped all the same, as everything put into markup
        chrome = Chrome(domain=escape(domain), today=self.replica.today())
        params = dict(query)
        if path == "/robots.txt":
            return Page(200, TEXT, render.ROBOTS_TXT.encode(), "robots")
        if path == "/":
            if "issue" in params:
                return self._day(params["issue"], category, chrome)
            return self._home(category, chrome)
        if path == "/story":
            return self._story(params.get("sid", ""), chrome)
        if path == "/index.rss":
            return self._rss(chrome)
        if path == "/search" and _SID_RE.match(params.get("tid", "")):
            return self._topic(int(params["tid"]), chrome)
        if path.startswith("/~") and len(path) > 2:
            author = escape(unquote(path[2:]))
            return _html(render.simple_page(chrome, author, f"<p>{author} 的个人页面。</p>"), "other")
        if path in ("/comments", "/comments/"):
            return _html(render.simple_page(chrome, "发表评论", '<form method="post"></form>'), "other")
        if path in render.UTILITY_PAGES:
            title = render.UTILITY_PAGES[path]
            return _html(render.simple_page(chrome, title, f"<p>{title}</p>"), "other")
        return self._missing(chrome)

    def _missing(self, chrome: Chrome) -> Page:
        return Page(404, HTML, render.not_found_page(chrome).encode(), "missing")

    def _stories(self, sids: list[int]) -> list[StoryRecord]:
        return [self.replica.story(sid) for sid in sids]

    def _home(self, category: str | None, chrome: Chrome) -> Page:
        sids = self.replica.latest(self.replica.config.home_size, category)
        title = f"{CATEGORIES[category]} - {render.SITE_TITLE}" if category else render.SITE_TITLE
        return _html(render.list_page(self._stories(sids), chrome, title, None, None), "list")

    def _day(self, raw: str, category: str | None, chrome: Chrome) -> Page:
        day = day_from_query(raw)
        if day is None:
            return self._missing(chrome)
        first, last = timeline.day_of(self.replica.first_sid), chrome.today
        newer = day + timedelta(days=1) if first <= day < last else None
        older = day - timedelta(days=1) if first < day <= last else None
        stories = self._stories(self.replica.sids_on(day, category))
        title = f"{day:%Y年%m月%d日} - {render.SITE_TITLE}"
        return _html(render.list_page(stories, chrome, title, newer, older), "list")

    def _story(self, raw_sid: str, chrome: Chrome) -> Page:
        sid = int(raw_sid) if _SID_RE.match(raw_sid) else 0
        if not self.replica.serves(sid):
            return self._missing(chrome)
        story = self.replica.story(sid)
        if self.replica.config.faults.is_malformed(sid):
            return _html(render.malformed_story_page(story, chrome), "malformed")
        return _html(render.story_page(story, chrome), "story")

    def _rss(self, chrome: Chrome) -> Page:
        stories = self._stories(self.replica.rss_sids())
        seconds = {story.sid: random.Random(f"second:{story.sid}").randrange(60) for story in stories}
        body = render.rss(stories, f"http://www.{chrome.domain}", seconds)
        return Page(200, XML, body.encode(), "rss")

    def _topic(self, tid: int, chrome: Chrome) -> Page:
        topic = next((t for t in TOPICS if t.tid == tid), None)
        if topic is None:
            return self._missing(chrome)
        sids = []
        low = max(self.replica.first_sid, self.replica.config.last_sid - TOPIC_SCAN)
        for sid in range(self.replica.config.last_sid, low - 1, -1):
            if self.replica.serves(sid) and topic in self.replica.story(sid).topics:
                sids.append(sid)
                if len(sids) == self.replica.config.home_size:
                    break
        title = f"{topic.name.strip()} - {render.SITE_TITLE}"
        return _html(render.list_page(self._stories(sids), chrome, title, None, None), "list")


def _html(markup: str, kind: str) -> Page:
    return Page(200, HTML, markup.encode(), kind)


def day_from_query(raw: str) -> date | None:
    """``20250103`` → that date; anything else → None."""
    try:
        return datetime.strptime(raw, "%Y%m%d").date() if _DAY_RE.match(raw) else None
    except ValueError:
        return None
