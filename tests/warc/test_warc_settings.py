"""The WARC recorder's settings, as the framework reads them for any project: installed by the add-on
at 890 and off without ``WARC_DIR``; ``WARC_*`` from ``-s``, settings.py or the environment, the old
``SOLIDOT_WARC_*`` names (the Solidot project's ``RENAMED_SETTINGS``) with a warning; numbers and the file prefix checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.exceptions import NotConfigured, ScrapyDeprecationWarning
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SharedCrawl
from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.warc.recorder import WarcRecorder
from solidot_spider.legacy import RENAMED


def recorder(tmp_path: Path, **settings: object) -> WarcRecorder:
    made = WarcRecorder.from_crawler(get_crawler(settings_dict={"WARC_DIR": str(tmp_path), **settings}))
    assert isinstance(made, WarcRecorder)
    return made


def test_the_addon_installs_the_recorder_below_the_http_cache_off_until_warc_dir() -> None:
    settings = Settings({"BOT_NAME": "anyproject"}, priority="project")
    SharedCrawl().update_settings(settings)
    assert settings.getdict("DOWNLOADER_MIDDLEWARES")[WarcRecorder] == 890
    with pytest.raises(NotConfigured):
        WarcRecorder.from_crawler(get_crawler(settings_dict={"WARC_DIR": "  "}))


def test_warc_settings_come_from_the_environment_below_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARC_DIR", "/data/warc")
    monkeypatch.setenv("WARC_MAX_SIZE", "2000000")
    settings = Settings({"WARC_MAX_SIZE": "500000"}, priority="cmdline")
    SharedCrawl().update_settings(settings)
    assert settings.get("WARC_DIR") == "/data/warc"
    assert settings.get("WARC_MAX_SIZE") == "500000"


def test_an_old_warc_setting_name_is_carried_over_with_a_warning() -> None:
    """The Solidot project's old names, as its settings list them (``RENAMED_SETTINGS``)."""
    settings = Settings({"RENAMED_SETTINGS": RENAMED}, priority="project")
    settings.setdict({"SOLIDOT_WARC_DIR": "warc", "SOLIDOT_WARC_COOKIES": "True"}, priority="cmdline")
    with pytest.warns(ScrapyDeprecationWarning) as caught:
        SharedCrawl().update_settings(settings)
    said = sorted(str(warning.message).split(" (")[0] for warning in caught)
    assert said == [
        "The setting SOLIDOT_WARC_COOKIES is deprecated: use WARC_COOKIES",
        "The setting SOLIDOT_WARC_DIR is deprecated: use WARC_DIR",
    ]
    assert (settings.get("WARC_DIR"), settings.getbool("WARC_COOKIES")) == ("warc", True)


def test_files_are_named_after_the_project_unless_told(tmp_path: Path) -> None:
    assert recorder(tmp_path, BOT_NAME="links project").files.prefix == "links_project"
    assert recorder(tmp_path, BOT_NAME="links", WARC_PREFIX="archive-1").files.prefix == "archive-1"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WARC_MAX_SIZE", "99999", "within 100,000..1,000,000,000,000"),
        ("WARC_MAX_SIZE", "lots", "within 100,000..1,000,000,000,000"),
        ("WARC_PREFIX", "../elsewhere", "letters, digits"),
        ("WARC_PREFIX", "a b", "letters, digits"),
    ],
)
def test_a_setting_that_cannot_work_stops_the_start_naming_it(
    tmp_path: Path, name: str, value: str, says: str
) -> None:
    with pytest.raises(SettingError, match=name) as refused:
        recorder(tmp_path, **{name: value})
    assert says in str(refused.value)
    assert not list(tmp_path.iterdir())  # nothing written
