"""Alerts that name a crawl's likely trouble, for ``status``, the dashboard and ``/metrics``.

The rules (:data:`RULES`: ``no_items``, ``drop_share``, ``host_paused``, ``worker_gone``) read the
shared stats, the outcomes (:mod:`.outcomes`), the cluster rate's keys and the worker registry; their
thresholds are the ``ALERT_*`` settings, and the project words the likely cause.

Design notes: docs/framework-design.md#alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import float_setting, int_setting, setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import CrawlKeys
from scrapy_sharedcrawl.outcomes import outcomes_of
from scrapy_sharedcrawl.reading import counter, printable, text
from scrapy_sharedcrawl.stats import PAGES_STAT
from scrapy_sharedcrawl.timeseries import Point, parse_points, series_key
from scrapy_sharedcrawl.workers import Worker

#: Every rule, in the order alerts are shown (``/metrics`` has a gauge for each).
RULES = ("no_items", "drop_share", "host_paused", "worker_gone")
#: Most host keys looked at for pauses per reading (a crawl has a handful of hosts).
MAX_HOSTS = 200
#: Most alerts of one rule shown (the rest summed in the last line).
MAX_PER_RULE = 5
#: The time series field of an outcome (:data:`.timeseries.FIELDS`' fan-out ``o:``).
SERIES_OUTCOME = "o:"

#: The project's wording of a likely cause: (rule, subject) → a sentence, or "" for none.
Cause = Callable[[str, str], str]


@dataclass(frozen=True)
class Alert:
    """One alert: its rule (:data:`RULES`) and the line an operator reads."""

    rule: str
    message: str


@dataclass(frozen=True)
class AlertSettings:
    """The thresholds (``ALERT_*``; defaults in :mod:`.defaults`)."""

    min_pages: int = DEFAULTS["ALERT_MIN_PAGES"]
    window: float = DEFAULTS["ALERT_WINDOW"]
    window_min_pages: int = DEFAULTS["ALERT_WINDOW_MIN_PAGES"]
    drop_share: float = DEFAULTS["ALERT_DROP_SHARE"]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> AlertSettings:
        """Read and check them (raises :class:`.config.SettingError` naming the setting and its range)."""
        return cls(
            min_pages=int_setting(
                settings, "ALERT_MIN_PAGES", DEFAULTS["ALERT_MIN_PAGES"], at_least=1, at_most=10**9
            ),
            window=float_setting(
                settings, "ALERT_WINDOW", DEFAULTS["ALERT_WINDOW"], at_least=10, at_most=86_400, meaning="s"
            ),
            window_min_pages=int_setting(
                settings,
                "ALERT_WINDOW_MIN_PAGES",
                DEFAULTS["ALERT_WINDOW_MIN_PAGES"],
                at_least=1,
                at_most=10**9,
            ),
            drop_share=float_setting(
                settings,
                "ALERT_DROP_SHARE",
                DEFAULTS["ALERT_DROP_SHARE"],
                above=0,
                at_most=1,
                meaning="share of the window's pages",
            ),
        )


def _with_cause(message: str, cause: str) -> str:
    return f"{message}: {cause}" if cause else message


def no_items(stats: Mapping[str, float], config: AlertSettings, cause: Cause) -> Alert | None:
    """Many pages and no item: what most of them came to, and the project's likely cause."""
    pages = int(stats.get(PAGES_STAT, 0))
    if pages < config.min_pages or stats.get("item_scraped_count", 0):
        return None
    outcomes = outcomes_of(dict(stats))
    message = f"{pages:,} pages, no items"
    if not outcomes:
        return Alert("no_items", message)
    top, count = next(iter(outcomes.items()))
    message += f": {count:,} ({count / pages:.0%}) came to {top}"
    return Alert("no_items", _with_cause(message, cause("no_items", top)))


