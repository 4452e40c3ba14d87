"""Settings and site input checked at start-up: numbers in range, the base URL, Retry-After, offsite."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy.core.downloader import Slot
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.backoff import HostBackoffMiddleware, host_paused, parse_retry_after
from scrapy_sharedcrawl.cluster_rate import ClusterRateLimitMiddleware
from scrapy_sharedcrawl.config import SettingError, float_setting, int_setting
from scrapy_sharedcrawl.stats import RedisStatsCollector
from solidot_spider.site.urls import CATEGORIES, SiteMap
from solidot_spider.spiders.solidot import SolidotSpider

ROOT = Path(__file__).resolve().parents[2]
#: Nothing listens here; the components below connect lazily, so none is needed.
NO_REDIS = "redis://127.0.0.1:1/0"


def project_settings(**given: Any) -> Settings:
    settings = Settings()
    settings.setmodule("solidot_spider.settings", priority="project")
    settings.setdict(given, priority="cmdline")
    return settings


# -- the shared helper -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "-1", "lots", "", True])
def test_float_setting_refuses_what_is_not_a_finite_number_in_range(raw: Any) -> None:
    if raw == "":
        assert float_setting(Settings({"X": raw}), "X", 2.0, at_least=0) == 2.0  # empty: the default
        return
    with pytest.raises(SettingError, match=r"^X must be a finite number ≥ 0 \(seconds\), got "):
        float_setting(Settings({"X": raw}), "X", 2.0, at_least=0, meaning="seconds")


def test_float_and_int_settings_in_range() -> None:
    assert float_setting(Settings({"X": " 0.5 "}), "X", 2.0, above=0) == 0.5
    assert float_setting(Settings({"X": 3}), "X", 2.0, at_least=0, at_most=3) == 3.0
    with pytest.raises(SettingError, match=r"X must be a finite number > 0, got '0'"):
        float_setting(Settings({"X": "0"}), "X", 2.0, above=0)
    with pytest.raises(SettingError, match=r"X must be a number within 0\.1\.\.10, got '11'"):
        float_setting(Settings({"X": "11"}), "X", 2.0, at_least=0.1, at_most=10)
    assert int_setting(Settings({"N": "1_000"}), "N", 5, at_least=1) == 1000
    assert int_setting(Settings({"N": 7.0}), "N", 5, at_least=1) == 7
    for raw in ("1.5", "0", "-3", "1e3", "many", "３"):
        with pytest.raises(SettingError, match=r"N must be an integer ≥ 1, got"):
            int_setting(Settings({"N": raw}), "N", 5, at_least=1)


# -- the settings the middlewares and the shared stats read ----------------------------------


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLUSTER_HOST_RATE", "nan"),
        ("CLUSTER_HOST_RATE", "-1"),
        ("CLUSTER_HOST_RATE", "inf"),
        ("CLUSTER_CRAWL_DELAY_MAX", "nan"),
        ("CLUSTER_CRAWL_DELAY_MAX", "-5"),
        ("DOWNLOAD_DELAY", "nan"),  # read for the host rate when CLUSTER_HOST_RATE is empty
    ],
)
def test_the_cluster_rate_refuses_bad_numbers_at_start_up(name: str, value: str, shared: bool) -> None:
    crawler = get_crawler(SolidotSpider, {name: value, "REDIS_URL": NO_REDIS if shared else ""})
    with pytest.raises(SettingError, match=rf"^{name} must be a finite number ≥ 0"):
        ClusterRateLimitMiddleware.from_crawler(crawler)
    # good values pass, and a crawl alone still leaves the middleware off
    crawler = get_crawler(SolidotSpider, {name: "2", "REDIS_URL": NO_REDIS if shared else ""})
    if not shared:
        with pytest.raises(NotConfigured):
            ClusterRateLimitMiddleware.from_crawler(crawler)
    else:
        assert ClusterRateLimitMiddleware.from_crawler(crawler).rate_interval in (0.0, 0.5, 2.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STATS_PUSH_INTERVAL", "0"),  # the push loop would spin
        ("STATS_PUSH_INTERVAL", "-5"),
        ("STATS_PUSH_INTERVAL", "nan"),
        ("STATS_PUSH_INTERVAL", "inf"),
        ("STATS_TTL", "0"),  # Redis would expire the shared stats at once
        ("STATS_TTL", "nan"),
    ],
)
def test_the_shared_stats_refuse_bad_intervals_at_start_up(name: str, value: str) -> None:
    crawler = get_crawler(SolidotSpider, {name: value, "REDIS_URL": NO_REDIS})
    with pytest.raises(SettingError, match=rf"^{name} must be a number within "):
        RedisStatsCollector(crawler)
    collector = RedisStatsCollector(get_crawler(SolidotSpider, {name: "60", "REDIS_URL": NO_REDIS}))
    assert (collector.interval, collector.ttl_ms) in ((60.0, 7 * 24 * 3600 * 1000), (5.0, 60_000))


@pytest.mark.parametrize("name", ["RETRY_AFTER_MAX", "HOST_BACKOFF_BASE", "HOST_BACKOFF_MAX"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_the_backoff_refuses_bad_numbers_at_start_up(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=rf"^{name} must be a finite number ≥ 0"):
        HostBackoffMiddleware.from_crawler(get_crawler(SolidotSpider, {name: value}))


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CLUSTER_HOST_RATE": "nan"}, "CLUSTER_HOST_RATE must be a finite number ≥ 0"),
        (
            {"STATS_PUSH_INTERVAL": "0", "REDIS_URL": NO_REDIS},
            "STATS_PUSH_INTERVAL must be a number within",
        ),
        ({"SOLIDOT_BASE_URL": "https://localhost"}, "SOLIDOT_BASE_URL needs a host name"),
    ],
)
def test_a_bad_setting_stops_a_crawl_at_start_up_with_one_clear_error(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    """A real ``scrapy crawl``, settings from the environment as on a scrapyd node: it stops before
    fetching anything, and its last line names the setting and the allowed range."""
    env = {**os.environ, "SOLIDOT_OUTPUT": "", **environment}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "solidot", "-a", "sids=1-2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert message in last, result.stderr[-2000:]
    assert "Spider opened" not in result.stderr


# -- download size ------------------------------------------------------------------------------


def test_download_size_limits_fit_the_site() -> None:
    settings = project_settings()
    assert settings.getint("DOWNLOAD_MAXSIZE") == 16 * 1024 * 1024
    assert settings.getint("DOWNLOAD_WARNSIZE") == 4 * 1024 * 1024


# -- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["３", "٣", "²", "①", "3２", "𝟑"])
def test_retry_after_is_ascii_delta_seconds_only(value: str) -> None:
    """Python's int() and float() read these as digits (or choke on them); HTTP does not."""
    assert parse_retry_after(value) is None
    assert parse_retry_after(value.encode("utf-8")) is None


