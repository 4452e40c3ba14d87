"""Item pipelines clean → validate → dedupe, built and called by real Scrapy machinery.

Each ``Worker`` is a real crawler's item processor (``ITEM_PROCESSOR``, as
Scrapy's scraper builds it) driven on an asyncio loop, Scrapy 2.19's
reactorless mode; the last tests run whole crawls through the engine. Redis is
a private redis-server (``tests/redis_server.py``); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import pytest
import scrapy
from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.pipelines import ItemPipelineManager
from scrapy.settings import Settings
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.testing.redis_server import RedisServer
from solidot_spider.archive.hashes import (
    ContentHashIndex,
    IndexUnavailable,
    MemoryContentHashIndex,
    RedisContentHashIndex,
)
from solidot_spider.crawl.pipelines.validate import unsafe_markup
from solidot_spider.crawl.signals import story_unchanged
from solidot_spider.site.content import content_hash
from solidot_spider.site.items import Comment, Story, Topic

T = TypeVar("T")

BASE_URL = "http://www.solidot.test:8080"
REUTERS = (
    "https://www.reuters.com/technology/artificial-intelligence/"
    "putin-orders-russian-government-top-bank-develop-ai-cooperation-with-china-2025-01-01/"
)
CLEAN = "solidot_spider.crawl.pipelines.clean.CleanPipeline"
VALIDATE = "solidot_spider.crawl.pipelines.validate.ValidatePipeline"
DEDUPE = "solidot_spider.crawl.pipelines.dedupe.DedupePipeline"
ALL = {CLEAN: 100, VALIDATE: 200, DEDUPE: 300}

HOSTILE = (
    '<p onmouseover="steal()">段落<script>alert(1)</script><img src="x" onerror="alert(2)">'
    '<a href="javascript:alert(3)">链接</a><a href=" JaVa\tScRiPt:alert(4)">二</a>'
    '<style>body{display:none}</style><iframe src="https://evil.example/"></iframe>'
    '<svg onload="alert(5)"></svg></p>'
)


def good_story(sid: int = 80222, **changes: Any) -> Story:
    """Story 80222 as the parser writes it (shared/fixtures/story-80222.md), plus one comment."""
    story = Story(
        sid=sid,
        url=f"{BASE_URL}/story?sid={sid}",
        title="普京命令俄罗斯加强与中国在 AI 上的合作",
        author="Wilson",
        author_uid=42865,
        published_at="2025-01-03T14:01:00+08:00",
        topics=[Topic(tid=151, name="人工智能")],
        categories=["science"],
        department="月海沉船",
        body_html=f"俄罗斯总统普京下令政府以及联邦储蓄银行(Sberbank)加强与中国在 AI 上的合作。<br>{REUTERS}",
        body_text=f"俄罗斯总统普京下令政府以及联邦储蓄银行(Sberbank)加强与中国在 AI 上的合作。\n{REUTERS}",
        references=[REUTERS],
        views=5581,
        comment_count=1,
        comments=[
            Comment(
                cid=296690,
                parent_cid=None,
                author="Craynic",
                author_uid=18046,
                title="很正常",
                score=1,
                published_at="2026-07-27T13:22:00+08:00",
                text="没有沟通需要的语言就会慢慢消亡\n\n第二段",
            )
        ],
        fetched_at="2026-11-25T04:00:00+00:00",
    )
    return replace(story, **changes)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run an async scenario on a fresh asyncio loop (Scrapy's reactorless mode)."""

    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


class Worker:
    """One crawler's item pipelines, called the way Scrapy's scraper calls them."""

    def __init__(self, pipelines: dict[str, int], **settings: Any) -> None:
        self.crawler: Crawler = get_crawler(
            settings_dict={"SOLIDOT_BASE_URL": BASE_URL, "ITEM_PIPELINES": pipelines, **settings}
        )
        processor: type[ItemPipelineManager] = load_object(self.crawler.settings["ITEM_PROCESSOR"])
        self.processor = build_from_crawler(processor, self.crawler)

    async def __aenter__(self) -> Worker:
        await self.processor.open_spider_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.processor.close_spider_async()

    async def process(self, item: Any) -> Any:
        """The item that comes out, or the DropItem that stopped it (any other exception fails the test)."""
        try:
            return await self.processor.process_item_async(item)
        except DropItem as drop:
            return drop

    def stats(self, prefix: str = "solidot/") -> dict[str, Any]:
        return {k: v for k, v in self.crawler.stats.get_stats().items() if k.startswith(prefix)}


