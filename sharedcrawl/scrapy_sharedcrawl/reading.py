"""Values the status tools read back from Redis: checked, never trusted.

Workers write the shared stats, the crawl's meta and the worker registry, but
anything with access to Redis can write there too. A reader takes a value only
when it is one a worker could have written (an integer Redis can hold, a finite
number, a moment a calendar can show) and otherwise skips it: counted in
:class:`Unreadable`, said once per process, and the reading goes on. One bad
field never blocks ``status`` or the dashboard, and never puts a NaN in their JSON.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

#: Integers Redis' counters hold (HINCRBY works on signed 64 bits).
COUNTER_MIN, COUNTER_MAX = -(2**63), 2**63 - 1
#: Latest Unix time taken as a moment: 9999-12-31T23:59:59Z, the last second a date can show.
MOMENT_MAX = 253402300799.0
#: Distinct unreadable values remembered so that each is logged once (then no more are logged).
WARN_MEMORY = 1000

logger = logging.getLogger(__name__)
_warned: set[str] = set()
#: Characters that move a terminal's cursor, change its colours or reorder text: C0 and C1 controls,
#: DEL, and Unicode's bidirectional overrides and isolates; and lone surrogates (JSON's "\ud800"),
#: which no terminal encoding can write: printing one would end the command.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` read from Redis or a network peer (a scrapyd node), safe to print on a terminal: every
    control character shown as ``?``.

    >>> printable("host\x1b[2Jname")
    'host?[2Jname'
    """
    return _UNPRINTABLE.sub("?", text)


def text(value: bytes | str) -> str:
    """A name or text read from Redis as ``str`` (bytes that are not UTF-8 shown as U+FFFD)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def counter(value: Any) -> int | float | None:
    """A counter as Redis or a JSON entry holds it: an integer or a float within 64 bits; else None.

    Floats are held to the integers' range too, so that sums of a few of them stay finite (and
    ``int()`` of them never overflows): no worker adds up to 1e300.

    >>> counter(b"12"), counter(b"0.5"), counter(b"nan"), counter("1e400"), counter("1e300"), counter(b"abc")
    (12, 0.5, None, None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, bytes | str):
        raw = text(value)
        try:
            value = int(raw)
        except ValueError:  # not an integer (or too many digits to read one): a float, maybe
            try:
                value = float(raw)
            except ValueError:
                return None
    if isinstance(value, int):
        return value if COUNTER_MIN <= value <= COUNTER_MAX else None
    if isinstance(value, float) and math.isfinite(value) and COUNTER_MIN <= value <= COUNTER_MAX:
        return value
    return None


def whole(value: Any, at_least: int = 0) -> int | None:
    """A count: a :func:`counter` that is a whole number not below ``at_least``; else None."""
    number = counter(value)
    if number is None or number != int(number) or number < at_least:
        return None
    return int(number)


def moment(value: Any) -> float | None:
    """A Unix time (s) within what a date can show (1970 … 9999); else None."""
    number = counter(value)
    return float(number) if number is not None and 0 <= number <= MOMENT_MAX else None


@dataclass
class Unreadable:
    """What one reading skipped, by kind (``stats``, ``workers``, ``meta``…): shown next to what it read."""

    counts: dict[str, int] = field(default_factory=dict)

    def skip(self, kind: str, name: bytes | str, why: str) -> None:
        """Count one skipped value; log it the first time this process meets it."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        label = f"{kind}/{text(name)[:100]}"
        if label not in _warned and len(_warned) < WARN_MEMORY:
            _warned.add(label)
            logger.warning("Unreadable %s entry %r skipped: %s", kind, text(name)[:100], why)


def replies(results: list[Any], keys: list[str], defaults: list[Any], unreadable: Unreadable) -> list[Any]:
    """A pipeline's replies (``execute(raise_on_error=False)``), each error reply replaced by its default.

    A key another program wrote with another type (``WRONGTYPE``) is a problem of that key: it is
    counted under ``keys`` and read as empty, and the rest of the reading goes on. Only errors of
    one command are taken so; a connection that fails still raises from ``execute``.
    """
    read = []
    for result, key, default in zip(results, keys, defaults, strict=True):
        if isinstance(result, Exception):
            unreadable.skip("keys", key, f"{type(result).__name__}: {str(result)[:120]}")
            result = default
        read.append(result)
    return read
