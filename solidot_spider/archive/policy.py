"""When a stored story is due for a re-fetch: an adaptive schedule bounded by the story's age.

:class:`RefreshPolicy` (the ``SOLIDOT_REFRESH_*`` settings) grows or shrinks each story's interval
as fetches find it unchanged or changed, within a bound that grows with its age. Pure: no I/O;
times come from an injected clock.

Design notes: docs/project-design.md#archive-policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import SettingError, float_setting, int_setting
from solidot_spider.defaults import DAY, SETTINGS
from solidot_spider.defaults import HOUR as HOUR  # the policy's unit too (simulations import it here)

Outcome = Literal["new", "changed", "unchanged"]
#: What gives the time: ``datetime.now(UTC)`` in production, a test's own clock in simulations.
Clock = Callable[[], datetime]

#: Every setting of the refresh policy with its default (declared in solidot_spider/defaults.py).
DEFAULTS: dict[str, Any] = {
    name: value for name, value in SETTINGS.items() if name.startswith("SOLIDOT_REFRESH_")
}

#: Age classes the measurements report by: (name, upper age bound in seconds).
AGE_CLASSES: tuple[tuple[str, float], ...] = (
    ("< 1 day", DAY),
    ("1-7 days", 7 * DAY),
    ("7-30 days", 30 * DAY),
    ("30-365 days", 365 * DAY),
    ("> 1 year", math.inf),
)

#: The latest due date the policy gives: a later one (a far clock, a long wait) is this date, never
#: an OverflowError (``datetime`` ends at year 9999).
LATEST_DUE = datetime(9000, 1, 1, tzinfo=UTC)

#: The golden ratio's fraction: successive sids spread evenly over [0, 1).
_GOLDEN = (math.sqrt(5) - 1) / 2
#: A new story's first interval is at least this share of its bound (see :func:`spread`).
SPREAD_FLOOR = 0.05


def system_clock() -> datetime:
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock that always says ``moment``."""
    return lambda: moment


def parse_moment(text: str) -> datetime:
    """ISO 8601 → an aware datetime (UTC when no offset is given); ValueError otherwise."""
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def clock_from_settings(settings: BaseSettings) -> Clock:
    """``SOLIDOT_REFRESH_NOW`` as a fixed clock, or the real one when it is empty."""
    text = str(settings.get("SOLIDOT_REFRESH_NOW") or "").strip()
    if not text:
        return system_clock
    try:
        return fixed_clock(parse_moment(text))
    except ValueError:
        raise SettingError(
            f"SOLIDOT_REFRESH_NOW must be an ISO 8601 time like 2026-10-10T16:00:00+00:00, got {text!r}"
        ) from None


def spread(sid: int) -> float:
    """A share in ``[SPREAD_FLOOR, 1)`` fixed by the sid: an old story is first due after the
    longest interval (``SOLIDOT_REFRESH_MAX_INTERVAL``) times this, so that the 85k stories of a
    historical crawl, stored within a day or two, don't all come due on the same day that interval
    later (consecutive sids land far apart).

    >>> round(spread(1), 3), round(spread(2), 3)
    (0.637, 0.274)
    """
    return SPREAD_FLOOR + (1 - SPREAD_FLOOR) * ((sid * _GOLDEN) % 1.0)


