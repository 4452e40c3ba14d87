"""The refresh policy's load and freshness on the replica, against re-crawling everything every N days.

Simulates ``--days`` of the replica's life (its whole history by default, new stories
published every day, stories changing as the replica's change model says: young ones
often, old ones almost never) with the archive refreshed every ``--run-every`` seconds
(the deploy timer: 15 min). Runs, on the same simulated world:

- the default :class:`~solidot_spider.archive.policy.RefreshPolicy` (``seed --refresh``);
- "re-crawl everything every N days", N chosen so that it costs the same fetches a day
  as the policy in its steady state (days 7 on; the first days after a full crawl
  have nothing old due yet).

Prints the fetches a day of each (steady mean and worst day), the formula's estimate, and
the staleness of changes (how long each change went unseen: median and worst, per age class
of the story when it changed), with the ratio of the medians.

Then what the deploy timer's ``seed --latest --refresh`` costs the site, all requests counted
(list pages and feed, listed stories, refresh): ``--latest`` fetching only the listed stories
that are new or due by the policy, against ``--latest --all`` fetching every listed story.

    .venv/bin/python bench/refresh_policy.py --days 30
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from solidot_replica import Replica, ReplicaConfig
from solidot_replica.simulation import (
    LatestReport,
    Report,
    World,
    run_latest,
    run_policy,
    run_round_robin,
    staleness_violations,
)
from solidot_spider.archive.policy import AGE_CLASSES, DAY, HOUR, RefreshPolicy

FULL_HISTORY = 85572
#: Days after the start whose fetches are not yet the steady state (nothing old is due yet).
WARM_UP = 6


def formula(policy: RefreshPolicy, stories: int, per_day: float) -> float:
    """Fetches a day in the steady state if no story changed: every story past ``max/age_factor``
    once per ``max_interval``, and each day's ``per_day`` new stories through their young life
    (``1/f + ln(max/min)/f`` fetches each). Changes add a little (they shrink intervals)."""
    young = (1 + math.log(policy.max_interval / policy.min_interval)) / policy.age_factor
    return stories / (policy.max_interval / DAY) + per_day * young


def shown(seconds: float) -> str:
    return f"{seconds / HOUR:.1f} h" if seconds < 2 * DAY else f"{seconds / DAY:.1f} d"


def steady(report: Report) -> float:
    return statistics.fmean(report.fetches_per_day[WARM_UP:])


def latest_line(report: LatestReport) -> str:
    """One strategy's requests a day: steady mean and worst day, then the mean of each part."""
    total = report.requests_per_day()[WARM_UP:]
    parts = (report.lists_per_day, report.latest_stories_per_day, report.refresh_per_day)
    lists, stories, refresh = (statistics.fmean(part[WARM_UP:]) for part in parts)
    median = statistics.median(change.staleness for change in report.stale) if report.stale else 0.0
    return (
        f"{report.name:<38}{statistics.fmean(total):>8,.0f} {max(total):>8,}   "
        f"lists {lists:,.0f} + listed stories {stories:,.0f} + refresh {refresh:,.0f}; "
        f"median staleness {shown(median)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=FULL_HISTORY, help="sid slots ending at --last-sid")
    parser.add_argument("--last-sid", type=int, default=FULL_HISTORY)
    parser.add_argument("--days", type=int, default=30, help="days simulated (at least 10)")
    parser.add_argument("--run-every", type=float, default=900.0, help="seconds between refresh runs")
    args = parser.parse_args()
    started = time.perf_counter()
    replica = Replica(ReplicaConfig(stories=args.stories, last_sid=args.last_sid))
    world = World.of(replica, max(10, args.days))
    policy = RefreshPolicy()
    adaptive = run_policy(world, policy, args.run_every)
    budget = steady(adaptive)
    period = len(world.archived) / budget
    baseline = run_round_robin(world, period, args.run_every)
    per_day = len(world.new) / world.days
    print(
        f"{len(world.archived):,} stories archived, {len(world.new):,} published over {world.days} days, "
        f"{world.change_count():,} changes; a refresh every {args.run_every:g} s "
        f"(simulated in {time.perf_counter() - started:.1f} s)"
    )
    print()
    print("strategy                    fetches/day (steady mean, worst day)")
    for report in (adaptive, baseline):
        print(f"{report.name:<28}{steady(report):>8,.0f} {max(report.fetches_per_day[WARM_UP:]):>8,}")
    print(f"{'formula (no changes)':<28}{formula(policy, len(world.archived), per_day):>8,.0f}")
    print()
    print("staleness of a change: median / worst, by the story's age when it changed")
    print(f"{'age class':<14}{'changes':>8}  {'policy':>20}  {baseline.name:>24}  median ratio")
    ours, theirs = adaptive.by_age_class(), baseline.by_age_class()
    for name, _ in AGE_CLASSES:
        if not ours[name]:
            continue
        a, b = statistics.median(ours[name]), statistics.median(theirs[name])
        print(
            f"{name:<14}{len(ours[name]):>8}  {shown(a):>9} / {shown(max(ours[name])):>8}  "
            f"{shown(b):>11} / {shown(max(theirs[name])):>10}  {b / a if a else math.inf:>8.1f}x"
        )
    every_a = [change.staleness for change in adaptive.stale]
    every_b = [change.staleness for change in baseline.stale]
    print(
        f"{'all':<14}{len(every_a):>8}  {shown(statistics.median(every_a)):>9} / {shown(max(every_a)):>8}  "
        f"{shown(statistics.median(every_b)):>11} / {shown(max(every_b)):>10}  "
        f"{statistics.median(every_b) / statistics.median(every_a):>8.1f}x"
    )
    violations = staleness_violations(world, adaptive, policy, args.run_every)
    print(f"\nchanges seen later than the policy's bound for their age: {len(violations)}")
    print(f"changes not seen by the end: {adaptive.unseen}")
    print()
    print(f"seed --latest --refresh every {args.run_every:g} s: requests a day (steady mean, worst day)")
    for every_listed in (True, False):
        print(latest_line(run_latest(world, replica, policy, args.run_every, every_listed)))


if __name__ == "__main__":
    main()
