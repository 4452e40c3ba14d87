"""Scripts in one pipeline without redis-py's SCRIPT EXISTS round trip, counted by Redis itself.

``INFO commandstats`` of the private redis-server counts what reached it: a script is loaded once,
each pipeline is its EVALSHAs only, and after a ``SCRIPT FLUSH`` (what a Redis restart or a failover
looks like to a script cache) the failed commands run again, each exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.script_pipeline import ScriptCall, ScriptPipeline

#: Adds ARGV[1] to KEYS[1]; returns the new value (so a command run twice shows).
INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
APPEND = "return redis.call('APPEND', KEYS[1], ARGV[1])"


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    client.config_resetstat()
    yield client
    client.close()


def calls_of(server: redis.Redis, command: str) -> int:
    """How many times ``command`` (``evalsha``, ``script|load``…) reached Redis since the reset."""
    stats = server.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def test_a_script_is_loaded_once_and_no_pipeline_asks_script_exists(server: redis.Redis) -> None:
    incr, append = server.register_script(INCR_BY), server.register_script(APPEND)
    pipeline = ScriptPipeline(server)
    for round_no in range(1, 6):
        replies = pipeline.execute(
            [ScriptCall(incr, ["n"], [2]), ScriptCall(append, ["s"], ["x"]), ScriptCall(incr, ["n"], [1])]
        )
        assert replies == [3 * round_no - 1, round_no, 3 * round_no]
    assert calls_of(server, "script|exists") == 0
    assert calls_of(server, "script|load") == 2  # each script once, in the first pipeline
    assert calls_of(server, "evalsha") == 15
    # redis-py's own pipeline asks SCRIPT EXISTS before every pipeline: the round trip saved
    pipe = server.pipeline(transaction=False)
    incr(keys=["n"], args=[1], client=pipe)
    pipe.execute()
    assert calls_of(server, "script|exists") == 1


def test_after_script_flush_only_the_failed_commands_run_again_each_once(server: redis.Redis) -> None:
    incr, append = server.register_script(INCR_BY), server.register_script(APPEND)
    pipeline = ScriptPipeline(server)
    assert pipeline.execute([ScriptCall(incr, ["n"], [1])]) == [1]
    server.script_flush()  # Redis restarted empty, or a failover to a replica with no scripts
    replies = pipeline.execute(
        [ScriptCall(incr, ["n"], [10]), ScriptCall(append, ["s"], ["ab"]), ScriptCall(incr, ["m"], [5])]
    )
    assert replies == [11, 2, 5]
    assert (int(server.get("n") or 0), server.get("s"), int(server.get("m") or 0)) == (11, b"ab", 5)
    # the append script was never loaded: it rode with the first try; incr failed NOSCRIPT and was
    # loaded and run again, alone
    assert calls_of(server, "script|load") == 3  # incr, then append, then incr again after the flush
    assert calls_of(server, "script|exists") == 0
    # and from then on it is known loaded
    before = calls_of(server, "script|load")
    assert pipeline.execute([ScriptCall(incr, ["n"], [1]), ScriptCall(append, ["s"], ["c"])]) == [12, 3]
    assert calls_of(server, "script|load") == before


def test_an_error_reply_is_raised_as_redis_py_raises_it(server: redis.Redis) -> None:
    incr = server.register_script(INCR_BY)
    server.set("text", "not a number")
    with pytest.raises(redis.ResponseError):
        ScriptPipeline(server).execute([ScriptCall(incr, ["n"], [1]), ScriptCall(incr, ["text"], [1])])
    assert int(server.get("n") or 0) == 1  # the commands before it ran, as in a redis-py pipeline


class _Spider(Spider):
    name = "pages"
    allowed_domains = ("example.org",)

    def parse(self, response: object) -> None:
        pass


def test_the_queue_pushes_and_pops_through_a_script_flush(server: redis.Redis, redis_url: str) -> None:
    crawler = get_crawler(_Spider, {"REDIS_URL": redis_url})
    spider = _Spider.from_crawler(crawler)
    queue = LeasedPriorityQueue(server, spider, fingerprint=crawler.request_fingerprinter.fingerprint)
    first = [queue.encode(Request(f"https://example.org/{n}")) for n in range(3)]
    pushed, popped = queue.push_and_pop(first, "worker-1", 60, count=1)
    assert [status for status, _ in pushed] == [1, 1, 1]
    assert popped is not None and [request.url for _, request in popped.leased] == ["https://example.org/0"]
    server.script_flush()  # both scripts known loaded, now gone: every command fails, all re-run in order
    more = [queue.encode(Request(f"https://example.org/{n}")) for n in range(3, 5)]
    pushed, popped = queue.push_and_pop(more, "worker-1", 60, count=10)
    assert [status for status, _ in pushed] == [1, 1]  # queued once each, not refused as retried
    assert popped is not None
    assert sorted(request.url for _, request in popped.leased) == [
        f"https://example.org/{n}" for n in range(1, 5)
    ]
    assert len(queue) == 0
    assert calls_of(server, "script|exists") == 0