def drop_shares(
    stats: Mapping[str, float],
    before: Point | None,
    config: AlertSettings,
    cause: Cause,
) -> list[Alert]:
    """Drop reasons at or above the share of the window's pages: ``stats`` (now) minus ``before`` (the
    last point of the series at the window's start; None: the crawl started within the window)."""
    old = before.values if before is not None else {}
    pages = stats.get(PAGES_STAT, 0) - old.get("pages", 0)
    if pages < config.window_min_pages:
        return []
    alerts = []
    minutes = config.window / 60
    for name, value in outcomes_of(dict(stats)).items():
        if not name.startswith("dropped/"):
            continue
        dropped = value - old.get(SERIES_OUTCOME + name, 0)
        share = dropped / pages
        if share >= config.drop_share:
            reason = name.removeprefix("dropped/")
            message = f"`{reason}` on {share:.0%} of pages in the last {minutes:g} minutes"
            alerts.append(Alert("drop_share", _with_cause(message, cause("drop_share", reason))))
    return alerts


def gone_workers(workers: Iterable[Worker]) -> list[Alert]:
    """A worker the registry lists whose heartbeats stopped (it died: a clean exit leaves the registry)."""
    return [
        Alert(
            "worker_gone",
            f"worker {worker.node} pid {worker.pid} gone: last heartbeat {worker.heartbeat_age:,.0f} s ago "
            "(its leased requests return to the queue when their lease expires)",
        )
        for worker in workers
        if not worker.live
    ]


@dataclass(frozen=True)
class HostKeys:
    """The cluster rate's per-host keys of a crawl (``CLUSTER_HOST_KEY``), found by a SCAN."""

    pattern: str  # the SCAN pattern
    head: str  # what precedes the host name in a key

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider: str) -> HostKeys | None:
        """None when ``CLUSTER_HOST_KEY`` names no host (no pause can be read)."""
        template = str(setting(settings, "CLUSTER_HOST_KEY", DEFAULTS))
        try:
            pattern, head = (template % {"spider": spider, "host": host} for host in ("*", ""))
        except (KeyError, TypeError, ValueError):
            return None
        return cls(pattern, head) if pattern != head else None

    def find(self, server: redis.Redis) -> list[bytes]:
        """Up to :data:`MAX_HOSTS` keys (a SCAN over the whole keyspace: callers may keep the result)."""
        keys = []
        for key in server.scan_iter(match=self.pattern, count=1000):
            keys.append(key)
            if len(keys) >= MAX_HOSTS:
                break
        return keys


def paused_hosts(server: redis.Redis, hosts: HostKeys, keys: list[bytes], now: float) -> list[Alert]:
    """Of the hosts' ``keys``, those paused for the whole cluster at ``now`` (Redis time, s): one round
    trip."""
    if not keys:
        return []
    pipe = server.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "pause_until", "pause_reason")
    alerts = []
    for key, reply in zip(keys, pipe.execute(raise_on_error=False), strict=True):
        if not isinstance(reply, list) or len(reply) != 2:
            continue  # a key of another type: not the cluster rate's
        until = counter(reply[0]) if reply[0] is not None else None
        if until is None or until / 1e6 <= now:
            continue
        host = printable(text(key).removeprefix(hosts.head))[:100]
        why = printable(text(reply[1]))[:60] if reply[1] is not None else "a pause"
        message = f"host {host} paused for every worker for {until / 1e6 - now:,.0f} s more ({why})"
        alerts.append(Alert("host_paused", message))
    return alerts


def window_start(server: redis.Redis, keys: CrawlKeys, until: float, window: float) -> Point | None:
    """The series' last point at or before ``until - window`` (None: none, the crawl is younger)."""
    bound = int((until - window) * 1000)
    if bound <= 0:
        return None
    points = parse_points(server.xrevrange(series_key(keys.prefix), max=str(bound), min="-", count=1) or [])
    return points[0] if points else None


def bounded(alerts: list[Alert]) -> list[Alert]:
    """At most :data:`MAX_PER_RULE` alerts per rule, in :data:`RULES` order; the rest summed in one line."""
    result = []
    for rule in RULES:
        of_rule = [alert for alert in alerts if alert.rule == rule]
        result += of_rule[:MAX_PER_RULE]
        if len(of_rule) > MAX_PER_RULE:
            result.append(Alert(rule, f"… and {len(of_rule) - MAX_PER_RULE} more"))
    return result


def alert_rows(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    """Alerts as ``status --json`` and the dashboard carry them."""
    return [{"rule": alert.rule, "message": alert.message} for alert in alerts]