def process_all(pipelines: dict[str, int], items: list[Any], **settings: Any) -> tuple[list[Any], Worker]:
    """Run ``items`` one after another through a new worker."""
    worker = Worker(pipelines, **settings)

    async def scenario() -> list[Any]:
        async with worker:
            return [await worker.process(item) for item in items]

    return run(scenario), worker


def reason(result: Any) -> str:
    assert isinstance(result, DropItem), f"expected a drop, got {result!r}"
    return str(result)


# --- Clean ------------------------------------------------------------------------


def test_clean_leaves_a_correct_story_exactly_as_it_is() -> None:
    stories = [good_story(), good_story(81000, department=None, comments=[], comment_count=0, views=None)]
    expected = copy.deepcopy(stories)
    results, worker = process_all({CLEAN: 100, VALIDATE: 200}, stories)
    assert results == expected
    assert worker.stats() == {"solidot/clean/items": 2, "solidot/validate/valid": 2}


def test_clean_fixes_a_dirty_story_and_cleaning_again_changes_nothing() -> None:
    dirty = good_story(
        url="http://linux.solidot.test:8080/story?sid=80222",
        title="\u3000普京命令俄罗斯&amp;amp;中国　Cafe\u0301\xa0合作 ",
        author=" Wilson\u200b ",
        department="来自月海沉船部门",
        published_at="2025-01-03T06:01:00+00:00",
        fetched_at="2026-11-25T12:00:00+08:00",
        topics=[Topic(tid=171, name="Android ")],
        references=[REUTERS, " HTTPS://Example.COM/a b ", REUTERS, "javascript:alert(1)"],
        body_html='<p onclick="x()">正文 &amp; 更多<script>alert(1)</script></p><p>第二段</p>',
        body_text="",
        comments=[
            Comment(
                cid=1,
                parent_cid=None,
                author="abc\u3000",
                author_uid=7,
                title="Re:很正常&quot;",
                score=-1,
                published_at="2026-07-27 14:05",
                text=" 第一行 \n\n\n 第二行\u3000",
            )
        ],
    )
    results, worker = process_all({CLEAN: 100, VALIDATE: 200}, [dirty])
    cleaned = results[0]
    assert isinstance(cleaned, Story), cleaned
    assert cleaned.url == f"{BASE_URL}/story?sid=80222"
    assert cleaned.title == "普京命令俄罗斯&中国 Café 合作"
    assert cleaned.author == "Wilson"
    assert cleaned.department == "月海沉船"
    assert cleaned.published_at == "2025-01-03T14:01:00+08:00"
    assert cleaned.fetched_at == "2026-11-25T04:00:00+00:00"
    assert cleaned.topics == [Topic(tid=171, name="Android")]
    assert cleaned.references == [REUTERS, "https://example.com/a%20b"]
    assert cleaned.body_html == "<p>正文 &amp; 更多</p><p>第二段</p>"
    assert cleaned.body_text == "正文 & 更多\n\n第二段"
    assert cleaned.comments == [
        Comment(1, None, "abc", 7, 'Re:很正常"', -1, "2026-07-27T14:05:00+08:00", "第一行\n\n第二行")
    ]
    changed = {k.rsplit("/", 1)[1] for k in worker.stats("solidot/clean/changed_fields/")}
    assert changed == {
        "url", "title", "author", "department", "published_at", "fetched_at", "topics",
        "references", "body_html", "body_text", "comments",
    }  # fmt: skip
    assert worker.stats("solidot/validate/") == {"solidot/validate/valid": 1}

    again = copy.deepcopy(cleaned)
    results, worker = process_all({CLEAN: 100}, [again])
    assert results == [cleaned]
    assert worker.stats("solidot/clean/changed_fields/") == {}


def test_clean_leaves_wrong_types_for_validate() -> None:
    weird = good_story(title=None, references=[REUTERS, 7], published_at="yesterday", topics="151")
    results, _ = process_all({CLEAN: 100}, [weird])
    assert results[0] is weird
    assert (weird.title, weird.references, weird.published_at) == (None, [REUTERS, 7], "yesterday")


# --- Validate ---------------------------------------------------------------------

