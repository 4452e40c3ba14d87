"""End-to-end crawls of the replica in each discovery mode, compared with its ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import CrawlResult, ReplicaServer, run_crawl
from truth import assert_items_match

from solidot_replica import Replica


@pytest.fixture(scope="module")
def sids_crawl(
    replica: ReplicaServer, replica_model: Replica, tmp_path_factory: pytest.TempPathFactory
) -> CrawlResult:
    sids = replica_model.sids() + replica_model.gap_sids()
    result = run_crawl(replica, tmp_path_factory.mktemp("sids"), {"sids": f"{min(sids)}-{max(sids)}"})
    assert result.returncode == 0, result.log[-3000:]
    return result


def test_sid_range_yields_every_story_once_equal_to_truth(
    sids_crawl: CrawlResult, replica: ReplicaServer, replica_model: Replica
) -> None:
    truths = {sid: replica_model.truth(sid, replica.base_url) for sid in replica_model.sids()}
    # stories found by sid alone were seen on no list page: categories are best effort
    assert_items_match(sids_crawl.items, truths, categories="subset")
    assert all(item["categories"] == [] for item in sids_crawl.items)


def test_sid_gaps_are_counted_not_errors(sids_crawl: CrawlResult, replica_model: Replica) -> None:
    assert replica_model.gap_sids(), "the replica should have gaps in a 300-sid window"
    assert sids_crawl.stats.get("solidot/story_gap") == len(replica_model.gap_sids())
    assert sids_crawl.stats.get("log_count/ERROR", 0) == 0, sids_crawl.log[-3000:]
    assert sids_crawl.stats["finish_reason"] == "finished"


def test_no_deprecation_warnings(sids_crawl: CrawlResult) -> None:
    # Scrapy routes Python warnings into its log
    assert "Deprecation" not in sids_crawl.log, sids_crawl.log[-3000:]


def test_story_80222_has_the_fixture_facts(sids_crawl: CrawlResult, replica: ReplicaServer) -> None:
    # literal facts of shared/fixtures/story-80222.md, not the replica's own truth
    story = sids_crawl.by_sid()[80222]
    assert story["url"] == f"{replica.base_url}/story?sid=80222"
    assert story["title"] == "普京命令俄罗斯加强与中国在 AI 上的合作"
    assert (story["author"], story["author_uid"]) == ("Wilson", 42865)
    assert story["published_at"] == "2025-01-03T14:01:00+08:00"
    assert story["topics"] == [{"tid": 151, "name": "人工智能"}]
    assert story["department"] == "月海沉船"
    assert story["views"] == 5581
    assert story["references"] == [
        "https://www.reuters.com/technology/artificial-intelligence/"
        "putin-orders-russian-government-top-bank-develop-ai-cooperation-with-china-2025-01-01/"
    ]
    paragraph, reference = story["body_text"].split("\n")
    assert paragraph.startswith("俄罗斯总统普京下令政府以及联邦储蓄银行(Sberbank)加强与中国在 AI 上的合作。")
    assert paragraph.endswith("不仅远远落后于美国和中国，也远远落后于印度和巴西。")
    assert reference == story["references"][0]
    assert (story["comment_count"], story["comments"]) == (0, [])


def test_day_archives_yield_every_story_once_with_categories(
    replica: ReplicaServer, replica_model: Replica, tmp_path: Path
) -> None:
    days = replica_model.days()
    assert len(days) >= 30
    result = run_crawl(replica, tmp_path, {"since": days[0].isoformat(), "until": days[-1].isoformat()})
    assert result.returncode == 0, result.log[-3000:]
    truths = {sid: replica_model.truth(sid, replica.base_url) for sid in replica_model.sids()}
    assert_items_match(result.items, truths, categories="exact")
    assert result.stats["solidot/list_pages"] == len(days)
    assert result.stats.get("log_count/ERROR", 0) == 0


def test_latest_crawls_home_categories_and_rss(
    replica: ReplicaServer, replica_model: Replica, tmp_path: Path
) -> None:
    result = run_crawl(replica, tmp_path)
    assert result.returncode == 0, result.log[-3000:]
    expected = set(replica_model.home_sids()) | set(replica_model.rss_sids())
    for category in replica_model.categories():
        expected |= set(replica_model.category_home_sids(category))
    truths = {sid: replica_model.truth(sid, replica.base_url) for sid in expected}
    assert_items_match(result.items, truths, categories="subset")
    # every story on a category home was listed with its category
    listed = {sid for c in replica_model.categories() for sid in replica_model.category_home_sids(c)}
    assert all(item["categories"] for item in result.items if item["sid"] in listed)


def test_arguments_combine(replica: ReplicaServer, replica_model: Replica, tmp_path: Path) -> None:
    last_days = replica_model.days()[-3:]
    old_sids = replica_model.sids()[:20]
    result = run_crawl(
        replica,
        tmp_path,
        {
            "since": last_days[0].isoformat(),
            "until": last_days[-1].isoformat(),
            "sids": f"{old_sids[0]}-{old_sids[-1]}",
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    expected = set(old_sids) | {sid for day in last_days for sid in replica_model.sids_on(day)}
    truths = {sid: replica_model.truth(sid, replica.base_url) for sid in expected}
    assert_items_match(result.items, truths, categories="subset")
