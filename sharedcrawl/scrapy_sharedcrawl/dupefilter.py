"""A shared duplicate filter in Redis at ≈ 9 bytes per URL instead of ≈ 88, at any crawl size.

:class:`CompactRFPDupeFilter` keeps 64-bit fingerprints in intset shards that split as the crawl
grows (or a Bloom filter with ``DUPEFILTER_MODE = "bloom"``); check-and-add is one atomic script,
which the scheduler's enqueue script reuses, and ``close()`` never deletes the shared fingerprints.

Design notes: docs/framework-design.md#dupefilter.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.request import RequestFingerprinter, RequestFingerprinterProtocol
from scrapy_redis.dupefilter import RFPDupeFilter

from scrapy_sharedcrawl.config import SettingError, bool_setting, float_setting, int_setting, setting
from scrapy_sharedcrawl.connection import redis_from_settings
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import dupefilter_meta

logger = logging.getLogger(__name__)

Mode = Literal["set", "bloom"]

#: Redis's default ``set-max-intset-entries``, used when CONFIG GET is not allowed.
DEFAULT_INTSET_LIMIT = 512
#: A shard is split when the average shard passes this share of the intset limit (the fullest shards,
#: those not yet split at the current level, then hold twice the average: 75 % of the limit).
SPLIT_FILL = 0.375
#: A shard this full (share of the limit) is logged: Redis is about to convert it to a hashtable.
WARN_FILL = 0.9
#: A Redis string holds at most 2³² bits.
MAX_BLOOM_BITS = 2**32
#: Most shards a filter grows to (≈ 3·10⁹ URLs at the default limit), or a stored layout may name.
MAX_SHARDS = 2**24
#: SCARD calls per round trip when counting a set-mode filter.
COUNT_BATCH = 1000
#: The "fill" the check-and-add answers when the filter's stored state is malformed: the fingerprint
#: was not checked (the request is queued). Larger than any real fill, so a batch's max() keeps it.
MALFORMED_FILL = 2**40

#: ``check_and_add(keys, args)`` → seen (boolean), fill (members of the shard after adding, 0 if
#: unknown, MALFORMED_FILL if unchecked). Set mode: keys = {meta hash}, args = {fingerprint as a
#: signed int64, the shards' base key, the intset limit a filter created here grows for}. The shard is
#: found, and split when due, from the meta's linear-hashing state (module docstring); every stored
#: value is checked before it is used. A missing meta is a new filter (or one a finished crawl
#: deleted): created here with one shard.
LUA_SET_CHECK_AND_ADD = (
    """
local MAX_SHARDS, SPLIT_FILL, MALFORMED, CHUNK = @MAX_SHARDS, @SPLIT_FILL, @MALFORMED, 1000
-- digits (a signed decimal integer) mod m, >= 0 as Python's %: exact in doubles for m < 2^49
local function df_mod(digits, m)
  local r, first = 0, 1
  if string.byte(digits, 1) == 45 then first = 2 end
  for i = first, #digits do r = (r * 10 + string.byte(digits, i) - 48) % m end
  if first == 2 and r > 0 then r = m - r end
  return r
end
local function df_int(value, low, high)
  local n = tonumber(value)
  if n and n == math.floor(n) and n >= low and n <= high then return n end
  return nil
