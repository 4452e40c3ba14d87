"""Redis memory a shared crawl needs, at the crawl's size: what a user sizes a Redis with.

For each size N, a private redis-server (started here, see scrapy_sharedcrawl/testing/redis_server.py) is
emptied and N story requests (the spider's own, URLs of the shape a crawl makes) are
pushed through the leased queue with the duplicate filter's check in the push script,
500 a round trip as a worker pushes. Printed per size, in the same run:

- ``growing``: this release's filter, one shard at first, split as it fills, the requests on one
  host (a Solidot-like crawl), then spread over ``--hosts`` hosts (a broad crawl: one queue each);
- ``previous`` (with ``--previous``): the previous release's set-mode filter, pre-sharded for
  ``DUPEFILTER_CAPACITY`` (2M by default: 5,209 shards) whatever the crawl's size.

Columns: bytes a queued request (``MEMORY USAGE`` of the queue's keys, every host's / N), bytes a
URL seen (``MEMORY USAGE`` of the filter's keys / N), bytes a request in all (growth of
``INFO memory`` ``used_memory`` from the empty server / N: Redis's own per-key bookkeeping and the
scripts included), the filter's shards, requests pushed a second (encoding them included), requests
leased a second (pops of 8, decoding included) and bytes a leased request (the worker's lease hash,
the holders and the lease counter after the pops / the requests leased). Compare rates on a quiet
machine.

    .venv/bin/python bench/redis_sizing.py --sizes 1e4,1e5,1e6 --hosts 100000
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from scrapy import Request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_memory import shared_story_spider  # noqa: E402

from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS  # noqa: E402
from scrapy_sharedcrawl.dupefilter import (  # noqa: E402
    DEFAULT_INTSET_LIMIT,
    CompactRFPDupeFilter,
    DupeCheck,
    fingerprint64,
)
from scrapy_sharedcrawl.queue import Encoded, LeasedPriorityQueue  # noqa: E402
from scrapy_sharedcrawl.scheduler.push_buffer import PUSH_BATCH  # noqa: E402
from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402
from solidot_spider.spiders.solidot import SolidotSpider  # noqa: E402

KEY = "{solidot}:seen"
#: Requests a pop leases, and how many are leased to time the pops (and size the leases).
POP_COUNT, POP_SAMPLE = 8, 20_000
ROW = "{:>10,} {:10}{:>8}{:>14.1f}{:>12.1f}{:>14.1f}{:>8,}{:>10,.0f}{:>9,.0f}{:>9.1f}"
CATEGORIES = ["linux", "science", "apple", "mobile", "security"]
#: The previous release's set-mode check-and-add: one SADD into the shard ``value % shards``.
PREVIOUS_CHECK_AND_ADD = """
local function check_and_add(keys, args)
  if redis.call('SADD', keys[1], args[1]) == 0 then return true, 0 end
  return false, redis.call('SCARD', keys[1])
