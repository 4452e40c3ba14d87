"""A compact history of the shared crawl in Redis: one point per stats interval, for dashboards.

:class:`SeriesRecorder` rides on every stats push and appends a point of crawl-wide totals to the
stream ``{<spider>}:series`` at most once per interval, however many workers push; :func:`read_points`
reads it back, keeping only well-formed points.

Design notes: docs/framework-design.md#timeseries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.commands.core import Script
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import SettingError, int_setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import LUA_LEASED, LUA_QUEUED
from scrapy_sharedcrawl.reading import counter

logger = logging.getLogger(__name__)

#: Most points the setting allows (a stream of this many points takes tens of MB).
MAX_POINTS = 2_000_000

#: A point's fields: name → the shared stats it sums (``…/``: every stat under that prefix). The
#: names are short (they are stored once per point) and stable: dashboards read them. A project adds
#: its own with ``STATS_SERIES_FIELDS`` (:func:`series_fields`; ``err_*`` ones are error kinds).
FIELDS: dict[str, tuple[str, ...]] = {
    "pages": ("response_received_count",),
    "requests": ("downloader/request_count",),
    "items": ("item_scraped_count",),
    "done": ("scheduler/acked", "scheduler/acked/late"),
    "enqueued": ("scheduler/enqueued",),
    # errors by kind: a handful of kinds, whatever the crawl meets (bounded)
    "err_http": ("retry/reason_count/",),
    "err_network": ("downloader/exception_type_count/",),
    "err_gave_up": ("retry/max_reached",),
    "err_spider": ("spider_exceptions/",),
    "err_log": ("log_count/ERROR", "log_count/CRITICAL"),
    "err_dead": ("scheduler/dead",),
    "err_refused": ("scheduler/refused/",),
    # the host: waits for its shared rate, and pauses (Retry-After, runs of errors)
    "rate_waits": ("cluster_rate/waits",),
    "rate_waited_ms": ("cluster_rate/waited_ms",),
    "pause_retry_after": ("backoff/retry_after",),
    "pause_errors": ("backoff/errors",),
    "paused_ms": ("backoff/paused_ms",),
    # what pages came to: a fan-out (a name ending in ":"), one field per outcome (.outcomes)
    "o:": ("outcome/",),
}
#: Most fields one fan-out adds to a point (outcome names are few; a runaway set stays bounded).
FANOUT_MAX = 40
#: Fields a point has besides :data:`FIELDS`: gauges read at that moment.
GAUGES = ("queued", "leased")

#: KEYS: 1 series stream, 2 shared stats hash, 3 queue's count, 4 lease counter. ARGV: 1 bucket (ms), 2 cap,
#: 3 TTL (ms), 4 number of fields, then per field: name, number of stats k, k stat names (``…/``: a
#: prefix); a name ending in ":" is a fan-out: a field per stat under its one prefix (``o:story_gap``),
#: at most FANOUT_MAX.
#: → 1 if a point was written, 0 if this bucket has one already.
_LUA_POINT = (
    LUA_QUEUED
    + LUA_LEASED
    + """
