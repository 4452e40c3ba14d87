"""``sharedcrawl seed``: any project's spider seeds its shared crawl from outside it, as a worker would
start it; the example project's CrawlSpider is seeded, then crawled by a worker, every page once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from link_site import link_site

from scrapy_sharedcrawl.testing.redis_server import RedisServer

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "redis_project"
BIN = Path(sys.executable).parent


def run(redis_url: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)


def test_a_seeded_crawl_spider_is_crawled_once_by_its_workers(redis_url: str, redis_srv: RedisServer) -> None:
    with link_site(pages=40) as site, redis_srv.client() as client:
        first = run(redis_url, str(BIN / "sharedcrawl"), "seed", "crawl", "-a", f"site={site.base_url}")
        again = run(redis_url, str(BIN / "sharedcrawl"), "seed", "crawl", "-a", f"site={site.base_url}")
        assert client.exists("{crawl}:requests:seeded")
        worker = run(
            redis_url,
            str(BIN / "scrapy"),
            "crawl",
            "crawl",
            "-a",
            f"site={site.base_url}",
            "-s",
            "SCHEDULER_WAIT_FOR_SEED=30",
        )
        urls = [json.loads(raw)["url"] for raw in client.lrange("crawl:items", 0, -1)]
    assert first.returncode == 0 and "1 requests pushed, 0 already seen" in first.stdout, first.stderr
    assert again.returncode == 0 and "0 requests pushed, 1 already seen" in again.stdout, again.stderr
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert sorted(urls) == sorted(site.urls())  # the worker's own start() was a repeat: filtered


def test_a_scrapy_redis_spider_is_fed_through_its_key_not_seeded(redis_url: str) -> None:
    done = run(redis_url, str(BIN / "sharedcrawl"), "seed", "pages")
    assert done.returncode == 2
    assert "scrapy-redis spider" in done.stderr and "pages_feed:urls" in done.stderr, done.stderr


def test_an_unknown_spider_is_one_line_naming_the_projects_spiders(redis_url: str) -> None:
    done = run(redis_url, str(BIN / "sharedcrawl"), "seed", "nosuch")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (
        "sharedcrawl seed: no spider 'nosuch' in this project (its spiders: crawl, pages, rules)"
    )