def test_retry_after_good_values_and_other_junk() -> None:
    assert parse_retry_after(b" 30 ") == 30.0
    assert parse_retry_after(b"9" * 400) == 1e12  # capped by RETRY_AFTER_MAX later, never inf
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now
    for junk in ("3.5", "-3", "1e3", "0x10", "soon", "", "Mon, 99 Foo 2026"):
        assert parse_retry_after(junk) is None


def backoff_middleware(slots: dict[str, Slot] | None = None, **settings: Any) -> HostBackoffMiddleware:
    """The middleware on a crawler with real settings, stats and signals, and a stand-in engine.

    The middleware asks the engine for two things only: the downloader's slot key for a request
    and its table of slots (to pause one). A real engine exists only in a running crawl, whose
    pauses would make these tests wait; the stand-in gives those two, with real downloader
    ``Slot`` objects in ``slots`` (none: nothing to pause, only the decision is seen).
    """
    crawler = get_crawler(SolidotSpider, settings)
    crawler.stats.open_spider()
    downloader = SimpleNamespace(
        get_slot_key=lambda request: "www.solidot.org", slots=slots or {}, _latercall=lambda slot: None
    )
    crawler.engine = SimpleNamespace(downloader=downloader)  # type: ignore[assignment]
    return HostBackoffMiddleware.from_crawler(crawler)


def test_a_junk_retry_after_falls_back_to_the_normal_backoff_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = backoff_middleware()
    request = Request("https://www.solidot.org/story?sid=1")
    caplog.set_level(logging.WARNING, logger="scrapy_sharedcrawl.backoff")
    for value in ("３", "²", "soon"):
        response = Response(request.url, status=503, headers={"Retry-After": value.encode()}, request=request)
        assert middleware.process_response(request, response) is response
    stats = middleware.crawler.stats
    assert stats.get_value("backoff/bad_retry_after") == 3
    assert stats.get_value("backoff/errors") == 3  # the normal backoff, each time
    assert stats.get_value("backoff/retry_after") is None
    warnings = [record for record in caplog.records if "Retry-After" in record.getMessage()]
    assert len(warnings) == 1 and "backoff/bad_retry_after" in warnings[0].getMessage()