def later(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus ``seconds``, capped at :data:`LATEST_DUE` (or ``moment``, if later still).

    >>> later(datetime(2026, 1, 1, tzinfo=UTC), 1e300)
    datetime.datetime(9000, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    latest = max(moment, LATEST_DUE)
    try:
        return min(moment + timedelta(seconds=seconds), latest)
    except OverflowError:
        return latest


def age_class(age: float) -> str:
    """The name of the :data:`AGE_CLASSES` entry an age (s) falls in."""
    for name, limit in AGE_CLASSES:
        if age < limit:
            return name
    return AGE_CLASSES[-1][0]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a story is next due, and the interval (s) that put it there."""

    interval: float
    next_due: datetime


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """The adaptive schedule's parameters (see the module docstring); intervals in seconds."""

    min_interval: float = DEFAULTS["SOLIDOT_REFRESH_MIN_INTERVAL"]
    max_interval: float = DEFAULTS["SOLIDOT_REFRESH_MAX_INTERVAL"]
    age_factor: float = DEFAULTS["SOLIDOT_REFRESH_AGE_FACTOR"]
    grow: float = DEFAULTS["SOLIDOT_REFRESH_GROW"]
    shrink: float = DEFAULTS["SOLIDOT_REFRESH_SHRINK"]
    max_per_run: int = DEFAULTS["SOLIDOT_REFRESH_MAX_PER_RUN"]
    gap_retries: int = DEFAULTS["SOLIDOT_REFRESH_GAP_RETRIES"]
    gap_interval: float = DEFAULTS["SOLIDOT_REFRESH_GAP_INTERVAL"]
    claim: float = DEFAULTS["SOLIDOT_REFRESH_CLAIM"]

    def __post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise SettingError(
                f"SOLIDOT_REFRESH_MIN_INTERVAL ({self.min_interval:g} s) is longer than "
                f"SOLIDOT_REFRESH_MAX_INTERVAL ({self.max_interval:g} s)"
            )

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RefreshPolicy:
        """The policy of these settings, each checked (a bad value stops the crawl or ``seed``)."""

        def seconds(name: str, at_least: float = 1.0) -> float:
            return float_setting(settings, name, DEFAULTS[name], at_least=at_least, at_most=3650 * DAY)

        return cls(
            min_interval=seconds("SOLIDOT_REFRESH_MIN_INTERVAL", at_least=60.0),
            max_interval=seconds("SOLIDOT_REFRESH_MAX_INTERVAL", at_least=60.0),
            age_factor=float_setting(
                settings,
                "SOLIDOT_REFRESH_AGE_FACTOR",
                DEFAULTS["SOLIDOT_REFRESH_AGE_FACTOR"],
                above=0,
                at_most=100,
            ),
            grow=float_setting(
                settings, "SOLIDOT_REFRESH_GROW", DEFAULTS["SOLIDOT_REFRESH_GROW"], at_least=1, at_most=10
            ),
            shrink=float_setting(
                settings, "SOLIDOT_REFRESH_SHRINK", DEFAULTS["SOLIDOT_REFRESH_SHRINK"], above=0, at_most=1
            ),
            max_per_run=int_setting(
                settings, "SOLIDOT_REFRESH_MAX_PER_RUN", DEFAULTS["SOLIDOT_REFRESH_MAX_PER_RUN"], at_least=1
            ),
            gap_retries=int_setting(
                settings,
                "SOLIDOT_REFRESH_GAP_RETRIES",
                DEFAULTS["SOLIDOT_REFRESH_GAP_RETRIES"],
                at_least=0,
                at_most=30,
            ),
            gap_interval=seconds("SOLIDOT_REFRESH_GAP_INTERVAL", at_least=60.0),
            claim=seconds("SOLIDOT_REFRESH_CLAIM", at_least=60.0),
        )

    def bound(self, age: float) -> float:
        """The longest interval (s) for a story ``age`` seconds old: ``age × age_factor`` within
        ``[min_interval, max_interval]``."""
        return min(self.max_interval, max(self.min_interval, max(0.0, age) * self.age_factor))

    def after_fetch(
        self,
        outcome: Outcome,
        sid: int,
        published: datetime | None,
        fetched: datetime,
        previous_interval: float | None = None,
    ) -> Schedule:
        """The schedule after a fetch at ``fetched`` that found the story new, changed or unchanged.

        A new story (or one stored before it had a schedule) starts at its bound; then a change
        shrinks the interval and no change grows it, within ``[min_interval, bound(age)]``. An old
        new story (bound ``max_interval``) is first due after :func:`spread` of it, so that the old
        stories of a historical crawl come due spread over the whole interval, not all on one day
        (younger ones differ in age, so in bound, already). A story without a publication time
        counts as new today.
        """
        age = (fetched - published).total_seconds() if published is not None else 0.0
        highest = self.bound(age)
        first = outcome == "new" or previous_interval is None
        if first or previous_interval is None:
            interval = highest
        elif outcome == "changed":
            interval = previous_interval * self.shrink
        else:
            interval = previous_interval * self.grow
        interval = min(highest, max(self.min_interval, interval))
        wait = interval * spread(sid) if first and interval >= self.max_interval else interval
        return Schedule(interval, later(fetched, wait))

    def after_miss(self, misses: int, now: datetime) -> datetime | None:
        """When a sid that has answered 404 ``misses`` times is tried again (``gap_interval``, then
        doubling, but never more than ``max_interval`` apart, like a story), or None once it has been
        tried ``gap_retries`` times after the first miss: left alone."""
        if misses > self.gap_retries:
            return None
        longest = max(self.max_interval, self.gap_interval)
        return later(now, min(longest, self.gap_interval * 2.0 ** min(max(misses - 1, 0), 64)))

    def staleness_bound(self, age_at_change: float, run_every: float) -> float:
        """The longest (s) a change made at this age can go unseen when a refresh runs every
        ``run_every`` seconds and nothing caps a run (see the module docstring)."""
        return self.bound(age_at_change) + run_every
