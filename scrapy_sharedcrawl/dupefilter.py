"""A shared duplicate filter in Redis at ≈ 10 bytes per URL instead of ≈ 88.

Stock scrapy-redis (:class:`scrapy_redis.dupefilter.RFPDupeFilter`) keeps each
fingerprint as a 40-character hex string in one Redis SET: a hashtable whose
entries cost ≈ 88 bytes each. :class:`CompactRFPDupeFilter` keeps the first 8
bytes of Scrapy's request fingerprint as a signed 64-bit *integer*, spread over
many small SETs (shards) so that Redis stores every shard as an *intset* (a
sorted array of int64, 8 bytes an entry). A shard stays an intset only up to
``set-max-intset-entries`` members (512 by default; read with CONFIG GET at
open where the server allows it), so the shard count is sized from
``DUPEFILTER_CAPACITY``: at capacity the average shard holds 75 % of
the limit, and the fullest of thousands of shards stays below it (binomial
spread: the limit is ≈ 6 standard deviations away). The layout is stored in
Redis (``<key>:meta``) at first use, so every worker of a crawl shards alike
whatever its own settings say; a shard that nears the limit is logged.

Collisions: two different URLs sharing 64 bits make the second look seen, so
it is skipped. With n URLs the chance that this happens at all is
≈ n²/2⁶⁵: 2.7·10⁻¹⁰ at 100k URLs, 2.7·10⁻⁸ at 1M, 2.7·10⁻⁶ at 10M.

``DUPEFILTER_MODE = "bloom"`` uses a Bloom filter instead (one Redis bitmap,
k bit positions per URL by double hashing of the fingerprint, SETBIT in Lua):
sized from the capacity and ``DUPEFILTER_ERROR_RATE`` (default 10⁻⁶)
it takes 3.6 bytes per URL; a new URL is wrongly taken as seen with
probability ≤ the error rate while the filter holds at most its capacity
(≈ 0.13 URLs expected to be skipped over a 2M-URL crawl), rising beyond.

Check-and-add is one atomic Redis call (SADD's return value, or the SETBIT
script): two workers can't both see a URL as new. The scheduler runs the same
Lua in its enqueue script (:attr:`CompactRFPDupeFilter.lua_check_and_add`), so
"seen" and "queued" are one step and a crash between them can't lose a request.

Unlike stock scrapy-redis, ``close()`` never deletes the fingerprints: the
filter is shared, and one worker stopping is not the crawl ending.
"""

from __future__ import annotations

import itertools
import logging
import math
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

from scrapy_sharedcrawl.config import float_setting, int_setting, setting
from scrapy_sharedcrawl.connection import redis_from_settings
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import dupefilter_meta

logger = logging.getLogger(__name__)

Mode = Literal["set", "bloom"]

#: Redis's default ``set-max-intset-entries``, used when CONFIG GET is not allowed.
DEFAULT_INTSET_LIMIT = 512
#: Average shard size at capacity, as a share of the intset limit.
SHARD_FILL = 0.75
#: A shard this full (share of the limit) is logged: Redis is about to convert it to a hashtable.
WARN_FILL = 0.9
#: A Redis string holds at most 2³² bits.
MAX_BLOOM_BITS = 2**32
#: Most shards a stored layout may name (2³² bits' worth of URLs, in intsets of 512).
MAX_SHARDS = 2**24
#: SCARD calls per round trip when counting a set-mode filter.
COUNT_BATCH = 1000

#: ``check_and_add(keys, args)`` → seen (boolean), fill (members of the shard after adding, 0 if
#: unknown). Set mode: keys = {shard}, args = {fingerprint as a signed int64}.
LUA_SET_CHECK_AND_ADD = """
local function check_and_add(keys, args)
  if redis.call('SADD', keys[1], args[1]) == 0 then return true, 0 end
  return false, redis.call('SCARD', keys[1])
end
"""
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
#: Store the layout unless one is stored already; answer the stored one. KEYS[1] = meta hash.
_LAYOUT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HGETALL', KEYS[1])
"""

#: Create the Bloom bitmap at its full size, zeroed, unless it exists. KEYS[1] = bitmap, ARGV[1] = bytes.
_ALLOCATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], string.rep('\\0', tonumber(ARGV[1])))
end
return 1
"""


