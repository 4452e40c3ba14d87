"""The ``workers`` command: the crawl's worker jobs on scrapyd nodes — list them, scale them.

sharedcrawl workers list                   # every worker job: node, job, pid, state, pages…
sharedcrawl workers up 8                   # bring the crawl to 8 worker jobs, spread by free slots
sharedcrawl workers down 4                 # bring it down to 4 (the others stop gracefully)
sharedcrawl workers drain node2            # stop every worker job on node2

Design notes: docs/framework-design.md#cli-workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.options import CrawlDefaults, assignments
from scrapy_sharedcrawl.cli.tables import table
from scrapy_sharedcrawl.config import redis_configured
from scrapy_sharedcrawl.connection import UNREACHABLE, describe, redis_from_settings
from scrapy_sharedcrawl.fleet.api import Job
from scrapy_sharedcrawl.fleet.fleet import Fleet, NodeState
from scrapy_sharedcrawl.fleet.nodes import (
    DEFAULT_SLOTS,
    nodes_from_config,
    nodes_from_urls,
)
from scrapy_sharedcrawl.keys import CrawlKeys
from scrapy_sharedcrawl.reading import printable
from scrapy_sharedcrawl.workers import Worker, live_workers

#: Seconds between looks while --wait waits.
WAIT_POLL = 0.5


def register(commands: Any, defaults: CrawlDefaults | None = None) -> None:
    """Add ``workers`` to ``commands``; ``defaults`` name the project and spider (None: the project's)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "workers",
        help="list and scale the crawl's worker jobs on scrapyd nodes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(parser, defaults=True, crawl=defaults or CrawlDefaults())
    actions = parser.add_subparsers(dest="action", required=True)

    listing = actions.add_parser(
        "list", help="every worker job: node, job, state, pid, version, pages, items"
    )
    listing.add_argument("--all", action="store_true", help="finished jobs too (as many as scrapyd keeps)")

    up = actions.add_parser("up", help="bring the crawl to N worker jobs, spread over the nodes' free slots")
    up.add_argument("count", type=_count, metavar="N")
    up.add_argument(
        "-s", "--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
        help="a Scrapy setting for the new jobs (no credentials: those go in the node's environment)",
    )  # fmt: skip
    up.add_argument(
        "-a", dest="args", action="append", default=[], metavar="NAME=VALUE", help="spider argument"
    )
    up.add_argument(
        "--wait", type=float, metavar="SECONDS", help="wait until the new workers are in the crawl's registry"
    )

    down = actions.add_parser(
        "down", help="bring the crawl down to N worker jobs (the others stop gracefully)"
    )
    down.add_argument("count", type=_count, metavar="N")

    drain = actions.add_parser("drain", help="stop every worker job on one node gracefully")
    drain.add_argument("node", metavar="NODE")
    drain.add_argument("--wait", type=float, metavar="SECONDS", help="wait until its worker jobs have ended")
    # the options above work after the action too (`workers list --json`), as docs/running.md writes them
    for action in (listing, up, down, drain):
        _add_common_options(action, defaults=False, crawl=defaults or CrawlDefaults())
    parser.set_defaults(run=run)


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool, crawl: CrawlDefaults) -> None:
    """The options every action shares: on ``workers`` itself with their defaults, and on each action
    without (``argparse.SUPPRESS``), so one given after the action counts and none given there
    leaves the one before it."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, default=default(None), help="a scrapy.cfg-style file of [deploy:NODE] targets"
    )
    where.add_argument(
        "--scrapyd", metavar="URL[,URL…]", default=default(None), help="the nodes' URLs instead of a config"
    )
    parser.add_argument(
        "--target",
        action="append",
        default=default([]),
        metavar="NODE",
        help="only this deploy target (repeatable)",
    )
    parser.add_argument(
        "--project",
        default=default(crawl.project),
        help="scrapyd project, for --scrapyd and targets naming none "
        f"(default {crawl.project or 'scrapy.cfg [deploy] project, else BOT_NAME'})",
    )
    parser.add_argument(
        "--slots", type=int, default=default(DEFAULT_SLOTS), help="slots per node, with --scrapyd"
    )
    parser.add_argument(
        "--spider",
        default=default(crawl.spider),
        help=f"the crawl's spider (default {crawl.spider or 'the only spider of the project'})",
    )
    parser.add_argument(
        "--redis-url",
        default=default(None),
        help="the crawl's Redis, for pages and heartbeats (default: REDIS_URL)",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON")


def run(options: argparse.Namespace, settings: Settings) -> int:
    if options.redis_url:
        settings.set("REDIS_URL", options.redis_url, priority="cmdline")
    if options.scrapyd and options.config:
        raise ValueError("--config and --scrapyd name the nodes two ways: give one")
    project = options.project or CrawlDefaults.project_of(settings)
    spider = options.spider or CrawlDefaults.spider_of(settings)
    if options.scrapyd:
        nodes = nodes_from_urls(options.scrapyd, project, options.slots)
        if options.target:
            raise ValueError("--target names scrapy.cfg targets: not with --scrapyd")
    else:
        nodes = nodes_from_config(options.config, options.target, project=project)
    fleet = Fleet(nodes, spider)
    registry = Registry(settings, spider)
    if options.action == "list":
        states = fleet.survey()
        rows = worker_rows(states, registry.workers(), include_finished=options.all)
        print(json.dumps([asdict(row) for row in rows], indent=2) if options.json else render(rows, registry))
        return 0
    if options.action == "up":
        scheduled = fleet.up(options.count, assignments(options.settings), assignments(options.args))
        for new in scheduled:  # a node's text, printed as `status` prints the registry's: no escapes
            print(printable(f"scheduled worker {new.job} on {new.node} (egg version {new.version})"))
        print(f"{options.count} worker jobs asked for: {len(scheduled)} scheduled")
        if options.wait is not None and scheduled:
            return registry.wait_for_jobs({new.job for new in scheduled}, options.wait)
        return 0
    cancelled = fleet.down(options.count) if options.action == "down" else fleet.drain(options.node)
    for job in cancelled:
        print(printable(f"stopping worker {job.id} on {job.node} ({job.state})"))
    print(f"{len(cancelled)} worker jobs stopping: each finishes what it fetches and hands back the rest")
    if options.action == "drain" and options.wait is not None:
        return wait_drained(fleet, options.node, options.wait)
    return 0


@dataclass
class WorkerRow:
    """One line of ``workers list``: a scrapyd job, a registry entry, or both (matched by job id)."""

    node: str
    job: str | None
    state: str  # pending, running, finished; "unmanaged" for a worker scrapyd doesn't run
    pid: int | None
    version: str | None
    started: str | None
    pages: int | None
    items: int | None
    heartbeat_age: float | None
    live: bool | None  # None: the registry has no entry (not started yet, or no REDIS_URL)


def worker_rows(
    states: Sequence[NodeState], workers: Sequence[Worker] | None, include_finished: bool = False
) -> list[WorkerRow]:
    """scrapyd's jobs joined with the registry's workers; registry workers no node runs come last."""
    by_job = {worker.job: worker for worker in workers or () if worker.job}
    rows = []
    seen_jobs = set()
    for state in states:
        for job in state.jobs:
            if job.state == "finished" and not include_finished:
                continue
            seen_jobs.add(job.id)
            worker = by_job.get(job.id) if job.state != "finished" else None
            rows.append(_row(job, worker))
    for worker in workers or ():
        if worker.job not in seen_jobs and worker.live:
            rows.append(
                WorkerRow(
                    node=worker.node,
                    job=worker.job,
                    state="unmanaged",
                    pid=worker.pid,
                    version=worker.version,
                    started=_iso(worker.started_at),
                    pages=worker.pages,
                    items=worker.items,
                    heartbeat_age=round(worker.heartbeat_age, 1),
                    live=True,
                )
            )
    return rows


def _row(job: Job, worker: Worker | None) -> WorkerRow:
    return WorkerRow(
        node=job.node,
        job=job.id,
        state=job.state,
        pid=job.pid,
        version=worker.version if worker is not None and worker.version else job.version,
        started=job.start_time,
        pages=None if worker is None else worker.pages,
        items=None if worker is None else worker.items,
        heartbeat_age=None if worker is None else round(worker.heartbeat_age, 1),
        live=None if worker is None else worker.live,
    )


def render(rows: Sequence[WorkerRow], registry: Registry) -> str:
    active = sum(row.state in ("pending", "running") for row in rows)
    lines = [f"{active} worker jobs pending or running" + (f"; {registry.note}" if registry.note else "")]
    lines += table(
        ("node", "job", "state", "pid", "version", "pages", "items", "heartbeat"),
        [
            (
                row.node,
                row.job or "–",
                row.state if row.live is not False else f"{row.state} (gone)",
                _text(row.pid),
                row.version or "–",
                _number(row.pages),
                _number(row.items),
                "–" if row.heartbeat_age is None else f"{row.heartbeat_age:.1f} s ago",
            )
            for row in rows
        ],
    )
    return "\n".join(lines)


class Registry:
    """The crawl's worker registry in Redis, when there is one to read (it is optional for ``workers``)."""

    def __init__(self, settings: Settings, spider: str) -> None:
        shared = redis_configured(settings)
        self.note = "" if shared else "no REDIS_URL: pages and heartbeats unknown"
        self.server = redis_from_settings(settings) if shared else None
        self.where = describe(settings) if shared else ""
        self.keys = CrawlKeys.from_settings(settings, spider)

    def workers(self) -> list[Worker] | None:
        """Every worker of the registry (gone ones too); None when it can't be read (said in ``note``)."""
        if self.server is None:
            return None
        try:
            return live_workers(self.server, self.keys, include_gone=True)
        except UNREACHABLE as error:
            self.note = (
                f"Redis unreachable at {self.where} ({type(error).__name__}): pages and heartbeats unknown"
            )
            return None

    def wait_for_jobs(self, jobs: set[str], timeout: float) -> int:
        """Wait until every job in ``jobs`` is a live worker of the registry; say how long it took."""
        if self.server is None:
            raise ValueError("--wait reads the crawl's worker registry: set REDIS_URL (or --redis-url)")
        live: set[str] = set()

        def all_live() -> bool:
            live.clear()
            live.update({worker.job for worker in self.workers() or () if worker.live and worker.job} & jobs)
            return live == jobs

        took = poll_until(all_live, timeout)
        if took is None:
            print(
                f"only {len(live)} of {len(jobs)} new workers started within {timeout:g} s", file=sys.stderr
            )
            return 1
        print(f"{len(jobs)} new workers crawling after {took:.1f} s")
        return 0


def wait_drained(fleet: Fleet, node: str, timeout: float) -> int:
    left: list[Job] = []

    def drained() -> bool:
        left[:] = [job for job in Fleet.jobs(fleet.survey()) if job.node == node]
        return not left

    took = poll_until(drained, timeout)
    if took is None:
        print(f"{node}: {len(left)} worker jobs still running after {timeout:g} s", file=sys.stderr)
        return 1
    print(f"{node} drained after {took:.1f} s")
    return 0


def poll_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Ask ``condition`` every :data:`WAIT_POLL` s until it holds (→ seconds it took) or ``timeout``
    passes (→ None): a command-line wait, where polling is the job."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            return None
        time.sleep(WAIT_POLL)
    return time.monotonic() - started


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a number of workers is 0 or more")
    return value


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def _number(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
