"""The compact dupefilter: 64-bit fingerprints in intset shards (or Bloom bits), sized and shared
by the first worker, under 30 bytes per URL."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter

import pytest
import scrapy
from conftest import make_spider
from news_spider import NewsSpider

from scrapy_sharedcrawl.testing.scheduling import open_scheduler

# -- the dupefilter ------------------------------------------------------------------------


def random_fingerprints(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(20) for _ in range(count)]


def test_dupefilter_sees_what_it_saw(spider: NewsSpider) -> None:
    dupefilter = open_scheduler(spider).compact
    assert dupefilter is not None
    assert not dupefilter.request_seen(spider.story_request(80222))
    assert dupefilter.request_seen(spider.story_request(80222, categories=["linux"]))  # same URL
    assert not dupefilter.request_seen(spider.story_request(80223))
    assert dupefilter.request_seen(scrapy.Request(spider.story_url(80223) + "#comments"))


def test_dupefilter_stays_in_intsets_at_under_30_bytes_per_url(redis_url: str, spider: NewsSpider) -> None:
    dupefilter = open_scheduler(spider).compact
    assert dupefilter is not None and dupefilter.layout is not None
    fingerprints = random_fingerprints(100_000)
    assert dupefilter.add_fingerprints(fingerprints) == 100_000
    assert dupefilter.add_fingerprints(fingerprints[:1000]) == 0
    client = dupefilter.server
    keys = [key for key in dupefilter.shard_keys() if client.exists(key)]
    encodings = Counter(client.object("encoding", key) for key in keys)
    assert encodings == {b"intset": len(keys)}, encodings
    used = sum(client.memory_usage(key) or 0 for key in keys)
    assert used / 100_000 <= 30, f"{used / 100_000:.1f} bytes per URL"


def test_a_shard_nearing_the_intset_limit_is_logged_and_the_layout_is_shared(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    small = open_scheduler(make_spider(redis_url, DUPEFILTER_CAPACITY=384)).compact
    assert small is not None and small.layout is not None and small.layout.shards == 1
    other = open_scheduler(make_spider(redis_url, DUPEFILTER_CAPACITY=10**7)).compact
    assert other is not None and other.layout == small.layout  # the first worker's layout wins
    small.add_fingerprints(random_fingerprints(470))  # grown to 3 shards (split past 192 on average)
    client = small.server
    # an operator lowers set-max-intset-entries mid-crawl: a worker opening now follows it, and the
    # shards already past it are logged (the filter splits more from then on)
    client.config_set("set-max-intset-entries", 128)
    try:
        later = open_scheduler(make_spider(redis_url)).compact
        assert later is not None and later.layout is not None and later.layout.intset_limit == 128
        with caplog.at_level(logging.WARNING):
            later.add_fingerprints(random_fingerprints(50, seed=8))
    finally:
        client.config_set("set-max-intset-entries", 512)
    assert re.search(
        r"a shard holds \d+ fingerprints, near Redis's set-max-intset-entries \(128\)", caplog.text
    ), caplog.text


def test_bloom_mode(redis_url: str) -> None:
    dupefilter = open_scheduler(
        make_spider(redis_url, DUPEFILTER_MODE="bloom", DUPEFILTER_CAPACITY=50_000)
    ).compact
    assert dupefilter is not None and dupefilter.layout is not None and dupefilter.layout.hashes == 20
    fingerprints = random_fingerprints(50_001)
    assert dupefilter.add_fingerprints(fingerprints[:50_000]) == 50_000  # 0.05 false positives expected
    assert dupefilter.add_fingerprints(fingerprints[:1000]) == 0
    assert dupefilter.add_fingerprints(fingerprints[50_000:]) == 1
    (key,) = dupefilter.shard_keys()
    assert (dupefilter.server.memory_usage(key) or 0) / 50_000 < 4
