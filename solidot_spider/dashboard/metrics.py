"""The dashboard's snapshot as Prometheus metrics (``GET /metrics``), for Grafana and alerts.

Crawl-level figures only, with labels from small fixed sets (phases, error
kinds, worker states, dedupe outcomes) or capped (drop and dead-letter reasons:
the 30 largest, the rest as ``other``): never a worker id, URL or exception
text, so series don't multiply as workers come and go. Values are the same
snapshot ``/api/state`` serves (``status --json``'s numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from solidot_spider.dashboard.state import PHASES

PREFIX = "solidot_crawl_"


class SnapshotCollector(Collector):
    """Yields the metrics of the latest snapshot ``source()`` returns (None: nothing read yet)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        snapshot, refreshed_at, healthy = self.source()
        up = GaugeMetricFamily("solidot_dashboard_redis_up", "1 if the last refresh read Redis")
        up.add_metric([], 1.0 if healthy else 0.0)
        yield up
        if refreshed_at is not None:
            yield _gauge("solidot_dashboard_refreshed_timestamp_seconds", "last good refresh", refreshed_at)
        if snapshot is not None:
            yield from crawl_metrics(snapshot)


def crawl_metrics(snapshot: dict[str, Any]) -> Iterator[Metric]:
    """Every crawl metric of one snapshot."""
    progress, counts, archive = snapshot["progress"], snapshot["counts"], snapshot["archive"]
    yield _gauge(PREFIX + "queued", "requests waiting in the shared queue", progress["queued"])
    yield _gauge(PREFIX + "leased", "requests leased to workers (in flight)", progress["leased"])
    yield _counter(PREFIX + "done", "requests done (acknowledged)", progress["done"])
    if progress["fraction"] is not None:
        yield _gauge(PREFIX + "progress_ratio", "done / (done + queued + leased)", progress["fraction"])
    if progress["eta_seconds"] is not None:
        yield _gauge(PREFIX + "eta_seconds", "time left at the recent pace", progress["eta_seconds"])
    if counts["seen"] is not None:
        yield _gauge(PREFIX + "seen_urls", "URLs in the duplicate filter", counts["seen"])
    yield _counter(PREFIX + "pages", "responses received by every worker", counts["pages"])
    yield _gauge(PREFIX + "items", "stories stored in MongoDB (or scraped, without it)", counts["items"])
    yield _gauge(PREFIX + "dead_letters", "refused payloads in the dead letters", counts["dead_letters"])
    yield _gauge(PREFIX + "store_buffered", "items live workers hold for MongoDB", counts["store_buffered"])
    workers = GaugeMetricFamily(PREFIX + "workers", "workers in the registry", labels=["state"])
    workers.add_metric(["live"], counts["workers_live"])
    workers.add_metric(["gone"], counts["workers_gone"])
    yield workers
    errors = CounterMetricFamily(PREFIX + "errors", "errors by kind (every worker)", labels=["kind"])
    for kind, value in snapshot["error_kinds"].items():
        errors.add_metric([kind], value)
    yield errors
    phase = GaugeMetricFamily(PREFIX + "phase", "1 for the crawl's current phase", labels=["phase"])
    for name in PHASES:
        phase.add_metric([name], 1.0 if snapshot["crawl"]["phase"] == name else 0.0)
    yield phase
    dedupe = CounterMetricFamily(PREFIX + "stories", "stories this crawl, by outcome", labels=["outcome"])
    for outcome, value in archive["this_crawl"].items():
        dedupe.add_metric([outcome], value)
    yield dedupe
    yield _by_reason(PREFIX + "dropped", "items and pages dropped, by reason", archive["drops"])
    yield _by_reason(PREFIX + "dead", "requests in the dead letters, by reason", archive["dead_letters"])
    if archive["stories"] is not None:
        yield _gauge("solidot_archive_stories", "stories in the MongoDB collection", archive["stories"])


def registry(source: Any) -> CollectorRegistry:
    """A registry holding only the snapshot's metrics (not this process's own)."""
    result = CollectorRegistry(auto_describe=False)
    result.register(SnapshotCollector(source))
    return result


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _by_reason(name: str, documentation: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["reason"])
    for reason, value in counts.items():
        family.add_metric([reason], value)
    return family
