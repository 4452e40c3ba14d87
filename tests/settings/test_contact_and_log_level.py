"""SOLIDOT_CONTACT_URL and SOLIDOT_LOG_LEVEL work the ways docs/settings.md says (issue 25, rows 5 and 6):
the contact URL from settings.py, the environment or ``-s`` (scrapyd's ``setting=``) reaches the
User-Agent; SOLIDOT_LOG_LEVEL is an environment variable that sets LOG_LEVEL, and ``-s LOG_LEVEL``
wins over it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.settings import Settings
from scrapy.utils.test import get_reactor_settings

import solidot_spider.settings as project
from scrapy_sharedcrawl.compat import configure_crawler
from scrapy_sharedcrawl.config import SettingError
from solidot_spider.spiders.solidot import SolidotSpider

ROOT = Path(__file__).resolve().parents[2]


def crawler(**cmdline: str) -> Crawler:
    """The project's crawler as `scrapy crawl solidot -s NAME=VALUE…` configures it."""
    settings = Settings()
    settings.setmodule(project, priority="project")
    settings.setdict(get_reactor_settings(), priority="project")
    settings.setdict(cmdline, priority="cmdline")
    built = AsyncCrawlerRunner(settings).create_crawler(SolidotSpider)
    configure_crawler(built)
    return built


def scrapy_setting(name: str, *args: str, **environment: str) -> str:
    """`scrapy settings --get NAME` in the project, with ``environment`` added."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOLIDOT_")}
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "settings", "--get", name, *args],
        cwd=ROOT,
        env=env | environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dash_s_contact_url_reaches_the_user_agent() -> None:
    agent = crawler(SOLIDOT_CONTACT_URL="https://example.org/archive").settings["USER_AGENT"]
    assert agent.endswith("solidot-crawler/0.1 (+https://example.org/archive)")


def test_without_dash_s_the_user_agent_names_the_default_contact() -> None:
    assert crawler().settings["USER_AGENT"] == project.USER_AGENT
    assert project.SOLIDOT_CONTACT_URL in project.USER_AGENT


def test_a_user_agent_given_as_high_wins_over_the_contact_url() -> None:
    given = crawler(SOLIDOT_CONTACT_URL="https://example.org/a", USER_AGENT="mine/1.0")
    assert given.settings["USER_AGENT"] == "mine/1.0"


@pytest.mark.parametrize("contact", ["https://example.org/\r\nX-Evil: 1", "ftp://example.org/", "mailto:a@b"])
def test_a_contact_url_that_cannot_go_into_a_header_is_refused(contact: str) -> None:
    with pytest.raises(SettingError, match=r"^SOLIDOT_CONTACT_URL must be an http"):
        crawler(SOLIDOT_CONTACT_URL=contact)


def test_the_contact_url_from_the_environment_reaches_the_user_agent() -> None:
    agent = scrapy_setting("USER_AGENT", SOLIDOT_CONTACT_URL="https://example.org/from-env")
    assert agent.endswith("(+https://example.org/from-env)")


def test_solidot_log_level_in_the_environment_sets_log_level_and_dash_s_wins() -> None:
    assert scrapy_setting("LOG_LEVEL") == "INFO"
    assert scrapy_setting("LOG_LEVEL", SOLIDOT_LOG_LEVEL="DEBUG") == "DEBUG"
    assert scrapy_setting("LOG_LEVEL", "-s", "LOG_LEVEL=WARNING", SOLIDOT_LOG_LEVEL="DEBUG") == "WARNING"


def test_credentials_in_the_contact_url_never_reach_the_user_agent() -> None:
    agent = crawler(SOLIDOT_CONTACT_URL="https://me:s3cret@example.org/x").settings["USER_AGENT"]
    assert agent.endswith("(+https://example.org/x)")
    assert "s3cret" not in agent
