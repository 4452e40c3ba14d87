"""Spider arguments and `solidot-crawl seed` options: every bad value refused with a clear error."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler

from solidot_spider.site.discovery import (
    DEFAULT_MAX_DAYS,
    DEFAULT_MAX_SIDS,
    Discovery,
    beijing_today,
    parse_day,
)
from solidot_spider.spiders.solidot import SolidotSpider

ROOT = Path(__file__).resolve().parents[2]
#: Nothing listens here: a seed that got as far as Redis fails with exit status 1, not 2.
NO_REDIS = "redis://127.0.0.1:1/0"


def spider(settings: dict[str, Any] | None = None, **arguments: str) -> SolidotSpider:
    crawler = get_crawler(SolidotSpider, {"SOLIDOT_BASE_URL": "https://www.solidot.org", **(settings or {})})
    return SolidotSpider.from_crawler(crawler, **arguments)


# -- sids: capped, merged, streamed ---------------------------------------------------------


def test_a_huge_sid_range_is_refused_at_start_up_naming_the_limit() -> None:
    with pytest.raises(ValueError, match=r"999,999,999 story ids, more than SOLIDOT_MAX_SIDS = 200,000"):
        spider(sids="1-999999999")
    with pytest.raises(ValueError, match="SOLIDOT_MAX_SIDS = 10"):
        spider({"SOLIDOT_MAX_SIDS": "10"}, sids="1-5,20-25")
    # the limit counts each sid once: overlapping ranges are merged first
    assert spider({"SOLIDOT_MAX_SIDS": "10"}, sids="1-10,3-7,10").discovery.sid_count == 10
    assert spider({"SOLIDOT_MAX_SIDS": str(DEFAULT_MAX_SIDS + 1)}, sids=f"1-{DEFAULT_MAX_SIDS + 1}")
    assert spider(sids="1-85600").discovery.sid_count == 85600  # the whole site fits the default
    with pytest.raises(ValueError, match="SOLIDOT_MAX_SIDS must be an integer ≥ 1, got 'many'"):
        spider({"SOLIDOT_MAX_SIDS": "many"}, sids="1-5")


def test_sid_ranges_are_merged_and_streamed_not_kept_in_a_set() -> None:
    # overlapping and adjacent ranges yield each sid once, newest first
    assert list(Discovery.from_arguments(sids="5-3,4-6,9,8,1").sids()) == [9, 8, 6, 5, 4, 3, 1]
    scope = Discovery.from_arguments(sids="1-1000000,200000-250000")
    assert scope.sid_ranges == ((1, 1000000),)
    tracemalloc.start()
    try:
        count = sum(1 for _ in scope.sids())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 1_000_000
    assert peak < 1_000_000, f"iterating 1M sids peaked at {peak:,} bytes"


@pytest.mark.parametrize("sids", ["３-5", "1-٣", "1_000", "+5", "1-1000000000", "80000-80300,9" + "9" * 5000])
def test_sids_of_anything_but_one_to_nine_ascii_digits_are_refused(sids: str) -> None:
    with pytest.raises(ValueError, match=r"sids look like A-B or A-B,C with A, B, C from 1 to 999,999,999"):
        Discovery.from_arguments(sids=sids)


# -- days: a sane window, capped -------------------------------------------------------------


def test_dates_outside_the_sane_window_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"within 2000-01-01\.\."):
        Discovery.from_arguments(since="0001-01-01")
    with pytest.raises(ValueError, match=r"within 2000-01-01\.\."):
        Discovery.from_arguments(since="1999-12-31")
    too_late = beijing_today() + timedelta(days=2)
    with pytest.raises(ValueError, match="tomorrow in Beijing"):
        Discovery.from_arguments(since="2025-01-01", until=too_late.isoformat())
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("２０２５-01-01")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("2025-02-30")
    # the edges are fine, tomorrow included (Beijing may already be a day ahead of the caller)
    assert parse_day("2000-01-01") == date(2000, 1, 1)
    tomorrow = beijing_today() + timedelta(days=1)
    assert list(Discovery.from_arguments(since=tomorrow.isoformat(), until=tomorrow.isoformat()).days()) == [
        tomorrow
    ]


def test_a_long_day_range_is_capped_by_a_setting() -> None:
    assert spider(since="2006-01-01").discovery.day_count <= DEFAULT_MAX_DAYS
    with pytest.raises(ValueError, match=r"names 31 days, more than SOLIDOT_MAX_DAYS = 30"):
        spider({"SOLIDOT_MAX_DAYS": "30"}, since="2025-01-01", until="2025-01-31")
    with pytest.raises(ValueError, match="SOLIDOT_MAX_DAYS must be an integer ≥ 1"):
        spider({"SOLIDOT_MAX_DAYS": "0"}, since="2025-01-01")
    assert (
        spider({"SOLIDOT_MAX_DAYS": "31"}, since="2025-01-01", until="2025-01-31").discovery.day_count == 31
    )


# -- latest: only the usual yes/no words -----------------------------------------------------


def test_latest_takes_only_the_usual_words() -> None:
    for word in ("true", "TRUE", "1", "Yes", "on"):
        assert Discovery.from_arguments(sids="1-2", latest=word).latest is True
    for word in ("false", "0", "no", "OFF", " False "):
        assert Discovery.from_arguments(sids="1-2", latest=word).latest is False
    for word in ("ture", "flase", "", "2", "y", "enable"):
        with pytest.raises(ValueError, match=r"latest must be true/false \(or 1/0, yes/no, on/off\), got"):
            spider(sids="1-2", latest=word)


# -- solidot-crawl seed: refused before anything is pushed ------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sids", "1-999999999"], "more than SOLIDOT_MAX_SIDS = 200,000"),
        (["--sids", "1-50", "-s", "SOLIDOT_MAX_SIDS=20"], "more than SOLIDOT_MAX_SIDS = 20"),
        (
            ["--since", "2025-01-01", "--until", "2025-03-01", "-s", "SOLIDOT_MAX_DAYS=7"],
            "SOLIDOT_MAX_DAYS = 7",
        ),
        (["--since", "0001-01-01"], "within 2000-01-01"),
    ],
)
def test_seed_refuses_a_scope_too_large_before_touching_redis(options: list[str], message: str) -> None:
    """The real command (its own process: seeding builds a crawler without a reactor)."""
    result = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "seed", *options, "--redis-url", NO_REDIS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("solidot-crawl seed: ") and message in result.stderr
    assert "Redis unreachable" not in result.stderr and "Traceback" not in result.stderr
