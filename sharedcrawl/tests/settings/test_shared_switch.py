"""What switches the shared crawl on, for any project using the add-on (issue 25, rows 2 and 3).

Every way scrapy-redis users name their Redis (``REDIS_URL``, ``REDIS_HOST``/``REDIS_PORT``,
``REDIS_PARAMS``), given in settings.py, with ``-s`` or in the environment, gives a plain project
with the add-on the leasing scheduler and a client that reaches that (real, private) Redis; a crawl
configured for Redis whose scheduler shares nothing gets one warning line.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
import scrapy
from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.settings import Settings
from scrapy.utils.test import get_reactor_settings

from scrapy_sharedcrawl.compat import configure_crawler
from scrapy_sharedcrawl.config import LEASING_SCHEDULER, REDIS_LOCATION_SETTINGS, SettingError
from scrapy_sharedcrawl.connection import redis_from_settings

ADDON = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}


class Spider(scrapy.Spider):
    name = "switch"


@pytest.fixture(autouse=True)
def no_redis_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REDIS_LOCATION_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def crawler(project: dict[str, Any], cmdline: dict[str, Any] | None = None) -> Crawler:
    """A configured crawler (add-ons applied) of a plain project: ``project`` as its settings.py,
    ``cmdline`` as ``-s``."""
    settings = Settings({"REMOTE_CONTROL_ENABLED": False, "TELNETCONSOLE_ENABLED": False})
    settings.setdict({**get_reactor_settings(), "ADDONS": ADDON, **project}, priority="project")
    settings.setdict(cmdline or {}, priority="cmdline")
    built = AsyncCrawlerRunner(settings).create_crawler(Spider)
    configure_crawler(built)
    return built


def ways(redis_url: str) -> dict[str, dict[str, str]]:
    """Each way of naming the test's Redis, as strings (what -s and the environment carry)."""
    parts = urlsplit(redis_url)
    return {
        "REDIS_URL": {"REDIS_URL": redis_url},
        "REDIS_HOST+PORT": {"REDIS_HOST": str(parts.hostname), "REDIS_PORT": str(parts.port)},
        "REDIS_PORT": {"REDIS_PORT": str(parts.port)},  # scrapy-redis's host: localhost
        "REDIS_PARAMS": {"REDIS_PARAMS": json.dumps({"host": parts.hostname, "port": parts.port})},
    }


@pytest.mark.parametrize("how", ["settings.py", "-s", "environment"])
@pytest.mark.parametrize("way", ["REDIS_URL", "REDIS_HOST+PORT", "REDIS_PORT", "REDIS_PARAMS"])
def test_every_way_of_naming_redis_switches_the_shared_crawl_on(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, way: str, how: str
) -> None:
    given = ways(redis_url)[way]
    if how == "environment":
        for name, value in given.items():
            monkeypatch.setenv(name, value)
        built = crawler({})
    else:
        built = crawler(given if how == "settings.py" else {}, given if how == "-s" else None)
    assert built.settings["SCHEDULER"] == LEASING_SCHEDULER
    assert built.settings["DUPEFILTER_CLASS"] == "scrapy_sharedcrawl.dupefilter.CompactRFPDupeFilter"
    assert type(built.stats).__name__ == "RedisStatsCollector"
    # and the client built from those settings reaches that Redis
    assert redis_from_settings(built.settings).ping()


def test_without_redis_the_crawl_stays_a_single_process_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        built = crawler({})
    assert built.settings["SCHEDULER"] != LEASING_SCHEDULER
    assert [r for r in caplog.records if r.name == "scrapy_sharedcrawl.addon"] == []


def test_the_environment_beats_settings_py_and_loses_to_dash_s(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert crawler({"REDIS_URL": "redis://settings-py.invalid:1/0"}).settings["REDIS_URL"] == redis_url
    monkeypatch.setenv("REDIS_URL", "redis://environment.invalid:1/0")
    assert crawler({}, {"REDIS_URL": redis_url}).settings["REDIS_URL"] == redis_url


@pytest.mark.parametrize(
    ("cmdline", "warned"),
    [
        ({"SCHEDULER": "scrapy.core.scheduler.Scheduler"}, True),
        ({"SCHEDULER": "scrapy_redis.scheduler.Scheduler"}, False),  # shared, by scrapy-redis
        ({}, False),
    ],
    ids=["stock-scheduler", "scrapy-redis-scheduler", "add-on-scheduler"],
)
def test_a_crawl_that_looks_shared_but_is_not_gets_one_warning_line(
    redis_url: str, caplog: pytest.LogCaptureFixture, cmdline: dict[str, str], warned: bool
) -> None:
    parts = urlsplit(redis_url)
    with caplog.at_level(logging.WARNING):
        crawler({"REDIS_HOST": parts.hostname, "REDIS_PORT": parts.port}, cmdline)
    lines = [r.getMessage() for r in caplog.records if r.name == "scrapy_sharedcrawl.addon"]
    if not warned:
        assert lines == []
        return
    [line] = lines
    assert line.startswith("REDIS_HOST, REDIS_PORT are set, but SCHEDULER is scrapy.core.scheduler.Scheduler")
    assert "a whole crawl of its own" in line and LEASING_SCHEDULER in line


@pytest.mark.parametrize("port", ["0", "65536", "6379x", "-1"])
def test_a_redis_port_out_of_range_is_refused_naming_it(port: str) -> None:
    with pytest.raises(SettingError, match=rf"^REDIS_PORT must be an integer within 1..65,535.*got '{port}'"):
        redis_from_settings(Settings({"REDIS_PORT": port}))


def test_unreadable_redis_params_are_refused_without_showing_them() -> None:
    with pytest.raises(SettingError, match="REDIS_PARAMS must be a dict") as raised:
        redis_from_settings(Settings({"REDIS_PARAMS": '{"password": "s3cret"'}))
    assert "s3cret" not in str(raised.value)
