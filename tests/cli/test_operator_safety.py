"""What the operator's tools show and write is safe: a terminal never runs what Redis holds, and two
workers on one machine never share an output file."""

from __future__ import annotations

import json
import os
import re
import socket

from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.status import StatusReader, render
from scrapy_sharedcrawl.testing.redis_server import RedisServer
from solidot_spider.crawl.addons import DefaultOutput


def test_status_prints_what_redis_holds_without_its_control_characters(redis_srv: RedisServer) -> None:
    """A worker entry or stat name with escape codes (clear screen, a fake prompt, reversed text)."""
    redis_srv.start()
    hostile = "evil\x1b[2J\x1b]0;pwned\x07\u202ehost\r\nFAKE LINE"
    with redis_srv.client() as client:
        client.flushall()
        client.zadd("{solidot}:workers", {"w1": int(client.time()[0]) * 1000})
        entry = {"host": hostile, "pid": 1, "started_at": 0, "pages": 3, "items": 2, "heartbeat": 5}
        client.hset("{solidot}:workers:info", "w1", json.dumps(entry))
        client.hset("{solidot}:stats", f"spider_exceptions/{hostile}", 1)
        client.hset("{solidot}:requests:dead", "bad", "host: evil\nX")
    settings = Settings({"REDIS_URL": redis_srv.url})
    status = StatusReader(settings, "solidot").read()

    text = render(status)

    assert status.dead_letters == 1 and "1 refused requests" in text
    assert status.workers and status.workers[0]["host"] == hostile  # --json keeps the value as it is
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text), repr(text)
    assert "FAKE LINE" in text and "\nFAKE LINE" not in text  # on the worker's own line, not a new one


def test_each_worker_of_a_shared_crawl_gets_its_own_output_file() -> None:
    shared = Settings({"SOLIDOT_OUTPUT": "output/%(name)s.jsonl", "REDIS_URL": "redis://127.0.0.1:1/0"})
    alone = Settings({"SOLIDOT_OUTPUT": "output/%(name)s.jsonl"})
    for settings in (shared, alone):
        DefaultOutput().update_settings(settings)

    (shared_file,) = shared.getdict("FEEDS")
    (alone_file,) = alone.getdict("FEEDS")
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    assert shared_file == f"output/%(name)s-{host}-{os.getpid()}.jsonl"
    assert alone_file == "output/%(name)s.jsonl"  # a lone crawl keeps the one file
