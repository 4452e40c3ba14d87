"""A worker with nothing left to do but acknowledge does it at once, not at its next heartbeat tick.

Acknowledgements ride on the scheduler's tick (``SCHEDULER_ACK_INTERVAL``); the crawl is over only
once nothing is leased. A worker that finds the queue empty with nothing in progress acknowledges
at once: the end of a crawl costs milliseconds, not up to a tick (on a 15 s crawl, up to 1 s of a
one-worker crawl's pages/s against Scrapy's own scheduler). Here the tick is a minute: the crawl
ends long before one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from link_site import link_site

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "redis_project"
TICK = 60  # seconds: a crawl that waited for a tick to acknowledge its last pages would last longer


@pytest.mark.integration
def test_a_crawl_ends_without_waiting_for_a_tick(tmp_path: Path, redis_url: str) -> None:
    feed = tmp_path / "pages.jsonl"
    with link_site(30) as site:
        command = [sys.executable, "-m", "scrapy", "crawl", "crawl", "-a", f"site={site.base_url}"]
        command += ["-O", str(feed)]
        settings = {
            "REDIS_URL": redis_url,
            "SCHEDULER_ACK_INTERVAL": str(TICK),
            "SCHEDULER_LEASE_SECONDS": str(10 * TICK),
            "ITEM_PIPELINES": "{}",
            "LOG_FILE": str(tmp_path / "worker.log"),
        }
        for name, value in settings.items():
            command += ["-s", f"{name}={value}"]
        env = {key: value for key, value in os.environ.items() if not key.startswith("REDIS_")}
        started = time.monotonic()
        subprocess.run(command, cwd=PROJECT, env=env, check=True, timeout=5 * TICK)
        elapsed = time.monotonic() - started
    pages = {json.loads(line)["url"] for line in feed.read_text().splitlines()}
    assert len(pages) == 31  # the site's root and its 30 pages, each once
    log = (tmp_path / "worker.log").read_text()
    assert "finished: nothing queued or leased" in log
    assert elapsed < 0.75 * TICK, f"the crawl took {elapsed:.0f} s: it waited for a tick to acknowledge"
