"""Reading stored responses back from ``.warc.gz`` files: nothing in a file is trusted.

:class:`WarcReader` yields a fetch only when all its records read whole; a torn or damaged one is
counted, logged and skipped (reading resumes at the next gzip member), never a crash.

Design notes: docs/framework-design.md#warc-reader.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.timeutils import iso_date_to_datetime

logger = logging.getLogger(__name__)

#: Largest record read (decompressed): far above a web page, and Scrapy's DOWNLOAD_MAXSIZE of 16 MiB.
MAX_RECORD_BYTES = 32 * 1024 * 1024
#: Largest metadata record read (warc-fields).
MAX_FIELDS_BYTES = 64 * 1024
#: What a directory is searched for (a killed worker's file keeps its ``.open``).
SUFFIXES = (".warc.gz", ".warc.gz.open")
_CHUNK = 1 << 16
#: How every gzip member starts (ID1, ID2, CM = deflate).
_MAGIC = b"\x1f\x8b\x08"


@dataclass(frozen=True)
class StoredResponse:
    """One fetched response, as stored, with what the crawl knew of its request."""

    uri: str
    date: datetime
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: The fetch's metadata fields (``via``, ``scrapy-callback``, ``scrapy-cb-kwargs``…).
    context: dict[str, str] = field(default_factory=dict)


class Damaged(Exception):
    """A member that is not a whole, sensible WARC record (the reason says which)."""


def warc_files(paths: Iterable[Path]) -> list[Path]:
    """The WARC files named, directories searched (recursively), in name order (= time order)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no WARC file or directory at {path}")
    return found


def _inflate(handle: BinaryIO, pending: bytes) -> tuple[bytes | None, int, bytes]:
    """One gzip member from ``pending`` and then ``handle``: ``(data, bytes consumed, input left
    over)``; ``data`` is None when the member is cut short, corrupt, or inflates past the limit."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out: list[bytes] = []
    size = consumed = 0
    try:
        while not inflater.eof:
            if not pending:
                pending = handle.read(_CHUNK)
                if not pending:
                    return None, consumed, b""
            fed = len(pending)
            chunk = inflater.decompress(pending, MAX_RECORD_BYTES + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > MAX_RECORD_BYTES:  # a gzip bomb, or garbage read as one
                return None, consumed, b""
            pending = inflater.unused_data or inflater.unconsumed_tail
            consumed += fed - len(pending)
    except zlib.error:
        return None, consumed, b""
    return b"".join(out), consumed, pending


def _resync(handle: BinaryIO, position: int) -> tuple[int, bytes, int] | None:
    """The first whole member starting at or after ``position``: ``(offset, data, length)``; None if
    there is none. Each member is compressed on its own, so one that is damaged costs only itself:
    every gzip magic after it is tried in turn."""
    while True:
        handle.seek(position)
        window = handle.read(_CHUNK)
        found = window.find(_MAGIC)
        if found < 0:
            if len(window) < _CHUNK:
                return None
            position += len(window) - (len(_MAGIC) - 1)
            continue
        candidate = position + found
        handle.seek(candidate)
        data, consumed, _ = _inflate(handle, b"")
        if data is not None:
            return candidate, data, consumed
        position = candidate + 1


def gzip_members(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """``(offset, data)`` of each gzip member in turn. A stretch that holds no whole member (one cut
    short or corrupt, or garbage) gives one ``(offset, None)``; reading resumes at the next whole
    member (``handle`` must be seekable)."""
    offset = 0
    pending = b""
    while True:
        if not pending:
            pending = handle.read(_CHUNK)
            if not pending:
                return
        data, consumed, pending = _inflate(handle, pending)
        if data is not None:
            yield offset, data
            offset += consumed
            continue
        yield offset, None
        found = _resync(handle, offset + 1)
        if found is None:
            return
        offset, data, consumed = found
        yield offset, data
        offset += consumed
        handle.seek(offset)
        pending = b""


def parse_record(data: bytes) -> ArcWarcRecord:
    """One WARC record from a member's bytes; its content stream is read in full by the caller."""
    try:
        record = ArcWarcRecordLoader().parse_record_stream(io.BytesIO(data), known_format="warc")
    except Exception as error:  # warcio raises many kinds on a broken header block
        raise Damaged(f"not a WARC record ({type(error).__name__})") from None
    if record.format != "warc":
        raise Damaged("not a WARC record")
    return record


