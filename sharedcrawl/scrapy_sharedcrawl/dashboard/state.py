"""One refresh of the dashboard: the crawl as ``status`` reads it, and what an operator watches for.

:meth:`DashboardReader.read` builds the snapshot ``GET /api/state`` returns
(docs/watching.md): ``status``'s own reading (:class:`~scrapy_sharedcrawl.cli.status.StatusReader`:
queue, leases, done, seen, pages, items, errors, what pages came to, alerts), plus the crawl's phase, seed
and scope, an estimate of the time left, every worker the registry still
knows (gone ones too) with its rate, dead letters by reason, and the project's
panel and metrics (``project``: :meth:`~scrapy_sharedcrawl.report.CrawlReport.view`, as ``status``
shows them). Every text read from Redis or a project's store is shown, never run:
the page writes it with ``textContent``, and only http(s) links are kept.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.status import Status, StatusReader, worker_row
from scrapy_sharedcrawl.dashboard.charts import SeriesCache, columns, error_kind_names, rate_per_minute
from scrapy_sharedcrawl.dashboard.scope import seed_key
from scrapy_sharedcrawl.reading import Unreadable, moment, replies, text
from scrapy_sharedcrawl.timeseries import series_fields, series_key
from scrapy_sharedcrawl.workers import LIVE_BEATS, Worker, parse_workers

#: Window (s) of the rates shown: pages/min, items/min, the estimate of the time left.
RATE_WINDOW = 300.0
#: Window (s) of a worker's pages/min, from the dashboard's own readings of its heartbeat.
WORKER_WINDOW = 60.0
#: A worker is "late" once its heartbeat is this many beats old (gone: ``LIVE_BEATS``).
LATE_BEATS = 1.5
#: Most labels a by-reason table shows; the rest are summed under "other".
MAX_REASONS = 30
#: Seconds between counts of the URLs seen (one SCARD per dupefilter shard: thousands at 2M URLs), and
#: between SCANs for the hosts' keys (their pauses are read at every refresh).
SEEN_EVERY = 30.0
#: The crawl's phases, in the words the page shows.
PHASES = ("no crawl", "waiting for a seed", "crawling", "finishing", "finished", "stalled", "idle")


class _Reader(StatusReader):
    """``status``'s reader, counting the URLs seen and looking for hosts at most every :data:`SEEN_EVERY`
    seconds."""

    _seen: tuple[float, tuple[int | None, bool]] | None = None
    _hosts: tuple[float, list[bytes]] | None = None

    def host_keys(self) -> list[bytes]:
        """The hosts' keys, found again at most every :data:`SEEN_EVERY` seconds (a SCAN of the keyspace:
        a crawl's hosts are few and long-lived; their pauses are read at every refresh)."""
        now = time.monotonic()
        if self._hosts is None or now - self._hosts[0] >= SEEN_EVERY:
            self._hosts = (now, super().host_keys())
        return self._hosts[1]

    def seen(self, stored: dict[bytes, bytes]) -> tuple[int | None, bool]:
        now = time.monotonic()
        if not stored or self._seen is None or self._seen[1][0] is None or now - self._seen[0] >= SEEN_EVERY:
            self._seen = (now, super().seen(stored))
        return self._seen[1]


