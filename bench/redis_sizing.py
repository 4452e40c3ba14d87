"""Redis memory and speed of a shared crawl at the crawl's size: what a user sizes a Redis with.

For each size N, a private redis-server (started here, see scrapy_sharedcrawl/testing/redis_server.py) is
emptied and N story requests (the spider's own, URLs of the shape a crawl makes) are pushed through the
leased queue with the duplicate filter's check in the push script, a batch a round trip as a worker pushes:
on one host (a Solidot-like crawl), then spread over ``--hosts`` hosts (a broad crawl). Printed per size:

- bytes a queued request (``MEMORY USAGE`` of the queue's keys / N), a URL seen (the filter's keys / N),
  a request beyond the server's fixed part and a request in all (growth of ``INFO memory``
  ``used_memory`` / N), the fixed part (KB: the queue's scripts, the connections' buffers and, unless
  ``latency-tracking no``, Redis 7's latency histograms, ≈ 24 KB for each kind of command run, and the slow
  log: entries of push batches slower than 10 ms, at most 128), the
  filter's shards and bytes a leased request (after leasing a tenth of N, 20,000 at most, 8 a pop);
- push and pop rates with N queued against the same crawl with ``--reference`` (10^4) queued on a second
  redis-server, in alternating rounds (``--rounds``): requests a second as the client sees them and
  Redis's own µs a request (``INFO commandstats``: the scripts' time, the client's encoding and the
  machine's noise left out), and their ratios. Each round pushes 10,000 new requests and leases and
  acknowledges 10,000, so the queue stays at its size.

Filling 10^7 requests one by one through Scrapy would take the client most of an hour: the fill encodes
one real request per category and host shape and substitutes each URL into it (every batch's first
request is encoded for real and must match), its fingerprints computed by the crawler's fingerprinter in
``--fillers`` processes. What Redis receives is what a worker would send.

    .venv/bin/python bench/redis_sizing.py --sizes 1e4,1e5,1e6 --hosts 100000
    .venv/bin/python bench/redis_sizing.py --sizes 1e7 --hosts 0 --latency-tracking no
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import multiprocessing.pool
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis
from scrapy import Request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_memory import shared_story_spider  # noqa: E402

from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter  # noqa: E402
from scrapy_sharedcrawl.queue import Encoded, LeasedPriorityQueue  # noqa: E402
from scrapy_sharedcrawl.scheduler.push_buffer import PUSH_BATCH  # noqa: E402
from scrapy_sharedcrawl.testing.redis_server import RedisServer, redis_server  # noqa: E402
from solidot_spider.spiders.solidot import SolidotSpider  # noqa: E402

T = TypeVar("T")
KEY = "{solidot}:seen"
WORKER = "bench-worker"
#: Requests a pop leases, and how many (at most, and a tenth of the size) are leased to size a lease.
POP_COUNT, LEASE_SAMPLE = 8, 20_000
#: Requests pushed, then leased and acknowledged, on each server in each rate round.
ROUND_REQUESTS = 10_000
CATEGORIES = ["linux", "science", "apple", "mobile", "security"]
FIRST_SID = 60_000
#: The sid of the request each payload template is encoded from (a number no filled sid has).
TEMPLATE_SID = 999_999_999_999


@dataclass(frozen=True)
class Shape:
    """Which URLs a crawl of ``hosts`` hosts makes: sid ``n`` on host ``n % hosts``; ``seeded``: the
    requests `solidot-crawl seed --sids` queues (start requests from a sid range, the bulk of a whole-history
    crawl's queue), else the ones a day archive's page yields (with the story's category)."""

    hosts: int
    seeded: bool = False

    def url(self, sid: int) -> str:
        host = "www" if self.hosts == 1 else f"h{sid % self.hosts}"
        return f"https://{host}.solidot.org/story?sid={sid}"

    def request(self, spider: SolidotSpider, sid: int) -> Request:
        """The spider's own story request for ``sid`` on this shape's host."""
        if self.seeded:
            request = spider.story_request(sid, from_range=True)
            request.meta["is_start_request"] = True  # as seeding.py marks every seed
        else:
            request = spider.story_request(sid, categories=[CATEGORIES[sid % len(CATEGORIES)]])
        return request if self.hosts == 1 else request.replace(url=self.url(sid))


class Encoder:
    """Encodes a shape's story requests as a worker would, the payload from a template per category."""

    def __init__(self, url: str, shape: Shape) -> None:
        self.spider = shared_story_spider(url)
        self.shape = shape
        fingerprinter = self.spider.crawler.request_fingerprinter
        assert fingerprinter is not None
        self.fingerprinter = fingerprinter
        self.dupefilter = CompactRFPDupeFilter(redis.Redis.from_url(url), KEY, fingerprinter=fingerprinter)
        self.dupefilter.open()
        self.queue = LeasedPriorityQueue(
            redis.Redis.from_url(url), self.spider, lua_check_and_add=self.dupefilter.lua_check_and_add
        )
        self.templates: dict[str, tuple[bytes, bytes, int]] = {}

    def close(self) -> None:
        """Close its connections (each idle one costs Redis ≈ 20 KB, which would count as fixed)."""
        self.dupefilter.server.close()
        self.queue.server.close()

    def real(self, sid: int) -> Encoded:
        request = self.shape.request(self.spider, sid)
        return self.queue.encode(request, self.dupefilter.check(request))

    def _template(self, category: str) -> tuple[bytes, bytes, int]:
        """The payload of a request of ``category`` before and after its URL, and its priority."""
        if category not in self.templates:
            sid = TEMPLATE_SID - TEMPLATE_SID % len(CATEGORIES) + CATEGORIES.index(category)
            encoded = self.real(sid)
            prefix, suffix = encoded.payload.split(self.shape.url(sid).encode())
            self.templates[category] = (prefix, suffix, encoded.priority)
        return self.templates[category]

    def fast(self, sid: int) -> Encoded:
        """``real(sid)`` without building the spider's request: its URL in the template, its fingerprint
        from a plain request of the URL (the fingerprint reads method, URL and body only)."""
        url = self.shape.url(sid)
        prefix, suffix, priority = self._template(CATEGORIES[sid % len(CATEGORIES)])
        probe = Request(url)
        check = self.dupefilter.check_fingerprint(self.fingerprinter.fingerprint(probe))
        host = url.split("/")[2]
        return Encoded(self.queue.request_id(probe), priority, prefix + url.encode() + suffix, check, host)

    def batch(self, first: int, count: int) -> list[Encoded]:
        """Sids ``first`` .. ``first + count - 1``; the first encoded for real, and the rest must agree."""
        entries = [self.fast(sid) for sid in range(first, first + count)]
        real = self.real(first)
        if entries[0] != real:
            raise AssertionError(f"the template encoding differs from the real one:\n{entries[0]}\n{real}")
        return entries


_filler: Encoder | None = None


def _start_filler(url: str, shape: Shape) -> None:
    global _filler
    _filler = Encoder(url, shape)


def _fill_batch(span: tuple[int, int]) -> list[Encoded]:
    assert _filler is not None
    return _filler.batch(*span)


def fill(url: str, shape: Shape, count: int, fillers: int) -> Encoder:
    """Push sids FIRST_SID .. + ``count`` - 1 (whole batches) through ``url``'s queue; return its encoder."""
    encoder = Encoder(url, shape)
    end = FIRST_SID + count
    spans = [(first, min(PUSH_BATCH, end - first)) for first in range(FIRST_SID, end, PUSH_BATCH)]
    if fillers <= 1 or count < 10**5:
        for span in spans:
            encoder.queue.push_many(encoder.batch(*span))
        return encoder
    context = multiprocessing.get_context("spawn")
    with context.Pool(fillers, initializer=_start_filler, initargs=(url, shape)) as pool:
        # A few batches ahead of the pushes, in order: the fillers encode faster than one connection
        # pushes, and results waiting for it would hold the whole crawl in this process's memory.
        ahead: collections.deque[multiprocessing.pool.AsyncResult[list[Encoded]]] = collections.deque()
        for span in spans:
            ahead.append(pool.apply_async(_fill_batch, (span,)))
            if len(ahead) > 8 * fillers:
                encoder.queue.push_many(ahead.popleft().get())
        while ahead:
            encoder.queue.push_many(ahead.popleft().get())
    return encoder


@dataclass
class Memory:
    queued: float  # B a queued request
    seen: float  # B a URL seen
    shards: int
    lease: float  # B a leased request (its worker's hash, holders, counter)
    beyond: float = 0.0  # B a request beyond the server's fixed part
    in_all: float = 0.0  # B a request, everything from the server before the crawl ran a command
    fixed: float = 0.0  # KB: what the warm-up left once its keys were gone


def sizes(client: redis.Redis, keys: list[str]) -> dict[str, int]:
    """``MEMORY USAGE`` of each of ``keys`` that exists (Redis answers nil for one that doesn't)."""
    found = {key: client.memory_usage(key, samples=0) for key in keys}
    return {key: size for key, size in found.items() if size is not None}


def usage(client: redis.Redis, keys: list[str]) -> int:
    return sum(sizes(client, keys).values())


def in_batches(items: list[T]) -> list[list[T]]:
    """``items`` a push batch at a time, as a worker sends them."""
    return [items[start : start + PUSH_BATCH] for start in range(0, len(items), PUSH_BATCH)]


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def warm_up(url: str, shape: Shape) -> None:
    """Everything the bench does, once, at 10^4 (filter splits, leases, acknowledgements), and Redis's
    slow log filled, then every key deleted: what stays is what a server that has served a crawl for a
    while holds whatever the crawl's size (scripts, connections, per-command latency histograms, the slow
    log: at most ``slowlog-max-len`` entries, of push batches slower than 10 ms, which a push batch seldom
    are: the loop then stops at its bound of pushes)."""
    measure_memory(url, 0, shape, 10**4, fillers=1)[1].close()
    encoder = Encoder(url, shape)
    rate_round(encoder, [encoder.fast(sid) for sid in range(1, 1 + ROUND_REQUESTS)], Rates())
    with redis.Redis.from_url(url) as client:
        limit = int(client.config_get("slowlog-max-len")["slowlog-max-len"])
        first = FIRST_SID
        while client.slowlog_len() < limit and first < FIRST_SID + 4 * limit * PUSH_BATCH:
            encoder.queue.push_many(encoder.batch(first, PUSH_BATCH))  # logged when slower than 10 ms
            first += PUSH_BATCH
        client.flushall()
    encoder.close()


def measure_memory(url: str, empty: int, shape: Shape, size: int, fillers: int) -> tuple[Memory, Encoder]:
    """Fill an empty server to ``size`` and size it; the encoder that filled it stays open for the rates."""
    with redis.Redis.from_url(url) as client:
        client.flushall()
        before = used(client)
        encoder = fill(url, shape, size, fillers)
        after = used(client)
        memory = size_crawl(client, encoder, size)
    memory.beyond, memory.in_all, memory.fixed = (
        (after - before) / size,
        (after - empty) / size,
        (before - empty) / 1024,
    )
    return memory, encoder


def size_crawl(client: redis.Redis, encoder: Encoder, size: int) -> Memory:
    """The queue's and the filter's bytes a request, then a lease's (a tenth of the size leased)."""
    queue, dupefilter = encoder.queue, encoder.dupefilter
    filter_sizes = sizes(client, [dupefilter.meta_key, *dupefilter.shard_keys()])
    shards = sum(1 for key in filter_sizes if key != dupefilter.meta_key)
    queued = usage(client, queue.storage_keys()) / size
    seen = sum(filter_sizes.values()) / size
    sample = min(size // 10, LEASE_SAMPLE)
    leased: list[str] = []
    while len(leased) < sample:
        popped = queue.pop(WORKER, 3600, count=min(POP_COUNT, sample - len(leased)))
        leased += [request_id for request_id, _ in popped.leased]
    named = queue.named
    lease = usage(client, [named.lease(WORKER), named.holders, named.leased]) / len(leased)
    # Acknowledged, not released: a released request goes back to its host's own LIST, and the pops that
    # follow move the host's bucket entries behind it (once each, whatever the size): the rates compare
    # like with like, every request in the shared bucket as a fill leaves it on both servers.
    for ids in in_batches(leased):
        queue.ack(WORKER, ids)
    return Memory(queued, seen, shards, lease)


@dataclass
class Rates:
    pushes: list[float] = field(default_factory=list)  # requests pushed a second, a round each
    pops: list[float] = field(default_factory=list)  # requests leased a second
    push_us: list[float] = field(default_factory=list)  # Redis µs a request pushed
    pop_us: list[float] = field(default_factory=list)  # Redis µs a request leased
    ack_us: list[float] = field(default_factory=list)  # Redis µs a request acknowledged (a push batch an ack)
    #: The redis-server process's CPU µs a request pushed (``INFO cpu``): its scripts and what
    #: ``commandstats`` leaves out (reading and parsing the batch, the reply, the event loop).
    push_cpu: list[float] = field(default_factory=list)
    #: This process's own CPU µs a request pushed (building the batches' arguments, reading replies): what
    #: a worker spends, on a machine whose caches it shares with Redis here.
    client_cpu: list[float] = field(default_factory=list)

    def medians(self) -> list[float]:
        """Pushes/s, pops/s, µs a push, a pop, an acknowledgement."""
        return [median(values) for values in (self.pushes, self.pops, self.push_us, self.pop_us, self.ack_us)]


def script_usec(client: redis.Redis) -> float:
    spent = command_usec(client)
    return sum(spent.get(name, (0, 0.0))[1] for name in ("evalsha", "eval"))


def command_usec(client: redis.Redis) -> dict[str, tuple[int, float]]:
    """Calls and µs of every command Redis ran, the scripts' own calls included."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (int(s["calls"]), float(s["usec"])) for name, s in stats.items()}


def server_cpu_usec(client: redis.Redis) -> float:
    stats = client.info("cpu")
    return (float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"])) * 1e6


def timed(client: redis.Redis, step: Callable[[], object]) -> tuple[float, float]:
    """(seconds, Redis script µs) of ``step``."""
    usec = script_usec(client)
    started = time.perf_counter()
    step()
    return time.perf_counter() - started, script_usec(client) - usec


def rate_round(encoder: Encoder, entries: list[Encoded], rates: Rates) -> None:
    """Push ``entries`` (new URLs), lease as many, acknowledge them: the queue keeps its size."""
    client, queue = encoder.queue.server, encoder.queue
    batches = in_batches(entries)
    cpu, own = server_cpu_usec(client), time.process_time()
    push_seconds, push_usec = timed(client, lambda: [queue.push_many(batch) for batch in batches])
    rates.client_cpu.append((time.process_time() - own) * 1e6 / len(entries))
    rates.push_cpu.append((server_cpu_usec(client) - cpu) / len(entries))
    leased: list[str] = []

    def lease() -> None:
        while len(leased) < len(entries):
            popped = queue.pop(WORKER, 3600, count=POP_COUNT)
            if not popped.leased:
                raise AssertionError("the queue ran dry during a rate round")
            leased.extend(request_id for request_id, _ in popped.leased)

    pop_seconds, pop_usec = timed(client, lease)
    acks = in_batches(leased)
    _, ack_usec = timed(client, lambda: [queue.ack(WORKER, ids) for ids in acks])
    rates.pushes.append(len(entries) / push_seconds)
    rates.pops.append(len(leased) / pop_seconds)
    rates.push_us.append(push_usec / len(entries))
    rates.pop_us.append(pop_usec / len(leased))
    rates.ack_us.append(ack_usec / len(leased))


def compare_rates(
    measured: Encoder, reference: Encoder, size: int, rounds: int, commands: bool = False
) -> tuple[Rates, Rates]:
    """Alternate rate rounds between the two servers (which goes first alternates too), each round's
    requests new to both and encoded before it is timed; with ``commands``, print what each command
    the rounds ran cost on each server (µs a call, calls a request)."""
    at_size, at_reference = Rates(), Rates()
    before = {encoder: command_usec(encoder.queue.server) for encoder in (measured, reference)}
    for number in range(rounds):
        first = FIRST_SID + size + number * ROUND_REQUESTS
        entries = [measured.fast(sid) for sid in range(first, first + ROUND_REQUESTS)]
        pairs = [(measured, at_size), (reference, at_reference)]
        for encoder, rates in pairs if number % 2 == 0 else reversed(pairs):
            rate_round(encoder, entries, rates)
    if commands:
        spent = {encoder: _spent(before[encoder], command_usec(encoder.queue.server)) for encoder in before}
        requests = rounds * ROUND_REQUESTS
        cpu, ref_cpu = median(at_size.push_cpu), median(at_reference.push_cpu)
        own, ref_own = median(at_size.client_cpu), median(at_reference.client_cpu)
        print(f"  redis-server CPU µs a request pushed at {size:,}: {cpu:.2f} ({ref_cpu:.2f})")
        print(f"  the bench's own CPU µs a request pushed at {size:,}: {own:.2f} ({ref_own:.2f})")
        print(f"  commands of the rate rounds at {size:,} (reference): µs a call, calls a request")
        for name, (calls, usec) in sorted(spent[measured].items(), key=lambda item: -item[1][1]):
            ref_calls, ref_usec = spent[reference].get(name, (0, 0.0))
            print(
                f"    {name:<12} {usec / calls:>7.2f} ({ref_usec / ref_calls if ref_calls else 0:>6.2f})"
                f" {calls / requests:>7.3f} ({ref_calls / requests:>6.3f})"
            )
    return at_size, at_reference


def _spent(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> dict[str, tuple[int, float]]:
    spent = {}
    for name, (calls, usec) in after.items():
        was_calls, was_usec = before.get(name, (0, 0.0))
        if calls > was_calls and name not in ("info", "config|get"):
            spent[name] = (calls - was_calls, usec - was_usec)
    return spent


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def start_server(stack: contextlib.ExitStack, latency_tracking: str) -> RedisServer:
    server = stack.enter_context(redis_server())
    if latency_tracking:
        redis.Redis.from_url(server.url).config_set("latency-tracking", latency_tracking)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1e4,1e5", help="requests queued, comma-separated (up to 1e7)")
    parser.add_argument(
        "--hosts", default="100000", help="also spread each size over this many hosts (a broad crawl; 0: not)"
    )
    parser.add_argument("--reference", default="1e4", help="requests queued on the rates' reference server")
    parser.add_argument("--rounds", type=int, default=6, help="rate rounds on each server (0: no rates)")
    parser.add_argument("--fillers", type=int, default=2, help="processes that encode the fill")
    parser.add_argument("--commands", action="store_true", help="what each Redis command cost in the rates")
    parser.add_argument(
        "--seeded",
        action="store_true",
        help="seeds (`solidot-crawl seed --sids`), not stories found on pages",
    )
    parser.add_argument(
        "--latency-tracking", default="", choices=["", "yes", "no"], help="CONFIG SET it (default: Redis's)"
    )
    options = parser.parse_args()
    sizes = [int(float(size)) for size in options.sizes.split(",")]
    reference_size = int(float(options.reference))
    hosts = int(float(options.hosts))
    shapes = [Shape(1, options.seeded)] + ([Shape(hosts, options.seeded)] if hosts > 1 else [])

    with contextlib.ExitStack() as stack:
        server = start_server(stack, options.latency_tracking)
        reference = start_server(stack, options.latency_tracking) if options.rounds else None
        client = redis.Redis.from_url(server.url)
        empty = used(client)
        for shape in shapes:
            warm_up(server.url, shape)
        tracking = client.config_get("latency-tracking").get("latency-tracking", "n/a")
        version = client.info("server")["redis_version"]
        kind = "seeded" if options.seeded else "found on pages"
        print(f"Redis {version}, latency-tracking {tracking}, slow log {client.slowlog_len()} entries; story")
        print(f"requests {kind}, {PUSH_BATCH} a push, pops of {POP_COUNT}")
        print(f"rates: {options.rounds} alternated rounds of {ROUND_REQUESTS:,} on each server\n")
        memory_rows, rate_rows = [], []
        for size in sizes:
            for shape in shapes:
                memory, encoder = measure_memory(server.url, empty, shape, size, options.fillers)
                memory_rows.append((size, shape.hosts, memory))
                where = f"{size:,} requests on {min(shape.hosts, size):,} hosts"
                print(f"  {where}: {memory.beyond:.1f} B a request beyond {memory.fixed:.0f} KB", flush=True)
                if reference is not None and size > reference_size:
                    with redis.Redis.from_url(reference.url) as reference_client:
                        reference_client.flushall()
                    compared = fill(reference.url, shape, reference_size, options.fillers)
                    at_size, at_reference = compare_rates(
                        encoder, compared, size, options.rounds, options.commands
                    )
                    rate_rows.append((size, shape.hosts, at_size, at_reference))
                    compared.close()
                encoder.close()
        print_memory(memory_rows)
        print_rates(rate_rows, reference_size)


def print_memory(rows: list[tuple[int, int, Memory]]) -> None:
    print("\nbytes a request (seen: a URL; fixed: KB a server)")
    print("  requests    hosts  queued    seen  beyond fixed  in all  fixed KB   shards   lease")
    for size, hosts, memory in rows:
        print(
            f"{size:>10,} {min(hosts, size):>8,} {memory.queued:>7.1f} {memory.seen:>7.1f}"
            f" {memory.beyond:>13.1f} {memory.in_all:>7.1f} {memory.fixed:>9.0f}"
            f" {memory.shards:>8,} {memory.lease:>7.1f}"
        )


def print_rates(rows: list[tuple[int, int, Rates, Rates]], reference_size: int) -> None:
    """Medians of the rounds at size, at the reference size, and their ratio."""
    if not rows:
        return
    print("\nrates (medians of the rounds) and Redis's own µs a request")
    print("  requests    hosts     queued  pushes/s    pops/s   push µs    pop µs    ack µs")
    for size, hosts, at_size, at_reference in rows:
        measured, reference = at_size.medians(), at_reference.medians()
        ratios = [at / of for at, of in zip(measured, reference, strict=True)]
        print(f"{size:>10,} {min(hosts, size):>8,} {size:>10,}" + "".join(_cells(measured, "{:>10,.0f}")))
        print(f"{'':>19} {reference_size:>10,}" + "".join(_cells(reference, "{:>10,.0f}")))
        print(f"{'':>19} {'ratio':>10}" + "".join(_cells(ratios, "{:>10.2f}")))


def _cells(values: list[float], rate_format: str) -> list[str]:
    """Two rates in ``rate_format``, then three µs figures."""
    return [rate_format.format(value) for value in values[:2]] + [f"{value:>10.2f}" for value in values[2:]]


if __name__ == "__main__":
    main()
