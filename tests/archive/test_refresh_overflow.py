"""Due dates are capped, and one story's schedule that can't be planned never costs the batch:
``after_miss(23)`` with ``SOLIDOT_REFRESH_GAP_RETRIES=30`` (an allowed value) used to raise
OverflowError inside the store's batch write, and the whole batch, unrelated stories included, was
given up."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mongo_server import MongoServer
from pymongo import MongoClient
from scrapy.settings import Settings

from solidot_replica import Replica
from solidot_spider.archive.documents import story_write
from solidot_spider.archive.mongo import MongoStore
from solidot_spider.archive.policy import DAY, LATEST_DUE, RefreshPolicy, Schedule
from solidot_spider.archive.schedule import Miss

NOW = datetime(2026, 10, 11, tzinfo=UTC)
BASE_URL = "http://www.solidot.test:8080"


def policy_of(**values: Any) -> RefreshPolicy:
    return RefreshPolicy.from_settings(
        Settings({f"SOLIDOT_REFRESH_{k.upper()}": v for k, v in values.items()})
    )


def test_a_gap_s_wait_doubles_up_to_the_longest_interval_and_never_overflows() -> None:
    policy = policy_of(gap_retries=30)
    dues = [policy.after_miss(misses, NOW) for misses in range(1, 32)]
    assert dues[-1] is None and dues[-2] is not None  # due again after each of its first 30 misses
    waits = [(due - NOW).total_seconds() for due in dues if due is not None]
    assert waits[:4] == [DAY, 2 * DAY, 4 * DAY, 8 * DAY]
    assert waits == sorted(waits) and max(waits) == policy.max_interval  # like a story's longest


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    misses=st.integers(-5, 10**6),
    retries=st.integers(0, 30),
    gap_interval=st.floats(60, 3650 * DAY),
    max_interval=st.floats(60, 3650 * DAY),
    now=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
)
def test_due_dates_never_overflow(
    misses: int, retries: int, gap_interval: float, max_interval: float, now: datetime
) -> None:
    policy = RefreshPolicy(
        min_interval=60, max_interval=max_interval, gap_retries=retries, gap_interval=gap_interval
    )
    due = policy.after_miss(misses, now)
    assert due is None or now <= due <= max(now, LATEST_DUE)
    schedule = policy.after_fetch("unchanged", 4242, datetime(1, 1, 1, tzinfo=UTC), now, 1e300)
    assert schedule.next_due <= max(now, LATEST_DUE) and schedule.interval <= max_interval


@dataclasses.dataclass(frozen=True, slots=True)
class FailsFor(RefreshPolicy):
    """The real policy, except that one sid's schedule raises (any planning error, as the overflow did)."""

    bad_sid: int = 0

    def after_fetch(self, outcome: Any, sid: int, *args: Any, **kwargs: Any) -> Schedule:
        if sid == self.bad_sid:
            raise ArithmeticError("the schedule of this story cannot be computed")
        return RefreshPolicy.after_fetch(self, outcome, sid, *args, **kwargs)


def stored(mongo: MongoServer, database: str, collection: str) -> dict[int, dict[str, Any]]:
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        return {doc["sid"]: doc for doc in client[database][collection].find({})}


def test_a_gap_missed_for_the_23rd_time_is_written_with_the_batch(
    mongo: MongoServer, mongo_db_name: str, replica_model: Replica
) -> None:
    policy = policy_of(gap_retries=30)
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=policy, clock=lambda: NOW)
    try:
        store.ensure_indexes()
        gap = 99_999
        with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
            client[mongo_db_name]["stories.gaps"].insert_one({"sid": gap, "misses": 22, "next_due": NOW})
        sid = replica_model.sids()[-1]
        item = {**replica_model.truth(sid, BASE_URL), "fetched_at": "x"}
        result = store.write_batch([story_write(item, NOW), Miss(gap, NOW)])
        assert result.refresh == {"scheduled/new": 1, "gaps/missed": 1}
        assert sid in stored(mongo, mongo_db_name, "stories")
        gaps = stored(mongo, mongo_db_name, "stories.gaps")
        assert gaps[gap]["misses"] == 23
        assert gaps[gap]["next_due"] == NOW + timedelta(seconds=policy.max_interval)
    finally:
        store.close()


def test_one_story_s_schedule_error_is_contained_to_that_story(
    mongo: MongoServer, mongo_db_name: str, replica_model: Replica, caplog: Any
) -> None:
    bad, good = replica_model.sids()[-1], replica_model.sids()[-2]
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=FailsFor(bad_sid=bad), clock=lambda: NOW)
    try:
        store.ensure_indexes()
        items = [{**replica_model.truth(sid, BASE_URL), "fetched_at": "x"} for sid in (bad, good)]
        result = store.write_batch([story_write(item, NOW) for item in items])
        assert result.refresh == {"schedule_failed": 1, "scheduled/new": 1}
        documents = stored(mongo, mongo_db_name, "stories")
        assert set(documents) == {bad, good}  # both stories written
        assert "next_due" in documents[good] and "next_due" not in documents[bad]
        assert f"cannot schedule sid {bad} (ArithmeticError" in caplog.text
    finally:
        store.close()
