"""What the spider's arguments ask for: day ranges, sid ranges, the latest stories, a refresh.

Every argument is checked here, with an error that says what was wrong: dates
within :data:`FIRST_DAY` and tomorrow in Beijing, sids of at most nine ASCII
digits, ``latest`` one of the usual yes/no words. Ranges are kept as ranges
(merged), never as sets of sids or days: their sizes are computed, capped by
``SOLIDOT_MAX_SIDS`` / ``SOLIDOT_MAX_DAYS`` (:meth:`Discovery.check_limits`)
and iterated lazily.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from solidot_spider.defaults import SETTINGS
from solidot_spider.site.text import BEIJING

#: No day archive is older (the site opened in 2006); earlier dates are a typo.
FIRST_DAY = date(2000, 1, 1)
#: The largest sid accepted (nine digits, as story URLs are read: :func:`.site.story_sid`).
MAX_SID = 999_999_999
#: Defaults of SOLIDOT_MAX_SIDS and SOLIDOT_MAX_DAYS (declared in solidot_spider/defaults.py).
DEFAULT_MAX_SIDS: int = SETTINGS["SOLIDOT_MAX_SIDS"]
DEFAULT_MAX_DAYS: int = SETTINGS["SOLIDOT_MAX_DAYS"]
#: What ``latest=`` accepts (case-insensitive).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
#: ``latest=all``: every listed story, not only those new or due.
ALL_WORD = "all"

_DAY_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})", re.ASCII)
_SID_RE = re.compile(r"\d{1,9}", re.ASCII)


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def parse_day(text: str, today: date | None = None) -> date:
    """``2025-01-03`` (or ``20250103``) → a date between :data:`FIRST_DAY` and tomorrow in Beijing;
    ValueError with a clear message otherwise."""
    text = text.strip()
    match = _DAY_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"dates look like YYYY-MM-DD, got {text!r}") from None
    last = (today or beijing_today()) + timedelta(days=1)
    if not FIRST_DAY <= day <= last:
        raise ValueError(f"dates must be within {FIRST_DAY}..{last} (tomorrow in Beijing), got {text!r}")
    return day


def parse_bool(name: str, value: str | bool) -> bool:
    """``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case); ValueError otherwise.

    >>> parse_bool("latest", "Yes")
    True
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be true/false (or 1/0, yes/no, on/off), got {value!r}")


def parse_sid_ranges(text: str) -> list[tuple[int, int]]:
    """``"80000-80300,80400"`` → ``[(80000, 80300), (80400, 80400)]`` (inclusive ranges).

    >>> parse_sid_ranges("5-3, 9")
    [(3, 5), (9, 9)]
    """
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = (piece.strip() for piece in part.partition("-"))
        bounds = (first, last) if sep else (first, first)
        if not all(_SID_RE.fullmatch(bound) for bound in bounds):
            raise ValueError(
                f"sids look like A-B or A-B,C with A, B, C from 1 to {MAX_SID:,} (ASCII digits), got {text!r}"
            )
        low, high = sorted(int(bound) for bound in bounds)
        if low < 1:
            raise ValueError(f"sids start at 1, got {part!r}")
        ranges.append((low, high))
    if not ranges:
        raise ValueError("sids: empty range")
    return ranges


def merge_ranges(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Inclusive ranges with overlapping and adjacent ones merged, newest (highest) first.

    >>> merge_ranges([(3, 5), (10, 10), (4, 6), (7, 7)])
    ((10, 10), (3, 7))
    """
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(reversed(merged))


def days_between(since: date, until: date) -> Iterator[date]:
    """Every day from ``since`` to ``until``, inclusive, newest first (newest news first)."""
    for back in range((until - since).days + 1):
        yield until - timedelta(days=back)


@dataclass(frozen=True)
class Discovery:
    """The crawl's scope, from ``-a since= -a until= -a sids= -a latest= -a refresh=``.

    With no argument at all, the scope is the latest stories; arguments combine.
    ``sid_ranges`` are merged (no overlaps), highest first. ``refresh``: the
    stored stories due for a re-fetch (picked from the store when the crawl starts).
    ``latest``: the list pages and the feed, and of the stories they list those not
    stored yet or due by the refresh policy; ``latest_all`` (``latest=all``): every
    story they list (:mod:`.refresh.listed`).
    """

    since: date | None = None
    until: date | None = None
    sid_ranges: tuple[tuple[int, int], ...] = ()
    latest: bool = True
    refresh: bool = False
    latest_all: bool = False

    @classmethod
    def from_arguments(
        cls,
        since: str | None = None,
        until: str | None = None,
        sids: str | None = None,
        latest: str | bool | None = None,
        refresh: str | bool | None = None,
        *,
        max_sids: int | None = None,
        max_days: int | None = None,
    ) -> Discovery:
        """The scope of these arguments, each checked; with ``max_sids`` / ``max_days``, the sizes too
        (:meth:`check_limits`)."""
        today = beijing_today()
        since_day = parse_day(since, today) if since else None
        until_day = parse_day(until, today) if until else None
        if until_day and not since_day:
            raise ValueError("-a until=… needs -a since=…")
        if since_day and not until_day:
            until_day = today
        if since_day and until_day and since_day > until_day:
            raise ValueError(f"since ({since_day}) is after until ({until_day})")
        ranges = merge_ranges(parse_sid_ranges(sids)) if sids else ()
        wants_refresh = parse_bool("refresh", refresh) if refresh is not None else False
        # without latest=, the latest stories are the scope only when nothing else is asked for
        every_listed = isinstance(latest, str) and latest.strip().lower() == ALL_WORD
        wants_latest = (
            every_listed or parse_bool("latest", latest)
            if latest is not None
            else not since_day and not ranges and not wants_refresh
        )
        scope = cls(
            since=since_day,
            until=until_day,
            sid_ranges=ranges,
            latest=wants_latest,
            refresh=wants_refresh,
            latest_all=every_listed,
        )
        scope.check_limits(max_sids, max_days)
        return scope

    @property
    def sid_count(self) -> int:
        """How many sids the scope names (each once)."""
        return sum(high - low + 1 for low, high in merge_ranges(self.sid_ranges))

    @property
    def day_count(self) -> int:
        """How many day archives the scope names."""
        if self.since and self.until:
            return max(0, (self.until - self.since).days + 1)
        return 0

    def check_limits(self, max_sids: int | None, max_days: int | None) -> None:
        """ValueError, naming the setting that raises the limit, if the scope is larger (None: no limit)."""
        if max_sids is not None and self.sid_count > max_sids:
            asked = ",".join(f"{low}-{high}" if low != high else str(low) for low, high in self.sid_ranges)
            raise ValueError(
                f"sids={asked} names {self.sid_count:,} story ids, more than SOLIDOT_MAX_SIDS = {max_sids:,} "
                "(the whole site has ≈ 86k): narrow the ranges, or raise SOLIDOT_MAX_SIDS"
            )
        if max_days is not None and self.day_count > max_days:
            raise ValueError(
                f"since={self.since} until={self.until} names {self.day_count:,} days, more than "
                f"SOLIDOT_MAX_DAYS = {max_days:,}: narrow the range, or raise SOLIDOT_MAX_DAYS"
            )

    def days(self) -> Iterator[date]:
        if self.since and self.until:
            yield from days_between(self.since, self.until)

    def sids(self) -> Iterator[int]:
        """Every sid asked for, newest first, each once (ranges streamed, nothing materialized)."""
        for low, high in merge_ranges(self.sid_ranges):
            yield from range(high, low - 1, -1)
