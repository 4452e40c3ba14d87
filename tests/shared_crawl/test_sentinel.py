"""Redis through Sentinel (issue 21, row 1): every client the settings build (workers' components and
the tools) finds the master through real Sentinels; bad configuration gets one clear line naming
what to fix, without a password in it. The failover itself: tests/shared_crawl/test_failover.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cluster import cluster
from harness import ROOT, replica_server
from mongo_server import MongoServer
from scrapy.settings import Settings
from sentinel_servers import MASTER_NAME, SentinelSet, sentinel_set

from scrapy_sharedcrawl.addon import settings_from_environment
from scrapy_sharedcrawl.config import REDIS_LOCATION_SETTINGS, SettingError, redis_configured
from scrapy_sharedcrawl.connection import describe, redis_from_settings, redis_trouble
from scrapy_sharedcrawl.sentinel import parse_sentinels, sentinel_config
from scrapy_sharedcrawl.testing.redis_server import free_port

MASTER_PASSWORD, SENTINEL_PASSWORD = "m4ster-secret", "s3ntinel-secret"


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    """Master and replica with a password, three Sentinels with another."""
    with sentinel_set(password=MASTER_PASSWORD, sentinel_password=SENTINEL_PASSWORD) as servers:
        yield servers


@pytest.fixture(autouse=True)
def no_redis_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REDIS_LOCATION_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def failure(settings: dict[str, str]) -> str:
    """What a client built from ``settings`` says when it can't reach the master (one line)."""
    client = redis_from_settings(Settings(settings))
    with pytest.raises(redis.ConnectionError) as raised:
        client.ping()
    client.close()
    return redis_trouble(raised.value)


def test_the_settings_reach_the_master_the_sentinels_name(sentinels: SentinelSet) -> None:
    settings = Settings(sentinels.settings)
    assert redis_configured(settings)
    client = redis_from_settings(settings)
    try:
        client.set("written-through-sentinel", b"yes")
        assert client.get("written-through-sentinel") == b"yes"  # bytes, as every component expects
    finally:
        client.close()
    with sentinels.master.client() as master:
        assert master.get("written-through-sentinel") == "yes"
    where = describe(settings)
    assert where.startswith("sentinel://127.0.0.1:") and where.endswith(f"/{MASTER_NAME}")
    assert SENTINEL_PASSWORD not in where and MASTER_PASSWORD not in where


def test_the_settings_come_from_the_environment_too(
    sentinels: SentinelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sentinels.settings.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    taken = settings_from_environment(settings)
    assert {"REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD"} <= set(taken)
    client = redis_from_settings(settings)
    try:
        assert client.ping()
    finally:
        client.close()


def test_a_redis_url_naming_the_master_carries_its_password(sentinels: SentinelSet) -> None:
    settings = {**sentinels.settings, "REDIS_URL": f"redis://:{MASTER_PASSWORD}@{MASTER_NAME}/0"}
    settings.pop("REDIS_PARAMS")
    client = redis_from_settings(Settings(settings))
    try:
        assert client.ping()
    finally:
        client.close()
    assert MASTER_PASSWORD not in describe(Settings(settings))


def test_no_sentinel_reachable_is_one_line() -> None:
    ports = [free_port(), free_port()]
    line = failure(
        {"REDIS_SENTINELS": f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", "REDIS_SENTINEL_MASTER": "m"}
    )
    assert line == (
        f"no Sentinel reachable at 127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]} (ConnectionError): "
        "start them, or fix REDIS_SENTINELS"
    )


def test_an_unknown_master_name_is_one_line(sentinels: SentinelSet) -> None:
    line = failure({**sentinels.settings, "REDIS_SENTINEL_MASTER": "nosuchmaster"})
    assert "monitor no master named 'nosuchmaster'" in line, line
    assert f"(they monitor: '{MASTER_NAME}'): fix REDIS_SENTINEL_MASTER" in line, line


@pytest.mark.parametrize(
    ("password", "expected"),
    [("wr0ng-pass", "refused REDIS_SENTINEL_PASSWORD"), ("", "want a password: set REDIS_SENTINEL_PASSWORD")],
)
def test_a_wrong_or_missing_sentinel_password_is_one_line(
    sentinels: SentinelSet, password: str, expected: str
) -> None:
    line = failure({**sentinels.settings, "REDIS_SENTINEL_PASSWORD": password})
    assert line.startswith("the Sentinels at 127.0.0.1:") and line.endswith(expected), line
    assert "wr0ng-pass" not in line and SENTINEL_PASSWORD not in line


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"REDIS_URL": "redis://:pw@redis-a.internal:6379/0"},
            "REDIS_SENTINELS and REDIS_URL (redis://***@redis-a.internal:6379/0) are both set and disagree",
        ),
        ({"REDIS_HOST": "redis-a.internal"}, "REDIS_SENTINELS and REDIS_HOST are both set"),
        ({"REDIS_PORT": "6380"}, "REDIS_SENTINELS and REDIS_PORT are both set"),
        ({"REDIS_SENTINEL_MASTER": ""}, "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not"),
        ({"REDIS_SENTINELS": "", "REDIS_URL": ""}, "REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not"),
        ({"REDIS_SENTINELS": "h1:26379,h2:notaport"}, "REDIS_SENTINELS must be the Sentinels' host:port"),
        ({"REDIS_SENTINELS": "h1:70000"}, "REDIS_SENTINELS must be the Sentinels' host:port"),
    ],
    ids=["url", "host", "port", "no-master", "no-sentinels", "bad-port", "port-range"],
)
def test_conflicting_settings_are_refused_naming_them(settings: dict[str, str], message: str) -> None:
    given = {"REDIS_SENTINELS": "127.0.0.1:26379", "REDIS_SENTINEL_MASTER": MASTER_NAME, **settings}
    with pytest.raises(SettingError) as raised:
        redis_from_settings(Settings(given))
    assert str(raised.value).startswith(message), raised.value
    assert ":pw@" not in str(raised.value)


