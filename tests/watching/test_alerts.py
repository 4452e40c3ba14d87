"""The alert rules (issue 23) on real readings: many pages and no items naming what most came to, a drop
reason's share of the recent window (the series' point at its start taken off), a host paused with the
cluster rate's own script, the thresholds range-checked, and the outcomes kept per point of the series."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from scrapy.settings import Settings
from test_timeseries import SERIES, collector

from scrapy_sharedcrawl.alerts import (
    AlertSettings,
    HostKeys,
    drop_shares,
    gone_workers,
    no_items,
    paused_hosts,
    window_start,
)
from scrapy_sharedcrawl.cluster_rate import _LUA_PAUSE
from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.keys import CrawlKeys
from scrapy_sharedcrawl.report import CrawlReport
from scrapy_sharedcrawl.timeseries import Point, read_points
from scrapy_sharedcrawl.workers import Worker
from solidot_spider.crawl.report import ArchiveReport
from solidot_spider.settings import CRAWL_REPORT_CLASS

CONFIG = AlertSettings()
GAPS = {"response_received_count": 151, "outcome/story_gap": 150, "outcome/robots_txt": 1}


def solidot_cause(rule: str, subject: str) -> str:
    report = CrawlReport.from_settings(Settings({"CRAWL_REPORT_CLASS": CRAWL_REPORT_CLASS}))
    assert isinstance(report, ArchiveReport)
    return report.alert_cause(rule, subject)


def no_cause(rule: str, subject: str) -> str:
    return CrawlReport(Settings()).alert_cause(rule, subject)


def test_many_pages_and_no_items_name_what_most_pages_came_to_and_the_projects_cause() -> None:
    alert = no_items(GAPS, CONFIG, solidot_cause)
    assert alert is not None and alert.rule == "no_items"
    assert alert.message == (
        "151 pages, no items: 150 (99%) came to story_gap: "
        "every story page answered 404: is the sid range inside the site's?"
    )
    # the framework alone knows no cause for a project's outcome, but one for HTTP errors
    assert no_items(GAPS, CONFIG, no_cause).message == "151 pages, no items: 150 (99%) came to story_gap"  # type: ignore[union-attr]
    filtered = {"response_received_count": 120, "outcome/http_403": 119, "outcome/robots_txt": 1}
    assert no_items(filtered, CONFIG, no_cause).message.endswith(  # type: ignore[union-attr]
        "came to http_403: the site answered 403: is the crawl's scope right?"
    )
    assert no_items({**GAPS, "item_scraped_count": 1}, CONFIG, solidot_cause) is None
    assert no_items(GAPS, AlertSettings(min_pages=152), solidot_cause) is None


def test_a_drop_reasons_share_counts_only_the_window() -> None:
    now = {
        "response_received_count": 1000,
        "outcome/dropped/missing_title": 300,
        "outcome/dropped/too_deep": 10,
        "outcome/story_new": 690,
    }
    # the whole crawl in the window: 30 % of its pages
    [alert] = drop_shares(now, None, CONFIG, solidot_cause)
    assert alert.rule == "drop_share"
    assert alert.message == "`missing_title` on 30% of pages in the last 5 minutes: has the markup changed?"
    # the window's start: 900 pages, 290 of them dropped; in the window 100 pages, 10 dropped (10 %)
    before = Point("1-0", 1.0, {"pages": 900, "o:dropped/missing_title": 290, "o:dropped/too_deep": 0})
    assert drop_shares(now, before, CONFIG, solidot_cause) == []
    assert [
        a.message.split(" on ")[0] for a in drop_shares(now, before, AlertSettings(drop_share=0.1), no_cause)
    ] == [
        "`missing_title`",
        "`too_deep`",
    ]
    # too few pages in the window to judge
    assert drop_shares(now, before, AlertSettings(window_min_pages=101), solidot_cause) == []


def test_the_windows_start_is_the_last_point_before_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys.from_settings(Settings(), "solidot")
    for second, pages in ((1000, 10), (1100, 20), (1400, 40)):
        client.xadd(SERIES, {"pages": pages, "o:dropped/x": pages // 2}, id=f"{second * 1000}-0")
    start = window_start(client, keys, until=1450.0, window=300)
    assert start is not None and start.values == {"pages": 20.0, "o:dropped/x": 10.0}
    assert window_start(client, keys, until=1050.0, window=300) is None  # the crawl is younger than that


def test_a_host_paused_with_the_cluster_rates_own_script_is_an_alert_until_the_pause_ends(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    pause = client.register_script(_LUA_PAUSE)
    hosts = HostKeys.from_settings(Settings(), "solidot")
    assert hosts is not None
    assert pause(keys=["{solidot}:host:www.solidot.org"], args=[60_000_000, "retry_after", 1000]) == 1
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    [alert] = paused_hosts(client, hosts, hosts.find(client), now)
    assert alert.rule == "host_paused"
    assert alert.message.startswith("host www.solidot.org paused for every worker for ")
    assert alert.message.endswith(" s more (retry_after)")
    assert paused_hosts(client, hosts, hosts.find(client), now + 61) == []  # over by then
    other = HostKeys.from_settings(Settings(), "other")
    assert other is not None and other.find(client) == []
    client.set("{solidot}:host:not-a-hash", "x")  # a key of another type: not the cluster rate's
    assert len(paused_hosts(client, hosts, hosts.find(client), now)) == 1
    assert HostKeys.from_settings(Settings({"CLUSTER_HOST_KEY": "no-host"}), "solidot") is None


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ALERT_DROP_SHARE", "0", "> 0"),
        ("ALERT_DROP_SHARE", "1.5", "1"),
        ("ALERT_DROP_SHARE", "nan", "ALERT_DROP_SHARE"),
        ("ALERT_WINDOW", "5", "10"),
        ("ALERT_MIN_PAGES", "0", "1"),
        ("ALERT_WINDOW_MIN_PAGES", "lots", "integer"),
    ],
)
def test_thresholds_out_of_range_are_refused_naming_the_setting(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingError) as refused:
        AlertSettings.from_settings(Settings({name: value}))
    assert name in str(refused.value) and says in str(refused.value)


def test_each_outcome_is_a_field_of_the_series_points(redis_url: str) -> None:
    stats = collector(redis_url, "w0")
    client = redis.Redis.from_url(redis_url)
    counts: dict[str, Any] = {
        "outcome/story_new": 3,
        "outcome/dropped/missing_title": 2,
        "outcome/robots_txt": 1,
    }
    for name, count in counts.items():
        stats.inc_value(name, count)
    stats.inc_value("response_received_count", 6)
    assert stats.push() and client.xlen(SERIES) == 1  # the crawl's first point
    point = read_points(client, SERIES)[-1]
    assert {name: value for name, value in point.values.items() if name.startswith("o:")} == {
        "o:story_new": 3.0,
        "o:dropped/missing_title": 2.0,
        "o:robots_txt": 1.0,
    }


def test_a_worker_gone_is_named_with_its_last_heartbeat() -> None:
    def worker(pid: int, age: float) -> Worker:
        return Worker("w", "host", pid, 0.0, 10, 5, heartbeat_age=age, heartbeat_interval=1.0, node="node-a")

    [alert] = gone_workers([worker(41, 0.5), worker(42, 12.0)])
    assert alert.rule == "worker_gone"
    assert alert.message.startswith("worker node-a pid 42 gone: last heartbeat 12 s ago")
