"""Fault modes of the replica: what a flaky real site does to a crawler.

Each response draws its fault from a seeded generator, and every injected
fault is counted by kind, so a test can compare the crawler's stats with what
the site really did. ``robots.txt`` and the replica's own ``/__replica__/``
endpoints are never faulted.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, fields
from enum import StrEnum


class Fault(StrEnum):
    """Kinds of injected faults, as counted in ``/__replica__/stats``."""

    RESET = "reset"  # connection aborted before any response
    ERROR_BURST = "error_burst"  # 500/503 for every request during a short outage
    THROTTLE = "throttle"  # 429 with Retry-After
    SLOW = "slow"  # the response waits slow_delay seconds
    TRUNCATE = "truncate"  # a story page cut short, with a matching Content-Length
    WRONG_CHARSET = "wrong_charset"  # Content-Type says iso-8859-1, the body is UTF-8
    MALFORMED = "malformed"  # a story page without title and byline (per sid, every time)
    HOSTILE = "hostile"  # a story page carrying one hostile value (per sid, every time)


#: What a hostile story carries, in the order sids cycle through them (see ``FaultConfig.hostile_kind``):
#: ``huge_views``: 本文已被查看 10^20 次; ``huge_cid``: a comment whose cid is 10^20;
#: ``deep_body``: the body nested 1,200 ``<div>`` deep; ``deep_thread``: replies nested 1,000 deep;
#: ``too_deep``: replies nested 1,200 deep (2,400+ elements: deeper than libxml2 reads).
HOSTILE_KINDS: tuple[str, ...] = ("huge_views", "huge_cid", "deep_body", "deep_thread", "too_deep")


#: ``FaultConfig.parse`` keys → field names.
_ALIASES = {
    "reset": "reset_rate",
    "truncate": "truncate_rate",
    "throttle": "throttle_rate",
    "slow": "slow_rate",
    "charset": "wrong_charset_rate",
    "malformed": "malformed_rate",
    "hostile": "hostile_every",
}


@dataclass(frozen=True)
class FaultConfig:
    """Which faults a replica injects, and how often (rates are per response, 0–1)."""

    reset_rate: float = 0.0
    error_burst_every: int = 0  # after every N good answers …
    error_burst_seconds: float = 0.0  # … an outage: every request answers 500/503 for this long
    throttle_rate: float = 0.0
    retry_after: int = 1
    slow_rate: float = 0.0
    slow_delay: float = 0.5
    truncate_rate: float = 0.0
    wrong_charset_rate: float = 0.0
    malformed_rate: float = 0.0  # share of sids whose page is malformed
    hostile_every: int = 0  # every sid divisible by it serves a hostile page (0: none)
    seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """``"reset=0.05,burst=50x0.5,throttle=0.05,retry_after=1,slow=0.1,slow_delay=0.5,seed=7"``.

        ``burst=NxS``: after every N good answers, an outage of S seconds.
        """
        values: dict[str, float | int] = {}
        known = {f.name: f.type for f in fields(cls)}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"fault {part!r} needs a value: kind=value")
            if key == "burst":
                every, _, seconds = raw.partition("x")
                values["error_burst_every"], values["error_burst_seconds"] = int(every), float(seconds or 1)
                continue
            name = _ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown fault {key!r}; known: burst, {', '.join(sorted(_ALIASES))}, …")
            values[name] = int(raw) if known[name] == "int" else float(raw)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def any(self) -> bool:
        return self != FaultConfig(seed=self.seed)

    def is_malformed(self, sid: int) -> bool:
        """Malformed pages are a property of the sid: fetching again doesn't help."""
        if not self.malformed_rate or sid == 80222:
            return False
        return random.Random(f"malformed:{self.seed}:{sid}").random() < self.malformed_rate

    def hostile_kind(self, sid: int) -> str | None:
        """The hostile value sid's page carries (``hostile=N``: every sid with ``sid % N == 0``), or None.

        Deterministic, never sid 80222; consecutive hostile sids cycle through
        :data:`HOSTILE_KINDS`. :meth:`Replica.hostile_kind` also leaves out
        gaps and malformed pages.
        """
        every = self.hostile_every
        if every <= 0 or sid % every or sid == 80222:
            return None
        return HOSTILE_KINDS[(sid // every) % len(HOSTILE_KINDS)]


@dataclass(frozen=True)
class Decision:
    """What to do to one response."""

    fault: Fault | None = None
    status: int = 200
    delay: float = 0.0

    @property
    def resets(self) -> bool:
        return self.fault is Fault.RESET


class FaultInjector:
    """Draws one fault (or none) per response and counts what it injected."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self._random = random.Random(f"faults:{config.seed}")
        self._good_answers = 0
        self._outage_until = 0.0

    def decide(self, is_page: bool, is_story: bool) -> Decision:
        """The fault for the next response.

        ``is_page``: a 200 HTML/XML page, whose charset may be mislabelled;
        ``is_story``: a 200 story page, which may also be truncated.
        """
        config, draw = self.config, self._random.random
        if config.error_burst_every:
            now = time.monotonic()
            if self._good_answers >= config.error_burst_every:
                self._good_answers, self._outage_until = 0, now + config.error_burst_seconds
            if now < self._outage_until:
                return self._count(Decision(Fault.ERROR_BURST, status=503 if draw() < 0.5 else 500))
            self._good_answers += 1
        if draw() < config.reset_rate:
            return self._count(Decision(Fault.RESET))
        if draw() < config.throttle_rate:
            return self._count(Decision(Fault.THROTTLE, status=429))
        if draw() < config.slow_rate:
            return self._count(Decision(Fault.SLOW, delay=config.slow_delay))
        if is_story and draw() < config.truncate_rate:
            return self._count(Decision(Fault.TRUNCATE))
        if is_page and draw() < config.wrong_charset_rate:
            return self._count(Decision(Fault.WRONG_CHARSET))
        return Decision()

    def count_malformed(self) -> None:
        self.counts[Fault.MALFORMED.value] += 1

    def count_hostile(self) -> None:
        self.counts[Fault.HOSTILE.value] += 1

    def _count(self, decision: Decision) -> Decision:
        assert decision.fault is not None
        self.counts[decision.fault.value] += 1
        return decision
