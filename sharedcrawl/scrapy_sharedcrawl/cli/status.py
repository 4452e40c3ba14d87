"""The ``status`` command: a shared crawl at a glance, from Redis, while it runs and after.

sharedcrawl status                   # once, for people
sharedcrawl status --watch [5]       # again every 5 s (default 2) until the crawl is finished
sharedcrawl status --json            # for machines (with --watch: one JSON object per line)

Design notes: docs/framework-design.md#cli-status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from scrapy.settings import Settings
from tqdm import tqdm

from scrapy_sharedcrawl.alerts import (
    Alert,
    AlertSettings,
    HostKeys,
    alert_rows,
    bounded,
    drop_shares,
    gone_workers,
    no_items,
    paused_hosts,
    window_start,
)
from scrapy_sharedcrawl.cli.options import CrawlDefaults, add_crawl_arguments, crawl_redis
from scrapy_sharedcrawl.cli.tables import table
from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.keys import BUCKET, CrawlKeys, leased_total
from scrapy_sharedcrawl.outcomes import outcomes_of, unfetched_of
from scrapy_sharedcrawl.reading import Unreadable, counter, moment, printable, replies, text, whole
from scrapy_sharedcrawl.report import CrawlReport, read_view
from scrapy_sharedcrawl.stats import PAGES_STAT
from scrapy_sharedcrawl.timeseries import series_key
from scrapy_sharedcrawl.workers import Worker, parse_workers

#: Minutes shown for pages/min.
RECENT_MINUTES = 5
#: Shared counters that are errors, by kind (exact names, or prefixes ending in "/").
ERROR_STATS = (
    "log_count/ERROR",
    "log_count/CRITICAL",
    "downloader/exception_type_count/",
    "retry/reason_count/",
    "retry/max_reached",
    "spider_exceptions/",
    "scheduler/dead",
    "scheduler/dead/",
    "scheduler/refused/",
    "scheduler/payload_missing",
)


@dataclass
class Status:
    """Everything ``status`` shows; ``--json`` prints it as is."""

    redis: str
    spider: str
    state: str  # running, finished, stalled (work left, no live worker), idle, no crawl
    now: str
    started_at: str | None
    updated_at: str | None
    finished_at: str | None
    queued: int
    leased: int
    done: int
    dead_letters: int  # payloads refused from the queue, kept for inspection, never retried
    progress: float | None  # done / (done + queued + leased)
    seen: int | None
    seen_exact: bool
    items: int
    items_source: str
    pages: int
    pages_per_minute: float | None
    recent_minutes: list[dict[str, Any]]
    errors: dict[str, int | float]
    workers: list[dict[str, Any]]
    stats: dict[str, int | float] = field(repr=False)
    #: Values skipped as no worker could have written them, by kind (stats, meta, workers, pages, seen).
    unreadable: dict[str, int] = field(default_factory=dict)
    #: What every page received came to (``outcome/…``, they add up to ``pages``), largest first.
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Requests that ended without a response, by kind (``unfetched/…``: not in the pages).
    unfetched: dict[str, int] = field(default_factory=dict)
    #: The alerts that hold (:mod:`~scrapy_sharedcrawl.alerts`): rule and message each.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The project's panel and metrics (:meth:`~scrapy_sharedcrawl.report.CrawlReport.view`): ``panel``
    #: (None: none), ``metrics``, ``error`` (why its report failed, else None).
    project: dict[str, Any] = field(default_factory=dict)
    #: Hosts with a queue of their own (those whose requests all wait in the shared bucket are not
    #: counted): that may be handed out now, and that wait for their rate or a pause.
    hosts_ready: int = 0
    hosts_waiting: int = 0


def register(commands: Any, defaults: CrawlDefaults | None = None) -> None:
    """Add ``status`` to ``commands``; ``defaults`` name the spider (None: the project's only one)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="show a shared crawl: queue, leases, seen, items, pages/min, errors, workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until the crawl is finished",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_crawl_arguments(
        parser, "count items here (default: MONGO_URI; none: the crawl's stats)", defaults or CrawlDefaults()
    )
    parser.set_defaults(run=run)


