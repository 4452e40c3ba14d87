"""What every page came to, for Solidot (issue 23): a sid range outside the replica's window shows the
gaps and the 404 alert; a replica whose story pages are half malformed shows the drop alert. Each is one
worker's shared crawl (``run_crawl`` checks the outcomes add up to the pages), read back with
``status`` as an operator runs it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness import replica_server, run_crawl, run_status

#: The replica's window: sids up to 80300, 120 stories.
STORIES, LAST_SID = 120, 80300


def shared_crawl(tmp_path: Path, redis_url: str, sids: str, faults: str = "") -> dict[str, Any]:
    """One worker's shared crawl of ``sids`` to its end; → the crawl's stats."""
    with replica_server(stories=STORIES, last_sid=LAST_SID, faults=faults) as server:
        settings = {"REDIS_URL": redis_url, "SOLIDOT_DEDUPE_KEY": f"test:{uuid.uuid4().hex[:8]}:content_hash"}
        result = run_crawl(server, tmp_path, {"sids": sids}, settings, timeout=120)
    assert result.returncode == 0 and result.stats["finish_reason"] == "finished", result.log[-3000:]
    return result.stats


def status_json(redis_url: str) -> dict[str, Any]:
    shown = run_status(redis_url, "--json")
    assert shown.returncode == 0, shown.stderr
    parsed: dict[str, Any] = json.loads(shown.stdout)
    return parsed


@pytest.mark.integration  # a worker process and a replica
def test_a_sid_range_outside_the_site_shows_its_gaps_and_the_404_alert(
    tmp_path: Path, redis_url: str
) -> None:
    stats = shared_crawl(tmp_path, redis_url, "78001-78150")
    assert stats["outcome/story_gap"] == 150 and stats.get("item_scraped_count", 0) == 0
    shown = status_json(redis_url)
    assert shown["pages"] == 151
    assert shown["outcomes"] == {"story_gap": 150, "robots_txt": 1}
    message = (
        "151 pages, no items: 150 (99%) came to story_gap: "
        "every story page answered 404: is the sid range inside the site's?"
    )
    assert {"rule": "no_items", "message": message} in shown["alerts"]
    assert not [alert for alert in shown["alerts"] if alert["rule"] == "drop_share"]
    text = run_status(redis_url).stdout.splitlines()
    assert text[1] == f"ALERT      {message}"
    assert "outcomes   story_gap 150 (99%) · robots_txt 1 (1%)" in text


@pytest.mark.integration  # a worker process and a replica
def test_half_the_story_pages_malformed_shows_the_drop_alert(tmp_path: Path, redis_url: str) -> None:
    stats = shared_crawl(tmp_path, redis_url, "80200-80300", faults="malformed=0.5")
    dropped = stats["outcome/dropped/missing_title"]
    assert 20 <= dropped <= 80 and stats["outcome/story_new"] == stats["item_scraped_count"]
    shown = status_json(redis_url)
    assert shown["outcomes"]["dropped/missing_title"] == dropped
    share = dropped / shown["pages"]
    message = f"`missing_title` on {share:.0%} of pages in the last 5 minutes: has the markup changed?"
    assert shown["alerts"] == [{"rule": "drop_share", "message": message}]
    assert f"ALERT      {message}" in run_status(redis_url).stdout.splitlines()
