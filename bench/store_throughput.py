"""Store throughput: the batched MongoStorePipeline against one upsert per item.

One mongoeco memory server (started here, see tests/mongo_server.py) takes the
same synthetic stories both ways, each round into fresh databases, alternating:

- ``crawl``: ``scrapy runspider tests/store_spider.py`` fed N stories, items/s =
  N / the crawl's elapsed time (its stats). ``batched`` is MongoStorePipeline;
  ``per-item`` is :class:`PerItemUpsertPipeline`, one ``update_one(upsert)`` per
  item on the reactor thread (the obvious pipeline).
- ``store``: the same writes without Scrapy: ``MongoStore.write_batch`` in
  batches of 500 against ``update_one(upsert)`` per item; ``scheduled`` is the
  batched store as a historical crawl runs it, every sid new to the store, each
  story's re-fetch schedule moved, with a 404 (a gap) every 100 stories;
  ``recrawl`` writes the same batches a second time into the database a
  ``scheduled`` pass filled (every sid stored: a refresh crawl's batches) and
  times that second pass. Their MongoDB commands per batch are counted too
  (pymongo's command monitoring): each one is a round trip.

Both produce the same documents. Prints each run, the medians and the ratios.

    .venv/bin/python bench/store_throughput.py --stories 3000 --rounds 3
    .venv/bin/python bench/store_throughput.py --levels store --store-modes scheduled,recrawl

``--levels`` and ``--store-modes`` pick what runs (the ratios need ``batched`` and ``per-item``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
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
#: The store's modes, and those whose MongoDB commands per batch are reported.
STORE_MODES = ("batched", "per-item", "scheduled", "recrawl")
SCHEDULED_MODES = frozenset({"scheduled", "recrawl"})
#: Commands per batch of each scheduled mode, one entry a run.
commands_per_batch: dict[str, list[float]] = {}


def store_rate(mode: str, uri: str, stories: list[dict[str, Any]]) -> float:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    policy = RefreshPolicy.from_settings(Settings()) if mode in SCHEDULED_MODES else None
    store = MongoStore(uri, database, "stories", policy=policy)
    store.prepare()  # as the pipeline does: the indexes, and the sids the store holds (none)
    now = datetime.now(UTC)
    writes: list[StoryWrite | Touch | Miss] = []
    for number, story in enumerate(stories, 1):
        writes.append(story_write(story, now))
        if mode in SCHEDULED_MODES and number % 100 == 0:
            writes.append(Miss(len(stories) + number, now))  # a sid that answered 404
    batches = [writes[start : start + BATCH] for start in range(0, len(writes), BATCH)]
    if mode == "recrawl":  # the historical crawl first, by a store that then knows every sid
        for batch in batches:
            store.write_batch(batch)
    started = time.perf_counter()
    commands_before = COMMANDS.commands
    if mode != "per-item":
        for batch in batches:
            store.write_batch(batch)
    else:
        for write in writes:
            assert isinstance(write, StoryWrite)
            store.collection.update_one({"sid": write.sid}, write.upsert_update, upsert=True)
    seconds = time.perf_counter() - started
    if mode in SCHEDULED_MODES:
        commands_per_batch.setdefault(mode, []).append((COMMANDS.commands - commands_before) / len(batches))
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
    parser.add_argument("--levels", default="crawl,store", help="crawl, store or both (comma-separated)")
    parser.add_argument("--store-modes", default=",".join(STORE_MODES), help="store modes to run")
    options = parser.parse_args()
    levels = options.levels.split(",")
    store_modes = [mode for mode in options.store_modes.split(",") if mode]
    if unknown := set(levels) - {"crawl", "store"} | set(store_modes) - set(STORE_MODES):
        parser.error(f"unknown level or store mode: {', '.join(sorted(unknown))}")
    stories = [make_story(sid) for sid in range(1, options.stories + 1)]

    rates: dict[tuple[str, str], list[float]] = {}
    with mongo_server() as server, tempfile.TemporaryDirectory() as tmp:
        runs: dict[tuple[str, str], Callable[[], float]] = {}
        if "crawl" in levels:
            for name, pipeline in (
                ("batched", "solidot_spider.crawl.pipelines.store.MongoStorePipeline"),
                ("per-item", "store_throughput.PerItemUpsertPipeline"),
            ):
                runs["crawl", name] = functools.partial(crawl_rate, pipeline, server.uri, stories, Path(tmp))
        if "store" in levels:
            for mode in store_modes:
                runs["store", mode] = functools.partial(store_rate, mode, server.uri, stories)
        for round_no in range(options.rounds):
            for key, run in runs.items():
                rate = run()
                rates.setdefault(key, []).append(rate)
                print(f"round {round_no + 1}: {key[0]:5} {key[1]:9} {rate:8.0f} items/s", flush=True)

    print(f"{options.stories} stories, {options.rounds} rounds, mongoeco memory engine; median items/s:")
    for key, values in rates.items():
        line = f"{key[0]:5} {key[1]:9} {statistics.median(values):8.0f}"
        if key[1] in commands_per_batch:
            commands = statistics.median(commands_per_batch[key[1]])
            line += f"   MongoDB commands per batch of {BATCH}: {commands:.2f}"
        print(line)
    for level in ("crawl", "store"):
        if (level, "batched") in rates and (level, "per-item") in rates:
            ratio = statistics.median(rates[level, "batched"]) / statistics.median(rates[level, "per-item"])
            print(f"{level:5} batched / per-item {ratio:5.2f}x")


if __name__ == "__main__":
    main()
