"""A framework setting that can't work stops ``scrapy crawl`` in one line, for any project on the add-on.

Real ``scrapy crawl`` processes (the generic ``examples/links_project`` and the Solidot project) with a
bad value given on the command line or in the environment: exactly one ERROR/CRITICAL line naming the
setting, what it allows and what was given; no traceback (before, one ended in Scrapy's own "Engine
slot not assigned"); a non-zero exit code; nothing fetched, nothing taken from Redis. The operator's
tools say the same in one line of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ReplicaServer, crawl_command, crawl_env
from link_site import link_site
from scrapy.settings import Settings

from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.settings_check import check_settings
from scrapy_sharedcrawl.testing.redis_server import RedisServer

LINKS_PROJECT = Path(__file__).resolve().parents[2] / "examples" / "links_project"
BIN = Path(sys.executable).parent
#: A log line at ERROR or above (Scrapy's format: ``date time [logger] LEVEL: message``).
ERROR_LINE = re.compile(r"^\S+ \S+ \[[^\]]+\] (ERROR|CRITICAL): .*$", re.MULTILINE)


def links_env(**environment: str) -> dict[str, str]:
    """The environment a links_project worker runs in (as tests/shared_crawl/test_generic_crawl.py starts them)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(LINKS_PROJECT), os.environ.get("PYTHONPATH", "")]),
        "SCRAPY_SETTINGS_MODULE": "links_project.settings",
        **environment,
    }


def crawl_links(settings: dict[str, str], **environment: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", "links", "-s", "LOG_LEVEL=INFO"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return subprocess.run(
        command, cwd=LINKS_PROJECT, env=links_env(**environment), capture_output=True, text=True, timeout=180
    )


def assert_refused_in_one_line(
    done: subprocess.CompletedProcess[str], name: str, says: str, given: str
) -> None:
    """One ERROR/CRITICAL line naming the setting, what it allows and the value given; no traceback."""
    output = done.stdout + done.stderr
    errors = [match.group(0) for match in ERROR_LINE.finditer(output)]
    assert len(errors) == 1, output
    assert name in errors[0] and says in errors[0] and repr(given) in errors[0], errors[0]
    assert "Traceback" not in output and "Engine slot" not in output, output
    assert done.returncode != 0, output


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        # the scheduler's own: it used to fail inside the engine ("Engine slot not assigned")
        ("SCHEDULER_LEASE_SECONDS", "0", "a finite number > 0 and ≤ 86400"),
        ("SCHEDULER_HOST_HORIZON", "nan", "a number within 0.001..86400"),
        ("DUPEFILTER_MODE", "cuckoo", "'set' or 'bloom'"),
        # a boolean: Scrapy's getbool raised a ValueError naming no setting, in a traceback
        ("SCHEDULER_PERSIST", "maybe", "a boolean"),
        ("REDIS_START_URLS_AS_SET", "yes please", "a boolean"),
    ],
)
def test_a_generic_worker_with_a_bad_setting_stops_in_one_line_taking_nothing(
    redis_url: str, redis_srv: RedisServer, name: str, value: str, says: str
) -> None:
    with link_site(pages=3) as site, redis_srv.client() as client:
        client.lpush("links:start_urls", f"{site.base_url}/")
        done = crawl_links({"REDIS_URL": redis_url, name: value})
        assert_refused_in_one_line(done, name, says, value)
        assert site.served == 0
        assert client.keys("*") == ["links:start_urls"] and client.llen("links:start_urls") == 1


@pytest.mark.integration
def test_a_bad_redis_port_from_the_environment_stops_the_worker_in_one_line(redis_srv: RedisServer) -> None:
    done = crawl_links({}, REDIS_HOST="127.0.0.1", REDIS_PORT="99999")
    assert_refused_in_one_line(done, "REDIS_PORT", "an integer within 1..65,535", "99999")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "value", "says", "shared"),
    [
        # read by the host backoff, installed in any crawl (this one without Redis)
        ("HOST_BACKOFF_MAX", "nan", "a finite number ≥ 0", False),
        # read by the shared stats collector, which Scrapy builds before any extension
        ("STATS_PUSH_INTERVAL", "0", "a number within 0.1..3600", True),
    ],
)
def test_the_solidot_crawl_with_a_bad_setting_stops_in_one_line_fetching_nothing(
    replica: ReplicaServer, redis_url: str, tmp_path: Path, name: str, value: str, says: str, shared: bool
) -> None:
    settings = {name: value, **({"REDIS_URL": redis_url} if shared else {})}
    before = replica.stats()["requests"]
    command = crawl_command(tmp_path / "items.jsonl", {"sids": "80220-80224"}, settings)
    done = subprocess.run(
        command,
        cwd=LINKS_PROJECT.parent.parent,
        env=crawl_env(replica, tmp_path / "stats.json"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert_refused_in_one_line(done, name, says, value)
    assert replica.stats()["requests"] == before
    assert not (tmp_path / "items.jsonl").exists() or not (tmp_path / "items.jsonl").read_text().strip()


def test_the_seed_tool_says_a_bad_setting_in_one_line(redis_url: str, redis_srv: RedisServer) -> None:
    done = subprocess.run(
        [str(BIN / "sharedcrawl"), "seed", "links", "-s", "SCHEDULER_LEASE_SECONDS=0"],
        cwd=LINKS_PROJECT,
        env=links_env(REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "sharedcrawl seed: SCHEDULER_LEASE_SECONDS must be a finite number > 0 and ≤ 86400 (s), got '0'"
    )
    with redis_srv.client() as client:
        assert client.keys("*") == []


def test_status_says_a_bad_setting_from_the_environment_in_one_line() -> None:
    done = subprocess.run(
        [str(BIN / "sharedcrawl"), "status"],
        cwd=LINKS_PROJECT,
        env=links_env(REDIS_HOST="127.0.0.1", REDIS_PORT="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip() == "sharedcrawl status: REDIS_PORT must be an integer within 1..65,535, got '0'"
    )


def test_settings_are_checked_where_their_component_runs() -> None:
    """The scheduler's settings matter in a shared crawl only; the host backoff's in any crawl."""
    check_settings(Settings({"SCHEDULER_LEASE_SECONDS": "0"}))  # no Redis: no leasing scheduler
    shared = {
        "REDIS_URL": "redis://127.0.0.1:6379",
        "SCHEDULER": "scrapy_sharedcrawl.scheduler.LeasingScheduler",
    }
    with pytest.raises(SettingError, match="SCHEDULER_LEASE_SECONDS"):
        check_settings(Settings({**shared, "SCHEDULER_LEASE_SECONDS": "0"}))
    with pytest.raises(SettingError, match="HOST_BACKOFF_BASE"):
        check_settings(Settings({"HOST_BACKOFF_BASE": "-1"}))
