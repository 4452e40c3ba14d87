"""The numeric settings docs/settings.md lists are range-checked at start-up (issue 25, row 4): a value out
of range stops the component that reads it with one error naming the setting, its range and the
value, before anything runs (the store's, dedupe's and validation's numbers, the spider's truncated
retries, the duplicate filter's size)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from solidot_spider.archive.mongo import StoreConfig
from solidot_spider.crawl.pipelines.dedupe import DedupePipeline
from solidot_spider.crawl.pipelines.validate import ValidatePipeline
from solidot_spider.spiders.solidot import SolidotSpider

SITE = {"SOLIDOT_BASE_URL": "https://www.solidot.org"}
#: Nothing listens here; nothing connects before the settings are read.
NO_REDIS = "redis://127.0.0.1:1/0"


def store(given: dict[str, Any]) -> Any:
    return StoreConfig.from_settings(Settings(given))


def dedupe(given: dict[str, Any]) -> Any:
    return DedupePipeline.from_crawler(get_crawler(settings_dict={**SITE, **given}))


def validate(given: dict[str, Any]) -> Any:
    return ValidatePipeline(get_crawler(settings_dict={**SITE, **given}))


def spider(given: dict[str, Any]) -> Any:
    return SolidotSpider.from_crawler(get_crawler(SolidotSpider, {**SITE, **given}))


def dupefilter(given: dict[str, Any]) -> Any:
    return CompactRFPDupeFilter.from_settings(Settings({"REDIS_URL": NO_REDIS, **given}))


CASES: list[tuple[Callable[[dict[str, Any]], Any], str, str, str]] = [
    (store, "MONGO_BATCH_SIZE", "0", "within 1..100,000"),
    (store, "MONGO_BATCH_SIZE", "lots", "within 1..100,000"),
    (store, "MONGO_FLUSH_INTERVAL", "nan", "> 0"),
    (store, "MONGO_MAX_BUFFER", "-5", "within 1..10,000,000"),
    (store, "MONGO_RETRY_BASE", "0", "> 0"),
    (store, "MONGO_RETRY_MAX", "inf", "> 0"),
    (store, "MONGO_SERVER_SELECTION_TIMEOUT", "1.5", "within 1..600,000"),
    (dedupe, "SOLIDOT_DEDUPE_REDIS_TIMEOUT", "-1", "within 0..86400"),
    (dedupe, "SOLIDOT_DEDUPE_RETRY_MAX", "0", "> 0"),
    (validate, "SOLIDOT_MAX_BODY_BYTES", "0", "within 1..2,147,483,648"),
    (spider, "SOLIDOT_TRUNCATED_RETRIES", "-1", "within 0..100"),
    (spider, "SOLIDOT_TRUNCATED_RETRIES", "1e9", "within 0..100"),
    (dupefilter, "DUPEFILTER_CAPACITY", "0", "within 1..10,000,000,000"),
    (dupefilter, "DUPEFILTER_ERROR_RATE", "1", "> 0 and ≤ 0.5"),
]


@pytest.mark.parametrize(
    ("build", "name", "value", "allowed"), CASES, ids=[f"{name}={value}" for _, name, value, _ in CASES]
)
def test_a_number_out_of_range_stops_the_component_naming_the_setting(
    build: Callable[[dict[str, Any]], Any], name: str, value: str, allowed: str
) -> None:
    with pytest.raises(
        SettingError, match=rf"^{name} must be .*{re.escape(allowed)}.*got '{re.escape(value)}'"
    ):
        build({name: value})


def test_the_defaults_and_values_in_range_are_taken() -> None:
    config = store({"MONGO_BATCH_SIZE": "100", "MONGO_SERVER_SELECTION_TIMEOUT": "2000"})
    assert (config.batch_size, config.server_selection_timeout_ms, config.max_buffer) == (100, 2000, 50_000)
    assert validate({"SOLIDOT_MAX_BODY_BYTES": "1000"}).max_body_bytes == 1000
    assert spider({"SOLIDOT_TRUNCATED_RETRIES": "0"}).truncated_retries == 0
    assert spider({}).truncated_retries == 3
