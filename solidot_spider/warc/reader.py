"""Reading stored responses back from ``.warc.gz`` files: nothing in a file is trusted.

A crawler's WARC file is a series of gzip members, one record each, one fetch
(response or revisit, request, metadata) appended at a time. A worker killed
while writing leaves a file whose last member is cut short: zlib reports the
member incomplete (or its CRC wrong), the fetch it belongs to is skipped,
counted and logged, and reading goes on with the next file — never a crash. A
member that is not a WARC record, or a record whose fields make no sense (a
date that is not one, a status that is no number), is skipped the same way.
A member that would inflate past :data:`MAX_RECORD_BYTES` is refused (a gzip
bomb), with the rest of its file.
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

#: Largest record read (decompressed): a story page is tens of kB, Scrapy's DOWNLOAD_MAXSIZE 16 MiB.
MAX_RECORD_BYTES = 32 * 1024 * 1024
#: Largest metadata record read (warc-fields).
MAX_FIELDS_BYTES = 64 * 1024
#: What a directory is searched for (a killed worker's file keeps its ``.open``).
SUFFIXES = (".warc.gz", ".warc.gz.open")
_CHUNK = 1 << 16


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


def gzip_members(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """``(offset, data)`` of each gzip member in turn; ``data`` is None for one that is cut short or
    corrupt (nothing after it is read)."""
    offset = 0
    pending = b""
    while True:
        if not pending:
            pending = handle.read(_CHUNK)
            if not pending:
                return
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        start, out, size = offset, [], 0
        try:
            while not inflater.eof:
                if not pending:
                    pending = handle.read(_CHUNK)
                    if not pending:
                        break
                fed = len(pending)
                chunk = inflater.decompress(pending, MAX_RECORD_BYTES + 1 - size)
                size += len(chunk)
                out.append(chunk)
                if size > MAX_RECORD_BYTES:
                    raise zlib.error(f"member inflates past {MAX_RECORD_BYTES:,} bytes")
                pending = inflater.unused_data or inflater.unconsumed_tail
                offset += fed - len(pending)
        except zlib.error:
            yield start, None
            return
        if not inflater.eof:
            yield start, None
            return
        yield start, b"".join(out)


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
class WarcReader:
    """Yields every stored response of the files, counting what it skips (``skipped[reason]``)."""

    progress: Callable[[int], object] = lambda nbytes: None
    skipped: Counter[str] = field(default_factory=Counter)

    def responses(self, paths: Iterable[Path]) -> Iterator[StoredResponse]:
        for path in paths:
            yield from self._file(path)

    def _file(self, path: Path) -> Iterator[StoredResponse]:
        """The file's responses; a fetch counts once its request record (written last) is read."""
        pending: StoredResponse | None = None
        pending_id = ""
        read = 0
        with open(path, "rb") as handle:
            for offset, data in gzip_members(handle):
                self.progress(offset - read)
                read = offset
                if data is None:
                    self._skip("torn", path, offset, "cut short or corrupt (a worker killed while writing?)")
                    pending = None  # its fetch's records are not all there: not acknowledged either
                    break
                try:
                    record = parse_record(data)
                    kind = record.rec_type
                    concurrent_to = record.rec_headers.get_header("WARC-Concurrent-To")
                    if kind == "response":
                        pending = _response(record)
                        pending_id = record.rec_headers.get_header("WARC-Record-ID") or ""
                    elif kind == "revisit":
                        self.skipped["revisit"] += 1  # the payload is in an earlier record
                    elif pending is not None and concurrent_to == pending_id:
                        if kind == "metadata":
                            pending.context.update(_fields(record))
                        elif kind == "request":
                            yield pending
                            pending = None
                except Damaged as error:
                    self._skip("damaged", path, offset, str(error))
        self.progress(path.stat().st_size - read)
        if pending is not None:  # cut exactly after a member: the fetch is incomplete all the same
            self._skip("torn", path, read, "a response without its request record (the file ends)")

    def _skip(self, reason: str, path: Path, offset: int, why: str) -> None:
        self.skipped[reason] += 1
        logger.warning("WARC %s, record at offset %d skipped: %s", path, offset, why)
