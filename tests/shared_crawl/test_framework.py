"""The shared crawl as a framework of its own: importable alone, defaults declared once, old setting
names still read (with a warning), the add-on's components, and its "say it once" helpers."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings

import pytest
import redis
import scrapy
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

import solidot_spider.settings as project_settings
from scrapy_sharedcrawl.addon import SharedCrawl
from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.defaults import SETTINGS
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.keys import CrawlKeys, QueueKeys
from scrapy_sharedcrawl.legacy import apply_legacy_names, renamed_settings
from scrapy_sharedcrawl.outage import OncePerReason, Outage
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.settings import SchedulerSettings
from scrapy_sharedcrawl.workers import WorkerRegistry
from solidot_spider.cli import project_settings as cli_settings
from solidot_spider.legacy import RENAMED


def test_the_framework_imports_without_the_solidot_project() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('solidot_spider', 'solidot_replica'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pkgutil, importlib, scrapy_sharedcrawl\n"
        "names = [m.name for m in pkgutil.iter_modules(scrapy_sharedcrawl.__path__)]\n"
        "for name in names: importlib.import_module('scrapy_sharedcrawl.' + name)\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20  # every module of the package was imported


def test_the_project_declares_none_of_the_frameworks_defaults_again() -> None:
    declared = {name for name in dir(project_settings) if name.isupper()}
    # only what the project sets differently from the framework's default
    again = {name for name in declared & SETTINGS.keys() if getattr(project_settings, name) == SETTINGS[name]}
    assert again == set()
    assert not [name for name in SETTINGS if name.startswith("SOLIDOT_")]


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_an_old_setting_name_is_read_with_a_warning_naming_the_new_one(old: str, new: str) -> None:
    settings = Settings({"RENAMED_SETTINGS": RENAMED}, priority="project")
    settings.set(old, "7", "cmdline")
    with pytest.warns(ScrapyDeprecationWarning, match=f"{old} is deprecated: use {new}"):
        SharedCrawl().update_settings(settings)
    assert settings.get(new) == "7"


def test_the_project_lists_its_old_names_as_its_renamed_settings() -> None:
    """The 0.1 names (the WARC recorder's and the dashboard token's among them) are the project's, in
    its settings; the framework carries them over like any project's."""
    assert renamed_settings(cli_settings()) == RENAMED
    assert {"SOLIDOT_WARC_DIR", "SOLIDOT_DASHBOARD_TOKEN", "SOLIDOT_LEASE_SECONDS"} <= RENAMED.keys()
    assert not [name for name in RENAMED.values() if name.startswith("SOLIDOT_")]


