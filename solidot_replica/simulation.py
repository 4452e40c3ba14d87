"""The replica's history lived on for a few weeks, visited by a refresh strategy: what it costs the
site (fetches a day) and how stale the archive gets (how long each change goes unseen).

Nothing is fetched and nothing sleeps: the clock is the simulation's. The
archive starts as a full crawl left it at ``start`` (every story current); each
day the site publishes new stories (``--latest`` fetches each at the first run
after it appears) and stories change as the replica's change model says
(:func:`~solidot_replica.stories.change_days`). A strategy decides which
stories a run re-fetches:

- :func:`run_policy`: the crawler's :class:`~solidot_spider.archive.policy.RefreshPolicy`,
  every ``run_every`` seconds, exactly as ``seed --refresh`` picks (the due ones, most overdue
  first, at most ``max_per_run``), each fetch moving the story's schedule;
- :func:`run_round_robin`: re-crawl everything every ``period`` days, each story at its own phase
  (the usual alternative, at the same daily budget);
- :func:`run_latest`: ``seed --latest --refresh`` as the deploy timer runs it, the list pages and the
  feed with the stories they list (every one, or only those new or due), and the refresh.

A change made at ``c`` and first seen by a fetch at ``f`` was stale for ``f - c``.
"""

from __future__ import annotations

import heapq
import math
import statistics
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from solidot_replica import timeline
from solidot_replica.model import Replica
from solidot_replica.stories import change_days, change_moment
from solidot_spider.archive.policy import AGE_CLASSES, DAY, Outcome, RefreshPolicy, age_class, spread
from solidot_spider.site.text import BEIJING
from solidot_spider.site.urls import CATEGORIES


@dataclass(frozen=True)
class World:
    """The stories of a replica at ``start`` and those published in the ``days`` after, with the
    moment of every change they make in that time."""

    start: datetime
    days: int
    published: dict[int, datetime]
    #: sids in the archive at ``start`` (oldest first), then those published later
    archived: list[int]
    new: list[int]
    changes: dict[int, list[datetime]]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @classmethod
    def of(cls, replica: Replica, days: int) -> World:
        """``replica``'s stories (gaps are no stories) from the end of its newest day on."""
        today = replica.today()
        first_day = today + timedelta(days=1)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=BEIJING)
        last_day = today + timedelta(days=days)
        last_sid = timeline.sids_until(last_day)
        day_of = timeline.days_of(replica.first_sid, last_sid)
        served = [sid for sid in range(replica.first_sid, last_sid + 1) if not replica.is_gap(sid)]
        published = {sid: timeline.published_at(sid, day_of[sid]) for sid in served}
        changes: dict[int, list[datetime]] = {}
        for sid in served:
            found = change_days(sid, first_day, last_day, day_of[sid])
            if found:
                changes[sid] = [change_moment(sid, day, published[sid]) for day in found]
        archived = [sid for sid in served if sid <= replica.config.last_sid]
        new = [sid for sid in served if sid > replica.config.last_sid]
        return cls(start, days, published, archived, new, changes)

    def change_count(self) -> int:
        return sum(len(moments) for moments in self.changes.values())


@dataclass(frozen=True)
class Stale:
    """One change: the story, its age when it changed and how long it went unseen (s)."""

    sid: int
    age: float
    staleness: float


@dataclass
class Report:
    """What a strategy cost and gave over the simulated days."""

    name: str
    stories: int
    fetches_per_day: list[int]
    stale: list[Stale] = field(default_factory=list)
    #: changes not seen by the end of the simulation (their staleness is counted up to it)
    unseen: int = 0

    @property
    def mean_fetches(self) -> float:
        return statistics.fmean(self.fetches_per_day)

    def by_age_class(self) -> dict[str, list[float]]:
        """Staleness (s) of the changes made in each :data:`AGE_CLASSES` class."""
        classes: dict[str, list[float]] = {name: [] for name, _ in AGE_CLASSES}
        for change in self.stale:
            classes[age_class(change.age)].append(change.staleness)
        return classes


def _fetch_day(world: World, moment: datetime) -> int | None:
    index = math.floor((moment - world.start).total_seconds() / DAY)
    return index if 0 <= index < world.days else None


