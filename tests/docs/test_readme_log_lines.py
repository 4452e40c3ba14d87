"""Log lines the docs quote are the lines the code logs (issue 25, row 20)."""

from __future__ import annotations

import logging
import re

import pytest
from harness import docs_page
from pymongo.errors import ServerSelectionTimeoutError
from scrapy.utils.test import get_crawler

from solidot_spider.archive.mongo import StoreConfig
from solidot_spider.crawl.pipelines.store import MongoStorePipeline


def quoted(after: str) -> str:
    """docs/storing.md's quotation that follows ``after``, its line breaks read as spaces."""
    text = " ".join(docs_page("storing").split())
    match = re.search(re.escape(after) + r' \("(.+?)"\)', text)
    assert match, after
    return match[1]


def test_the_mongodb_outage_line_is_quoted_as_logged(caplog: pytest.LogCaptureFixture) -> None:
    crawler = get_crawler(settings_dict={"MONGO_URI": "mongodb://crawl:secret@db.internal:27017"})
    pipeline = MongoStorePipeline(crawler, StoreConfig.from_settings(crawler.settings))
    with caplog.at_level(logging.WARNING, logger="solidot_spider.crawl.pipelines.store"):
        pipeline.outage.failed(
            ServerSelectionTimeoutError("no servers"),
            cap=pipeline.config.retry_max,
            buffered=1200,
            detail="…",
        )
    [line] = [record.getMessage() for record in caplog.records]
    assert line == quoted("logs one line")
    assert "secret" not in line
