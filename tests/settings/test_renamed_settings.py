"""Old setting names are a project's, not the framework's: a project lists them in ``RENAMED_SETTINGS``
and the add-on (every crawl) and the ``sharedcrawl`` commands carry them over with a deprecation
warning, honouring ``-s``, settings.py and the environment as for the new names; a bad list is one
line naming the setting. Shown with a made-up project ("gadgets"); the framework's own source names
no Solidot command, setting or module."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SharedCrawl
from scrapy_sharedcrawl.config import LEASING_SCHEDULER, SettingError
from scrapy_sharedcrawl.legacy import apply_legacy_names, renamed_settings
from scrapy_sharedcrawl.testing.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = ROOT / "sharedcrawl" / "scrapy_sharedcrawl"
BIN = Path(sys.executable).parent
#: The made-up project's old names.
GADGETS = {
    "GADGETS_LEASE": "SCHEDULER_LEASE_SECONDS",
    "GADGETS_RATE": "CLUSTER_HOST_RATE",
    "GADGETS_REDIS": "REDIS_URL",
    "GADGETS_WARC_DIR": "WARC_DIR",
    "GADGETS_KEYS": "CRAWL_KEY_PREFIX",
}


#: Environment variables that would reach the settings (the add-on's, Scrapy's own).
FROM_ENVIRONMENT = ("REDIS_", "WARC_", "GADGETS_", "SCRAPY_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith(FROM_ENVIRONMENT):
            monkeypatch.delenv(name)


def gadgets(**given: Any) -> Settings:
    """The made-up project's settings (settings.py's priority), ``given`` on its command line."""
    settings = Settings({"BOT_NAME": "gadgets", "RENAMED_SETTINGS": GADGETS}, priority="project")
    settings.setdict(given, priority="cmdline")
    return settings


def test_the_frameworks_source_names_nothing_of_the_solidot_project() -> None:
    named = []
    for path in sorted(FRAMEWORK.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        for number, line in enumerate(text.splitlines(), 1):
            if re.search("solidot", line, re.IGNORECASE):
                named.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert named == []
    assert len(list(FRAMEWORK.rglob("*.py"))) >= 40  # the walk saw the package


def test_a_projects_old_name_reaches_a_crawl_with_a_warning_naming_the_new_one() -> None:
    with pytest.warns(ScrapyDeprecationWarning, match="GADGETS_RATE is deprecated: use CLUSTER_HOST_RATE"):
        crawler = get_crawler(
            settings_dict={"ADDONS": {SharedCrawl: 0}, "RENAMED_SETTINGS": GADGETS, "GADGETS_RATE": "3"}
        )
    assert crawler.settings.get("CLUSTER_HOST_RATE") == "3"
    assert crawler.settings.get("GADGETS_RATE") is None  # carried over, not read twice


def test_without_renamed_settings_a_name_is_just_a_name() -> None:
    settings = Settings({"GADGETS_RATE": "3", "SOLIDOT_HOST_RATE": "4"}, priority="cmdline")
    assert apply_legacy_names(settings) == []  # the framework renames nothing of its own
    assert settings.get("CLUSTER_HOST_RATE") is None


def test_the_command_line_old_name_beats_the_projects_new_one_and_a_new_one_as_high_wins() -> None:
    settings = gadgets(GADGETS_LEASE="30")
    settings.set("SCHEDULER_LEASE_SECONDS", "90", "project")
    with pytest.warns(ScrapyDeprecationWarning):
        assert apply_legacy_names(settings) == ["GADGETS_LEASE"]
    assert settings.get("SCHEDULER_LEASE_SECONDS") == "30"

    settings = gadgets(SCHEDULER_LEASE_SECONDS="30")
    settings.set("GADGETS_LEASE", "90", "project")
    with pytest.warns(ScrapyDeprecationWarning):
        apply_legacy_names(settings)
    assert settings.get("SCHEDULER_LEASE_SECONDS") == "30"


def test_an_old_name_of_a_setting_read_from_the_environment_is_read_from_it_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The add-on takes the Redis and WARC settings from the environment for any project: their old
    names come from there as well, below ``-s``."""
    monkeypatch.setenv("GADGETS_REDIS", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("GADGETS_WARC_DIR", "/data/warc")
    settings = gadgets(WARC_DIR="/cmdline/warc")
    with pytest.warns(ScrapyDeprecationWarning) as caught:
        SharedCrawl().update_settings(settings)
    assert sorted(str(warning.message).split(" is ")[0] for warning in caught) == [
        "The setting GADGETS_REDIS",
        "The setting GADGETS_WARC_DIR",
    ]
    assert settings.get("REDIS_URL") == "redis://127.0.0.1:1/0"
    assert settings.get("SCHEDULER") == LEASING_SCHEDULER  # the old name switched the shared crawl on
    assert settings.get("WARC_DIR") == "/cmdline/warc"


def test_renamed_settings_may_come_as_json_from_the_command_line() -> None:
    settings = Settings({"RENAMED_SETTINGS": '{"GADGETS_RATE": "CLUSTER_HOST_RATE"}', "GADGETS_RATE": "2"})
    with pytest.warns(ScrapyDeprecationWarning):
        apply_legacy_names(settings)
    assert settings.get("CLUSTER_HOST_RATE") == "2"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("not json", "must map old setting names to new ones"),
        ('["GADGETS_RATE"]', "must map old setting names to new ones"),
        ({"GADGETS_RATE": 5}, "got 'GADGETS_RATE': 5"),
        ({"gadgets_rate": "CLUSTER_HOST_RATE"}, "got 'gadgets_rate'"),
        ({"GADGETS_RATE": "CLUSTER HOST RATE"}, "got 'GADGETS_RATE': 'CLUSTER HOST RATE'"),
        ({"GADGETS_RATE": "GADGETS_RATE"}, "got 'GADGETS_RATE': 'GADGETS_RATE'"),
        ({"OLD_RATE": "GADGETS_RATE", "GADGETS_RATE": "CLUSTER_HOST_RATE"}, "GADGETS_RATE both as an old"),
    ],
)
def test_a_bad_list_is_refused_with_one_line_naming_the_setting(given: object, says: str) -> None:
    with pytest.raises(SettingError, match=r"^RENAMED_SETTINGS ") as refused:
        renamed_settings(Settings({"RENAMED_SETTINGS": given}))
    assert says in str(refused.value) and "\n" not in str(refused.value)