def _observe(
    world: World, pending: dict[int, int], stale: list[Stale], sid: int, now: datetime, first: bool
) -> Outcome:
    """A fetch of ``sid`` at ``now``: the changes it sees for the first time go into ``stale`` (how late
    each was seen), ``pending`` moves past them. → what the fetch found (new, changed, unchanged)."""
    moments = world.changes.get(sid, ())
    index = pending.get(sid, 0)
    seen = bisect_left(moments, now, lo=index) if moments else 0
    for moment in moments[index:seen]:
        stale.append(
            Stale(sid, (moment - world.published[sid]).total_seconds(), (now - moment).total_seconds())
        )
    pending[sid] = seen
    return "new" if first else ("changed" if seen > index else "unchanged")


def run_policy(world: World, policy: RefreshPolicy, run_every: float, settle: float | None = None) -> Report:
    """The policy's refreshes every ``run_every`` seconds from ``world.start``, counted over the
    world's days; runs go on for ``settle`` seconds more (default: the longest interval and two runs)
    so that every change of those days is seen, and none is cut short."""
    report = Report("adaptive policy", len(world.archived), [0] * world.days)
    settle = policy.max_interval + 2 * run_every if settle is None else settle
    interval: dict[int, float] = {}
    pending: dict[int, int] = {}  # sid → index of its first change not seen yet
    due: list[tuple[datetime, int]] = []

    def fetch(sid: int, now: datetime, first: bool) -> None:
        outcome = _observe(world, pending, report.stale, sid, now, first)
        schedule = policy.after_fetch(outcome, sid, world.published[sid], now, interval.get(sid))
        interval[sid] = schedule.interval
        heapq.heappush(due, (schedule.next_due, sid))

    for sid in world.archived:
        fetch(sid, world.start, first=True)
    new = iter(world.new)
    upcoming = next(new, None)
    step = timedelta(seconds=run_every)
    now = world.start
    while now < world.end + timedelta(seconds=settle):
        now += step
        # --latest: stories published since the last run, each fetched once
        while upcoming is not None and world.published[upcoming] <= now:
            if now <= world.end:
                fetch(upcoming, now, first=True)
            upcoming = next(new, None)
        picked = 0
        while due and due[0][0] <= now and picked < policy.max_per_run:
            _, sid = heapq.heappop(due)
            fetch(sid, now, first=False)
            picked += 1
            day = _fetch_day(world, now)
            if day is not None:
                report.fetches_per_day[day] += 1
    for sid, moments in world.changes.items():
        for moment in moments[pending.get(sid, 0) :]:
            if sid in world.published and moment < now:
                report.unseen += 1
                report.stale.append(
                    Stale(
                        sid, (moment - world.published[sid]).total_seconds(), (now - moment).total_seconds()
                    )
                )
    return report