class DashboardReader:
    """Reads the snapshot; keeps what rates need between refreshes (the series, workers' pages)."""

    def __init__(self, settings: Settings, spider: str, store_uri: str = "") -> None:
        self.status_reader = _Reader(settings, spider, store_uri)
        self.server = self.status_reader.server
        self.keys = self.status_reader.keys
        self.series = SeriesCache(self.server, series_key(self.keys.prefix))
        #: The series' fields as the workers record them: the framework's and the project's own.
        self.fields = series_fields(settings)
        self._beats: dict[str, deque[tuple[float, int]]] = {}
        #: The reasons the dead-letter table (and its metric) names, kept for the crawl.
        self.dead_labels = StableLabels()
        #: The label values each of the project's metrics names, kept for the crawl.
        self.project_labels: dict[str, StableLabels] = {}
        #: The outcomes and kinds of unfetched requests shown (and their metrics), kept for the crawl.
        self.outcome_labels, self.unfetched_labels = StableLabels(), StableLabels()
        self._epoch: str | None = None

    def read(self) -> dict[str, Any]:
        """The snapshot (raises ``redis.RedisError`` when Redis can't be read)."""
        status = self.status_reader.read()
        pipe = self.server.pipeline(transaction=True)
        pipe.time()
        pipe.zrange(self.keys.workers, 0, -1, withscores=True)
        pipe.hgetall(self.keys.worker_info)
        pipe.get(f"{self.keys.queue}:seeded")
        pipe.hgetall(seed_key(self.keys.prefix))
        unreadable = Unreadable(dict(status.unreadable))
        results = pipe.execute(raise_on_error=False)
        # status' own reading counted the registry's keys already; the seed's are the dashboard's own
        (seconds, micros), beats, info = replies(
            results[:3], ["time", self.keys.workers, self.keys.worker_info], [None, [], {}], Unreadable()
        )
        seeded, seed = replies(
            results[3:], [f"{self.keys.queue}:seeded", seed_key(self.keys.prefix)], [None, {}], unreadable
        )
        now = seconds + micros / 1e6
        everyone = parse_workers(now * 1000, beats, info, include_gone=True, unreadable=Unreadable())
        for gone in self._beats.keys() - {worker.id for worker in everyone}:
            del self._beats[gone]  # the registry forgot it: so do the rates (memory bounded by the registry)
        if status.started_at != self._epoch:  # a new crawl: its own reasons
            self._epoch = status.started_at
            self.dead_labels, self.project_labels = StableLabels(), {}
            self.outcome_labels, self.unfetched_labels = StableLabels(), StableLabels()
        try:
            points = self.series.update(status.started_at)
        except redis.ResponseError:  # the series' key of another type: no charts, the rest is read; the
            # key is counted once, by status' own reading (its alerts read the same series' window)
            points = self.series.points
        live = [worker for worker in everyone if worker.live]
        phase = crawl_phase(status, bool(live), seeded is not None)
        done_rate = rate_per_minute(points, "done", RATE_WINDOW)
        remaining = status.queued + status.leased
        seed_info = {text(k): text(v) for k, v in seed.items()}
        seeded_at = moment(seed_info["seeded_at"]) if seed_info.get("seeded_at") else None
        if seeded_at is None and seed_info.get("seeded_at"):
            unreadable.skip("seed", "seeded_at", f"{seed_info['seeded_at'][:40]!r} is no time")
        return {
            "crawl": {
                "spider": status.spider,
                "redis": status.redis,
                "phase": phase,
                "status_state": status.state,
                "crawl_id": text(seeded) if seeded is not None else seed_info.get("crawl"),
                "scope": seed_info.get("scope"),
                "seeded_at": seeded_at,
                "started_at": status.started_at,
                "updated_at": status.updated_at,
                "finished_at": status.finished_at,
                "now": status.now,
            },
            "progress": {
                "done": status.done,
                "queued": status.queued,
                "leased": status.leased,
                "hosts_ready": status.hosts_ready,
                "hosts_waiting": status.hosts_waiting,
                "total": status.done + remaining,
                "fraction": status.progress,
                "done_per_min": done_rate,
                "eta_seconds": round(remaining / done_rate * 60) if done_rate and remaining else None,
            },
            "counts": {
                "seen": status.seen,
                "seen_exact": status.seen_exact,
                "pages": status.pages,
                "items": status.items,
                "items_source": status.items_source,
                "pages_per_min": rate_per_minute(points, "pages", RATE_WINDOW),
                "pages_per_min_status": status.pages_per_minute,
                "items_per_min": rate_per_minute(points, "items", RATE_WINDOW),
                "dead_letters": status.dead_letters,
                "store_buffered": sum(worker.buffered for worker in live),
                "workers_live": len(live),
                "workers_gone": len(everyone) - len(live),
            },
            "errors": status.errors,
            "error_kinds": error_kinds(status.stats, self.fields),
            "outcomes": self.outcome_labels.bound(status.outcomes),
            "unfetched": self.unfetched_labels.bound(status.unfetched),
            "alerts": status.alerts,
            "workers": [self._worker(worker, now) for worker in everyone],
            "dead_reasons": self.dead_labels.bound(
                {
                    name.removeprefix("scheduler/dead/"): int(value)
                    for name, value in status.stats.items()
                    if name.startswith("scheduler/dead/")
                }
            ),
            "project": self.project(status.project),
            "series_points": len(points),
            "unreadable": unreadable.counts,
        }

    def charts(self) -> dict[str, Any]:
        """The chart columns of the series read by the last :meth:`read`."""
        return columns(self.series.points, error_kinds=error_kind_names(self.fields))

    def _worker(self, worker: Worker, now: float) -> dict[str, Any]:
        beats = self._beats.setdefault(worker.id, deque(maxlen=256))
        if not beats or beats[-1][1] != worker.pages:
            beats.append((now - worker.heartbeat_age, worker.pages))
        while len(beats) > 2 and beats[1][0] <= now - WORKER_WINDOW:
            beats.popleft()
        if not worker.live:
            rate: float | None = 0.0
        elif len(beats) >= 2 and beats[-1][0] > beats[0][0]:
            rate = (beats[-1][1] - beats[0][1]) / (beats[-1][0] - beats[0][0]) * 60
        elif now > worker.started_at:
            rate = worker.pages / (now - worker.started_at) * 60  # since it started, until two readings
        else:
            rate = None
        age_beats = worker.heartbeat_age / worker.heartbeat_interval if worker.heartbeat_interval > 0 else 0
        state = "gone" if not worker.live else "late" if age_beats > LATE_BEATS else "live"
        return {
            **worker_row(worker),
            "state": state,
            "heartbeat_interval": worker.heartbeat_interval,
            "gone_after": LIVE_BEATS * worker.heartbeat_interval,
            "pages_per_min": None if rate is None else round(rate, 1),
            "errors": worker.errors,
            "buffered": worker.buffered,
        }

    def project(self, project: dict[str, Any]) -> dict[str, Any]:
        """The project's view (``status``'s reading), each metric's label values kept for the crawl
        (:class:`StableLabels`: ``/metrics``' label sets stay put)."""
        metrics = []
        for metric in project.get("metrics", []):
            if metric["label"]:
                labels = self.project_labels.setdefault(metric["name"], StableLabels())
                metric = {**metric, "values": labels.bound(metric["values"])}
            metrics.append(metric)
        return {**project, "metrics": metrics}