# -- a real project: its crawl and the sharedcrawl commands ---------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The made-up project on disk (the links example's spider), an old name in its settings.py."""
    package = tmp_path / "gadgets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        'BOT_NAME = "gadgets"\n'
        'SPIDER_MODULES = ["links_project.spiders"]\n'
        'ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}\n'
        "TELNETCONSOLE_ENABLED = False\n"
        f"RENAMED_SETTINGS = {GADGETS!r}\n"
        'GADGETS_KEYS = "gadgets-old:%(spider)s"\n'
    )
    (tmp_path / "scrapy.cfg").write_text("[settings]\ndefault = gadgets.settings\n")
    return tmp_path


def run(project: Path, *command: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """``command`` in the project's directory, with none of the settings the add-on reads from the
    environment but ``environment``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(FROM_ENVIRONMENT)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples" / "links_project"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        command, cwd=project, env={**env, **environment}, capture_output=True, text=True, timeout=120
    )


def test_sharedcrawl_status_reads_the_crawl_where_the_projects_old_name_puts_it(
    project: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    with redis_srv.client() as client:
        client.hset("gadgets-old:links:stats", "response_received_count", 7)
    done = run(project, str(BIN / "sharedcrawl"), "status", "--json", GADGETS_REDIS=redis_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pages"] == 7  # GADGETS_KEYS read as CRAWL_KEY_PREFIX
    warned = [line for line in done.stderr.splitlines() if "ScrapyDeprecationWarning" in line]
    assert len(warned) == 2 and "GADGETS_KEYS is deprecated: use CRAWL_KEY_PREFIX" in done.stderr
    assert "GADGETS_REDIS is deprecated: use REDIS_URL" in done.stderr  # from the environment


def test_a_bad_list_stops_a_command_and_a_crawl_with_one_line_naming_it(project: Path) -> None:
    settings = project / "gadgets" / "settings.py"
    settings.write_text(
        re.sub(r"RENAMED_SETTINGS = .*", "RENAMED_SETTINGS = {'GADGETS_KEYS': 5}", settings.read_text())
    )
    says = "RENAMED_SETTINGS must map old setting names to new ones"

    done = run(project, str(BIN / "sharedcrawl"), "status", "--redis-url", "redis://127.0.0.1:1/0")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().startswith(f"sharedcrawl status: {says}")
    assert len(done.stderr.strip().splitlines()) == 1

    crawl = run(project, str(BIN / "scrapy"), "crawl", "links")
    assert crawl.returncode != 0
    assert says in crawl.stderr.strip().splitlines()[-1], crawl.stderr[-2000:]
    assert "Spider opened" not in crawl.stderr
