"""What a request costs the shared queue's worker to encode (push) and decode (pop), in µs.

Encoding is admission (on the live request) and JSON; decoding is the untrusted payload's checks,
building the ``scrapy.Request`` and checking its host. Cases: a generic ``CrawlSpider``'s rule
request (``examples/redis_project``) and a Solidot story request. ``--before DIR`` measures the
``scrapy_sharedcrawl`` package found in ``DIR`` too, in the same run (e.g. ``git archive main
sharedcrawl/scrapy_sharedcrawl | tar -x --strip-components=1 -C DIR``). No Redis is needed.

    .venv/bin/python bench/request_coding.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "examples" / "redis_project"))


def best_us(action: Callable[[], Any], number: int, repeat: int = 5) -> float:
    """The best of ``repeat`` runs of ``number`` calls, in µs per call (the least disturbed by others)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            action()
        best = min(best, time.perf_counter() - started)
    return best / number * 1e6


def cases() -> dict[str, tuple[Any, Any]]:
    """(spider, request) per case."""
    import scrapy
    from redis_example.spiders.crawl import CrawlPagesSpider
    from scrapy.utils.test import get_crawler

    from solidot_spider.spiders.solidot import SolidotSpider

    crawl = CrawlPagesSpider.from_crawler(get_crawler(CrawlPagesSpider), site="http://127.0.0.1:8000")
    rule_request = scrapy.Request(  # as a crawl queues it: with the Referer Scrapy's middleware sets
        "http://127.0.0.1:8000/page/1234",
        callback=crawl._callback,
        errback=crawl._errback,
        headers={"Referer": "http://127.0.0.1:8000/page/617"},
        meta={"rule": 0, "link_text": "page 1234", "depth": 3},
    )
    crawler = get_crawler(SolidotSpider, {"SOLIDOT_BASE_URL": "https://www.solidot.org"})
    solidot = SolidotSpider.from_crawler(crawler, latest="0")
    return {"generic rule": (crawl, rule_request), "Solidot story": (solidot, solidot.story_request(80222))}


def measure(number: int) -> dict[str, tuple[float, float]]:
    import redis

    from scrapy_sharedcrawl.queue import LeasedPriorityQueue

    results = {}
    for name, (spider, request) in cases().items():
        queue = LeasedPriorityQueue(redis.Redis(), spider)  # no command is sent
        payload = queue.encode(request).payload
        assert queue._decode_request(payload).url == request.url
        results[name] = (
            best_us(lambda: queue.encode(request), number),  # noqa: B023
            best_us(lambda: queue._decode_request(payload), number),  # noqa: B023
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=5000, help="calls per timing (best of 5)")
    parser.add_argument("--before", type=Path, help="also measure the scrapy_sharedcrawl in this folder")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    after = measure(options.number)
    if options.json:
        print(json.dumps(after))
        return
    before: dict[str, list[float]] = {}
    if options.before is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(options.before.resolve()), str(ROOT)])}
        command = [sys.executable, __file__, "--json", "--number", str(options.number)]
        before = json.loads(subprocess.run(command, env=env, check=True, capture_output=True).stdout)
    print(
        f"{'µs a request':16} {'encode':>8} {'decode':>8}"
        + ("   (before: encode / decode)" if before else "")
    )
    for name, (encode, decode) in after.items():
        line = f"{name:16} {encode:8.1f} {decode:8.1f}"
        if name in before:
            line += f"   ({before[name][0]:.1f} / {before[name][1]:.1f})"
        print(line)


if __name__ == "__main__":
    main()
