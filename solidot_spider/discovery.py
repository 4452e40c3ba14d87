"""What the spider's arguments ask for: day ranges, sid ranges, the latest stories."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from solidot_spider.text import BEIJING


def parse_day(text: str) -> date:
    """``2025-01-03`` (or ``20250103``) → a date; ValueError with a clear message otherwise."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"dates look like YYYY-MM-DD, got {text!r}")


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
        first, sep, last = part.partition("-")
        try:
            low, high = int(first), int(last if sep else first)
        except ValueError:
            raise ValueError(f"sids look like A-B or A-B,C, got {text!r}") from None
        if low < 1 or high < 1:
            raise ValueError(f"sids start at 1, got {part!r}")
        ranges.append((min(low, high), max(low, high)))
    if not ranges:
        raise ValueError("sids: empty range")
    return ranges


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


def days_between(since: date, until: date) -> Iterator[date]:
    """Every day from ``since`` to ``until``, inclusive, newest first (newest news first)."""
    day = until
    while day >= since:
        yield day
        day -= timedelta(days=1)


@dataclass(frozen=True)
class Discovery:
    """The crawl's scope, from ``-a since= -a until= -a sids= -a latest=``.

    With no argument at all, the scope is the latest stories; arguments combine.
    """

    since: date | None = None
    until: date | None = None
    sid_ranges: tuple[tuple[int, int], ...] = ()
    latest: bool = True

    @classmethod
    def from_arguments(
        cls,
        since: str | None = None,
        until: str | None = None,
        sids: str | None = None,
        latest: str | bool | None = None,
    ) -> Discovery:
        since_day = parse_day(since) if since else None
        until_day = parse_day(until) if until else None
        if until_day and not since_day:
            raise ValueError("-a until=… needs -a since=…")
        if since_day and not until_day:
            until_day = beijing_today()
        if since_day and until_day and since_day > until_day:
            raise ValueError(f"since ({since_day}) is after until ({until_day})")
        ranges = tuple(parse_sid_ranges(sids)) if sids else ()
        if latest is None:
            wants_latest = not since_day and not ranges
        else:
            wants_latest = str(latest).strip().lower() in ("1", "true", "yes", "on")
        return cls(since=since_day, until=until_day, sid_ranges=ranges, latest=wants_latest)

    def days(self) -> Iterator[date]:
        if self.since and self.until:
            yield from days_between(self.since, self.until)

    def sids(self) -> Iterator[int]:
        """Every sid asked for, newest first, each once."""
        seen: set[int] = set()
        for low, high in sorted(self.sid_ranges, reverse=True):
            for sid in range(high, low - 1, -1):
                if sid not in seen:
                    seen.add(sid)
                    yield sid
