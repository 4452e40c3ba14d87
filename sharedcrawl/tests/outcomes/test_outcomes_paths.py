"""Each way a page can end comes to exactly one outcome (issue 23), in a plain Scrapy crawl with the
SharedCrawl add-on and no Redis: a spider over a small HTTP site of the test's own, run by ``scrapy
runspider`` as a user runs it. Requests that got no response are counted beside them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest

from scrapy_sharedcrawl.outcomes import outcome_name, unfetched_kind, unfetched_of
from scrapy_sharedcrawl.testing.processes import assert_outcomes_add_up

ROBOTS = b"User-agent: *\nDisallow:\n"


class Site(BaseHTTPRequestHandler):
    """``/robots.txt``; ``/status/<code>`` answers that code; any other path a small HTML page."""

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, code = ROBOTS, 200
        elif self.path.startswith("/status/"):
            body, code = b"<html><body>no</body></html>", int(self.path.rsplit("/", 1)[1])
        else:
            body, code = f"<html><body>{self.path}</body></html>".encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "text/html" if self.path != "/robots.txt" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


SPIDER = '''
import json, os
import scrapy
from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy_sharedcrawl.outcomes import drop_with_reason, note_outcome

BASE = os.environ["SITE"]


class Dump:
    """Writes the final stats (after the collector closed) where the test reads them."""

    @classmethod
    def from_crawler(cls, crawler):
        ext = cls()
        ext.crawler = crawler
        crawler.signals.connect(ext.stopped, signal=signals.engine_stopped)
        return ext

    def stopped(self):
        with open(os.environ["STATS_OUT"], "w") as out:
            json.dump(self.crawler.stats.get_stats(), out, default=str)


class Pipeline:
    def process_item(self, item):
        if item.get("drop") == "reason":
            raise drop_with_reason(DropItem("too short"), "too_short")
        if item.get("drop") == "plain":
            raise DropItem("no reason given")
        if item.get("fail"):
            raise ValueError("a pipeline bug")
        return item


class Paths(scrapy.Spider):
    name = "paths"
    allowed_domains = ["127.0.0.1"]
    custom_settings = {
        "ADDONS": {"scrapy_sharedcrawl.addon.SharedCrawl": 0},
        "ITEM_PIPELINES": {Pipeline: 100},
        "EXTENSIONS": {Dump: 0},
        "ROBOTSTXT_OBEY": True,
        "RETRY_TIMES": 0,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "LOG_LEVEL": "INFO",
    }

    async def start(self):
        for path in ("item", "links", "raise", "raise_later", "drop", "drop_plain", "noted", "fail"):
            yield scrapy.Request(f"{BASE}/{path}", callback=getattr(self, path))
        yield scrapy.Request(f"{BASE}/status/404")
        yield scrapy.Request(f"{BASE}/status/500")
        yield scrapy.Request(f"{BASE}/status/410", errback=self.failed)
        yield scrapy.Request("http://127.0.0.2:1/offsite")
        yield scrapy.Request(os.environ["CLOSED"] + "/refused")

    def item(self, response):
        yield {"url": response.url}

    def links(self, response):
        yield response.follow("/nothing", callback=self.nothing)

    def nothing(self, response):
        return None

    def raise_(self, response):
        raise RuntimeError("a callback bug")

    def raise_later(self, response):
        yield {"url": response.url}
        raise RuntimeError("a callback bug after an item")

    def drop(self, response):
        yield {"drop": "reason"}

    def drop_plain(self, response):
        yield {"drop": "plain"}

    def noted(self, response):
        note_outcome(self.crawler, response, "special page")
        yield {"url": response.url}

    def fail(self, response):
        yield {"fail": True}

    def failed(self, failure):
        return None


setattr(Paths, "raise", Paths.raise_)
'''


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """A loopback address nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_every_way_a_page_ends_is_one_outcome_and_requests_without_a_page_are_beside_them(
    tmp_path: Path, site: str
) -> None:
    spider, stats_file = tmp_path / "paths.py", tmp_path / "stats.json"
    spider.write_text(SPIDER)
    env = {**os.environ, "SITE": site, "CLOSED": closed_port(), "STATS_OUT": str(stats_file)}
    completed = subprocess.run(
        [sys.executable, "-m", "scrapy", "runspider", str(spider)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    stats = json.loads(stats_file.read_text())
    outcomes = {name: value for name, value in stats.items() if name.startswith("outcome/")}
    assert outcomes == {
        "outcome/robots_txt": 1,  # the site's (the closed port's failed: counted as unfetched)
        "outcome/items": 1,
        "outcome/links": 1,
        "outcome/nothing": 1,
        "outcome/spider_error": 2,  # raised at once, and after an item
        "outcome/dropped/too_short": 1,
        "outcome/dropped/unnamed": 1,
        "outcome/special_page": 1,
        "outcome/item_error": 1,
        "outcome/http_404": 1,
        "outcome/http_500": 1,
        "outcome/http_410": 1,  # an errback took it: still the status Scrapy filtered
    }, completed.stderr[-5000:]
    assert_outcomes_add_up(stats)
    assert unfetched_of(stats) == {
        "failed/DownloadConnectionRefusedError": 2,  # the closed port's robots.txt, then the page
        "offsite": 1,  # Scrapy's offsite/filtered: dropped when scheduled
    }


def test_requests_ignored_are_told_apart_by_scrapys_messages() -> None:
    assert unfetched_kind(IgnoreRequest("Forbidden by robots.txt")) == "robots_forbidden"
    assert unfetched_kind(IgnoreRequest("Filtered offsite request to 'a.example'")) == "offsite"
    assert unfetched_kind(IgnoreRequest("a middleware's own reason")) == "ignored"
    assert unfetched_kind(TimeoutError("took too long")) == "failed/TimeoutError"
    assert outcome_name("special page: <b>") == "special_page_b" and outcome_name("") == "unnamed"
    assert len(outcome_name("x" * 500)) == 60