end
local function df_chunks(command, key, members)
  for i = 1, #members, CHUNK do
    local done = redis.pcall(command, key, unpack(members, i, math.min(i + CHUNK - 1, #members)))
    if type(done) == 'table' then return false end
  end
  return true
end
local function check_and_add(keys, args)
  local meta, value, base = keys[1], args[1], args[2]
  local state = redis.pcall('HMGET', meta, 'mode', 'base', 'level', 'split', 'count', 'intset_limit')
  if state.err then return false, MALFORMED end
  if not state[1] and redis.call('EXISTS', meta) == 0 then  -- a new filter (or one deleted by a finish)
    local fresh = df_int(args[3], 1, 2^31 - 1) or 512
    redis.call('HSET', meta, 'mode', 'set', 'base', 1, 'level', 0, 'split', 0, 'count', 0,
      'intset_limit', fresh)
    state = {'set', '1', '0', '0', '0', fresh}
  end
  if state[1] ~= 'set' then return false, MALFORMED end
  table.remove(state, 1)
  local n0, level = df_int(state[1], 1, MAX_SHARDS), df_int(state[2], 0, 24)
  local count, limit = df_int(state[4], 0, 2^52), df_int(state[5], 1, 2^31 - 1)
  if not (n0 and level and count and limit) or n0 * 2^level > MAX_SHARDS then return false, MALFORMED end
  local span = n0 * 2^level
  local split = df_int(state[3], 0, span - 1)
  if not split or span + split > MAX_SHARDS then return false, MALFORMED end
  local bucket = df_mod(value, span)
  if bucket < split then bucket = df_mod(value, 2 * span) end
  local shard = base .. ':' .. bucket
  local added = redis.pcall('SADD', shard, value)
  if type(added) == 'table' then return false, MALFORMED end
  if added == 0 then return true, 0 end
  local fill = redis.call('SCARD', shard)
  count = count + 1
  if count <= limit * SPLIT_FILL * (span + split) or span + split >= MAX_SHARDS then
    redis.call('HSET', meta, 'count', count)
    return false, fill
  end
  -- split shard `split`: members whose fingerprint mod 2*span is not `split` move to split + span
  local from, to = base .. ':' .. split, base .. ':' .. (split + span)
  local members = redis.pcall('SMEMBERS', from)
  local moving = {}
  if members.err then
    fill = MALFORMED
  else
    for i = 1, #members do
      if df_mod(members[i], 2 * span) ~= split then moving[#moving + 1] = members[i] end
    end
    if not df_chunks('SADD', to, moving) then fill = MALFORMED end
  end
  if fill == MALFORMED then  -- a shard of another type: nothing moved, the state says so next time too
    redis.call('HSET', meta, 'count', count)
    return false, fill
  end
  df_chunks('SREM', from, moving)
  split = split + 1
  if split == span then split, level = 0, level + 1 end
  redis.call('HSET', meta, 'count', count, 'level', level, 'split', split)
  return false, fill
end
""".replace("@MAX_SHARDS", str(MAX_SHARDS))
    .replace("@SPLIT_FILL", repr(SPLIT_FILL))
    .replace("@MALFORMED", str(MALFORMED_FILL))
)
#: Bloom mode: keys = {bitmap}, args = the k bit positions. Every bit is set; seen if all were.
LUA_BLOOM_CHECK_AND_ADD = """
local function check_and_add(keys, args)
  local seen = true
  for i = 1, #args do
    if redis.call('SETBIT', keys[1], args[i], 1) == 0 then seen = false end
  end
  return seen, 0
end
"""
#: The standalone form (Scrapy's own scheduler, or stock scrapy-redis): KEYS/ARGV as above.
_STANDALONE = """
local seen, fill = check_and_add(KEYS, ARGV)
if seen then return {1, fill} end
return {0, fill}
"""
#: Store the layout unless one is stored already; upgrade the previous release's pre-sharded set-mode
#: layout (``shards`` = N, no ``base``) in place: N starting shards, their members counted. Answer the
#: stored layout. KEYS[1] = meta hash; ARGV[1] = the shards' base key, ARGV[2…] = the planned layout.
_LAYOUT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
elseif redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local mode, base, shards = unpack(redis.call('HMGET', KEYS[1], 'mode', 'base', 'shards'))
  local n = tonumber(shards)
  if mode == 'set' and not base and n and n == math.floor(n) and n >= 1 and n <= @MAX_SHARDS then
    local count = 0
    for i = 0, n - 1 do
      local size = redis.pcall('SCARD', ARGV[1] .. ':' .. i)
      if type(size) == 'table' then return redis.call('HGETALL', KEYS[1]) end  -- left as it is
      count = count + size
    end
    redis.call('HSET', KEYS[1], 'base', n, 'level', 0, 'split', 0, 'count', count)
    redis.call('HDEL', KEYS[1], 'shards')
    local stored = redis.call('HGETALL', KEYS[1])
    stored[#stored + 1] = '_upgraded'
    stored[#stored + 1] = '1'
    return stored
  end
end
return redis.call('HGETALL', KEYS[1])
""".replace("@MAX_SHARDS", str(MAX_SHARDS))

#: Create the Bloom bitmap at its full size, zeroed, unless it exists. KEYS[1] = bitmap, ARGV[1] = bytes.
_ALLOCATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], string.rep('\\0', tonumber(ARGV[1])))
end
return 1
"""


class MalformedLayout(ValueError):
    """A stored layout no worker could have written (a field out of range, an unknown mode)."""


@dataclass(frozen=True)
class Layout:
    """How fingerprints map to Redis keys: a snapshot of the stored state (a set-mode filter grows)."""

    mode: Mode
    base: int = 0  # set mode: the starting shards (1, or the previous release's pre-sized count)
    level: int = 0  # doublings of ``base`` so far
    split: int = 0  # shards split at this level
    count: int = 0  # fingerprints added (-1: unknown, a layout of the previous release not upgraded yet)
    intset_limit: int = DEFAULT_INTSET_LIMIT
    bits: int = 0  # bloom mode
    hashes: int = 0
    capacity: int = 0

    @property
    def shards(self) -> int:
        """Shards in use (set mode): named ``<key>:0`` … ``<key>:<shards - 1>``."""
        return self.base * 2**self.level + self.split

    @classmethod
    def plan(cls, mode: Mode, capacity: int, intset_limit: int, error_rate: float) -> Layout:
        """A new filter's layout: one shard (set mode), or a Bloom filter for ``capacity`` URLs."""
        capacity = max(1, capacity)
        if mode == "set":
            return cls(mode, base=1, intset_limit=intset_limit)
        if not 0 < error_rate < 1:
            raise ValueError(f"DUPEFILTER_ERROR_RATE must be between 0 and 1, got {error_rate}")
        bits = math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2)
        if bits > MAX_BLOOM_BITS:
            raise ValueError(
                f"a Bloom filter for {capacity:,} URLs at error rate {error_rate:g} needs {bits:,} bits; "
                f"a Redis string holds {MAX_BLOOM_BITS:,}: lower the capacity or raise the error rate"
            )
        hashes = max(1, round(bits / capacity * math.log(2)))
        return cls(mode, bits=bits, hashes=hashes, capacity=capacity)

    def estimate(self, ones: int) -> int:
        """URLs in a Bloom filter with ``ones`` of its bits set: n ≈ −m/k·ln(1 − ones/m); its capacity
        once every bit is set (where the estimate has no bound)."""
        if ones >= self.bits:
            return self.capacity
        return round(-self.bits / self.hashes * math.log(1 - ones / self.bits))

    def to_redis(self) -> list[str]:
        if self.mode == "set":
            fields: dict[str, object] = {
                "mode": self.mode,
                "base": self.base,
                "level": self.level,
                "split": self.split,
                "count": self.count,
                "intset_limit": self.intset_limit,
            }
        else:
            fields = {"mode": self.mode, "bits": self.bits, "hashes": self.hashes, "capacity": self.capacity}
        return [str(part) for pair in fields.items() for part in pair]

    @classmethod
    def from_redis(cls, stored: dict[bytes, bytes]) -> Layout:
        """The stored layout, checked: a value no worker could have written raises ValueError."""
        values = {
            name.decode(errors="replace"): value.decode(errors="replace") for name, value in stored.items()
        }
        mode = values.get("mode")
        if mode == "bloom":
            layout = cls(
                "bloom",
                bits=int(values.get("bits", 0)),
                hashes=int(values.get("hashes", 0)),
                capacity=int(values.get("capacity", 0)),
            )
            # Bounds a planned layout keeps: anything else would divide by zero, or count forever.
            if not (1 <= layout.bits <= MAX_BLOOM_BITS and 1 <= layout.hashes <= 1000):
                raise ValueError(f"stored dupefilter layout has {layout.bits} bits, {layout.hashes} hashes")
            return layout
        if mode != "set":
            raise ValueError(f"stored dupefilter layout has unknown mode {mode!r}")
        limit = int(values.get("intset_limit", DEFAULT_INTSET_LIMIT))
        legacy = "base" not in values
        if legacy:  # the previous release's pre-sharded filter, not upgraded yet
            layout = cls("set", base=int(values.get("shards", 0)), count=-1, intset_limit=limit)
        else:
            layout = cls(
                "set",
                base=int(values["base"]),
                level=int(values.get("level", -1)),
                split=int(values.get("split", -1)),
                count=int(values.get("count", -1)),
                intset_limit=limit,
            )
        if not (
            1 <= layout.base <= MAX_SHARDS
            and 0 <= layout.level <= 24
            and 0 <= layout.split < layout.base * 2**layout.level
            and layout.shards <= MAX_SHARDS
            and (layout.count >= 0 or legacy)
            and 1 <= layout.intset_limit < 2**31
        ):
            raise ValueError(
                f"stored dupefilter layout has {layout.base} shards at level {layout.level}, split "
                f"{layout.split}, count {layout.count}, intset limit {layout.intset_limit} "
                f"(1…{MAX_SHARDS:,} shards in all)"
            )
        return layout


@dataclass(frozen=True)
class DupeCheck:
    """Redis keys and arguments of one check-and-add (see :attr:`CompactRFPDupeFilter.lua_check_and_add`)."""

    keys: Sequence[str]
    args: Sequence[int | str]


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern (SCAN MATCH)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def fingerprint64(fingerprint: bytes) -> int:
    """The first 8 bytes of a fingerprint as a signed 64-bit integer (what a Redis intset holds).

    >>> fingerprint64(bytes.fromhex("ffffffffffffffff00"))
    -1
    """
    return int.from_bytes(fingerprint[:8], "big", signed=True)


def filter_settings(settings: BaseSettings) -> dict[str, Any]:
    """``DUPEFILTER_MODE``, ``DUPEFILTER_CAPACITY``, ``DUPEFILTER_ERROR_RATE`` and ``DUPEFILTER_DEBUG``,
    checked (SettingError), as the filter's ``mode``, ``capacity``, ``error_rate`` and ``debug`` arguments."""
    mode = str(setting(settings, "DUPEFILTER_MODE", DEFAULTS)).strip().lower()
    if mode not in ("set", "bloom"):
        given = settings.get("DUPEFILTER_MODE")
        raise SettingError(f"DUPEFILTER_MODE must be 'set' or 'bloom', got {given!r}")
    return {
        "mode": mode,
        "capacity": int_setting(
            settings, "DUPEFILTER_CAPACITY", DEFAULTS["DUPEFILTER_CAPACITY"], at_least=1, at_most=10**10
        ),
        "error_rate": float_setting(
            settings, "DUPEFILTER_ERROR_RATE", DEFAULTS["DUPEFILTER_ERROR_RATE"], above=0, at_most=0.5
        ),
        "debug": bool_setting(settings, "DUPEFILTER_DEBUG", DEFAULTS["DUPEFILTER_DEBUG"]),
    }


class CompactRFPDupeFilter(RFPDupeFilter):
    """Scrapy's request fingerprints, 64 bits each, in sharded Redis intsets (or a Bloom filter).

    Extends scrapy-redis's filter, whose construction paths (``from_settings``,
    ``from_spider``) and logging it keeps so it also works under the stock
    scrapy-redis scheduler, but uses Scrapy's configured request fingerprinter
    (stock computes its own SHA1), stores integers instead of hex strings, and
    never deletes the shared data on close.
    """

    def __init__(
        self,
        server: redis.Redis,
        key: str,
        debug: bool = False,
        *,
        fingerprinter: RequestFingerprinterProtocol | None = None,
        mode: Mode = "set",
        capacity: int = DEFAULTS["DUPEFILTER_CAPACITY"],
        error_rate: float = DEFAULTS["DUPEFILTER_ERROR_RATE"],
        stats: StatsCollector | None = None,
    ) -> None:
        super().__init__(server, key, debug=debug)
        if mode not in ("set", "bloom"):
            raise ValueError(f"DUPEFILTER_MODE must be 'set' or 'bloom', got {mode!r}")
        self.fingerprinter: RequestFingerprinterProtocol = fingerprinter or RequestFingerprinter()
        self.mode: Mode = mode
        self.capacity = capacity
        self.error_rate = error_rate
        self.stats = stats
        self.layout: Layout | None = None
        #: ``set-max-intset-entries`` as Redis answered at open (a set-mode filter created by a push
        #: script, after the crawl's filter was deleted, grows for it).
        self.intset_limit = DEFAULT_INTSET_LIMIT
        self._warned_full = False
        self._warned_malformed = False
        self.logdupes: bool = True
        self._standalone: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CompactRFPDupeFilter:
        assert crawler.spidercls is not None
        return cls._build(crawler.settings, crawler.spidercls.name, crawler)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CompactRFPDupeFilter:
        """Without a crawler there is no spider name: the key's ``%(spider)s`` becomes ``default``."""
        return cls._build(settings, "default", None)

    @classmethod
    def from_spider(cls, spider: Spider) -> CompactRFPDupeFilter:
        """How the stock scrapy-redis scheduler builds its filter."""
        return cls._build(spider.settings, spider.name, spider.crawler)

    @classmethod
    def _build(
        cls, settings: BaseSettings, spider_name: str, crawler: Crawler | None
    ) -> CompactRFPDupeFilter:
        def get(name: str) -> Any:
            return setting(settings, name, DEFAULTS)

        return cls(
            redis_from_settings(settings),
            key=str(get("SCHEDULER_DUPEFILTER_KEY")) % {"spider": spider_name},
            fingerprinter=crawler.request_fingerprinter if crawler is not None else None,
            **filter_settings(settings),
            stats=crawler.stats if crawler is not None else None,
        )

    # -- layout ------------------------------------------------------------------

    @property
    def meta_key(self) -> str:
        return dupefilter_meta(self.key)

    def adopt_stored(self, stored: dict[bytes, bytes] | None) -> Layout | None:
        """Take the layout from ``HGETALL <meta_key>`` read by the caller (None or empty: no filter
        stored). Readers (``status``, the finishing worker) use this: they never create a filter.
        Raises :class:`MalformedLayout` for a layout no worker could have written."""
        try:
            self.layout = Layout.from_redis(stored) if stored else None
        except ValueError as error:
            raise MalformedLayout(str(error)) from None
        return self.layout

    def read_stored_layout(self) -> Layout | None:
        """The layout stored in Redis now, if any (read, never created): a set-mode filter grows, so
        its layout is read again on each call."""
        if self.layout is None or self.layout.mode == "set":
            self.adopt_stored(self.server.hgetall(self.meta_key))
        return self.layout

    def state_keys(self) -> list[str]:
        """Every key of this filter's state in Redis (shards and layout), to delete with the crawl. A
        layout that can't be read names no shard: it is logged and counted, and the filter is kept."""
        try:
            layout = self.read_stored_layout()
        except (MalformedLayout, redis.ResponseError) as error:
            self.report_malformed(f"{type(error).__name__}: {error}"[:300])
            return []
        return [*self.shard_keys(layout), self.meta_key]

    def open(self) -> None:
        """Agree on the layout with Redis (the first worker's plan wins, the previous release's is
        upgraded); a mode mismatch is an error, a malformed stored layout is logged and counted."""
        try:
            self.ensure_layout()
        except (MalformedLayout, redis.ResponseError) as error:
            self.report_malformed(f"{type(error).__name__}: {error}"[:300])

    def ensure_layout(self) -> Layout:
        """The stored layout, created from this worker's plan if there is none, upgraded from the previous
        release's if that is what is stored. Raises :class:`MalformedLayout` (or a Redis WRONGTYPE error)
        for a layout no worker could have written, ValueError for one of another mode."""
        if self.layout is not None:
            return self.layout
        server_limit = self._intset_limit()
        if server_limit is not None:
            self.intset_limit = server_limit
        planned = Layout.plan(self.mode, self.capacity, self.intset_limit, self.error_rate)
        stored = self.server.eval(_LAYOUT, 1, self.meta_key, self.key, *planned.to_redis())
        fields = dict(zip(stored[::2], stored[1::2], strict=True))
        upgraded = fields.pop(b"_upgraded", None)
        try:
            layout = Layout.from_redis(fields)
        except ValueError as error:
            raise MalformedLayout(str(error)) from None
        if layout.mode != self.mode:
            raise ValueError(
                f"the dupefilter at {self.key} is in {layout.mode!r} mode but DUPEFILTER_MODE is "
                f"{self.mode!r}: use the crawl's mode, or a new key for a new crawl"
            )
        if upgraded:
            logger.info(
                "Dupefilter %s: the previous release's %s pre-sized shards (%s URLs) are its starting "
                "shards; it grows from here",
                self.key,
                f"{layout.base:,}",
                f"{layout.count:,}",
            )
        if layout.mode == "bloom":
            if layout.capacity != planned.capacity:
                logger.info(
                    "Dupefilter %s was sized for %s URLs by the first worker (this one asks for %s); "
                    "keeping the stored layout",
                    self.key,
                    f"{layout.capacity:,}",
                    f"{planned.capacity:,}",
                )
            # all zero bits written at once: grown by SETBIT, Redis would over-allocate it up to 2x
            self.server.eval(_ALLOCATE, 1, f"{self.key}:bloom", math.ceil(layout.bits / 8))
        elif server_limit is not None and layout.intset_limit != server_limit:
            logger.info(
                "Dupefilter %s grew for set-max-intset-entries %d; Redis now says %d: its shards split "
                "at %.1f %% of %d from now on",
                self.key,
                layout.intset_limit,
                server_limit,
                SPLIT_FILL * 100,
                server_limit,
            )
            self.server.hset(self.meta_key, "intset_limit", server_limit)
            layout = dataclasses.replace(layout, intset_limit=server_limit)
        self.layout = layout
        return layout

    def _intset_limit(self) -> int | None:
        """Redis's ``set-max-intset-entries``; None when CONFIG is renamed or forbidden (managed Redis)."""
        try:
            answer = self.server.config_get("set-max-intset-entries")
        except redis.ResponseError:
            return None
        value = answer.get("set-max-intset-entries") or answer.get(b"set-max-intset-entries")
        try:
            limit = int(value) if value else None
        except ValueError:
            return None
        return limit if limit is not None and 1 <= limit < 2**31 else None

    def shard_keys(self, layout: Layout | None = None) -> list[str]:
        """Every Redis key holding fingerprints, as ``layout`` (default: the one stored now) names them;
        none when no filter is stored."""
        layout = layout or self.read_stored_layout()
        if layout is None:
            return []
        if layout.mode == "bloom":
            return [f"{self.key}:bloom"]
        return [f"{self.key}:{shard}" for shard in range(layout.shards)]

    def count(self) -> tuple[int, bool]:
        """URLs in the filter, and whether that is exact: the shards' sizes summed (set mode, the shards
        stored now), or the Bloom filter's estimate from the bits set. Uses :meth:`ensure_layout` when no
        layout is known: to count a stored filter without ever creating one, adopt the stored one first."""
        layout = self.layout or self.ensure_layout()
        if layout.mode == "bloom":
            return layout.estimate(int(self.server.bitcount(f"{self.key}:bloom"))), False
        shard_keys = self.shard_keys()
        count = 0
        for start in range(0, len(shard_keys), COUNT_BATCH):
            pipe = self.server.pipeline(transaction=False)
            for key in shard_keys[start : start + COUNT_BATCH]:
                pipe.scard(key)
            count += sum(pipe.execute())
        return count, True

    # -- checking ------------------------------------------------------------------

    @property
    def lua_check_and_add(self) -> str:
        """Lua defining ``check_and_add(keys, args)``, for scripts that check and then act atomically."""
        return LUA_BLOOM_CHECK_AND_ADD if self.mode == "bloom" else LUA_SET_CHECK_AND_ADD

    def check(self, request: Request) -> DupeCheck | None:
        """The keys and arguments that check-and-add ``request``'s fingerprint (None: it can't be
        checked, logged and counted: queue it unchecked)."""
        return self.check_fingerprint(self.fingerprinter.fingerprint(request))

    def check_fingerprint(self, fingerprint: bytes) -> DupeCheck | None:
        """The keys and arguments that check-and-add a fingerprint (Scrapy's: 20 bytes). Set mode needs
        no layout here: the script finds the shard from the stored state (and creates a new filter's)."""
        if self.mode == "set":
            limit = self.layout.intset_limit if self.layout is not None else self.intset_limit
            return DupeCheck([self.meta_key], [fingerprint64(fingerprint), self.key, limit])
        try:
            layout = self.ensure_layout()
        except (MalformedLayout, redis.ResponseError) as error:
            self.report_malformed(f"{type(error).__name__}: {error}"[:300])
            return None
        first = int.from_bytes(fingerprint[:8], "big")
        step = int.from_bytes(fingerprint[8:16].ljust(8, b"\0"), "big") | 1
        positions = [(first + index * step) % layout.bits for index in range(layout.hashes)]
        return DupeCheck([f"{self.key}:bloom"], positions)

    def _check_and_add(self, check: DupeCheck, client: Any = None) -> Any:
        if self._standalone is None:
            self._standalone = self.server.register_script(self.lua_check_and_add + _STANDALONE)
        return self._standalone(keys=list(check.keys), args=list(check.args), client=client)

    def request_seen(self, request: Request) -> bool:
        """Check-and-add in one atomic call: True if the request was seen before."""
        check = self.check(request)
        if check is None:
            return False
        seen, fill = self._check_and_add(check)
        self.note_fill(int(fill))
        return bool(seen)

    def add_fingerprints(self, fingerprints: Iterable[bytes], batch: int = 10_000) -> int:
        """Check-and-add many fingerprints, pipelined (importing a filter, benchmarks); how many were new."""
        new = 0
        pending = iter(fingerprints)
        while chunk := list(itertools.islice(pending, batch)):
            pipe = self.server.pipeline(transaction=False)
            checked = 0
            for fingerprint in chunk:
                check = self.check_fingerprint(fingerprint)
                if check is None:
                    new += 1  # can't tell: taken as new, as a request would be queued
                    continue
                self._check_and_add(check, client=pipe)
                checked += 1
            for seen, fill in pipe.execute() if checked else []:
                new += not seen
                self.note_fill(int(fill))
        return new

    def request_fingerprint(self, request: Request) -> str:
        """The fingerprint as hex (the full one, for logs); the filter itself keeps 64 bits."""
        return self.fingerprinter.fingerprint(request).hex()

    def note_fill(self, fill: int) -> None:
        """``fill``: a shard's size after an add (:data:`MALFORMED_FILL`: not checked). Warn once when a
        shard nears the intset limit; log once and count each unchecked answer."""
        if fill >= MALFORMED_FILL:
            self.report_malformed("a layout field out of range, a shard or the layout of another type")
            return
        limit = self.layout.intset_limit if self.layout is not None else self.intset_limit
        if self._warned_full or self.mode != "set" or fill < WARN_FILL * limit:
            return
        self._warned_full = True
        logger.warning(
            "Dupefilter %s: a shard holds %d fingerprints, near Redis's set-max-intset-entries (%d); past "
            "it shards turn into hashtables (≈ 8x the memory). The filter splits a shard whenever the "
            "average passes %.1f %% of the limit: was set-max-intset-entries lowered during the crawl?",
            self.key,
            fill,
            limit,
            SPLIT_FILL * 100,
        )

    def report_malformed(self, why: str) -> None:
        """The filter's stored state is not what a worker writes: count it, and say so once."""
        if self.stats is not None:
            self.stats.inc_value("dupefilter/malformed")
        if self._warned_malformed:
            return
        self._warned_malformed = True
        logger.error(
            "Dupefilter %s: its state in Redis is not what a worker writes (%s): requests it can't check "
            "are queued unchecked (duplicates possible) until the key is repaired or deleted; counted in "
            "dupefilter/malformed",
            self.key,
            why,
        )

    # -- lifecycle -------------------------------------------------------------------

    def close(self, reason: str = "") -> None:
        """Keep the fingerprints: other workers share them (stock scrapy-redis deletes them here)."""

    def clear(self) -> None:
        """Delete every fingerprint and the layout (the crawl is over, or starts afresh)."""
        try:
            keys = [*self.shard_keys(self.read_stored_layout()), self.meta_key]
        except (MalformedLayout, redis.ResponseError):  # its shards can't be named: all keys under it
            keys = [self.meta_key, *map(_text, self.server.scan_iter(f"{glob_escape(self.key)}:*"))]
        for start in range(0, len(keys), 1000):
            self.server.unlink(*keys[start : start + 1000])
        self.layout = None

    def log(self, request: Request, spider: Spider) -> None:
        """Count every filtered request; log the first (or all with ``DUPEFILTER_DEBUG``)."""
        if self.stats is not None:
            self.stats.inc_value("dupefilter/filtered")
        if self.debug or self.logdupes:
            self.logger.debug(
                "Filtered duplicate request: %(request)s%(more)s",
                {
                    "request": request,
                    "more": ""
                    if self.debug
                    else " - no more duplicates will be shown (see DUPEFILTER_DEBUG)",
                },
                extra={"spider": spider},
            )
            self.logdupes = self.debug
