"""Store throughput: the batched MongoStorePipeline against one upsert per item.

One mongoeco memory server (started here, see tests/mongo_server.py) takes the
same synthetic stories both ways, each round into fresh databases, alternating:

- ``crawl``: ``scrapy runspider tests/store_spider.py`` fed N stories, items/s =
  N / the crawl's elapsed time (its stats). ``batched`` is MongoStorePipeline;
  ``per-item`` is :class:`PerItemUpsertPipeline`, one ``update_one(upsert)`` per
  item on the reactor thread (the obvious pipeline).
- ``store``: the same writes without Scrapy: ``MongoStore.write_batch`` in
  batches of 500 against ``update_one(upsert)`` per item; ``scheduled`` is the
  batched store as a crawl runs it, moving each story's re-fetch schedule, with a
  404 (a gap) every 100 stories. Its MongoDB commands per batch are counted too
  (pymongo's command monitoring): each one is a round trip.

Both produce the same documents. Prints each run, the medians and the ratios.

    .venv/bin/python bench/store_throughput.py --stories 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo import MongoClient, monitoring
from scrapy.crawler import Crawler
from scrapy.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mongo_server import mongo_server  # noqa: E402
from store_spider import make_story  # noqa: E402

from solidot_spider.archive.documents import StoryWrite, Touch, story_write  # noqa: E402
from solidot_spider.archive.mongo import MongoStore  # noqa: E402
from solidot_spider.archive.policy import RefreshPolicy  # noqa: E402
from solidot_spider.archive.schedule import Miss  # noqa: E402

BATCH = 500


class PerItemUpsertPipeline:
    """The baseline: a synchronous ``update_one(upsert=True)`` per item, as a naive pipeline does."""

    def __init__(self, uri: str, database: str) -> None:
        self.collection = MongoClient(uri, tz_aware=True)[database]["stories"]
        self.collection.create_index("sid", unique=True)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PerItemUpsertPipeline:
        return cls(crawler.settings["MONGO_URI"], crawler.settings["MONGO_DATABASE"])

    def process_item(self, item: Any) -> Any:
        write = story_write(ItemAdapter(item).asdict(), datetime.now(UTC))
        self.collection.update_one({"sid": write.sid}, write.upsert_update, upsert=True)
        return item


def crawl_rate(pipeline: str, uri: str, stories: list[dict[str, Any]], work: Path) -> float:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    stats_file = work / f"{database}.json"
    settings = {
        "MONGO_URI": uri,
        "MONGO_DATABASE": database,
        "ITEM_PIPELINES": json.dumps({pipeline: 800}),
        "SOLIDOT_STATS_FILE": str(stats_file),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "tests" / "store_spider.py")]
    command += [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]
    path = os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    feed = "".join(json.dumps(story, ensure_ascii=False) + "\n" for story in stories)
    subprocess.run(command, input=feed, text=True, cwd=work, env=env, check=True)
    stats = json.loads(stats_file.read_text())
    stored = count(uri, database)
    if stored != len(stories) or stats.get("item_scraped_count") != len(stories):
        raise SystemExit(f"{pipeline}: {stored} documents for {len(stories)} stories")
    return len(stories) / stats["elapsed_time_seconds"]


class CommandCounter(monitoring.CommandListener):
    """Counts the commands pymongo sends (a round trip each), handshakes and monitoring aside."""

    IGNORED = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions", "buildinfo"})

    def __init__(self) -> None:
        self.commands = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.commands += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = CommandCounter()
monitoring.register(COMMANDS)  # every client made from now on reports to it
#: Commands per batch of the last ``scheduled`` run.
commands_per_batch: list[float] = []


def store_rate(mode: str, uri: str, stories: list[dict[str, Any]]) -> float:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    policy = RefreshPolicy.from_settings(Settings()) if mode == "scheduled" else None
    store = MongoStore(uri, database, "stories", policy=policy)
    store.ensure_indexes()
    now = datetime.now(UTC)
    writes: list[StoryWrite | Touch | Miss] = []
    for number, story in enumerate(stories, 1):
        writes.append(story_write(story, now))
        if mode == "scheduled" and number % 100 == 0:
            writes.append(Miss(len(stories) + number, now))  # a sid that answered 404
    started = time.perf_counter()
    commands_before = COMMANDS.commands
    if mode != "per-item":
        for start in range(0, len(writes), BATCH):
            store.write_batch(writes[start : start + BATCH])
    else:
        for write in writes:
            assert isinstance(write, StoryWrite)
            store.collection.update_one({"sid": write.sid}, write.upsert_update, upsert=True)
    seconds = time.perf_counter() - started
    if mode == "scheduled":
        commands_per_batch.append((COMMANDS.commands - commands_before) / -(-len(writes) // BATCH))
    store.close()
    if count(uri, database) != len(stories):
        raise SystemExit("store: documents missing")
    return len(stories) / seconds


def count(uri: str, database: str) -> int:
    with MongoClient(uri) as client:
        return client[database]["stories"].count_documents({})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    stories = [make_story(sid) for sid in range(1, options.stories + 1)]

    rates: dict[tuple[str, str], list[float]] = {}
    with mongo_server() as server, tempfile.TemporaryDirectory() as tmp:
        for round_no in range(options.rounds):
            runs = {
                ("crawl", "batched"): lambda: crawl_rate(
                    "solidot_spider.crawl.pipelines.store.MongoStorePipeline", server.uri, stories, Path(tmp)
                ),
                ("crawl", "per-item"): lambda: crawl_rate(
                    "store_throughput.PerItemUpsertPipeline", server.uri, stories, Path(tmp)
                ),
                ("store", "batched"): lambda: store_rate("batched", server.uri, stories),
                ("store", "per-item"): lambda: store_rate("per-item", server.uri, stories),
                ("store", "scheduled"): lambda: store_rate("scheduled", server.uri, stories),
            }
            for key, run in runs.items():
                rate = run()
                rates.setdefault(key, []).append(rate)
                print(f"round {round_no + 1}: {key[0]:5} {key[1]:8} {rate:8.0f} items/s", flush=True)

    print(f"{options.stories} stories, {options.rounds} rounds, mongoeco memory engine; median items/s:")
    for level in ("crawl", "store"):
        batched = statistics.median(rates[(level, "batched")])
        per_item = statistics.median(rates[(level, "per-item")])
        ratio = batched / per_item
        print(f"{level:5}  batched {batched:8.0f}   per-item {per_item:8.0f}   ratio {ratio:5.2f}x")
    scheduled = statistics.median(rates[("store", "scheduled")])
    per_item = statistics.median(rates[("store", "per-item")])
    print(
        f"store  scheduled {scheduled:6.0f}   per-item {per_item:8.0f}   ratio {scheduled / per_item:5.2f}x"
        f"   MongoDB commands per batch of {BATCH}: {statistics.median(commands_per_batch):.1f}"
    )


if __name__ == "__main__":
    main()