def test_sentinel_addresses() -> None:
    assert parse_sentinels("a:1, [::1]:2,b") == (("a", 1), ("::1", 2), ("b", 26379))
    assert sentinel_config(Settings({"REDIS_URL": "redis://h:6379/0"})) is None
    listed = Settings({"REDIS_SENTINELS": ["a:1", "b:2"], "REDIS_SENTINEL_MASTER": "m"})
    config = sentinel_config(listed)
    assert config is not None and config.sentinels == (("a", 1), ("b", 2))


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            {"REDIS_SENTINELS": "127.0.0.1:1", "REDIS_URL": "redis://:pw@redis-a.internal:6379/0"},
            "REDIS_SENTINELS and REDIS_URL (redis://***@redis-a.internal:6379/0) are both set",
        ),
        (
            {"REDIS_SENTINELS": "127.0.0.1:{free}"},
            "no Sentinel reachable at 127.0.0.1:{free} (ConnectionError)",
        ),
    ],
    ids=["conflict", "no-sentinel"],
)
def test_a_crawl_with_bad_sentinel_settings_stops_with_one_clear_line(
    environment: dict[str, str], expected: str
) -> None:
    """A real ``scrapy crawl`` with the settings in its environment, as on a scrapyd node."""
    free = str(free_port())
    env = {
        **os.environ,
        "SOLIDOT_OUTPUT": "",
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        **{name: value.replace("{free}", free) for name, value in environment.items()},
    }
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
    assert expected.replace("{free}", free) in last, result.stderr[-2000:]
    assert ":pw@" not in result.stderr


def test_the_tools_read_through_sentinel(sentinels: SentinelSet) -> None:
    """``status`` on an empty crawl, and a Sentinel nobody runs: one line, exit 2 or 1."""
    env = {
        **os.environ,
        **sentinels.settings,
        "MONGO_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "status", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert (
        SENTINEL_PASSWORD not in done.stdout + done.stderr
        and MASTER_PASSWORD not in done.stdout + done.stderr
    )
    env["REDIS_SENTINELS"] = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "seed", "--sids", "1-2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "no Sentinel reachable at 127.0.0.1:" in line, line


def test_a_worker_through_sentinel_names_it_and_logs_no_password(
    tmp_path: Path, sentinels: SentinelSet, mongo: MongoServer, mongo_db_name: str
) -> None:
    """A worker started before any seed: it connects through the Sentinels (both passwords set),
    says where it waits, and closes; neither password is in its log."""
    with (
        replica_server(10, 80300) as site,
        cluster(site, tmp_path, "", mongo.uri, mongo_db_name, **sentinels.settings) as crawl,
    ):
        worker = crawl.start_worker("lonely", SCHEDULER_WAIT_FOR_SEED="1")
        assert worker.wait(timeout=60) == 0
    log = worker.log()
    assert worker.stats()["finish_reason"] == "no_seed", log[-2000:]
    assert f"No crawl was seeded at sentinel://127.0.0.1:{sentinels.sentinels[0].port}," in log
    assert MASTER_PASSWORD not in log and SENTINEL_PASSWORD not in log