INVALID: list[tuple[str, Callable[[int], Any]]] = [
    ("bad_sid", lambda sid: replace(good_story(sid), sid=-sid)),
    ("bad_url", lambda sid: good_story(sid, url=f"{BASE_URL}/story?sid=1")),
    ("missing_title", lambda sid: good_story(sid, title=" \u3000")),
    ("bad_type/title", lambda sid: good_story(sid, title=["a"])),
    ("missing_author", lambda sid: good_story(sid, author="")),
    ("bad_time", lambda sid: good_story(sid, published_at="2025年13月45日")),
    ("bad_type/topics", lambda sid: good_story(sid, topics=[{"tid": "x", "name": "y"}])),
    ("bad_type/references", lambda sid: good_story(sid, references=[REUTERS, None])),
    ("bad_type/views", lambda sid: good_story(sid, views=-1)),
    ("bad_type/comment_count", lambda sid: good_story(sid, comment_count="3")),
    ("bad_type/comments", lambda sid: good_story(sid, comments=[Comment(0, None, "a", None, "t", None, None, "x")])),
    ("bad_type/comments", lambda sid: good_story(sid, comments=[17])),
    ("body_too_large", lambda sid: good_story(sid, body_html="汉" * 700_000)),
    ("missing_title", lambda sid: {k: v for k, v in ItemAdapter(good_story(sid)).asdict().items() if k != "title"}),
    ("bad_type/item", lambda sid: f"not a story {sid}"),
    ("check_failed", lambda sid: self_containing(good_story(sid))),
]  # fmt: skip


def self_containing(story: Story) -> dict[str, Any]:
    """A story whose comments contain themselves: no schema check can finish on it."""
    item = ItemAdapter(story).asdict()
    item["comments"].append(item["comments"])
    return item


def test_validate_drops_each_invalid_kind_with_its_reason_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [make(sid) for sid in (1001, 1002) for _, make in INVALID]
    with caplog.at_level(logging.INFO, logger="solidot_spider"):
        results, worker = process_all({CLEAN: 100, VALIDATE: 200}, items)

    expected = [expected_reason for _ in (1001, 1002) for expected_reason, _ in INVALID]
    assert [reason(result).split(" ")[1] for result in results] == expected
    counts: dict[str, int] = {}
    for name in expected:
        counts[f"solidot/validate/dropped/{name}"] = counts.get(f"solidot/validate/dropped/{name}", 0) + 1
    assert worker.stats("solidot/validate/") == counts

    logged = [r.getMessage() for r in caplog.records if r.name == "solidot_spider.crawl.pipelines.validate"]
    assert len(logged) == len(set(expected)), logged  # once per reason
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name.endswith("validate"))
    assert any("sid=1001: missing_title" in line for line in logged)
    assert not any("sid=1002" in line for line in logged)


def test_validate_alone_catches_an_unsanitized_body() -> None:
    bodies = [
        '<p>x<img src="a.png" onerror="alert(1)"></p>',
        '<a href=" java\tscript:alert(1)">x</a>',
        "<script>alert(1)</script>",
        '<p style="background:url(x)">x</p>',
    ]
    results, worker = process_all({VALIDATE: 200}, [good_story(body_html=body) for body in bodies])
    assert [reason(result).split(" ")[1] for result in results] == ["unsafe_body"] * 4
    assert worker.stats("solidot/validate/") == {"solidot/validate/dropped/unsafe_body": 4}