def run_round_robin(world: World, period_days: float, run_every: float) -> Report:
    """Every story re-fetched every ``period_days``, each at its own phase (spread like the
    policy's first intervals), new ones first by ``--latest`` at the first run after they appear."""
    period = period_days * DAY
    report = Report(f"re-crawl every {period_days:.0f} days", len(world.archived), [0] * world.days)
    start = world.start.timestamp()

    new = set(world.new)
    for sid in world.archived + world.new:
        if sid in new:  # fetched by --latest at the first run after it appears, then every period
            begin = start + math.ceil((world.published[sid].timestamp() - start) / run_every) * run_every
            phase = begin + period
        else:
            begin = start
            phase = start + spread(sid) * period
        # re-fetches at phase + k·period (k ≥ 0) that fall in the counted days
        first = phase
        while first < start + world.days * DAY:
            if first >= begin:
                day = int((first - start) // DAY)
                if 0 <= day < world.days:
                    report.fetches_per_day[day] += 1
            first += period
        for moment in world.changes.get(sid, ()):
            at = moment.timestamp()
            # a change before a new story's first fetch is seen by that fetch
            seen = begin if at <= begin else phase + math.ceil(max(0.0, at - phase) / period) * period
            report.stale.append(Stale(sid, at - world.published[sid].timestamp(), seen - at))
    return report


def staleness_violations(
    world: World, report: Report, policy: RefreshPolicy, run_every: float
) -> list[Stale]:
    """The changes that went unseen longer than the policy promises for their age."""
    return [
        change
        for change in report.stale
        if change.staleness > policy.staleness_bound(change.age, run_every) + 1e-6
    ]


#: Requests of one ``--latest`` run besides its stories: the home page, each category's, the feed.
LATEST_LIST_REQUESTS = 2 + len(CATEGORIES)


@dataclass
class LatestReport:
    """What ``--latest`` every ``run_every`` seconds and the refresh cost together, a day."""

    name: str
    lists_per_day: list[int]
    latest_stories_per_day: list[int]
    refresh_per_day: list[int]
    stale: list[Stale] = field(default_factory=list)

    def requests_per_day(self) -> list[int]:
        return [
            lists + stories + refresh
            for lists, stories, refresh in zip(
                self.lists_per_day, self.latest_stories_per_day, self.refresh_per_day, strict=True
            )
        ]


class _Listing:
    """The sids the site lists at a moment: the newest ``home_size`` on the home page and on each
    category's, the newest ``rss_size`` in the feed (as the replica's pages list them)."""

    def __init__(self, replica: Replica, archived: list[int], home_size: int, rss_size: int) -> None:
        self.replica, self.home_size, self.rss_size = replica, home_size, rss_size
        self.newest: list[int] = []
        self.by_category: dict[str, list[int]] = {category: [] for category in CATEGORIES}
        for sid in reversed(archived):  # back until every list is full (or the archive ends)
            if self._full():
                break
            self._add(sid, front=True)

    def _full(self) -> bool:
        return len(self.newest) >= max(self.home_size, self.rss_size) and all(
            len(sids) >= self.home_size for sids in self.by_category.values()
        )

    def _add(self, sid: int, front: bool = False) -> None:
        category = self.replica.category_of(sid)
        lists = [self.newest] + ([self.by_category[category]] if category in self.by_category else [])
        for sids in lists:
            if front:
                sids.insert(0, sid)
            else:
                sids.append(sid)

    def publish(self, sid: int) -> None:
        self._add(sid)

    def listed(self) -> set[int]:
        found = set(self.newest[-max(self.home_size, self.rss_size) :])
        for sids in self.by_category.values():
            found.update(sids[-self.home_size :])
        return found


def run_latest(
    world: World,
    replica: Replica,
    policy: RefreshPolicy,
    run_every: float,
    every_listed: bool,
    rss_size: int = 20,
) -> LatestReport:
    """``seed --latest --refresh`` every ``run_every`` seconds: the list pages and the feed, then
    of the stories they list every one (``every_listed``, ``--latest --all``) or only those not
    stored yet or due by the policy (``--latest``); then the refresh's due stories. Every fetch moves
    the story's schedule, whichever part made it."""
    name = "--latest --all (every listed story)" if every_listed else "--latest (listed: new or due)"
    days = world.days
    report = LatestReport(name, [0] * days, [0] * days, [0] * days)
    interval: dict[int, float] = {}
    next_due: dict[int, datetime] = {}
    pending: dict[int, int] = {}
    due: list[tuple[datetime, int]] = []

    def fetch(sid: int, now: datetime) -> None:
        outcome = _observe(world, pending, report.stale, sid, now, first=sid not in next_due)
        schedule = policy.after_fetch(outcome, sid, world.published[sid], now, interval.get(sid))
        interval[sid] = schedule.interval
        next_due[sid] = schedule.next_due
        heapq.heappush(due, (schedule.next_due, sid))

    for sid in world.archived:
        fetch(sid, world.start)
    listing = _Listing(replica, world.archived, replica.config.home_size, rss_size)
    new = iter(world.new)
    upcoming = next(new, None)
    step = timedelta(seconds=run_every)
    now = world.start
    while True:
        now += step
        day = _fetch_day(world, now)
        if day is None:
            break
        while upcoming is not None and world.published[upcoming] <= now:
            listing.publish(upcoming)
            upcoming = next(new, None)
        report.lists_per_day[day] += LATEST_LIST_REQUESTS
        for sid in sorted(listing.listed()):
            if every_listed or sid not in next_due or next_due[sid] <= now:
                fetch(sid, now)
                report.latest_stories_per_day[day] += 1
        picked = 0
        while due and due[0][0] <= now and picked < policy.max_per_run:
            when, sid = heapq.heappop(due)
            if next_due.get(sid) != when:
                continue  # fetched since (by --latest): its schedule moved
            fetch(sid, now)
            picked += 1
            report.refresh_per_day[day] += 1
    return report