end
"""
#: The previous release's shard count for a capacity: the average shard at 75 % of the intset limit.
PREVIOUS_SHARDS = math.ceil(DEFAULTS["DUPEFILTER_CAPACITY"] / (0.75 * DEFAULT_INTSET_LIMIT))


@dataclass
class Sizing:
    queued: float  # B a queued request
    seen: float  # B a URL seen
    in_all: float  # B a request, everything from the empty server
    shards: int
    rate: float  # requests pushed a second (the client's encoding included)
    pops: float  # requests leased a second, POP_COUNT a pop (the client's decoding included)
    lease: float  # B a leased request (its worker's hash, holders, counter), after POP_SAMPLE were leased


def measure(
    client: redis.Redis, size: int, push: Callable[[], tuple[list[str], LeasedPriorityQueue]]
) -> Sizing:
    """Empty the server, run ``push`` (which names the filter's keys and gives the queue), size what it
    left, then lease up to POP_SAMPLE requests, POP_COUNT a pop, and size a lease."""
    client.flushall()
    client.script_flush()
    before = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    filter_keys, queue = push()
    elapsed = time.perf_counter() - started
    after = int(client.info("memory")["used_memory"])

    def usage(keys: list[str]) -> int:
        return sum(client.memory_usage(key, samples=0) or 0 for key in keys if client.exists(key))

    shards = sum(1 for key in filter_keys if client.exists(key) and not key.endswith(":meta"))
    queued = usage(queue.storage_keys()) / size
    sample = min(size, POP_SAMPLE)
    started, leased = time.perf_counter(), 0
    while leased < sample:
        leased += len(queue.pop("bench-worker", 3600, count=min(POP_COUNT, sample - leased)).leased)
    pops = leased / (time.perf_counter() - started)
    named = queue.named
    lease = usage([named.lease("bench-worker"), named.holders, named.leased]) / leased
    return Sizing(
        queued, usage(filter_keys) / size, (after - before) / size, shards, size / elapsed, pops, lease
    )


def push_previous(
    url: str, spider: SolidotSpider, requests: list[Request]
) -> tuple[list[str], LeasedPriorityQueue]:
    """The previous release's pre-sharded layout and check: shard ``value % shards`` in the push."""
    server = redis.Redis.from_url(url)
    queue = LeasedPriorityQueue(server, spider, lua_check_and_add=PREVIOUS_CHECK_AND_ADD)
    layout = {"mode": "set", "shards": PREVIOUS_SHARDS, "intset_limit": DEFAULT_INTSET_LIMIT}
    server.hset(f"{KEY}:meta", mapping={**layout, "capacity": DEFAULTS["DUPEFILTER_CAPACITY"]})
    assert spider.crawler.request_fingerprinter is not None
    fingerprint = spider.crawler.request_fingerprinter.fingerprint
    for start in range(0, len(requests), PUSH_BATCH):
        entries: list[Encoded] = []
        for request in requests[start : start + PUSH_BATCH]:
            value = fingerprint64(fingerprint(request))
            entries.append(queue.encode(request, DupeCheck([f"{KEY}:{value % PREVIOUS_SHARDS}"], [value])))
        queue.push_many(entries)
    return [f"{KEY}:meta", *(f"{KEY}:{shard}" for shard in range(PREVIOUS_SHARDS))], queue


def push_growing(
    url: str, spider: SolidotSpider, requests: list[Request]
) -> tuple[list[str], LeasedPriorityQueue]:
    """This release's filter, as a worker opens and pushes through it."""
    dupefilter = CompactRFPDupeFilter(
        redis.Redis.from_url(url), KEY, fingerprinter=spider.crawler.request_fingerprinter
    )
    dupefilter.open()
    queue = LeasedPriorityQueue(
        redis.Redis.from_url(url), spider, lua_check_and_add=dupefilter.lua_check_and_add
    )
    for start in range(0, len(requests), PUSH_BATCH):
        batch = requests[start : start + PUSH_BATCH]
        queue.push_many([queue.encode(request, dupefilter.check(request)) for request in batch])
    return [dupefilter.meta_key, *dupefilter.shard_keys()], queue


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1e4,1e5", help="requests seeded, comma-separated (1e4,1e5,1e6)")
    parser.add_argument(
        "--hosts", default="100000", help="also spread each size over this many hosts (a broad crawl; 0: not)"
    )
    parser.add_argument("--previous", action="store_true", help="also the previous release's filter")
    options = parser.parse_args()
    sizes = [int(float(size)) for size in options.sizes.split(",")]
    spread = int(float(options.hosts))

    with redis_server() as server:
        url = server.url
        client = redis.Redis.from_url(url)
        spider = shared_story_spider(url)
        print(f"Redis {client.info('server')['redis_version']}, story requests, {PUSH_BATCH} a round trip")
        print(f"pops of {POP_COUNT}, {POP_SAMPLE:,} leased at most; lease: B a leased request\n")
        header = ("requests", "filter", "hosts", "queued B/req", "seen B/URL", "in all B/req", "shards")
        header += ("pushes/s", "pops/s", "lease B")
        print("{:>10} {:10}{:>8}{:>14}{:>12}{:>14}{:>8}{:>10}{:>9}{:>9}".format(*header))
        for size in sizes:
            requests = [spider.story_request(60_000 + n, categories=[CATEGORIES[n % 5]]) for n in range(size)]
            runs = [("previous", 1, push_previous)] if options.previous else []
            runs.append(("growing", 1, push_growing))
            if spread:
                runs.append(("growing", spread, push_growing))
            for label, hosts, push in runs:
                batch = requests if hosts == 1 else spread_over(requests, hosts)
                sizing = measure(client, size, functools.partial(push, url, spider, batch))
                row = (size, label, f"{min(hosts, size):,}", sizing.queued, sizing.seen, sizing.in_all)
                row += (sizing.shards, sizing.rate, sizing.pops, sizing.lease)
                print(
                    "{:>10,} {:10}{:>8}{:>14.1f}{:>12.1f}{:>14.1f}{:>8,}{:>10,.0f}{:>9,.0f}{:>9.1f}".format(
                        *row
                    )
                )


def spread_over(requests: list[Request], hosts: int) -> list[Request]:
    """``requests`` on ``hosts`` hosts in turn (``h<n>.solidot.org``, the same paths): a broad crawl."""
    return [
        request.replace(url=request.url.replace("//www.", f"//h{n % hosts}.", 1))
        for n, request in enumerate(requests)
    ]


if __name__ == "__main__":
    main()