local FANOUT_MAX = ARGV_FANOUT_MAX
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = tonumber(ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local last_ms = tonumber(string.match(last[1][1], '^%d+'))
  if math.floor(last_ms / bucket) >= math.floor(now / bucket) then return 0 end
end
local stats = redis.call('HGETALL', KEYS[2])
local point = {'queued', queued_count(KEYS[3]), 'leased', leased_count(KEYS[4])}
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local k = tonumber(ARGV[i + 1])
  if string.sub(ARGV[i], -1) == ':' then
    -- a fan-out: one field per stat under the prefix ARGV[i + 2], named ARGV[i] .. the rest, capped
    local want, n = ARGV[i + 2], 0
    for s = 1, #stats, 2 do
      local name = stats[s]
      if n < FANOUT_MAX and #name > #want and string.sub(name, 1, #want) == want then
        point[#point + 1] = ARGV[i] .. string.sub(name, #want + 1)
        point[#point + 1] = string.format('%.17g', tonumber(stats[s + 1]) or 0)
        n = n + 1
      end
    end
    i = i + 2 + k
  else
  local sum = 0
  for s = 1, #stats, 2 do
    local name = stats[s]
    for p = i + 2, i + 1 + k do
      local want = ARGV[p]
      if name == want or (string.sub(want, -1) == '/' and string.sub(name, 1, #want) == want) then
        sum = sum + (tonumber(stats[s + 1]) or 0)
        break
      end
    end
  end
  point[#point + 1] = ARGV[i]
  point[#point + 1] = string.format('%.17g', sum)
  i = i + 2 + k
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', unpack(point))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
""".replace("ARGV_FANOUT_MAX", str(FANOUT_MAX))
)


def series_key(prefix: str) -> str:
    """STREAM of the crawl's points, next to its shared stats (``prefix``: ``CRAWL_KEY_PREFIX``)."""
    return f"{prefix}:series"


def series_points(settings: BaseSettings) -> int:
    """``STATS_SERIES_POINTS``, checked: the most points kept (0: no series)."""
    return int_setting(
        settings,
        "STATS_SERIES_POINTS",
        DEFAULTS["STATS_SERIES_POINTS"],
        at_least=0,
        at_most=MAX_POINTS,
        meaning="points kept; 0: no time series",
    )


def series_fields(settings: BaseSettings) -> dict[str, tuple[str, ...]]:
    """:data:`FIELDS` and the project's own (``STATS_SERIES_FIELDS``: name → stat names or prefixes)."""
    extra = settings.getdict("STATS_SERIES_FIELDS")
    fields = dict(FIELDS)
    for name, stats in extra.items():
        names = (stats,) if isinstance(stats, str) else tuple(stats)
        if not (isinstance(name, str) and name and all(isinstance(stat, str) and stat for stat in names)):
            raise SettingError(
                f"STATS_SERIES_FIELDS: {name!r} must name stats (a string or a list of strings)"
            )
        fields[name] = names
    return fields


class CrawlKeyNames(Protocol):
    """The keys a point is made of (:class:`.stats.CrawlKeys` has them)."""

    @property
    def prefix(self) -> str: ...
    @property
    def stats(self) -> str: ...
    @property
    def queued(self) -> str: ...
    @property
    def leased(self) -> str: ...


class SeriesRecorder:
    """Adds a point to the series in the round trip that pushes a worker's shared stats."""

    def __init__(
        self,
        server: redis.Redis,
        *,
        keys: CrawlKeyNames,
        interval: float,
        ttl_ms: int,
        points: int,
        fields: Mapping[str, Sequence[str]] = FIELDS,
    ) -> None:
        self.server = server
        self.key = series_key(keys.prefix)
        self.enabled = points > 0
        self._keys = [self.key, keys.stats, keys.queued, keys.leased]
        self._args: list[str | int] = [max(1, round(interval * 1000)), points, ttl_ms, len(fields)]
        for name, stats in fields.items():
            self._args += [name, len(stats), *stats]
        self._script = server.register_script(_LUA_POINT)
        self._failed = False

    def run_with(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``script(keys, args)`` and this crawl's point, pipelined: one round trip, one command more.

        Returns what ``script`` returned and raises what it raised; the point's own failure (a key
        of the wrong type…) is logged once and never fails the push.
        """
        if not self.enabled:
            return script(keys=keys, args=args)
        results = self._pipelined(script, keys, args)
        if any(isinstance(result, redis.exceptions.NoScriptError) for result in results):
            script.sha = self.server.script_load(script.script)  # Redis restarted: load both, once
            self._script.sha = self.server.script_load(self._script.script)
            results = self._pipelined(script, keys, args)
        pushed, point = results
        if isinstance(pushed, Exception):
            raise pushed
        if isinstance(point, Exception):
            if not self._failed:
                logger.warning("Time series at %s not written (%s): charts miss points", self.key, point)
            self._failed = True
        else:
            self._failed = False
        return pushed

    def _pipelined(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> list[Any]:
        # evalsha by hand: a pipeline given Script objects asks SCRIPT EXISTS first, a round trip more
        pipe = self.server.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.evalsha(self._script.sha, len(self._keys), *self._keys, *self._args)
        return list(pipe.execute(raise_on_error=False))


@dataclass(frozen=True)
class Point:
    """One point of the series: its Redis time (s) and its fields (totals and gauges)."""

    id: str
    time: float
    values: dict[str, float]


def read_points(server: redis.Redis, key: str, after: str | None = None, count: int = 5000) -> list[Point]:
    """Up to ``count`` points after the stream id ``after`` (None: from the start), oldest first.

    Entries that are not points (a bad id, a value that is no number within 64 bits) are skipped, and
    only their good fields kept: the stream is read, never trusted.
    """
    start = f"({after}" if after else "-"
    return parse_points(server.xrange(key, min=start, max="+", count=count) or [])


def parse_points(entries: Sequence[tuple[Any, Any]]) -> list[Point]:
    """Stream entries (XRANGE's or XREVRANGE's) as points, in their order; see :func:`read_points`."""
    points = []
    for raw_id, raw_fields in entries:
        entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        ms, _, _seq = entry_id.partition("-")
        if not ms.isdigit():
            continue
        values: dict[str, float] = {}
        for name, value in (raw_fields or {}).items():
            number = _finite(value)
            if number is not None:
                values[name.decode(errors="replace") if isinstance(name, bytes) else str(name)] = number
        points.append(Point(entry_id, int(ms) / 1000, values))
    return points


def _finite(value: Any) -> float | None:
    """A point's value: a number a worker could have recorded (within 64 bits: differences and rates
    of two stay finite), else None."""
    number = counter(value)
    return None if number is None else float(number)
