"""Redis memory of the shared crawl state: ours against stock scrapy-redis.

A private redis-server (started here, see scrapy_sharedcrawl/testing/redis_server.py) holds, one at
a time, after a FLUSHALL:

- dupefilter: N story URLs' fingerprints in stock ``RFPDupeFilter`` (40-char
  hex strings in one SET), in :class:`CompactRFPDupeFilter` set mode (64-bit
  integers in intset shards that grow with the crawl), and in Bloom mode sized
  to N (default error rate);
- queue: M story requests as the spider makes them (callback, errback,
  cb_kwargs, meta, priority) in stock ``PriorityQueue`` (pickle, the default),
  stock with our JSON serializer, and :class:`LeasedPriorityQueue` queued and
  then all leased (in flight).

Bytes are measured two ways: the sum of ``MEMORY USAGE`` over the structure's
keys, and the growth of ``INFO memory`` ``used_memory`` (includes Redis's own
per-key bookkeeping). Prints bytes per URL / per request and ratios to stock.

    .venv/bin/python bench/redis_memory.py --urls 100000 --requests 10000
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import redis
from scrapy.utils.test import get_crawler
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scrapy_sharedcrawl import serialization  # noqa: E402
from scrapy_sharedcrawl.addon import SHARED_SETTINGS  # noqa: E402
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter, Mode  # noqa: E402
from scrapy_sharedcrawl.queue import LeasedPriorityQueue  # noqa: E402
from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402
from solidot_spider.spiders.solidot import SolidotSpider  # noqa: E402

PIPELINE = 5_000


def measure(client: redis.Redis, fill: Callable[[], Iterable[str]]) -> tuple[int, int]:
    """(sum of MEMORY USAGE over the keys ``fill`` names, growth of used_memory) on an empty server."""
    client.flushall()
    before = int(client.info("memory")["used_memory"])
    keys = list(fill())
    after = int(client.info("memory")["used_memory"])
    usage = sum(client.memory_usage(key, samples=0) or 0 for key in keys if client.exists(key))
    return usage, after - before


def shared_story_spider(redis_url: str) -> SolidotSpider:
    """The Solidot spider of a shared crawl on ``redis_url``, its crawler's spider: what makes story
    requests and names the queue's keys."""
    settings = {"REDIS_URL": redis_url, "SOLIDOT_BASE_URL": "https://www.solidot.org", **SHARED_SETTINGS}
    crawler = get_crawler(SolidotSpider, settings)
    spider = SolidotSpider.from_crawler(crawler, latest="0")
    crawler.spider = spider
    return spider


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=100_000, help="fingerprints in the dupefilters")
    parser.add_argument("--requests", type=int, default=10_000, help="requests in the queues")
    options = parser.parse_args()
    urls, requests = options.urls, options.requests

    with redis_server() as server:
        url = server.url
        client = redis.Redis.from_url(url)
        spider = shared_story_spider(url)
        rng = random.Random(1)
        fingerprints = [rng.randbytes(20) for _ in range(urls)]
        categories = ["linux", "science", "apple", "mobile", "security"]
        stories = [spider.story_request(80000 + n, categories=[categories[n % 5]]) for n in range(requests)]

        def stock_dupefilter() -> list[str]:
            stock = RFPDupeFilter(client, "stock:dupefilter")
            for start in range(0, urls, PIPELINE):
                pipe = client.pipeline(transaction=False)
                for fingerprint in fingerprints[start : start + PIPELINE]:
                    pipe.sadd(stock.key, fingerprint.hex())  # what request_seen() adds
                pipe.execute()
            return [stock.key]

        def compact(mode: Mode, capacity: int) -> Callable[[], list[str]]:
            def fill() -> list[str]:
                dupefilter = CompactRFPDupeFilter(
                    redis.Redis.from_url(url), f"{{bench}}:{mode}:{capacity}", mode=mode, capacity=capacity
                )
                dupefilter.add_fingerprints(fingerprints)
                return [dupefilter.meta_key, *dupefilter.shard_keys()]

            return fill

        def stock_queue(serializer: object = None) -> Callable[[], list[str]]:
            def fill() -> list[str]:
                queue = PriorityQueue(client, spider, "stock:requests", serializer=serializer)
                for start in range(0, requests, PIPELINE):
                    batch = PriorityQueue(client.pipeline(transaction=False), spider, queue.key, serializer)
                    for request in stories[start : start + PIPELINE]:
                        batch.push(request)
                    batch.server.execute()
                return [queue.key]

            return fill

        def leased_queue(lease: bool) -> Callable[[], list[str]]:
            def fill() -> list[str]:
                queue = LeasedPriorityQueue(redis.Redis.from_url(url), spider)
                for start in range(0, requests, PIPELINE):
                    queue.push_many([queue.encode(request) for request in stories[start : start + PIPELINE]])
                while lease and queue.pop("bench-worker", 600, count=PIPELINE).leased:
                    pass
                return queue.storage_keys()

            return fill

        print(f"Redis {client.info('server')['redis_version']}, {urls:,} URLs, {requests:,} story requests\n")
        rows: list[tuple[str, str, float, float]] = []
        for label, fill in [
            ("stock RFPDupeFilter (hex strings in one SET)", stock_dupefilter),
            ("CompactRFPDupeFilter set (grows with the crawl)", compact("set", urls)),
            ("CompactRFPDupeFilter bloom, sized to the URLs, error rate 1e-6", compact("bloom", urls)),
        ]:
            usage, growth = measure(client, fill)
            rows.append(("dupefilter", label, usage / urls, growth / urls))
        sample = serialization.request_to_bytes(stories[0], spider)
        for label, fill in [
            ("stock PriorityQueue, pickle (default)", stock_queue()),
            ("stock PriorityQueue, our JSON serializer", stock_queue(serialization)),
            ("LeasedPriorityQueue, queued", leased_queue(lease=False)),
            ("LeasedPriorityQueue, all leased (in flight)", leased_queue(lease=True)),
        ]:
            usage, growth = measure(client, fill)
            rows.append(("queue", label, usage / requests, growth / requests))

        baseline = {kind: next(row for row in rows if row[0] == kind) for kind in ("dupefilter", "queue")}
        print(f"{'':11}{'':58}{'MEMORY USAGE':>14}{'used_memory':>13}{'ratio':>8}")
        for kind, label, per_item, growth_per_item in rows:
            unit = "B/URL" if kind == "dupefilter" else "B/req"
            ratio = per_item / baseline[kind][2]
            print(f"{kind:11}{label:58}{per_item:>8.1f} {unit}{growth_per_item:>7.1f} {unit}{ratio:>7.2f}x")
        pickled = len(PriorityQueue(client, spider, "x")._encode_request(stories[0]))
        stored = LeasedPriorityQueue(client, spider).encode(stories[0])
        member = f"{stored.request_id} ".encode() + stored.payload
        print(f"\none story request: {len(sample)} bytes as our JSON, {pickled} bytes pickled")
        print(f"  {sample.decode()}")
        print(f"in the leased queue (the spider's shared_request_defaults left out): {len(member)} bytes")
        print(f"  {member.decode()}")


if __name__ == "__main__":
    main()