def test_settings_that_pass_twice_warn_once() -> None:
    settings = Settings({"RENAMED_SETTINGS": RENAMED}, priority="project")
    settings.set("SOLIDOT_PREFETCH", "3", "cmdline")
    with pytest.warns(ScrapyDeprecationWarning):
        assert apply_legacy_names(settings) == ["SOLIDOT_PREFETCH"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert apply_legacy_names(settings) == []  # the add-on after a tool's own pass
    assert settings.get("SCHEDULER_PREFETCH") == "3"


def test_a_new_name_given_as_high_wins_over_the_old_one() -> None:
    settings = Settings({"SCHEDULER_LEASE_SECONDS": "30"}, priority="cmdline")
    settings.set("RENAMED_SETTINGS", RENAMED, "project")
    settings.set("SOLIDOT_LEASE_SECONDS", "90", priority="project")
    with pytest.warns(ScrapyDeprecationWarning):
        apply_legacy_names(settings)
    assert settings.get("SCHEDULER_LEASE_SECONDS") == "30"


def test_old_names_in_the_environment_reach_crawls_and_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLIDOT_STATS_INTERVAL", "9")
    import importlib

    importlib.reload(project_settings)
    try:
        with pytest.warns(ScrapyDeprecationWarning, match="STATS_PUSH_INTERVAL"):
            settings = cli_settings()
        assert settings.get("STATS_PUSH_INTERVAL") == "9"
    finally:
        monkeypatch.delenv("SOLIDOT_STATS_INTERVAL")
        # a reload keeps the module's old globals: the name read from the environment goes by hand
        vars(project_settings).pop("SOLIDOT_STATS_INTERVAL", None)
        importlib.reload(project_settings)


def test_no_warning_without_old_names() -> None:
    settings = Settings({"REDIS_URL": "redis://127.0.0.1:1/0"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SharedCrawl().update_settings(settings)


def test_the_addon_installs_its_components_once_and_keeps_a_projects_own_order() -> None:
    settings = Settings(
        {"DOWNLOADER_MIDDLEWARES": {"scrapy_sharedcrawl.backoff.HostBackoffMiddleware": 123}},
        priority="project",
    )
    SharedCrawl().update_settings(settings)
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["scrapy_sharedcrawl.backoff.HostBackoffMiddleware"] == 123
    assert len([m for m in middlewares if "HostBackoff" in str(m)]) == 1
    assert any("ClusterRateLimitMiddleware" in str(m) for m in middlewares)
    assert WorkerRegistry in settings.getdict("EXTENSIONS")


def test_every_key_of_a_crawl_is_named_alike_by_its_components(redis_url: str) -> None:
    class Spider(scrapy.Spider):
        name = "keys"

    crawler = get_crawler(Spider, {"REDIS_URL": redis_url})
    keys = CrawlKeys.from_crawler(crawler)
    queue = LeasedPriorityQueue(redis.Redis.from_url(redis_url), Spider(), key=keys.queue)
    dupefilter = CompactRFPDupeFilter(redis.Redis.from_url(redis_url), key=keys.seen)
    assert (keys.queued, keys.leased, keys.seen_meta) == (
        queue.count_key,
        queue.leased_key,
        dupefilter.meta_key,
    )
    assert queue.keys == QueueKeys(keys.queue).core and queue.dead_key == QueueKeys(keys.queue).dead
    assert keys.queue == "{keys}:requests" and keys.seen == "{keys}:seen" and keys.stats == "{keys}:stats"


def test_an_outage_is_logged_once_each_way_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(
        "redis://here",
        gone="lost {where} ({error}), next try in {pause:g} s, {held} held",
        back="back at {where} after {seconds:g} s",
        logger=logging.getLogger("test.outage"),
        retry_base=1.0,
        retry_max=4.0,
        clock=lambda: now[0],
    )
    with caplog.at_level(logging.INFO, logger="test.outage"):
        assert outage.recovered() is None  # nothing to say while up
        assert outage.failed(ConnectionError(), held=3)
        pauses = []
        for _ in range(4):
            assert not outage.may_try()
            now[0] = outage.retry_at
            assert outage.may_try()
            pauses.append(outage.retry_at)
            assert not outage.failed(ConnectionError(), held=3)
            pauses[-1] = outage.retry_at - pauses[-1]
        now[0] += 1
        assert outage.recovered() == pytest.approx(now[0] - 100.0)
    assert pauses == [2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert [r.getMessage() for r in caplog.records] == [
        "lost redis://here (ConnectionError), next try in 1 s, 3 held",
        f"back at redis://here after {now[0] - 100.0:g} s",
    ]
    assert outage.outages == 1 and not outage.down


def test_once_per_reason_counts_everything_and_logs_each_reason_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = MemoryStatsCollector(get_crawler())
    once = OncePerReason(stats, "x/dropped/", logging.getLogger("test.once"))
    with caplog.at_level(logging.WARNING, logger="test.once"):
        logged = [once(reason, "dropped %s", n) for n, reason in enumerate(["a", "b", "a", "a", "b"])]
    assert logged == [True, True, False, False, False]
    assert stats.get_value("x/dropped/a") == 3 and stats.get_value("x/dropped/b") == 2
    assert [r.getMessage() for r in caplog.records] == [
        "dropped 0; later ones are only counted (stats x/dropped/a)",
        "dropped 1; later ones are only counted (stats x/dropped/b)",
    ]


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("SCHEDULER_LEASE_SECONDS", "0", "> 0"),
        ("SCHEDULER_ACK_INTERVAL", "nan", "> 0"),
        ("SCHEDULER_PREFETCH", "0", "1..10,000"),
        ("SCHEDULER_HOST_HORIZON", "0", "within 0.001..86400"),
        ("SCHEDULER_WAIT_FOR_SEED", "-1", "within 0..86400"),
        ("REDIS_RETRY_MAX", "inf", "> 0"),
    ],
)
def test_a_scheduler_setting_out_of_range_stops_the_crawl_naming_it(
    name: str, value: str, allowed: str
) -> None:
    with pytest.raises(SettingError, match=rf"^{name} must be .*{re.escape(allowed)}.*got '{value}'"):
        SchedulerSettings.from_settings(Settings({name: value}))


def test_the_scheduler_settings_default_to_the_declared_defaults() -> None:
    config = SchedulerSettings.from_settings(Settings())
    assert (config.lease_seconds, config.prefetch, config.queue_key) == (
        SETTINGS["SCHEDULER_LEASE_SECONDS"],
        SETTINGS["SCHEDULER_PREFETCH"],
        SETTINGS["SCHEDULER_QUEUE_KEY"],
    )
    assert config == SchedulerSettings()
