"""Small components: site map, DNS overrides, discovery arguments, Retry-After, default output."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from scrapy.settings import Settings

from scrapy_sharedcrawl.backoff import parse_retry_after
from solidot_spider.crawl.addons import DefaultOutput
from solidot_spider.crawl.resolver import lookup_override, parse_resolve
from solidot_spider.site.discovery import Discovery, parse_sid_ranges
from solidot_spider.site.urls import SiteMap, story_sid


def test_category_hosts_follow_the_base_url() -> None:
    site = SiteMap.from_base_url("http://www.solidot.test:8080/")
    assert site.category_home("linux") == "http://linux.solidot.test:8080/"
    assert site.story_url(7) == "http://www.solidot.test:8080/story?sid=7"
    assert site.day_archive(date(2025, 1, 3)) == "http://www.solidot.test:8080/?issue=20250103"
    assert site.category_of_url("http://linux.solidot.test:8080/story?sid=1") == "linux"
    assert site.category_of_url("http://www.solidot.test:8080/") is None
    assert site.category_of_url("http://linux.example.com/") is None
    with pytest.raises(ValueError):
        SiteMap.from_base_url("ftp://www.solidot.org")


def test_story_sid_from_any_host_and_form() -> None:
    assert story_sid("//linux.solidot.org/story?sid=42") == 42
    assert story_sid("https://www.solidot.org/story?sid=42&from=rss") == 42
    assert story_sid("https://www.solidot.org/story?sid=abc") is None
    assert story_sid("https://www.solidot.org/?issue=20250103") is None


def test_resolve_overrides_cover_a_domain_and_its_subdomains() -> None:
    overrides = parse_resolve("solidot.test=127.0.0.1, other.test=127.0.0.2")
    assert lookup_override("www.solidot.test", overrides) == "127.0.0.1"
    assert lookup_override("solidot.test", overrides) == "127.0.0.1"
    assert lookup_override("a.b.other.test", overrides) == "127.0.0.2"
    assert lookup_override("notsolidot.test", overrides) is None
    with pytest.raises(ValueError):
        parse_resolve("solidot.test")
    with pytest.raises(ValueError):
        parse_resolve("solidot.test=not-an-address")


def test_discovery_arguments() -> None:
    assert Discovery.from_arguments().latest
    scope = Discovery.from_arguments(since="2025-01-01", until="2025-01-03", sids="10-12")
    assert not scope.latest
    assert list(scope.days()) == [date(2025, 1, 3), date(2025, 1, 2), date(2025, 1, 1)]
    assert list(scope.sids()) == [12, 11, 10]
    assert Discovery.from_arguments(sids="1-2", latest="true").latest
    assert parse_sid_ranges("5-3, 9, 4-6") == [(3, 5), (9, 9), (4, 6)]
    assert list(Discovery.from_arguments(sids="5-3,4-6").sids()) == [6, 5, 4, 3]
    with pytest.raises(ValueError):
        Discovery.from_arguments(until="2025-01-01")
    with pytest.raises(ValueError):
        Discovery.from_arguments(since="2025-02-01", until="2025-01-01")
    with pytest.raises(ValueError):
        Discovery.from_arguments(sids="a-b")


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(b"7") == 7.0
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after(b"soon") is None
    assert parse_retry_after(None) is None


def test_the_default_output_yields_to_o_and_to_mongodb() -> None:
    def feeds(**given: Any) -> dict[str, Any]:
        settings = Settings()
        settings.setmodule("solidot_spider.settings", priority="project")
        for name, value in given.items():
            settings.set(name, value, priority="cmdline")
        DefaultOutput().update_settings(settings)
        return dict(settings.getdict("FEEDS"))

    assert list(feeds(SOLIDOT_OUTPUT="out/%(name)s.jsonl")) == ["out/%(name)s.jsonl"]
    assert list(feeds(FEEDS={"mine.jsonl": {"format": "jsonlines"}})) == ["mine.jsonl"]
    assert feeds(MONGO_URI="mongodb://127.0.0.1:27017") == {}
    assert feeds(SOLIDOT_OUTPUT="") == {}