def test_a_long_run_of_errors_keeps_a_finite_pause_capped_by_host_backoff_max() -> None:
    slot = Slot(concurrency=1, delay=0)
    middleware = backoff_middleware({"www.solidot.org": slot}, HOST_BACKOFF_BASE=0.5, HOST_BACKOFF_MAX=7.0)
    announced: list[float] = []

    def paused(request: Request, seconds: float, reason: str) -> None:
        announced.append(seconds)

    middleware.crawler.signals.connect(paused, signal=host_paused)
    request = Request("https://www.solidot.org/story?sid=1")

    async def errors() -> None:  # the pause is scheduled on the running loop (or the reactor)
        for _ in range(1100):
            middleware.process_exception(request, ConnectionError())
        assert slot.latercall is not None  # the slot is held
        slot.latercall.cancel()

    asyncio.run(errors())
    stats = middleware.crawler.stats
    assert stats.get_value("backoff/errors") == 1100
    # doubling from the base: 0.5, 1, 2, 4, then HOST_BACKOFF_MAX for as long as the errors last
    assert announced[:5] == [0.5, 1.0, 2.0, 4.0, 7.0]
    assert set(announced[4:]) == {7.0} and len(announced) > 1000
    assert stats.get_value("backoff/pauses") == len(announced)
    assert stats.get_value("backoff/paused_ms") == 7500 + 7000 * (len(announced) - 4)


# -- the site's base URL, and nothing requested outside the site -------------------------------


def test_a_base_url_without_www_derives_category_hosts_under_its_domain() -> None:
    site = SiteMap.from_base_url("https://solidot.org")
    assert site.home() == "https://solidot.org/"
    assert site.category_home("apple") == "https://apple.solidot.org/"
    assert site.story_url(5) == "https://solidot.org/story?sid=5"
    assert site.category_of_url("https://linux.solidot.org/story?sid=5") == "linux"
    assert site.host_label("https://solidot.org/story?sid=5") == ""
    assert site.host_label("https://linux.org/") is None
    assert site.allowed_domains() == ["solidot.org"]
    replica = SiteMap.from_base_url("http://solidot.test:8080/")
    assert replica.category_home("linux") == "http://linux.solidot.test:8080/"
    assert replica.allowed_domains() == ["solidot.test"]
    www = SiteMap.from_base_url("HTTPS://WWW.Solidot.org")
    assert (www.base_url, www.category_home("linux")) == (
        "https://www.solidot.org",
        "https://linux.solidot.org/",
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",  # an address: no domain to put categories under
        "http://10.0.0.1",
        "http://www.solidot.org:99999",
        "http://www.solidot.org:port",
        "http://www.soli_dot.org",
        "http://-www.solidot.org",
        "http://www.solidot.org%0a.evil",
    ],
)
def test_a_base_url_that_is_no_http_site_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="SOLIDOT_BASE_URL"):
        SiteMap.from_base_url(base_url)
    for refused_before in (
        "ftp://www.solidot.org",
        "www.solidot.org",
        "http://localhost:8080",
        "http://[::1]",
        "",
    ):
        with pytest.raises(ValueError, match="SOLIDOT_BASE_URL"):
            SiteMap.from_base_url(refused_before)


@pytest.mark.parametrize(
    "base_url", ["https://www.solidot.org", "https://solidot.org", "http://www.solidot.test:8080"]
)
def test_the_offsite_middleware_drops_every_foreign_host_and_passes_every_site_host(base_url: str) -> None:
    crawler = get_crawler(SolidotSpider, {"SOLIDOT_BASE_URL": base_url})
    spider = SolidotSpider.from_crawler(crawler, latest="1")
    crawler.spider = spider
    offsite = OffsiteMiddleware.from_crawler(crawler)
    offsite.spider_opened(spider)
    site = spider.site
    for request in spider.start_requests_for(spider.discovery):
        offsite.process_request(request)  # every start request is on the site
    for url in [site.story_url(1), site.rss(), *(site.category_home(label) for label in CATEGORIES)]:
        offsite.process_request(Request(url))
    for foreign in [
        "https://linux.org/",
        "https://apple.org/story?sid=1",
        "http://evil.example/",
        "http://solidot.org.evil.example/",
        "http://notsolidot.org/",
        "http://127.0.0.1/",
    ]:
        with pytest.raises(IgnoreRequest):
            offsite.process_request(Request(foreign))
    assert crawler.stats.get_value("offsite/filtered") == 6
