"""When each sid was published: the replica's calendar, computed, never stored.

Anchors come from ``shared/solidot-site.md``: sid 30309 is 2012-07-01, sid
80222 is 2025-01-03 14:01, sid 85572 is about 2026-10-10; about 13 stories a
day in 2012–2015 and 9 since 2020. Between anchors the cumulative count grows
linearly with a bounded per-day jitter, so a sid's day is a binary search and
a day's sids are a subtraction — the full history needs no table.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from datetime import date, datetime, timedelta
from functools import lru_cache

from solidot_spider.site.text import BEIJING

#: (day, number of sids published on or before that day), in order.
ANCHORS: tuple[tuple[date, int], ...] = (
    (date(2005, 12, 31), 0),
    (date(2012, 6, 30), 30308),  # 30309 opens 2012-07-01
    (date(2025, 1, 2), 80217),
    (date(2025, 1, 3), 80226),  # 80222 is the 5th story of 2025-01-03
    (date(2026, 10, 10), 85572),
)
STORIES_PER_DAY_AFTER = 9
#: The jitter stays below the slowest daily rate (8.3), so every day has stories.
JITTER = 1.5
FIRST_MINUTE, LAST_MINUTE = 7 * 60, 23 * 60 + 30
#: Times fixed by the real pages we hold.
FIXED_TIMES: dict[int, tuple[int, int]] = {80222: (14, 1)}

_ANCHOR_ORDINALS = [d.toordinal() for d, _ in ANCHORS]
_ANCHOR_DAYS = {d for d, _ in ANCHORS}


def _jitter(day: date) -> float:
    if day in _ANCHOR_DAYS:
        return 0.0
    return (random.Random(f"day:{day.toordinal()}").random() * 2 - 1) * JITTER


@lru_cache(maxsize=65536)
def sids_until(day: date) -> int:
    """How many sids were published on or before ``day`` (Beijing time)."""
    ordinal = day.toordinal()
    if ordinal <= _ANCHOR_ORDINALS[0]:
        return 0
    index = bisect_right(_ANCHOR_ORDINALS, ordinal) - 1
    if index >= len(ANCHORS) - 1:
        last_day, last_count = ANCHORS[-1]
        linear = float(last_count + (ordinal - last_day.toordinal()) * STORIES_PER_DAY_AFTER)
    else:
        (day0, count0), (day1, count1) = ANCHORS[index], ANCHORS[index + 1]
        span = day1.toordinal() - day0.toordinal()
        linear = count0 + (count1 - count0) * (ordinal - day0.toordinal()) / span
    return round(linear + _jitter(day))


def first_day() -> date:
    return ANCHORS[0][0] + timedelta(days=1)


@lru_cache(maxsize=65536)
def day_of(sid: int) -> date:
    """The Beijing day of ``sid``: the first day whose cumulative count reaches it."""
    if sid < 1:
        raise ValueError(f"sids start at 1, got {sid}")
    low, high = first_day().toordinal(), first_day().toordinal() + 1
    while sids_until(date.fromordinal(high)) < sid:
        high += (high - low) * 2
    while low < high:
        middle = (low + high) // 2
        if sids_until(date.fromordinal(middle)) >= sid:
            high = middle
        else:
            low = middle + 1
    return date.fromordinal(low)


def sid_range(day: date) -> range:
    """Every sid published on ``day``, oldest first."""
    return range(sids_until(day - timedelta(days=1)) + 1, sids_until(day) + 1)


def published_at(sid: int, day: date | None = None) -> datetime:
    """Publication time of ``sid`` (Beijing, whole minutes): spread over the day in sid order.
    ``day``: its :func:`day_of`, when the caller already knows it (walking days is much faster)."""
    day = day or day_of(sid)
    if sid in FIXED_TIMES:
        hour, minute = FIXED_TIMES[sid]
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BEIJING)
    sids = sid_range(day)
    step = (LAST_MINUTE - FIRST_MINUTE) // max(len(sids), 1)
    offset = random.Random(f"minute:{sid}").randrange(max(step, 1))
    minute = FIRST_MINUTE + (sid - sids.start) * step + offset
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING) + timedelta(minutes=minute)


def days_of(first_sid: int, last_sid: int) -> dict[int, date]:
    """:func:`day_of` of every sid from ``first_sid`` to ``last_sid``, found by walking the days
    (a whole history in well under a second, where 85k binary searches take seconds)."""
    days: dict[int, date] = {}
    day = day_of(first_sid)
    while True:
        for sid in sid_range(day):
            if sid > last_sid:
                return days
            if sid >= first_sid:
                days[sid] = day
        day += timedelta(days=1)
