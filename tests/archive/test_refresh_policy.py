"""The refresh policy alone (pure: a clock the test holds): bounds by age, adaptation to changes,
gaps, settings; and a month of the replica's whole history refreshed day by day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from harness import docs_page
from scrapy.settings import Settings

from scrapy_sharedcrawl.config import SettingError
from solidot_replica import Replica, ReplicaConfig
from solidot_replica.simulation import World, run_policy, run_round_robin
from solidot_spider.archive.policy import DAY, HOUR, RefreshPolicy, clock_from_settings, spread

POLICY = RefreshPolicy()
NOW = datetime(2026, 10, 11, tzinfo=UTC)


def fetches(outcomes: list[str], published: datetime, first: datetime, sid: int = 4242) -> list[float]:
    """The intervals (s) a story gets from successive fetches from ``first`` on, each made when the
    last one fell due."""
    intervals: list[float] = []
    when, previous = first, None
    for outcome in outcomes:
        schedule = POLICY.after_fetch(outcome, sid, published, when, previous)  # type: ignore[arg-type]
        intervals.append(schedule.interval)
        when, previous = schedule.next_due, schedule.interval
    return intervals


def test_young_stories_are_due_often_old_ones_rarely() -> None:
    assert POLICY.bound(10 * 60) == POLICY.min_interval == HOUR
    assert POLICY.bound(2 * DAY) == 12 * HOUR  # a quarter of its age
    assert POLICY.bound(40 * DAY) == 10 * DAY
    assert POLICY.bound(5 * 365 * DAY) == POLICY.max_interval == 90 * DAY
    young = POLICY.after_fetch("new", 7, NOW - timedelta(hours=3), NOW)
    assert young.interval == HOUR and young.next_due == NOW + timedelta(hours=1)


def test_a_story_that_keeps_changing_is_refetched_sooner_each_time() -> None:
    old = NOW - timedelta(days=3 * 365)
    intervals = fetches(["unchanged"] * 3 + ["changed"] * 12, old, NOW)
    assert intervals[2] == POLICY.max_interval
    shrinking = intervals[3:]
    assert all(later < earlier for earlier, later in pairwise(shrinking) if earlier > HOUR)
    assert shrinking[0] == POLICY.max_interval * POLICY.shrink
    assert shrinking[-1] == POLICY.min_interval  # within bounds: never below the shortest


def test_a_story_that_never_changes_drifts_to_the_longest_interval() -> None:
    intervals = fetches(["new"] + ["unchanged"] * 40, NOW, NOW + timedelta(minutes=20))
    assert intervals == sorted(intervals)  # only ever later
    assert intervals[0] == HOUR
    assert intervals[-1] == POLICY.max_interval
    # and never past its age's bound on the way: a day-old story is looked at within 6 hours
    assert POLICY.after_fetch("unchanged", 1, NOW - timedelta(days=1), NOW, 30 * DAY).interval == 6 * HOUR


def test_old_stories_of_a_historical_crawl_come_due_spread_over_the_longest_interval() -> None:
    published = NOW - timedelta(days=4000)
    due_days = sorted(
        (POLICY.after_fetch("new", sid, published, NOW).next_due - NOW).total_seconds() / DAY
        for sid in range(1, 9001)
    )
    assert due_days[0] >= 0.05 * 90 - 1e-9 and due_days[-1] <= 90
    per_decile = [sum(1 for day in due_days if low * 9 <= day < (low + 1) * 9) for low in range(10)]
    assert min(per_decile[1:]) > 800 and max(per_decile) < 1000  # about 900 each: no day's spike
    assert spread(1) != spread(2)


def test_a_gap_is_tried_again_a_few_times_then_left_alone() -> None:
    retries = [POLICY.after_miss(misses, NOW) for misses in range(1, 6)]
    assert retries[:3] == [NOW + timedelta(days=1), NOW + timedelta(days=2), NOW + timedelta(days=4)]
    assert retries[3:] == [None, None]


def test_settings_are_checked_and_the_clock_can_be_fixed() -> None:
    policy = RefreshPolicy.from_settings(Settings({"SOLIDOT_REFRESH_MAX_INTERVAL": "864000"}))
    assert policy.max_interval == 10 * DAY and policy.min_interval == HOUR
    for name, value in [
        ("SOLIDOT_REFRESH_SHRINK", "1.5"),
        ("SOLIDOT_REFRESH_GROW", "0.5"),
        ("SOLIDOT_REFRESH_MIN_INTERVAL", "nan"),
        ("SOLIDOT_REFRESH_MAX_PER_RUN", "0"),
    ]:
        with pytest.raises(SettingError, match=name):
            RefreshPolicy.from_settings(Settings({name: value}))
    with pytest.raises(SettingError, match="longer than SOLIDOT_REFRESH_MAX_INTERVAL"):
        RefreshPolicy.from_settings(
            Settings({"SOLIDOT_REFRESH_MIN_INTERVAL": "7200", "SOLIDOT_REFRESH_MAX_INTERVAL": "3600"})
        )
    assert clock_from_settings(Settings({"SOLIDOT_REFRESH_NOW": "2026-10-11T00:00:00"}))() == NOW
    with pytest.raises(SettingError, match="SOLIDOT_REFRESH_NOW"):
        clock_from_settings(Settings({"SOLIDOT_REFRESH_NOW": "yesterday"}))


def readme_daily_fetches() -> int:
    """docs/refreshing.md's promise: "at most N story fetches a day" for the refresh at the default policy."""
    text = docs_page("refreshing")
    match = re.search(r"at most ([\d,]+) story fetches a day", text)
    assert match, "docs/refreshing.md states the refresh's daily load"
    return int(match[1].replace(",", ""))


def promised_staleness(age: float) -> float:
    """The reference, written out from the README (not the policy's own ``staleness_bound``): a change
    is seen within a quarter of the story's age at the change, at least an hour and at most 90 days,
    plus one daily run."""
    return min(90 * DAY, max(HOUR, age / 4)) + DAY


def test_the_staleness_bound_is_the_age_bound_plus_one_run() -> None:
    assert POLICY.staleness_bound(2 * DAY, DAY) == 12 * HOUR + DAY == promised_staleness(2 * DAY)
    assert POLICY.staleness_bound(0, 6 * HOUR) == HOUR + 6 * HOUR
    assert POLICY.staleness_bound(5 * 365 * DAY, DAY) == 91 * DAY == promised_staleness(5 * 365 * DAY)


def test_a_month_of_daily_refreshes_keeps_every_story_within_its_bound_and_the_load_within_the_readme() -> (
    None
):
    replica = Replica(ReplicaConfig(stories=85572))
    world = World.of(replica, days=30)
    assert len(world.archived) > 84_000 and world.change_count() > 1000
    report = run_policy(world, POLICY, run_every=DAY)
    assert len(report.stale) == world.change_count() and report.unseen == 0
    late = [change for change in report.stale if change.staleness > promised_staleness(change.age) + 1e-6]
    assert late == [], late[:5]
    assert max(report.fetches_per_day) <= readme_daily_fetches()
    # and fresh where it matters: every change of a story under a week old seen within 2 days
    young = [change.staleness for change in report.stale if change.age < 7 * DAY]
    assert young and max(young) <= 2 * DAY
    # re-crawling everything at the same budget leaves young stories stale for weeks
    round_robin = run_round_robin(world, len(world.archived) / report.mean_fetches, DAY)
    assert (
        sorted(young)[len(young) // 2] * 20
        < sorted(change.staleness for change in round_robin.stale if change.age < 7 * DAY)[len(young) // 2]
    )
