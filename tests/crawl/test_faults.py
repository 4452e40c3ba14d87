"""Every fault mode of the replica: the crawl completes, loses only what the site never
served, and counts each fault (crawler stats are checked against what the replica injected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import CrawlResult, ReplicaServer, replica_server, run_crawl
from truth import assert_items_match

from solidot_replica import FaultConfig, Replica, ReplicaConfig

STORIES, LAST_SID = 120, 80300


def crawl_with_faults(
    faults: str, tmp_path: Path, settings: dict[str, str] | None = None
) -> tuple[CrawlResult, dict[str, Any], Replica, ReplicaServer]:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID, faults=FaultConfig.parse(faults)))
    with replica_server(stories=STORIES, last_sid=LAST_SID, faults=faults) as server:
        low, high = min(model.sids()), max(model.sids())
        result = run_crawl(server, tmp_path, {"sids": f"{low}-{high}"}, settings)
        served = server.stats()
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    expected = set(model.sids()) - set(model.unserved_sids())
    truths = {sid: model.truth(sid, server.base_url) for sid in expected}
    assert_items_match(result.items, truths, categories="subset")
    return result, served, model, server


def injected(served: dict[str, Any], kind: str) -> int:
    count = served["faults"].get(kind, 0)
    assert count > 0, f"the replica injected no {kind} faults: {served['faults']}"
    return count


def reason_count(stats: dict[str, Any], reason: str) -> int:
    """Retries counted for a reason (Scrapy names 429 "Unknown Status": match on the code)."""
    prefix = f"retry/reason_count/{reason}"
    return sum(value for key, value in stats.items() if key.startswith(prefix))


def test_connection_resets_are_retried(tmp_path: Path) -> None:
    """Each connection closes after its answer, so every reset reaches Scrapy's RetryMiddleware
    (Twisted's pool re-sends a request itself only on a reused connection)."""
    result, served, _, _ = crawl_with_faults(
        "reset=0.1,seed=3", tmp_path, {"DEFAULT_REQUEST_HEADERS": '{"Connection": "close"}'}
    )
    assert served["requests"] == result.stats["downloader/request_count"]
    assert result.stats.get("retry/count", 0) == injected(served, "reset")
    assert result.stats.get("retry/max_reached", 0) == 0


def test_resets_on_reused_connections_are_resent_or_retried(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("reset=0.1,seed=3", tmp_path)
    # Twisted's connection pool re-sends an idempotent request once, unseen by Scrapy, when a
    # reused connection dies before answering; every other reset is a RetryMiddleware retry.
    resent_by_pool = served["requests"] - result.stats["downloader/request_count"]
    assert result.stats.get("retry/count", 0) + resent_by_pool == injected(served, "reset")
    assert result.stats.get("retry/max_reached", 0) == 0


def test_5xx_bursts_are_retried_with_backoff(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("burst=25x0.3,seed=4", tmp_path)
    assert result.stats.get("retry/count", 0) == injected(served, "error_burst")
    assert result.stats.get("backoff/pauses", 0) > 0
    assert result.stats.get("retry/max_reached", 0) == 0


def test_429_honours_retry_after(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("throttle=0.04,retry_after=1,seed=5", tmp_path)
    throttled = injected(served, "throttle")
    assert reason_count(result.stats, "429 ") == throttled
    assert result.stats.get("backoff/retry_after") == throttled


def test_slow_responses_within_the_timeout_cost_nothing(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("slow=0.3,slow_delay=0.2,seed=6", tmp_path)
    assert injected(served, "slow") > 0
    assert result.stats.get("retry/count", 0) == 0


def test_responses_slower_than_the_timeout_are_retried(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults(
        "slow=0.05,slow_delay=3,seed=7", tmp_path, {"DOWNLOAD_TIMEOUT": "1"}
    )
    assert reason_count(result.stats, "scrapy.exceptions.DownloadTimeoutError") == injected(served, "slow")


def test_truncated_pages_are_fetched_again(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("truncate=0.15,seed=8", tmp_path)
    assert result.stats.get("solidot/truncated/story") == injected(served, "truncate")
    assert result.stats.get("retry/reason_count/truncated_html") == injected(served, "truncate")


def test_a_wrong_charset_header_is_corrected(tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults("charset=0.4,seed=9", tmp_path)
    assert result.stats.get("solidot/charset_corrected") == injected(served, "wrong_charset")


def test_malformed_pages_are_counted_drops_not_crashes(tmp_path: Path) -> None:
    result, _, model, _ = crawl_with_faults("malformed=0.05,seed=10", tmp_path)
    unserved = model.unserved_sids()
    assert unserved, "the replica should serve some malformed pages"
    assert result.stats.get("solidot/dropped/missing_title") == len(unserved)
    assert "Dropped a page (missing_title)" in result.log
    assert result.stats.get("log_count/ERROR", 0) == 0


def test_a_server_that_is_gone_is_counted_story_by_story(tmp_path: Path) -> None:
    with replica_server(stories=10, last_sid=80300) as server:
        pass  # started to learn a free port, now stopped: nothing listens there
    result = run_crawl(
        server, tmp_path, {"sids": "80291-80300"}, {"RETRY_TIMES": "1", "ROBOTSTXT_OBEY": "False"}
    )
    assert result.returncode == 0, result.log[-3000:]
    assert result.items == []
    assert result.stats.get("solidot/story_failed/DownloadConnectionRefusedError") == 10
    assert result.log.count("lost:") == 10


@pytest.mark.parametrize(
    "spec", ["reset=0.02,truncate=0.05,burst=60x0.2,charset=0.2,slow=0.1,slow_delay=0.1"]
)
def test_all_faults_at_once(spec: str, tmp_path: Path) -> None:
    result, served, _, _ = crawl_with_faults(spec + ",seed=11", tmp_path)
    assert result.stats.get("retry/max_reached", 0) == 0
    assert sum(served["faults"].values()) > 0
