"""The crawl's time series (:mod:`scrapy_sharedcrawl.timeseries`) as chart columns.

The points hold totals; a chart wants rates. :class:`SeriesCache` keeps the
points read so far (each refresh reads only the new ones) and :func:`columns`
turns them into per-minute rates between consecutive points, after thinning
them to at most ``limit`` points: totals make thinning exact (the rate between
two kept points is the true average over the points dropped between them).
Pages per minute are also split by what they came to (:func:`outcome_rates`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from scrapy_sharedcrawl.alerts import SERIES_OUTCOME
from scrapy_sharedcrawl.timeseries import GAUGES, Point, read_points

#: Points kept in memory (the stream's default cap, with room).
MAX_CACHED = 150_000
#: Points per chart, at most.
CHART_POINTS = 600
#: Outcomes the first chart splits pages into (the rest summed as "other").
OUTCOMES_SHOWN = 8
#: Rates shown per minute: column name → the point's total it is the rate of.
RATES = {
    "pages_per_min": "pages",
    "items_per_min": "items",
    "requests_per_min": "requests",
    "dropped_per_min": "dropped",
    "rate_waits_per_min": "rate_waits",
    "pauses_retry_after_per_min": "pause_retry_after",
    "pauses_errors_per_min": "pause_errors",
}


def error_kind_names(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The error kinds of a crawl's series fields (:func:`.timeseries.series_fields`): its ``err_*``
    fields, named without the prefix."""
    return tuple(name.removeprefix("err_") for name in fields if name.startswith("err_"))


class SeriesCache:
    """The series read so far; :meth:`update` reads the points written since."""

    def __init__(self, server: redis.Redis, key: str, max_points: int = MAX_CACHED) -> None:
        self.server = server
        self.key = key
        self.max_points = max_points
        self.points: list[Point] = []
        self._epoch: str | None = None

    def update(self, epoch: str | None) -> list[Point]:
        """Read new points; ``epoch`` names the crawl (its start): a new one starts the cache afresh."""
        if epoch != self._epoch:
            self.points, self._epoch = [], epoch
        while True:
            after = self.points[-1].id if self.points else None
            new = read_points(self.server, self.key, after=after)
            self.points.extend(new)
            if len(new) < 5000:
                break
        if len(self.points) > self.max_points:
            del self.points[: len(self.points) - self.max_points]
        return self.points


def thin(points: Sequence[Point], limit: int) -> list[Point]:
    """At most ``limit`` points, evenly picked, the first and last always kept."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil((len(points) - 1) / (limit - 1))
    picked = list(points[::stride])
    if picked[-1] is not points[-1]:
        picked.append(points[-1])
    return picked


def columns(
    points: Sequence[Point], limit: int = CHART_POINTS, error_kinds: Sequence[str] = ()
) -> dict[str, Any]:
    """Chart columns: ``time`` (Unix s), the gauges, and per-minute rates (None at the first point,
    or where a total went down: a counter that restarted), errors by each of ``error_kinds``."""
    kept = thin(points, limit)
    result: dict[str, Any] = {"time": [p.time for p in kept]}
    for gauge in GAUGES:
        result[gauge] = [p.values.get(gauge) for p in kept]
    for column, total in RATES.items():
        result[column] = _rates(kept, total)
    result["paused_s_per_min"] = [None if r is None else r / 1000 for r in _rates(kept, "paused_ms")]
    result["errors_per_min"] = {kind: _rates(kept, f"err_{kind}") for kind in error_kinds}
    result["outcomes_per_min"] = outcome_rates(kept)
    return result


def outcome_rates(points: Sequence[Point], shown: int = OUTCOMES_SHOWN) -> dict[str, list[float | None]]:
    """Pages per minute by outcome (the points' ``o:<outcome>`` totals): the ``shown`` largest by the
    last point, the rest summed as ``other``. An outcome a point lacks had counted nothing yet (0)."""
    if not points:
        return {}
    names: set[str] = set()
    for point in points:
        names.update(name for name in point.values if name.startswith(SERIES_OUTCOME))
    last = points[-1].values
    ranked = sorted(names, key=lambda name: (-last.get(name, 0.0), name))
    rates = {name.removeprefix(SERIES_OUTCOME): _rates(points, name, missing=0.0) for name in ranked}
    if len(rates) <= shown:
        return rates
    kept = dict(list(rates.items())[: shown - 1])
    rest = list(rates.values())[shown - 1 :]
    kept["other"] = [
        None if any(r is None for r in column) else round(sum(r for r in column if r is not None), 3)
        for column in zip(*rest, strict=True)
    ]
    return kept


def rate_per_minute(points: Sequence[Point], total: str, window: float) -> float | None:
    """The rate of ``total`` per minute over the last ``window`` seconds of ``points`` (None: unknown)."""
    if len(points) < 2:
        return None
    last = points[-1]
    first = next((p for p in points if p.time >= last.time - window), points[0])
    if first is last:
        first = points[-2]
    return _rate(first, last, total)


def _rates(points: Sequence[Point], total: str, missing: float | None = None) -> list[float | None]:
    return [None, *(_rate(a, b, total, missing) for a, b in itertools.pairwise(points))][: len(points)]


def _rate(a: Point, b: Point, total: str, missing: float | None = None) -> float | None:
    seconds = b.time - a.time
    before, after = a.values.get(total, missing), b.values.get(total, missing)
    if seconds <= 0 or before is None or after is None or after < before:
        return None
    return round((after - before) / seconds * 60, 3)