def test_a_hostile_body_is_stored_sanitized_or_dropped_with_a_reason() -> None:
    one_mb = HOSTILE * (1_000_000 // len(HOSTILE.encode()))
    five_mb = HOSTILE * (5_000_000 // len(HOSTILE.encode()))
    items = [good_story(1, body_html=one_mb, body_text=""), good_story(2, body_html=five_mb)]
    results, worker = process_all(ALL, items)

    stored = results[0]
    assert isinstance(stored, Story), stored
    assert stored.body_html.count("<p>段落") == one_mb.count("<p ")
    assert unsafe_markup(stored.body_html) is None
    lowered = stored.body_html.lower()
    assert "<script" not in lowered and "onerror" not in lowered and "javascript" not in lowered
    assert "alert" not in stored.body_text and stored.body_text.startswith("段落链接二")
    assert reason(results[1]).startswith("validate: body_too_large")
    assert worker.stats("solidot/validate/") == {
        "solidot/validate/valid": 1,
        "solidot/validate/dropped/body_too_large": 1,
    }


def test_text_no_encoder_accepts_is_repaired_not_fatal() -> None:
    broken = good_story(
        title="标题\ud800",
        body_html="<p>正文\udfff\x01</p>",
        body_text="",
        references=["https://a.example/\ud800"],
    )
    results, _ = process_all(ALL, [broken])
    stored = results[0]
    assert isinstance(stored, Story), stored
    assert (stored.title, stored.references) == ("标题\ufffd", [])
    assert stored.body_html == "<p>正文\ufffd\x01</p>"
    assert stored.body_text.startswith("正文\ufffd")


def test_a_body_size_limit_comes_from_the_setting() -> None:
    results, _ = process_all(ALL, [good_story()], SOLIDOT_MAX_BODY_BYTES=100)
    assert reason(results[0]).startswith("validate: body_too_large")


# --- Dedupe -----------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def index(request: pytest.FixtureRequest) -> ContentHashIndex:
    if request.param == "memory":
        return MemoryContentHashIndex()
    settings = Settings({"REDIS_URL": request.getfixturevalue("redis_url")})
    return RedisContentHashIndex(redis_from_settings(settings), describe(settings), key="test:hashes")


def test_the_index_compares_and_sets_atomically(index: ContentHashIndex) -> None:
    async def scenario() -> list[str]:
        outcomes: list[str] = [
            await index.compare_and_set(7, "a"),
            await index.compare_and_set(7, "a"),
            await index.compare_and_set(7, "b"),
        ]
        await index.forget(7, "a")  # no longer the recorded hash: kept
        outcomes.append(await index.compare_and_set(7, "b"))
        await index.forget(7, "b")
        outcomes.append(await index.compare_and_set(7, "b"))
        # many concurrent first sightings of one story: exactly one is new
        outcomes.extend(sorted(await asyncio.gather(*(index.compare_and_set(8, "c") for _ in range(20)))))
        await index.close()
        return outcomes

    assert run(scenario) == ["new", "unchanged", "changed", "unchanged", "new", "new"] + ["unchanged"] * 19


def test_comparisons_made_together_share_one_hmget_and_each_gets_its_own_answer(
    redis_url: str, redis_srv: RedisServer
) -> None:
    settings = Settings({"REDIS_URL": redis_url})
    index = RedisContentHashIndex(redis_from_settings(settings), describe(settings), key="test:batched")
    with redis_srv.client() as client:
        client.hset("test:batched", mapping={"1": "a", "2": "b"})
        client.config_resetstat()

    async def scenario() -> list[str]:
        asked = [(1, "a"), (2, "x"), (3, "c"), (1, "a"), (3, "d")]  # unchanged, changed, new, …
        outcomes = await asyncio.gather(*(index.compare(sid, digest) for sid, digest in asked))
        return [*outcomes, await index.compare(2, "b")]  # alone: answered after the window too

    outcomes = run(scenario)
    assert outcomes == ["unchanged", "changed", "new", "unchanged", "new", "unchanged"]
    with redis_srv.client() as client:
        calls = {name: stat["calls"] for name, stat in client.info("commandstats").items()}
        assert client.hgetall("test:batched") == {"1": "a", "2": "b"}  # comparing records nothing
    assert calls.get("cmdstat_hmget") == 2 and "cmdstat_hget" not in calls, calls


def test_comparisons_waiting_when_redis_is_down_each_get_the_error(
    redis_url: str, redis_srv: RedisServer
) -> None:
    settings = Settings({"REDIS_URL": redis_url})
    index = RedisContentHashIndex(redis_from_settings(settings), describe(settings), key="test:batched")
    redis_srv.stop()

    async def scenario() -> list[BaseException | str]:
        return await asyncio.gather(*(index.compare(sid, "a") for sid in (1, 2, 2)), return_exceptions=True)

    errors = run(scenario)
    redis_srv.start()
    assert all(isinstance(error, IndexUnavailable) and error.retriable for error in errors), errors
    assert len({id(error) for error in errors}) == 3  # each caller retries with its own


def test_dedupe_in_memory_passes_new_and_changed_and_drops_a_duplicate() -> None:
    story = good_story()
    items = [story, copy.deepcopy(story), good_story(views=5582), good_story(81000)]
    results, worker = process_all(ALL, items)
    assert results[0] is story and isinstance(results[2], Story) and isinstance(results[3], Story)
    assert reason(results[1]).startswith("dedupe: duplicate")
    assert worker.stats("solidot/dedupe/") == {
        "solidot/dedupe/new": 2,
        "solidot/dedupe/duplicate": 1,
        "solidot/dedupe/changed": 1,
    }


def test_the_content_hash_ignores_what_depends_on_the_crawl() -> None:
    story = ItemAdapter(good_story()).asdict()
    same = {**story, "fetched_at": "2027-01-01T00:00:00+00:00", "categories": ["linux"], "url": "elsewhere"}
    assert content_hash(same) == content_hash(story)
    for name, value in [("views", 1), ("body_html", "x"), ("comments", []), ("title", "t")]:
        assert content_hash({**story, name: value}) != content_hash(story), name


def test_two_workers_share_the_content_hashes_in_redis(redis_url: str, redis_srv: RedisServer) -> None:
    settings = {"REDIS_URL": redis_url, "SOLIDOT_DEDUPE_KEY": "test:content_hash"}
    one, two = Worker(ALL, **settings), Worker(ALL, **settings)
    unchanged: list[tuple[int, str]] = []

    def on_unchanged(sid: int, item: Any) -> None:
        unchanged.append((sid, type(item).__name__))

    for worker in (one, two):
        worker.crawler.signals.connect(on_unchanged, signal=story_unchanged)

    async def scenario() -> list[Any]:
        async with one, two:
            return [
                await one.process(good_story()),
                # fetched again elsewhere: only what depends on the crawl differs
                await two.process(good_story(fetched_at="2026-11-26T00:00:00+00:00", categories=["linux"])),
                await two.process(good_story(views=6000)),
                await one.process(good_story(views=6000)),
                # both workers meet a new story at the same moment: exactly one writes it
                *await asyncio.gather(one.process(good_story(90000)), two.process(good_story(90000))),
            ]

    results = run(scenario)
    assert isinstance(results[0], Story)
    assert reason(results[1]).startswith("dedupe: unchanged")
    assert isinstance(results[2], Story)  # new views: written as an update
    assert reason(results[3]).startswith("dedupe: unchanged")
    assert sorted(isinstance(result, Story) for result in results[4:]) == [False, True]
    assert sorted(unchanged) == [(80222, "Story"), (80222, "Story"), (90000, "Story")]

    def total(name: str) -> int:
        return sum(worker.stats().get(f"solidot/dedupe/{name}", 0) for worker in (one, two))

    assert (total("new"), total("changed"), total("unchanged"), total("duplicate")) == (2, 1, 3, 0)
    with redis_srv.client() as client:
        assert client.hgetall("test:content_hash") == {
            "80222": content_hash(ItemAdapter(good_story(views=6000)).asdict()),
            "90000": content_hash(ItemAdapter(good_story(90000)).asdict()),
        }


def test_redis_down_warns_then_lets_the_story_through_as_new(
    redis_url: str, redis_srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"REDIS_URL": redis_url, "SOLIDOT_DEDUPE_REDIS_TIMEOUT": 0.5, "SOLIDOT_DEDUPE_RETRY_MAX": 0.1}
    worker = Worker(ALL, **settings)
    redis_srv.stop()

    async def scenario() -> list[Any]:
        async with worker:
            during = [await worker.process(good_story()), await worker.process(good_story(81000))]
            await asyncio.to_thread(redis_srv.start)
            return [*during, await worker.process(good_story(82000)), await worker.process(good_story(82000))]

    with caplog.at_level(logging.INFO, logger="solidot_spider"):
        results = run(scenario)

    assert all(isinstance(result, Story) for result in results[:3]), results
    assert reason(results[3]).startswith("dedupe: duplicate")
    stats = worker.stats("solidot/dedupe/")
    assert stats["solidot/dedupe/redis_errors"] == 2
    assert stats["solidot/dedupe/redis_retries"] >= 2
    assert stats["solidot/dedupe/new"] == 3
    dedupe_logs = [r for r in caplog.records if r.name == "solidot_spider.crawl.pipelines.dedupe"]
    warnings = [r.getMessage() for r in dedupe_logs if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # unreachable, then passing as new: once per outage
    assert "unreachable" in warnings[0] and redis_url in warnings[0]
    assert any("answers again" in r.getMessage() for r in dedupe_logs)
    with redis_srv.client() as client:
        assert client.hkeys("solidot:content_hash") == ["82000"]


def test_redis_back_during_the_retries_gives_the_real_answer(redis_url: str, redis_srv: RedisServer) -> None:
    settings = {"REDIS_URL": redis_url, "SOLIDOT_DEDUPE_REDIS_TIMEOUT": 60, "SOLIDOT_DEDUPE_RETRY_MAX": 0.2}
    worker = Worker(ALL, **settings)
    redis_srv.stop()

    async def restart_after_a_retry() -> None:
        for _ in range(1000):  # wait for the condition, 10 s at most
            if worker.crawler.stats.get_value("solidot/dedupe/redis_retries"):
                break
            await asyncio.sleep(0.01)
        else:
            await asyncio.to_thread(redis_srv.start)  # let the story finish, then say what went wrong
            raise AssertionError("the dedupe stage did not retry within 10 s of Redis going away")
        await asyncio.to_thread(redis_srv.start)

    async def scenario() -> Any:
        async with worker:
            result, _ = await asyncio.gather(worker.process(good_story()), restart_after_a_retry())
            return result

    assert isinstance(run(scenario), Story)
    stats = worker.stats("solidot/dedupe/")
    assert stats["solidot/dedupe/redis_retries"] > 0  # the premise: Redis came back during the retries
    assert stats["solidot/dedupe/new"] == 1 and "solidot/dedupe/redis_errors" not in stats
    with redis_srv.client() as client:
        assert client.hkeys("solidot:content_hash") == ["80222"]


# --- Whole crawls through the engine ---------------------------------------------


class StoriesSpider(scrapy.Spider):
    """Yields the stories given in ``stories`` straight from ``start()``: no HTTP needed.

    ``start()`` returns once every story has left the pipelines, so the engine
    usually sees the spider idle at once rather than at its next 5 s heartbeat.
    """

    name = "stories"
    stories: list[Story]
    finished: int
    all_finished: asyncio.Event

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> StoriesSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.finished = 0
        spider.all_finished = asyncio.Event()
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider.item_finished, signal=signal)
        return spider

    def item_finished(self) -> None:
        self.finished += 1
        if self.finished == len(self.stories):
            self.all_finished.set()

    async def start(self) -> AsyncIterator[Any]:
        for story in self.stories:
            yield copy.deepcopy(story)
        await asyncio.wait_for(self.all_finished.wait(), timeout=30)


class LoseSid:
    """Stands for a store that failed to write one story (``LOSE_SID``)."""

    def __init__(self, sid: int) -> None:
        self.sid = sid

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LoseSid:
        return cls(crawler.settings.getint("LOSE_SID"))

    def process_item(self, item: Any) -> Any:
        if ItemAdapter(item)["sid"] == self.sid:
            raise DropItem("store failed", log_level="DEBUG")
        return item


def crawl_here(stories: list[Story], settings: dict[str, Any]) -> dict[str, Any]:
    """One whole crawl of ``stories`` in this process, in Scrapy's reactorless mode; its stats."""
    crawler = get_crawler(
        StoriesSpider,
        {
            "SOLIDOT_BASE_URL": BASE_URL,
            "ITEM_PIPELINES": {**ALL, LoseSid: 900},
            "DOWNLOAD_HANDLERS": {"http": None, "https": None, "ftp": None},
            **settings,
        },
    )

    async def scenario() -> None:
        await crawler.crawl_async(stories=stories)

    run(scenario)
    assert crawler.stats is not None
    return crawler.stats.get_stats()


def crawl(stories: list[Story], **settings: Any) -> dict[str, Any]:
    """:func:`crawl_here` in a fresh process of its own, whatever ran before in this one.

    The reactorless mode needs a process where no Twisted reactor is installed, and importing
    ``twisted.internet.reactor`` installs one for good: a test module that merely imports the
    replica's server does it, so in this process the crawl would depend on the order of the tests.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(crawl_here, stories, settings).result(timeout=120)


@pytest.mark.integration  # whole crawls, each in a process of its own
def test_crawls_write_a_story_again_only_when_it_changed_or_was_lost_downstream(
    redis_url: str, redis_srv: RedisServer
) -> None:
    settings = {"REDIS_URL": redis_url, "LOSE_SID": 3}
    first = crawl([good_story(sid) for sid in (1, 2, 3)] + [good_story(1)], **settings)
    assert first["item_scraped_count"] == 2
    assert first["solidot/dedupe/new"] == 3
    assert first["solidot/dedupe/duplicate"] == 1
    assert first["solidot/dedupe/forgotten"] == 1  # sid 3 never reached the store
    with redis_srv.client() as client:
        assert sorted(client.hkeys("solidot:content_hash")) == ["1", "2"]

    second = crawl([good_story(1), good_story(2, views=1), good_story(3)], **{**settings, "LOSE_SID": 0})
    assert second["item_scraped_count"] == 2
    assert second["solidot/dedupe/unchanged"] == 1
    assert second["solidot/dedupe/changed"] == 1
    assert second["solidot/dedupe/new"] == 1  # the lost story is written this time
    assert second["solidot/validate/valid"] == 3
    assert second["solidot/clean/items"] == 3
