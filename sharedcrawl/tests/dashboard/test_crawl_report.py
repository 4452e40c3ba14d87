"""CRAWL_REPORT_CLASS, a project's part of the operator views: one that can't serve is refused by name."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_sharedcrawl.report import CrawlReport


@pytest.mark.parametrize("path", ["no.such.Report", "scrapy.Spider", "notapath"])
def test_a_report_class_that_cant_serve_is_refused_by_name(path: str) -> None:
    with pytest.raises(ValueError, match="CRAWL_REPORT_CLASS"):
        CrawlReport.from_settings(Settings({"CRAWL_REPORT_CLASS": path}))


def test_the_default_counts_the_items_the_workers_scraped() -> None:
    report = CrawlReport.from_settings(Settings())
    assert report.items({"item_scraped_count": 7}) == (7, "scraped by the workers")
    assert not report.is_error("solidot/store/error")