@dataclass(frozen=True)
class Layout:
    """How fingerprints map to Redis keys; fixed for the life of a crawl's filter."""

    mode: Mode
    shards: int = 0  # set mode
    intset_limit: int = DEFAULT_INTSET_LIMIT
    bits: int = 0  # bloom mode
    hashes: int = 0
    capacity: int = 0

    @classmethod
    def plan(cls, mode: Mode, capacity: int, intset_limit: int, error_rate: float) -> Layout:
        """The layout for ``capacity`` URLs (see the module docstring for the sizing)."""
        capacity = max(1, capacity)
        if mode == "set":
            shards = max(1, math.ceil(capacity / (SHARD_FILL * intset_limit)))
            return cls(mode, shards=shards, intset_limit=intset_limit, capacity=capacity)
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
        fields = {
            "mode": self.mode,
            "shards": self.shards,
            "intset_limit": self.intset_limit,
            "bits": self.bits,
            "hashes": self.hashes,
            "capacity": self.capacity,
        }
        return [str(part) for pair in fields.items() for part in pair]

    @classmethod
    def from_redis(cls, stored: dict[bytes, bytes]) -> Layout:
        values = {key.decode(): value.decode() for key, value in stored.items()}
        mode = values.get("mode")
        if mode not in ("set", "bloom"):
            raise ValueError(f"stored dupefilter layout has unknown mode {mode!r}")
        layout = cls(
            mode,  # type: ignore[arg-type]
            shards=int(values.get("shards", 0)),
            intset_limit=int(values.get("intset_limit", DEFAULT_INTSET_LIMIT)),
            bits=int(values.get("bits", 0)),
            hashes=int(values.get("hashes", 0)),
            capacity=int(values.get("capacity", 0)),
        )
        # Bounds a planned layout keeps: anything else would divide by zero, or count a billion shards.
        if mode == "set" and not 1 <= layout.shards <= MAX_SHARDS:
            raise ValueError(f"stored dupefilter layout has {layout.shards} shards (1…{MAX_SHARDS:,})")
        if mode == "bloom" and not (1 <= layout.bits <= MAX_BLOOM_BITS and 1 <= layout.hashes <= 1000):
            raise ValueError(f"stored dupefilter layout has {layout.bits} bits, {layout.hashes} hashes")
        return layout


@dataclass(frozen=True)
class DupeCheck:
    """Redis keys and arguments of one check-and-add (see :attr:`CompactRFPDupeFilter.lua_check_and_add`)."""

    keys: Sequence[str]
    args: Sequence[int]


