"""Which sids a store holds (a story or a gap), as far as this worker knows: what lets a batch of sids
new to the store be written without reading anything first.

:class:`SidSet` keeps them in a bitmap: Solidot's sids are dense, and 100,000 of them take 12.5 kB
(a Python ``set`` of the same ints ≈ 7.4 MB, an ``array('i')`` 400 kB). :func:`read_sids` reads a
collection's sids once, in pages of :data:`PAGE` (a mongoeco server answers a query in one reply,
which must stay under the protocol's limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection

from solidot_spider.site.discovery import MAX_SID

#: Sids read per query: ≈ 1 MB of reply.
PAGE = 50_000
#: Sids below this live in the bitmap (at most 2 MiB); the rare larger one in a plain set, so that
#: one stray document with a sid near ``MAX_SID`` can't cost 125 MB.
BITMAP_LIMIT = 1 << 24


class SidSet:
    """A set of sids (ints from 1 to ``MAX_SID``): a bitmap grown as needed, and a set past
    :data:`BITMAP_LIMIT`.

    >>> known = SidSet([3, 70_000])
    >>> 3 in known, 4 in known, len(known)
    (True, False, 2)
    """

    __slots__ = ("_bits", "_count", "_far")

    def __init__(self, sids: Iterable[int] = ()) -> None:
        self._bits = bytearray()
        self._far: set[int] = set()
        self._count = 0
        self.update(sids)

    def add(self, sid: int) -> None:
        if sid >= BITMAP_LIMIT:
            self._far.add(sid)
            return
        byte, bit = sid >> 3, 1 << (sid & 7)
        if byte >= len(self._bits):
            # grow by at least half: a crawl adds sids in increasing order
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits) // 2)))
        if not self._bits[byte] & bit:
            self._bits[byte] |= bit
            self._count += 1

    def update(self, sids: Iterable[int]) -> None:
        for sid in sids:
            self.add(sid)

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, int):
            return False
        if sid >= BITMAP_LIMIT:
            return sid in self._far
        byte = sid >> 3
        return 0 <= byte < len(self._bits) and bool(self._bits[byte] & 1 << (sid & 7))

    def __len__(self) -> int:
        return self._count + len(self._far)


def read_sids(collection: Collection[dict[str, Any]]) -> Iterator[int]:
    """Every valid sid of ``collection``, in increasing order, :data:`PAGE` a query on the ``sid``
    index (whatever their spread: each page starts past the last sid read)."""
    last: int | float = 0
    while True:
        query = collection.find({"sid": {"$gt": last}}, {"_id": 0, "sid": 1})
        page = query.sort("sid", ASCENDING).limit(PAGE)
        read, start = 0, last
        for document in page:
            read += 1
            sid = document.get("sid")
            # nothing read is trusted: a sid of another type or out of range is no sid
            if isinstance(sid, int | float) and not isinstance(sid, bool) and sid > last:
                last = sid
                if isinstance(sid, int) and sid <= MAX_SID:
                    yield sid
        if read < PAGE or last == start:  # the end, or a page the next query would read again
            return