def crawl_phase(status: Status, live: bool, seeded: bool) -> str:
    """Where the crawl is (one of :data:`PHASES`), from one reading."""
    if status.queued or status.leased:
        if not live:
            return "stalled"  # work left, nobody to do it
        return "crawling" if status.queued else "finishing"  # the last requests are in flight
    if status.finished_at is not None:
        return "finished"
    if live:
        return "finishing" if seeded else "waiting for a seed"
    return "idle" if status.started_at is not None else "no crawl"


def error_kinds(stats: dict[str, int | float], fields: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """The shared error counters summed by kind, as the time series' ``fields`` group them (bounded
    labels)."""
    kinds = {}
    for field, names in fields.items():
        if field.startswith("err_"):
            kinds[field.removeprefix("err_")] = sum(
                value
                for stat, value in stats.items()
                if any(stat == name or (name.endswith("/") and stat.startswith(name)) for name in names)
            )
    return kinds


class StableLabels:
    """The reasons a by-reason table names: the ``limit`` largest at first sight, then kept.

    A reason first seen once every place is taken is summed under ``other``, and stays there: no
    reading re-ranks the reasons, so ``/metrics``' label sets stay put and ``other``, a sum of
    counters none of which ever leaves it, never goes down.
    """

    def __init__(self, limit: int = MAX_REASONS) -> None:
        self.limit = limit
        self.kept: set[str] = set()

    def bound(self, counts: dict[str, int]) -> dict[str, int]:
        """The kept reasons' counts, largest first, and ``other``: the rest summed (if any)."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        for name, _ in ranked:
            if len(self.kept) >= self.limit:
                break
            self.kept.add(name)
        kept = {name: value for name, value in ranked if name in self.kept}
        if rest := sum(value for name, value in ranked if name not in self.kept):
            kept["other"] = kept.get("other", 0) + rest
        return kept


def bounded(counts: dict[str, int], limit: int = MAX_REASONS) -> dict[str, int]:
    """The ``limit`` largest counts, the rest summed as ``other`` (one reading's :class:`StableLabels`)."""
    return StableLabels(limit).bound(counts)
