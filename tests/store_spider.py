"""A spider for store tests: yields the stories it reads from stdin, one JSON object a line.

Run with ``scrapy runspider tests/store_spider.py`` and the ``MONGO_*`` settings.
No network: the test feeds the stories (so it controls exactly when items
flow) and the crawl ends when stdin closes. A line ``{"touch": SID}`` calls the
store pipeline's ``touch(SID)`` instead of yielding a story. :func:`make_story`
makes the stories (for tests and bench/store_throughput.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import scrapy

from solidot_spider.crawl.pipelines.store import MongoStorePipeline
from solidot_spider.site.items import Comment, Story, Topic

STORE = "solidot_spider.crawl.pipelines.store.MongoStorePipeline"


def make_story(sid: int, **changes: Any) -> dict[str, Any]:
    """A complete story as ``ItemAdapter(Story).asdict()`` gives it (JSON-able)."""
    story = {
        "sid": sid,
        "url": f"https://www.solidot.org/story?sid={sid}",
        "title": f"第 {sid} 号故事",
        "author": "Wilson",
        "author_uid": 42865,
        "published_at": f"2025-01-03T14:{sid % 60:02d}:00+08:00",
        "topics": [{"tid": 11, "name": "科学"}],
        "categories": ["science"],
        "department": "测试",
        "body_html": f"<p>正文 {sid}</p>",
        "body_text": f"正文 {sid}",
        "references": ["https://example.org/a"],
        "views": 100 + sid,
        "comment_count": 1,
        "comments": [
            {
                "cid": sid * 10,
                "parent_cid": None,
                "author": "匿名用户",
                "author_uid": None,
                "title": "评论",
                "score": 1,
                "published_at": "2025-01-03T15:00:00+08:00",
                "text": "好",
            }
        ],
        "fetched_at": "2026-11-25T12:00:00+00:00",
    }
    return {**story, **changes}


def story_from_json(data: dict[str, Any]) -> Story:
    return Story(
        **{
            **data,
            "topics": [Topic(**topic) for topic in data.get("topics", [])],
            "comments": [Comment(**comment) for comment in data.get("comments", [])],
        }
    )


class StoreSpider(scrapy.Spider):
    name = "store"
    custom_settings: ClassVar[dict[str, Any]] = {
        "ITEM_PIPELINES": {STORE: 800},
        "EXTENSIONS": {"solidot_spider.crawl.extensions.stats_file.StatsFile": 500},
        "TELNETCONSOLE_ENABLED": False,
    }

    async def start(self) -> AsyncIterator[Story]:
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            data = json.loads(line)
            if "touch" in data:
                self.store().touch(data["touch"])
            else:
                yield story_from_json(data)

    def store(self) -> MongoStorePipeline:
        assert self.crawler.engine is not None
        pipelines = self.crawler.engine.scraper.itemproc.middlewares
        return next(p for p in pipelines if isinstance(p, MongoStorePipeline))