def _date(record: ArcWarcRecord) -> datetime:
    text = record.rec_headers.get_header("WARC-Date") or ""
    try:
        return iso_date_to_datetime(text).replace(tzinfo=UTC)
    except (ValueError, TypeError, IndexError):
        raise Damaged(f"bad WARC-Date {text[:40]!r}") from None


def _response(record: ArcWarcRecord) -> StoredResponse:
    uri = record.rec_headers.get_header("WARC-Target-URI") or ""
    if not uri.startswith(("http://", "https://")):
        raise Damaged(f"response for a non-http URI {uri[:80]!r}")
    http = record.http_headers
    if http is None:
        raise Damaged("response without HTTP headers")
    try:
        status = int(http.get_statuscode())
    except (TypeError, ValueError):
        raise Damaged("bad HTTP status line") from None
    body = record.raw_stream.read()
    return StoredResponse(uri, _date(record), status, list(http.headers), body)


def _fields(record: ArcWarcRecord) -> dict[str, str]:
    text = record.raw_stream.read(MAX_FIELDS_BYTES).decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            fields.setdefault(name.strip(), value.strip())
    return fields


@dataclass
class _Fetch:
    """The fetch being read: its response (None for a revisit) until its request record ends it."""

    record_id: str = ""
    response: StoredResponse | None = None
    #: Why it can't be read (a damaged member among its records), first reason only.
    trouble: str = ""
    #: Every fetch its records named (``WARC-Concurrent-To``): more than one when a damaged stretch
    #: swallowed the end of one fetch and the start of the next.
    named: set[str] = field(default_factory=set)


@dataclass
class WarcReader:
    """Yields every stored response of the files, counting what it skips (``skipped[reason]``):
    ``torn`` (a file's last fetch cut short), ``damaged`` (a fetch, or a stretch of the file, that
    could not be read elsewhere), ``revisit`` (the payload is in an earlier record)."""

    progress: Callable[[int], object] = lambda nbytes: None
    skipped: Counter[str] = field(default_factory=Counter)

    def responses(self, paths: Iterable[Path]) -> Iterator[StoredResponse]:
        for path in paths:
            yield from self._file(path)

    def _file(self, path: Path) -> Iterator[StoredResponse]:
        """The file's responses; a fetch counts once its request record (written last) is read, and
        only if none of its records was damaged."""
        fetch: _Fetch | None = None
        read = 0
        with open(path, "rb") as handle:
            for offset, data in gzip_members(handle):
                self.progress(offset - read)
                read = offset
                if data is None:
                    fetch = fetch or _Fetch()
                    fetch.trouble = fetch.trouble or f"cut short or corrupt at offset {offset}"
                    continue
                try:
                    record = parse_record(data)
                    kind = record.rec_type
                    if kind in ("response", "revisit"):
                        self._lose(fetch, path, "damaged")  # the one before never got its request
                        fetch = _Fetch(record.rec_headers.get_header("WARC-Record-ID") or "")
                        if kind == "revisit":
                            self.skipped["revisit"] += 1
                        else:
                            fetch.response = _response(record)
                        continue
                    if kind not in ("metadata", "request"):
                        continue
                    concurrent_to = record.rec_headers.get_header("WARC-Concurrent-To") or ""
                    fetch = fetch or _Fetch(trouble=f"a {kind} record without its response")
                    if concurrent_to != fetch.record_id:
                        fetch.named.add(concurrent_to)
                        fetch.trouble = fetch.trouble or f"a {kind} record of another fetch at {offset}"
                    elif kind == "metadata" and fetch.response is not None:
                        fetch.response.context.update(_fields(record))
                    if kind == "request":
                        if not fetch.trouble and fetch.response is not None:
                            yield fetch.response
                        elif fetch.trouble:
                            self._lose(fetch, path, "damaged")
                        fetch = None
                except Damaged as error:
                    fetch = fetch or _Fetch()
                    fetch.trouble = fetch.trouble or f"{error} at offset {offset}"
        self.progress(path.stat().st_size - read)
        if fetch is not None:
            fetch.trouble = fetch.trouble or "a response without its request record (the file ends)"
            self._lose(fetch, path, "torn")

    def _lose(self, fetch: _Fetch | None, path: Path, reason: str) -> None:
        """Count the fetches that ``fetch`` stands for (at least one), with one log line."""
        if fetch is None:
            return
        if not fetch.trouble:
            fetch.trouble = "its request record is missing"
        fetches = len(fetch.named | ({fetch.record_id} if fetch.record_id else set())) or 1
        self.skipped[reason] += fetches
        logger.warning("WARC %s: %d fetch(es) skipped: %s", path, fetches, fetch.trouble)