def fingerprint64(fingerprint: bytes) -> int:
    """The first 8 bytes of a fingerprint as a signed 64-bit integer (what a Redis intset holds).

    >>> fingerprint64(bytes.fromhex("ffffffffffffffff00"))
    -1
    """
    return int.from_bytes(fingerprint[:8], "big", signed=True)


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
        self._warned_full = False
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
            debug=settings.getbool("DUPEFILTER_DEBUG"),
            fingerprinter=crawler.request_fingerprinter if crawler is not None else None,
            mode=str(get("DUPEFILTER_MODE")).strip().lower(),  # type: ignore[arg-type]
            capacity=int_setting(
                settings, "DUPEFILTER_CAPACITY", DEFAULTS["DUPEFILTER_CAPACITY"], at_least=1, at_most=10**10
            ),
            error_rate=float_setting(
                settings, "DUPEFILTER_ERROR_RATE", DEFAULTS["DUPEFILTER_ERROR_RATE"], above=0, at_most=0.5
            ),
            stats=crawler.stats if crawler is not None else None,
        )

    # -- layout ------------------------------------------------------------------

    @property
    def meta_key(self) -> str:
        return dupefilter_meta(self.key)

    def adopt_stored(self, stored: dict[bytes, bytes] | None) -> Layout | None:
        """Take the layout from ``HGETALL <meta_key>`` read by the caller (None or empty: no filter
        stored). Readers (``status``, the finishing worker) use this: they never create a filter."""
        self.layout = Layout.from_redis(stored) if stored else None
        return self.layout

    def read_stored_layout(self) -> Layout | None:
        """The layout stored in Redis, if any (read, never created)."""
        if self.layout is None:
            self.adopt_stored(self.server.hgetall(self.meta_key))
        return self.layout

    def state_keys(self) -> list[str]:
        """Every key of this filter's state in Redis (shards and layout), to delete with the crawl."""
        shards = self.shard_keys() if self.read_stored_layout() is not None else []
        return [*shards, self.meta_key]

    def open(self) -> None:
        """Agree on the layout with Redis (the first worker's plan wins); a mode mismatch is an error."""
        self.ensure_layout()

    def ensure_layout(self) -> Layout:
        if self.layout is not None:
            return self.layout
        planned = Layout.plan(self.mode, self.capacity, self._intset_limit(), self.error_rate)
        stored = self.server.eval(_LAYOUT, 1, self.meta_key, *planned.to_redis())
        layout = Layout.from_redis(dict(zip(stored[::2], stored[1::2], strict=True)))
        if layout.mode != self.mode:
            raise ValueError(
                f"the dupefilter at {self.key} is in {layout.mode!r} mode but DUPEFILTER_MODE is "
                f"{self.mode!r}: use the crawl's mode, or a new key for a new crawl"
            )
        if layout.capacity != planned.capacity:
            logger.info(
                "Dupefilter %s was sized for %s URLs by the first worker (this one asks for %s); "
                "keeping the stored layout",
                self.key,
                f"{layout.capacity:,}",
                f"{planned.capacity:,}",
            )
        if layout.mode == "bloom":
            # all zero bits written at once: grown by SETBIT, Redis would over-allocate it up to 2x
            self.server.eval(_ALLOCATE, 1, f"{self.key}:bloom", math.ceil(layout.bits / 8))
        self.layout = layout
        return layout

    def _intset_limit(self) -> int:
        try:
            answer = self.server.config_get("set-max-intset-entries")
        except redis.ResponseError:  # CONFIG renamed or forbidden (managed Redis): assume the default
            return DEFAULT_INTSET_LIMIT
        value = answer.get("set-max-intset-entries") or answer.get(b"set-max-intset-entries")
        return int(value) if value else DEFAULT_INTSET_LIMIT

    def shard_keys(self) -> list[str]:
        """Every Redis key holding fingerprints."""
        layout = self.ensure_layout()
        if layout.mode == "bloom":
            return [f"{self.key}:bloom"]
        return [f"{self.key}:{shard}" for shard in range(layout.shards)]

    def count(self) -> tuple[int, bool]:
        """URLs in the filter, and whether that is exact: the shards' sizes summed (set mode), or the
        Bloom filter's estimate from the bits set. Uses :meth:`ensure_layout`: to count a stored filter
        without ever creating one, set ``layout`` from the stored one first."""
        shard_keys = self.shard_keys()
        layout = self.ensure_layout()
        if layout.mode == "bloom":
            return layout.estimate(int(self.server.bitcount(shard_keys[0]))), False
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

    def check(self, request: Request) -> DupeCheck:
        """The keys and arguments that check-and-add ``request``'s fingerprint."""
        return self.check_fingerprint(self.fingerprinter.fingerprint(request))

    def check_fingerprint(self, fingerprint: bytes) -> DupeCheck:
        """The keys and arguments that check-and-add a fingerprint (Scrapy's: 20 bytes)."""
        layout = self.ensure_layout()
        if layout.mode == "bloom":
            first = int.from_bytes(fingerprint[:8], "big")
            step = int.from_bytes(fingerprint[8:16].ljust(8, b"\0"), "big") | 1
            positions = [(first + index * step) % layout.bits for index in range(layout.hashes)]
            return DupeCheck([f"{self.key}:bloom"], positions)
        value = fingerprint64(fingerprint)
        return DupeCheck([f"{self.key}:{value % layout.shards}"], [value])

    def request_seen(self, request: Request) -> bool:
        """Check-and-add in one atomic call: True if the request was seen before."""
        if self._standalone is None:
            self._standalone = self.server.register_script(self.lua_check_and_add + _STANDALONE)
        check = self.check(request)
        seen, fill = self._standalone(keys=list(check.keys), args=list(check.args))
        self.note_fill(int(fill))
        return bool(seen)

    def add_fingerprints(self, fingerprints: Iterable[bytes], batch: int = 10_000) -> int:
        """Check-and-add many fingerprints, pipelined (importing a filter, benchmarks); how many were new."""
        if self._standalone is None:
            self._standalone = self.server.register_script(self.lua_check_and_add + _STANDALONE)
        new = 0
        pending = iter(fingerprints)
        while chunk := list(itertools.islice(pending, batch)):
            pipe = self.server.pipeline(transaction=False)
            for fingerprint in chunk:
                check = self.check_fingerprint(fingerprint)
                self._standalone(keys=list(check.keys), args=list(check.args), client=pipe)
            for seen, fill in pipe.execute():
                new += not seen
                self.note_fill(int(fill))
        return new

    def request_fingerprint(self, request: Request) -> str:
        """The fingerprint as hex (the full one, for logs); the filter itself keeps 64 bits."""
        return self.fingerprinter.fingerprint(request).hex()

    def note_fill(self, fill: int) -> None:
        """``fill``: a shard's size after an add. Warn once when a shard nears the intset limit."""
        layout = self.layout
        if (
            self._warned_full
            or layout is None
            or layout.mode != "set"
            or fill < WARN_FILL * layout.intset_limit
        ):
            return
        self._warned_full = True
        logger.warning(
            "Dupefilter %s: a shard holds %d fingerprints, near Redis's set-max-intset-entries (%d); past "
            "it shards turn into hashtables (≈ 8x the memory). The filter was sized for %s URLs: start "
            "a larger crawl with a higher DUPEFILTER_CAPACITY (new key), or raise "
            "set-max-intset-entries",
            self.key,
            fill,
            layout.intset_limit,
            f"{layout.capacity:,}",
        )

    # -- lifecycle -------------------------------------------------------------------

    def close(self, reason: str = "") -> None:
        """Keep the fingerprints: other workers share them (stock scrapy-redis deletes them here)."""

    def clear(self) -> None:
        """Delete every fingerprint and the layout (the crawl is over, or starts afresh)."""
        keys = [*self.shard_keys(), self.meta_key]
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
