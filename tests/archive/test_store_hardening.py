"""One bad story costs only itself in the store: isolated in its batch, never recorded as stored,
and an acknowledgement never passes a store that has stopped writing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mongo_server import MongoServer
from scrapy.utils.test import get_crawler
from store_spider import make_story
from test_pipelines import DEDUPE, Worker, reason, run
from test_pipelines import good_story as pipeline_story
from test_store import crawl, documents

from scrapy_sharedcrawl.signals import AckPostponed
from solidot_spider.archive.documents import story_write
from solidot_spider.archive.mongo import MAX_DOCUMENT_BYTES, MongoStore, StoreConfig
from solidot_spider.crawl.pipelines.store import MongoStorePipeline
from solidot_spider.crawl.signals import story_rejected


def test_a_number_bson_cannot_hold_costs_only_its_own_story(mongo: MongoServer, mongo_db_name: str) -> None:
    now = datetime.now(UTC)
    writes = [story_write(make_story(sid), now) for sid in range(1, 6)]
    writes[1] = story_write(make_story(2, views=10**20), now)  # OverflowError in bulk_write
    writes[3] = story_write(make_story(4, comments=[{"cid": -(2**70)}]), now)
    store = MongoStore(mongo.uri, mongo_db_name, "stories")
    try:
        result = store.write_batch(writes)
    finally:
        store.close()

    assert [(rejected.sid, rejected.error) for rejected in result.rejected] == [
        (2, "OverflowError"),
        (4, "OverflowError"),
    ]
    assert result.upserted == 3 and sorted(documents(mongo.uri, mongo_db_name)) == [1, 3, 5]


def test_a_story_over_16_mb_is_rejected_with_its_size(mongo: MongoServer, mongo_db_name: str) -> None:
    now = datetime.now(UTC)
    huge = make_story(2, comments=[{"cid": n, "text": "评" * 2000} for n in range(3000)])  # ≈ 18 MB
    writes = [story_write(make_story(1), now), story_write(huge, now), story_write(make_story(3), now)]
    store = MongoStore(mongo.uri, mongo_db_name, "stories")
    try:
        result = store.write_batch(writes)
    finally:
        store.close()

    ((rejected),) = result.rejected
    assert rejected.sid == 2 and re.search(
        r"story document of [\d,]+ bytes is over MongoDB's 16 MB", rejected.message
    )
    assert sorted(documents(mongo.uri, mongo_db_name)) == [1, 3]
    assert MAX_DOCUMENT_BYTES < 16 * 1024 * 1024


def test_a_crawl_stores_every_story_but_the_one_bson_cannot_hold(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    stories = [make_story(sid) for sid in range(1, 21)]
    stories[4]["views"] = 10**20

    result = crawl(tmp_path, mongo.uri, mongo_db_name, stories)

    assert sorted(documents(mongo.uri, mongo_db_name)) == [sid for sid in range(1, 21) if sid != 5]
    assert result.mongo_stat("rejected") == 1 and result.mongo_stat("upserted") == 19
    assert "MongoDB rejected story sid=5 (OverflowError)" in result.log
    assert "Traceback" not in result.log


def test_the_acknowledgement_barrier_fails_closed_when_the_writer_has_stopped() -> None:
    crawler = get_crawler(settings_dict={"MONGO_URI": "mongodb://127.0.0.1:1"})
    store = MongoStorePipeline(crawler, StoreConfig.from_settings(crawler.settings))

    async def scenario() -> None:
        async def writer_that_died() -> None:
            raise RuntimeError("a bug in the writer")

        store._writer = asyncio.create_task(writer_that_died())
        await asyncio.sleep(0)  # it has run, and died
        store._received = 3  # three items taken, none written
        with pytest.raises(AckPostponed, match="writer has stopped with 3 items not stored"):
            await store.ack_barrier()
        store._settled = 3  # had they been written, the barrier would pass
        await store.ack_barrier()

    asyncio.run(scenario())


def test_a_rejected_story_is_not_remembered_as_written() -> None:
    """Without the signal, the same story fetched again would be dropped as a duplicate (or, next
    run, as unchanged) although MongoDB never stored it."""
    worker = Worker({DEDUPE: 300})

    async def scenario() -> list[Any]:
        async with worker:
            first = await worker.process(pipeline_story())
            worker.crawler.signals.send_catch_log(
                signal=story_rejected, sid=first.sid, reason="OverflowError"
            )
            await asyncio.sleep(0)  # the index forgets it (a coroutine)
            again = await worker.process(pipeline_story())
            twice = await worker.process(pipeline_story())
            return [first, again, twice]

    first, again, twice = run(scenario)
    assert type(again) is type(first)  # passed again, to be written
    assert reason(twice).startswith("dedupe: duplicate")  # the usual rule still holds