def run(options: argparse.Namespace, settings: Settings) -> int:
    crawl_redis(options, settings, "status")
    spider = options.spider or CrawlDefaults.spider_of(settings)
    if options.watch is not None and options.watch <= 0:
        raise ValueError("--watch needs a positive number of seconds")
    reader = StatusReader(settings, spider, options.mongo_uri or settings.get("MONGO_URI") or "")
    try:
        while True:
            status = reader.read()
            if options.json:
                print(json.dumps(asdict(status), indent=None if options.watch else 2), flush=True)
            else:
                if options.watch and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place
                print(render(status) + ("\n" if options.watch else ""), flush=True)
            if options.watch is None or status.state == "finished":
                return 0
            time.sleep(options.watch)  # a command-line loop: waiting is its job
    except KeyboardInterrupt:
        return 0
    except redis.RedisError as error:
        raise ValueError(
            f"Redis unreachable at {reader.where} ({type(error).__name__}: {error}): is it running, and is "
            "REDIS_URL (or --redis-url) the crawl's?"
        ) from None


class StatusReader:
    """Reads a crawl's state from Redis (and MongoDB): one atomic read, then the slow counts."""

    def __init__(self, settings: Settings, spider: str, store_uri: str = "") -> None:
        self.server = redis_from_settings(settings)
        self.where = describe(settings)
        self.keys = CrawlKeys.from_settings(settings, spider)
        #: The project's part: items and its error counters (:mod:`~scrapy_sharedcrawl.report`).
        self.report = CrawlReport.from_settings(settings, store_uri)
        self.alert_settings = AlertSettings.from_settings(settings)  # checked before any reading
        self.hosts = HostKeys.from_settings(settings, spider)  # where the cluster rate keeps host pauses

    def read(self) -> Status:
        keys = self.keys
        pipe = self.server.pipeline(transaction=True)  # one consistent moment
        pipe.time()
        pipe.get(keys.queued)
        pipe.get(keys.leased)
        pipe.hgetall(keys.stats)
        pipe.hgetall(keys.meta)
        pipe.zrange(keys.workers, 0, -1, withscores=True)
        pipe.hgetall(keys.worker_info)
        pipe.hgetall(keys.seen_meta)
        pipe.hlen(f"{keys.queue}:dead")
        pipe.zcard(keys.queue_keys.ready)
        pipe.zcard(keys.queue_keys.wait)
        pipe.zscore(keys.queue_keys.ready, BUCKET)
        pipe.zcard(keys.queue_keys.holders)
        pipe.zcard(keys.queue_keys.leases)
        unreadable = Unreadable()
        read = replies(
            pipe.execute(raise_on_error=False),
            [
                *("time", keys.queued, keys.leased, keys.stats, keys.meta, keys.workers, keys.worker_info),
                *(keys.seen_meta, f"{keys.queue}:dead", keys.queue_keys.ready, keys.queue_keys.wait),
                keys.queue_keys.ready,
                *(keys.queue_keys.holders, keys.queue_keys.leases),
            ],
            [None, 0, 0, {}, {}, [], {}, {}, 0, 0, 0, None, 0, 0],
            unreadable,
        )
        (seconds, micros), raw_queued, raw_leased, raw_stats, raw_meta, beats, info = read[:7]
        seen_meta, dead, hosts = read[7], read[8], read[9:12]
        queued = whole(raw_queued or 0)
        if queued is None:  # not a count a worker could have written: shown as 0, and said
            unreadable.skip("keys", keys.queued, f"{text(raw_queued)[:40]!r} is no count")
            queued = 0
        leased_counter = whole(raw_leased or 0)
        if leased_counter is None:  # counted as the finish check counts it: one a holder
            unreadable.skip("keys", keys.leased, f"{text(raw_leased)[:40]!r} is no count")
        leased = leased_total(leased_counter, *read[12:])
        now = seconds + micros / 1e6
        stats = read_stats(raw_stats, unreadable)
        meta = {text(name): text(value) for name, value in raw_meta.items()}
        everyone = parse_workers(now * 1000, beats, info, include_gone=True, unreadable=unreadable)
        workers = [worker for worker in everyone if worker.live]
        started, updated, finished = (
            _meta_moment(meta, name, unreadable) for name in ("started_at", "updated_at", "finished_at")
        )
        done = int(stats.get("scheduler/acked", 0) + stats.get("scheduler/acked/late", 0))
        total = done + queued + leased
        if workers:
            state = "running"
        elif finished is not None:
            state = "finished"
        elif queued or leased:
            state = "stalled"
        elif started is not None:
            state = "idle"
        else:
            state = "no crawl"
        try:
            seen, exact = self.seen(seen_meta)
        except (ValueError, redis.ResponseError) as error:  # a layout no worker stored, a shard of
            # another type: the count is unknown, the rest is read
            unreadable.skip("seen", self.keys.seen_meta, f"{type(error).__name__}: {str(error)[:200]}")
            seen, exact = None, True
        if seen is None and meta.get("seen"):  # recorded when the crawl's dupefilter was deleted
            if (recorded := whole(meta["seen"])) is not None:
                seen, exact = recorded, meta.get("seen_exact") != "0"
            else:
                unreadable.skip("meta", "seen", f"{meta['seen'][:40]!r} is no count")
        items, source = self.report.items(stats)
        until = now if workers or updated is None else updated
        rate, recent = self.pages(until, started, unreadable)
        # workers gone during this crawl (the registry remembers them for a day): none once it is finished
        gone = [
            worker
            for worker in everyone
            if not worker.live and state != "finished" and now - worker.heartbeat_age >= (started or 0.0)
        ]
        alerts = self.alerts(stats, now, until, gone, unreadable)
        crawl = {
            "spider": keys.spider,
            "state": state,
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "items": items,
            "items_source": source,
        }
        return Status(
            redis=self.where,
            spider=keys.spider,
            state=state,
            now=_iso(now) or "",
            started_at=_iso(started),
            updated_at=_iso(updated),
            finished_at=_iso(finished),
            queued=int(queued),
            leased=int(leased),
            done=done,
            dead_letters=int(dead),
            progress=done / total if total else None,
            seen=seen,
            seen_exact=exact,
            items=items,
            items_source=source,
            pages=int(stats.get(PAGES_STAT, 0)),
            pages_per_minute=rate,
            recent_minutes=recent,
            errors=errors_by_kind(stats, self.report.is_error),
            workers=[worker_row(worker) for worker in workers],
            stats=dict(sorted(stats.items())),
            unreadable=unreadable.counts,
            outcomes=outcomes_of(stats),
            unfetched=unfetched_of(stats),
            alerts=alert_rows(alerts),
            project=read_view(self.report, stats, crawl),
            hosts_ready=int(hosts[0]) - (hosts[2] is not None),  # the shared bucket is no host
            hosts_waiting=int(hosts[1]),
        )

    def alerts(
        self,
        stats: dict[str, int | float],
        now: float,
        until: float,
        gone: list[Worker],
        unreadable: Unreadable,
    ) -> list[Alert]:
        """The alerts that hold (:mod:`~scrapy_sharedcrawl.alerts`); ``until``: the recent window's end,
        ``gone``: the workers that died during the crawl."""
        config, cause = self.alert_settings, self.report.alert_cause
        found = [alert for alert in [no_items(stats, config, cause)] if alert is not None]
        try:
            before = window_start(self.server, self.keys, until, config.window)
        except redis.ResponseError as error:  # the series' key of another type: no window, the rest is read
            unreadable.skip(
                "keys", series_key(self.keys.prefix), f"{type(error).__name__}: {str(error)[:120]}"
            )
            before = None
        found += drop_shares(stats, before, config, cause)
        if self.hosts is not None:
            found += paused_hosts(self.server, self.hosts, self.host_keys(), now)
        found += gone_workers(gone)
        return bounded(found)

    def host_keys(self) -> list[bytes]:
        """The hosts' keys of the cluster rate (a SCAN: the dashboard keeps them a while)."""
        return self.hosts.find(self.server) if self.hosts is not None else []

    def seen(self, stored: dict[bytes, bytes]) -> tuple[int | None, bool]:
        """URLs in the dupefilter: exact (SCARD over the shards) or a Bloom filter's estimate."""
        dupefilter = CompactRFPDupeFilter(self.server, key=self.keys.seen)
        if dupefilter.adopt_stored(stored) is None:
            return None, True  # no filter (yet, or deleted when the crawl finished)
        return dupefilter.count()  # the same count the finishing worker records (CrawlState.finalize)

    def pages(
        self, until: float, started: float | None, unreadable: Unreadable | None = None
    ) -> tuple[float | None, list[dict[str, Any]]]:
        """Pages per minute over the last minutes up to ``until``, and each minute's count."""
        last = int(until // 60)
        minutes = list(range(last - RECENT_MINUTES + 1, last + 1))
        keys = [self.keys.pages(m) for m in minutes]
        counts = []
        for key, value in zip(keys, self.server.mget(keys), strict=True):
            count = whole(value or 0)
            if count is None:
                (unreadable or Unreadable()).skip("pages", key, f"{text(value or b'')[:40]!r} is no count")
            counts.append(count or 0)
        recent = [{"minute": _iso(m * 60), "pages": c} for m, c in zip(minutes, counts, strict=True)]
        since = max(minutes[0] * 60, started or 0.0)
        if started is None or until <= since:
            return None, recent
        return round(sum(counts) / max(1.0, until - since) * 60, 1), recent


def read_stats(raw: dict[bytes, bytes], unreadable: Unreadable) -> dict[str, int | float]:
    """The shared stats hash as numbers; a field that holds no number a worker adds up is skipped."""
    stats = {}
    for name, value in raw.items():
        number = counter(value)
        if number is None:
            unreadable.skip("stats", name, f"{text(value)[:40]!r} is no counter")
        else:
            stats[text(name)] = number
    return stats


def _meta_moment(meta: dict[str, str], name: str, unreadable: Unreadable) -> float | None:
    """A time of the crawl's meta (``started_at``…): None when absent, or when no date can show it."""
    value = meta.get(name)
    if not value:
        return None
    if (when := moment(value)) is None:
        unreadable.skip("meta", name, f"{value[:40]!r} is no time")
    return when


def errors_by_kind(
    stats: dict[str, int | float], is_error: Callable[[str], bool] = lambda stat: False
) -> dict[str, int | float]:
    """The shared counters that count errors (see :data:`ERROR_STATS`, and the project's own that
    ``is_error`` names), non-zero ones only."""
    return {
        name: value
        for name, value in sorted(stats.items())
        if value
        and (
            any(name == kind or (kind.endswith("/") and name.startswith(kind)) for kind in ERROR_STATS)
            or is_error(name)
        )
    }


def render(status: Status) -> str:
    """The human-readable status: a few labelled lines and the workers table."""
    lines = [f"{status.spider} crawl at {status.redis}: {status.state}" + _since(status)]
    lines += [f"ALERT      {printable(alert['message'])}" for alert in status.alerts]
    if status.progress is not None:
        lines.append(f"progress   {_bar(status)}")
    lines.append(
        f"queue      {status.queued:,} queued · {status.leased:,} leases in flight · {status.done:,} done"
        + (
            f" · hosts {status.hosts_ready:,} ready, {status.hosts_waiting:,} waiting"
            if status.hosts_ready or status.hosts_waiting
            else ""
        )
    )
    if status.seen is None:
        lines.append("seen       – (no dupefilter in Redis, no count recorded: not started)")
    else:
        lines.append(f"seen       {'' if status.seen_exact else '≈ '}{status.seen:,} URLs")
    lines.append(f"items      {status.items:,} ({status.items_source})")
    per_minute = "–" if status.pages_per_minute is None else f"{status.pages_per_minute:,.1f}"
    minutes = " · ".join(f"{row['minute'][11:16]} {row['pages']:,}" for row in status.recent_minutes)
    lines.append(
        f"pages      {status.pages:,} · {per_minute}/min over the last {RECENT_MINUTES} min ({minutes})"
    )
    if status.outcomes:
        lines.append("outcomes   " + _counts(status.outcomes, status.pages))
    if status.unfetched:
        lines.append("no page    " + _counts(status.unfetched) + " (requests that got no response)")
    if status.dead_letters:
        lines.append(
            f"dead       {status.dead_letters:,} refused requests in {status.spider}'s dead letters "
            "(never retried; reasons under errors: scheduler/dead/…)"
        )
    if status.errors:
        lines.append(
            "errors     "
            + " · ".join(f"{printable(name)}: {value:,}" for name, value in status.errors.items())
        )
    else:
        lines.append("errors     none")
    if status.unreadable:
        skipped = " · ".join(f"{kind}: {count:,}" for kind, count in sorted(status.unreadable.items()))
        lines.append(f"unreadable {skipped} (values no worker writes, skipped: see the log)")
    lines.append(f"workers    {len(status.workers)} live")
    lines.extend(_table(status.workers))
    lines.extend(project_lines(status.project))
    return "\n".join(lines)


def project_lines(project: dict[str, Any]) -> list[str]:
    """The project's panel as text: its figures on one line, each table and its list under it; none
    while it shows only zeros and unknowns."""
    if project.get("error"):
        return ["", f"project    {printable(project['error'])}"]
    panel = project.get("panel")
    if not panel or not (
        panel["warning"]
        or panel["links"]
        or any(shown["rows"] for shown in panel["tables"])
        or any(figure["value"] for figure in panel["figures"])
    ):
        return []  # nothing to show yet (--json still has it)
    lines = ["", printable(panel["title"])]
    if panel["warning"]:
        lines.append(f"  ! {printable(panel['warning'])}")
    if panel["figures"]:
        figures = [f"{printable(figure['label'])} {_figure(figure['value'])}" for figure in panel["figures"]]
        lines.append("  " + " · ".join(figures))
    for shown in panel["tables"]:
        rows = shown["rows"]
        lines.append(
            f"  {printable(shown['title'])}: " + (_counts(rows, shown=len(rows)) if rows else "none")
        )
    if panel["links"]:
        lines.append(f"  {printable(panel['links_title'] or 'links')}:")
        lines += [
            f"    {printable(link['text'])}" + (f" ({printable(link['note'])})" if link["note"] else "")
            for link in panel["links"]
        ]
    return lines


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def _counts(counts: dict[str, int], total: int = 0, shown: int = 8) -> str:
    """``name count (share)`` for the largest ``shown`` counts, the rest summed as ``other``."""
    parts = [
        f"{printable(name)} {value:,}" + (f" ({value / total:.0%})" if total else "")
        for name, value in list(counts.items())[:shown]
    ]
    if rest := sum(list(counts.values())[shown:]):
        parts.append(f"other {rest:,}")
    return " · ".join(parts)


def _since(status: Status) -> str:
    if status.started_at is None:
        return ""
    text = f", started {status.started_at}"
    if status.finished_at is not None and status.state == "finished":
        text += f", finished {status.finished_at}"
    return text


def _bar(status: Status) -> str:
    started = _parse_iso(status.started_at)
    now = _parse_iso(status.finished_at if status.state == "finished" else status.now)
    elapsed = max(0.0, now - started) if started is not None and now is not None else 0.0
    total = status.done + status.queued + status.leased
    return tqdm.format_meter(status.done, total, elapsed, ncols=72, unit=" requests")


def _table(workers: Iterable[dict[str, Any]]) -> list[str]:
    rows = [
        (
            w["node"],
            w["job"] or "–",
            str(w["pid"]),
            f"{w['heartbeat_age']:.1f} s ago",
            f"{w['pages']:,}",
            f"{w['items']:,}",
        )
        for w in workers
    ]
    return table(("node", "scrapyd job", "pid", "heartbeat", "pages", "items"), rows)


def worker_row(worker: Worker) -> dict[str, Any]:
    """A worker as ``status --json`` (and the dashboard) shows it."""
    return {
        "id": worker.id,
        "host": worker.host,
        "node": worker.node,
        "job": worker.job,
        "version": worker.version,
        "pid": worker.pid,
        "started_at": _iso(worker.started_at),
        "heartbeat_age": round(worker.heartbeat_age, 3),
        "pages": worker.pages,
        "items": worker.items,
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None
