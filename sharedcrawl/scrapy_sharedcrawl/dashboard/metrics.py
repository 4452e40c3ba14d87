"""The dashboard's snapshot as Prometheus metrics (``GET /metrics``), for Grafana and alerts.

Crawl-level figures only, with labels from small fixed sets (phases, error
kinds, worker states, dedupe outcomes, alert rules) or capped (drop and dead-letter
reasons, page outcomes, kinds of unfetched requests: the 30 largest, the rest as ``other``):
never a worker id, URL or exception text, so series don't multiply as workers come and go. Values are the same
snapshot ``/api/state`` serves (``status --json``'s numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from scrapy_sharedcrawl.alerts import RULES
from scrapy_sharedcrawl.dashboard.state import PHASES

PREFIX = "sharedcrawl_"


class CounterFloor:
    """Counters as ``/metrics`` shows them: never below a value shown before in the same crawl.

    A reading may see a counter lower than the last one (a field skipped as unreadable, stats
    rewritten by hand); Prometheus would take that for a restart and count the whole value again.
    A new crawl (another ``started_at``) starts afresh: that is a real restart. Memory: one value
    per label set, which :class:`~.state.StableLabels` and the fixed kinds keep few.
    """

    def __init__(self) -> None:
        self.epoch: Any = None
        self.shown: dict[tuple[str, tuple[str, ...]], float] = {}

    def start(self, epoch: Any) -> None:
        """Read under the crawl that started at ``epoch``; None (no start known in this reading, or an
        unreadable one) keeps the floors: only another start is a restart."""
        if epoch is not None and epoch != self.epoch:
            self.epoch, self.shown = epoch, {}

    def family(self, name: str, documentation: str, values: dict[str, float], label: str = "") -> Metric:
        """A counter family: one value per ``label`` value (none: ``{"": value}``), each floored."""
        family = CounterMetricFamily(name, documentation, labels=[label] if label else None)
        for key, value in values.items():
            labels = (key,) if label else ()
            shown = self.shown[(name, labels)] = max(value, self.shown.get((name, labels), value))
            family.add_metric(list(labels), shown)
        return family


class SnapshotCollector(Collector):
    """Yields the metrics of the latest snapshot ``source()`` returns (None: nothing read yet)."""

    def __init__(self, source: Any, refused: Any = None) -> None:
        self.source = source
        self.refused = refused
        self.floor = CounterFloor()

    def collect(self) -> Iterator[Metric]:
        snapshot, refreshed_at, healthy = self.source()
        up = GaugeMetricFamily("sharedcrawl_dashboard_redis_up", "1 if the last refresh read Redis")
        up.add_metric([], 1.0 if healthy else 0.0)
        yield up
        if refreshed_at is not None:
            yield _gauge(
                "sharedcrawl_dashboard_refreshed_timestamp_seconds", "last good refresh", refreshed_at
            )
        if self.refused is not None:
            refused = CounterMetricFamily(
                "sharedcrawl_dashboard_refused",
                "requests the dashboard refused, by reason",
                labels=["reason"],
            )
            for reason, count in self.refused().items():
                refused.add_metric([reason], count)
            yield refused
        if snapshot is not None:
            yield from crawl_metrics(snapshot, self.floor)


def crawl_metrics(snapshot: dict[str, Any], floor: CounterFloor | None = None) -> Iterator[Metric]:
    """Every crawl metric of one snapshot; counters never below ``floor``'s (see :class:`CounterFloor`)."""
    floor = floor or CounterFloor()
    floor.start(snapshot["crawl"]["started_at"])
    counter = floor.family
    progress, counts = snapshot["progress"], snapshot["counts"]
    yield _gauge(PREFIX + "queued", "requests waiting in the shared queue", progress["queued"])
    yield _gauge(PREFIX + "leased", "requests leased to workers (in flight)", progress["leased"])
    hosts = GaugeMetricFamily(PREFIX + "hosts", "hosts with requests queued, by state", labels=["state"])
    hosts.add_metric(["ready"], progress.get("hosts_ready", 0))
    hosts.add_metric(["waiting"], progress.get("hosts_waiting", 0))
    yield hosts
    yield counter(PREFIX + "done", "requests done (acknowledged)", {"": progress["done"]})
    if progress["fraction"] is not None:
        yield _gauge(PREFIX + "progress_ratio", "done / (done + queued + leased)", progress["fraction"])
    if progress["eta_seconds"] is not None:
        yield _gauge(PREFIX + "eta_seconds", "time left at the recent pace", progress["eta_seconds"])
    if counts["seen"] is not None:
        yield _gauge(PREFIX + "seen_urls", "URLs in the duplicate filter", counts["seen"])
    yield counter(PREFIX + "pages", "responses received by every worker", {"": counts["pages"]})
    yield _gauge(
        PREFIX + "items", "items, as the project's report counts them (scraped, by default)", counts["items"]
    )
    yield _gauge(PREFIX + "dead_letters", "refused payloads in the dead letters", counts["dead_letters"])
    yield _gauge(
        PREFIX + "store_buffered",
        "items live workers hold for the project's store (WORKER_BUFFER_STAT)",
        counts["store_buffered"],
    )
    workers = GaugeMetricFamily(PREFIX + "workers", "workers in the registry", labels=["state"])
    workers.add_metric(["live"], counts["workers_live"])
    workers.add_metric(["gone"], counts["workers_gone"])
    yield workers
    yield counter(PREFIX + "errors", "errors by kind (every worker)", snapshot["error_kinds"], "kind")
    yield counter(
        PREFIX + "outcome_pages", "pages received, by what they came to", snapshot["outcomes"], "outcome"
    )
    yield counter(
        PREFIX + "unfetched_requests", "requests that got no response, by kind", snapshot["unfetched"], "kind"
    )
    alerts = GaugeMetricFamily(PREFIX + "alerts", "alerts that hold, by rule", labels=["rule"])
    for rule in RULES:
        alerts.add_metric([rule], sum(1 for alert in snapshot["alerts"] if alert["rule"] == rule))
    yield alerts
    phase = GaugeMetricFamily(PREFIX + "phase", "1 for the crawl's current phase", labels=["phase"])
    for name in PHASES:
        phase.add_metric([name], 1.0 if snapshot["crawl"]["phase"] == name else 0.0)
    yield phase
    dead = snapshot.get("dead_reasons", {})
    yield counter(PREFIX + "dead", "requests in the dead letters, by reason", dead, "reason")
    unreadable = GaugeMetricFamily(PREFIX + "unreadable", "values skipped, last reading", labels=["what"])
    for what, count in snapshot.get("unreadable", {}).items():
        unreadable.add_metric([what], count)
    yield unreadable
    yield from project_metrics(snapshot.get("project", {}).get("metrics", []), floor)


def project_metrics(metrics: list[dict[str, Any]], floor: CounterFloor) -> Iterator[Metric]:
    """The project's own metrics (:meth:`~scrapy_sharedcrawl.report.CrawlReport.view`, checked by
    :func:`~scrapy_sharedcrawl.report.view_json`): counters floored as the framework's are."""
    for metric in metrics:
        name, documentation, label, values = (
            metric["name"],
            metric["documentation"],
            metric["label"],
            metric["values"],
        )
        if metric["type"] == "counter":
            yield floor.family(name, documentation, values, label)
        elif label:
            family = GaugeMetricFamily(name, documentation, labels=[label])
            for key, value in values.items():
                family.add_metric([key], value)
            yield family
        elif "" in values:
            yield _gauge(name, documentation, values[""])


def registry(source: Any, refused: Any = None) -> CollectorRegistry:
    """A registry holding only the snapshot's metrics (not this process's own), and the requests the
    server refused (``refused()``: reason → count) when given."""
    result = CollectorRegistry(auto_describe=False)
    result.register(SnapshotCollector(source, refused))
    return result


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
