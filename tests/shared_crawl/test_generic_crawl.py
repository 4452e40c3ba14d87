"""The shared crawl is generic: a plain Scrapy project (``examples/links_project``, a link-following
spider over a site of its own) runs on it unchanged, fed the scrapy-redis way (``LPUSH
links:start_urls``), with leases, finishing and nothing lost when a worker is SIGKILLed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis
import scrapy
from broad_site import links_worker
from harness import wait_for
from link_site import link_site
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.start_urls import StartUrls, request_from_data
from scrapy_sharedcrawl.testing.redis_server import RedisServer

#: Short leases (a killed worker's requests come back fast) and quick polls.
WORKER_SETTINGS = {
    "SCHEDULER_LEASE_SECONDS": "3",
    "SCHEDULER_IDLE_POLL_MAX": "1",
    "SCHEDULER_WAIT_FOR_SEED": "60",
    "CONCURRENT_REQUESTS": "4",
    "LOG_LEVEL": "INFO",
}


def start_worker(name: str, workdir: Path, redis_url: str) -> subprocess.Popen[bytes]:
    return links_worker(name, workdir, redis_url, **WORKER_SETTINGS)


def text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def urls_in(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["url"] for line in lines if line.strip()]


def test_a_generic_spider_fed_by_lpush_shares_its_crawl_and_survives_a_sigkill(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    with link_site(pages=400, delay=0.2) as site:
        workers = {name: start_worker(name, tmp_path, redis_url) for name in ("victim", "two", "three")}
        try:
            with redis_srv.client() as client:
                # all three registered (waiting for a seed) before the crawl is fed: each gets a share
                wait_for(lambda: client.zcard("{links}:workers") == 3, timeout=60, what="three workers up")
                client.lpush("links:start_urls", f"{site.base_url}/")
                victim = f":{workers['victim'].pid}:"

                def victim_mid_crawl() -> bool:
                    holders = [text(worker) for worker in client.zrange("{links}:requests:holders", 0, -1)]
                    leased = sum(client.hlen(f"{{links}}:requests:lease:{w}") for w in holders if victim in w)
                    return len(urls_in(tmp_path / "victim.jsonl")) >= 5 and leased >= 2

                wait_for(victim_mid_crawl, timeout=60, what="the victim mid-crawl, holding leases")
                workers["victim"].kill()  # SIGKILL: no cleanup of any kind
                workers["victim"].wait(timeout=30)
                codes = [workers[name].wait(timeout=120) for name in ("two", "three")]
                left = sorted(text(key) for key in client.scan_iter(match="\\{links\\}:*"))
                shared = {text(key): text(value) for key, value in client.hgetall("{links}:stats").items()}
                start_urls_left = client.llen("links:start_urls")
        finally:
            for process in workers.values():
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
        expected = site.urls()

    logs = {name: (tmp_path / f"{name}.log").read_text(encoding="utf-8") for name in ("two", "three")}
    assert codes == [0, 0], logs
    found = [url for name in ("victim", "two", "three") for url in urls_in(tmp_path / f"{name}.jsonl")]
    assert set(found) == expected  # nothing lost
    assert start_urls_left == 0  # the entry left the key once its request was queued
    # the victim's leases went back to the queue and were crawled by the others
    assert int(shared["scheduler/requeued"]) >= 1
    assert all("Spider closed (finished)" in log for log in logs.values()), logs
    # finishing: one worker deleted the queue and dupefilter, leaving the record that the crawl
    # finished; the shared stats stay
    assert not [
        key for key in left if key.startswith(("{links}:requests:q", "{links}:requests:l", "{links}:seen"))
    ]
    assert all("Traceback" not in log for log in logs.values()), logs


class Spider(scrapy.Spider):
    name = "feed"

    def parse(self, response: object) -> None:
        pass


def test_start_url_entries_become_requests_and_leave_the_key_only_when_told(redis_url: str) -> None:
    spider = Spider.from_crawler(get_crawler(Spider, {"REDIS_URL": redis_url}))
    server = redis.Redis.from_url(redis_url)
    feed = StartUrls.from_settings(server, spider, spider.crawler.settings)
    assert feed.key == "feed:start_urls"
    server.rpush(feed.key, b"http://a.test/1", b'{"url": "http://a.test/2", "priority": 5}', b"not a url")
    entries = feed.read()
    requests = feed.requests(entries)
    assert [(r.url, r.priority) for r in requests] == [("http://a.test/1", 0), ("http://a.test/2", 5)]
    assert spider.crawler.stats.get_value("scheduler/start_urls/invalid/ValueError") == 1
    assert server.llen(feed.key) == 3  # read, not taken
    feed.remove(entries)
    assert server.llen(feed.key) == 0


@pytest.mark.parametrize(
    "entry",
    [b'{"url": 5}', b'{"url": "http://a.test/", "meta": []}', b"[1, 2]", b"\xff\xfe", b"{broken"],
)
def test_a_bad_start_url_entry_is_refused(entry: bytes) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        request_from_data(entry)
