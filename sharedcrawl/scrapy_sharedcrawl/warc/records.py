"""A Scrapy request and its response as WARC/1.1 records, each its own gzip member.

The records rebuild the HTTP messages as they crossed the wire, keep what the crawl knew of the
fetch in a ``metadata`` record (:func:`crawl_context`), and never hold a credential.

Design notes: docs/framework-design.md#warc-records.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapy import Request
from scrapy.http import Response
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

WARC_VERSION = "WARC/1.1"
#: zlib level 1: about half the CPU of level 6 or warcio's 9 (0.4 vs 0.75 ms a news page), ≈ 3 % more bytes.
GZIP_LEVEL = 1
#: Hop-by-hop framing that no longer describes the stored body.
_DROPPED_RESPONSE_HEADERS = frozenset({b"transfer-encoding"})

#: Headers that carry credentials: their values are never stored.
CREDENTIAL_HEADERS = frozenset({b"authorization", b"proxy-authorization"})
#: Cookies: stored only when asked for (``WARC_COOKIES``).
COOKIE_HEADERS = frozenset({b"cookie", b"set-cookie", b"set-cookie2"})
#: What a record masks unless told otherwise.
MASKED_HEADERS = CREDENTIAL_HEADERS | COOKIE_HEADERS
MASK = "***"
#: Headers whose value is a URL: stored without its userinfo.
_URL_HEADERS = frozenset({b"referer", b"location", b"content-location"})

#: Fields of a metadata record (warc-fields), read back by :mod:`.reader`.
VIA, CALLBACK, CB_KWARGS = "via", "scrapy-callback", "scrapy-cb-kwargs"


class _Writer(WARCWriter):
    """warcio's writer into a buffer, one record at a time, uncompressed (we gzip each member)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), gzip=False, warc_version=WARC_VERSION)

    def serialize(self, record: ArcWarcRecord) -> bytes:
        out = io.BytesIO()
        self._write_warc_record(out, record)
        return out.getvalue()


_BUILDER = _Writer()
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def sha1_digest(data: bytes) -> str:
    """``sha1:<base32>``, as warcio writes a digest (``base64.b32encode`` is pure Python: 8 µs a
    call, twice per record; this is the same text for a 160-bit digest in about a third of it)."""
    number = int.from_bytes(hashlib.sha1(data).digest(), "big")
    return "sha1:" + "".join([_B32[(number >> shift) & 31] for shift in range(155, -1, -5)])


def build(
    uri: str,
    record_type: str,
    payload: bytes,
    warc_headers: dict[str, str],
    http_headers: StatusAndHeaders | None = None,
    after_payload_digest: Iterable[tuple[str, str]] = (),
) -> ArcWarcRecord:
    """The record warcio's ``create_warc_record`` builds (same headers, same order), with both digests
    computed here in one pass over the payload: warcio's builder reads the payload twice through
    its stream digesters, a third of the recorder's time. warcio still writes it."""
    block = b""
    if http_headers is not None:
        block = http_headers.compute_headers_buffer(None) or http_headers.headers_buff
    lines = [
        *warc_headers.items(),
        ("WARC-Type", record_type),
        ("WARC-Record-ID", StatusAndHeadersParser.make_warc_id()),
        ("WARC-Payload-Digest", sha1_digest(payload)),
        *after_payload_digest,
        ("WARC-Block-Digest", sha1_digest(block + payload) if block else ""),
    ]
    if not block:  # no HTTP headers: the block is the payload
        lines[-1] = ("WARC-Block-Digest", lines[len(warc_headers) + 2][1])
    headers = StatusAndHeaders("", lines, protocol=WARC_VERSION)
    content_type = _BUILDER.WARC_RECORDS.get(record_type, "application/warc-record")
    record = ArcWarcRecord(
        "warc", record_type, headers, io.BytesIO(payload), http_headers, content_type, len(payload)
    )
    record.payload_length = len(payload)
    return record


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` as one complete gzip member: members concatenate into a valid ``.warc.gz``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


def serialize(record: ArcWarcRecord, level: int = GZIP_LEVEL) -> bytes:
    """``record`` as a gzip member (its digests and Content-Length computed by warcio)."""
    return gzip_member(_BUILDER.serialize(record), level)


def warc_date(moment: datetime) -> str:
    """WARC/1.1's date, with microseconds: ``2026-11-10T12:00:00.123456Z``."""
    return str(datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True))


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _header_lines(
    headers: Any, dropped: frozenset[bytes] = frozenset(), masked: frozenset[bytes] = MASKED_HEADERS
) -> list[tuple[str, str]]:
    lines = []
    for name, values in headers.items():
        lowered = name.lower()
        if lowered in dropped:
            continue
        for value in values:
            text = MASK if lowered in masked else _text(value)
            lines.append((_text(name), without_userinfo(text) if lowered in _URL_HEADERS else text))
    return lines


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (kept as it is otherwise, even if it does not parse)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def request_headers(request: Request, masked: frozenset[bytes] = MASKED_HEADERS) -> StatusAndHeaders:
    """The HTTP/1.1 request line and headers as sent (Twisted adds ``Host``; Scrapy the rest), with
    the values of ``masked`` headers hidden."""
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [("Host", parts.netloc.rpartition("@")[2]), *_header_lines(request.headers, masked=masked)]
    return StatusAndHeaders(f"{request.method} {target} HTTP/1.1", lines, is_http_request=True)


def response_headers(response: Response, masked: frozenset[bytes] = MASKED_HEADERS) -> StatusAndHeaders:
    """The status line and headers as received (``Transfer-Encoding`` dropped: the body is de-chunked;
    the values of ``masked`` headers hidden)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    protocol = response.protocol or "HTTP/1.1"
    lines = _header_lines(response.headers, _DROPPED_RESPONSE_HEADERS, masked)
    return StatusAndHeaders(f"{response.status} {reason}".strip(), lines, protocol=protocol)


def _common(uri: str, date: str, response: Response | None = None) -> dict[str, str]:
    headers = {"WARC-Target-URI": without_userinfo(uri), "WARC-Date": date}
    if response is not None and response.ip_address is not None:
        headers["WARC-IP-Address"] = str(response.ip_address)
    return headers


def response_record(
    response: Response, date: str, masked: frozenset[bytes] = MASKED_HEADERS
) -> ArcWarcRecord:
    return build(
        without_userinfo(response.url),
        "response",
        response.body,
        _common(response.url, date, response),
        response_headers(response, masked),
    )


def revisit_record(
    response: Response,
    date: str,
    digest: str,
    refers_to: tuple[str, str, str],
    masked: frozenset[bytes] = MASKED_HEADERS,
) -> ArcWarcRecord:
    """A fetch whose payload is identical to an earlier one (``refers_to``: its URI, date, record id)."""
    uri, refers_date, record_id = refers_to
    record = _BUILDER.create_revisit_record(
        without_userinfo(response.url),
        digest,
        uri,
        refers_date,
        http_headers=response_headers(response, masked),
        warc_headers_dict=_common(response.url, date, response),
    )
    record.rec_headers.add_header("WARC-Refers-To", record_id)
    return record


def request_record(
    request: Request, date: str, concurrent_to: str, masked: frozenset[bytes] = MASKED_HEADERS
) -> ArcWarcRecord:
    concurrent = [("WARC-Concurrent-To", concurrent_to)]
    return build(
        without_userinfo(request.url),
        "request",
        request.body or b"",
        _common(request.url, date),
        request_headers(request, masked),
        concurrent,
    )


def fields_payload(fields: Iterable[tuple[str, str]]) -> bytes:
    """``application/warc-fields``: ``name: value`` lines (values on one line)."""
    return "".join(f"{name}: {' '.join(value.split())}\r\n" for name, value in fields).encode("utf-8")


def crawl_context(request: Request) -> list[tuple[str, str]]:
    """What the crawl knew of this fetch besides its URL (empty: no metadata record is needed)."""
    fields: list[tuple[str, str]] = []
    referer = request.headers.get(b"Referer")
    if referer:
        fields.append((VIA, without_userinfo(_text(referer))))
    callback = getattr(request.callback, "__name__", None)
    if callback:
        fields.append((CALLBACK, str(callback)))
    if request.cb_kwargs:
        with contextlib.suppress(TypeError, ValueError):  # not JSON: a replay can't use it anyway
            fields.append((CB_KWARGS, json.dumps(request.cb_kwargs, ensure_ascii=False, sort_keys=True)))
    return fields


def metadata_record(uri: str, date: str, concurrent_to: str, fields: list[tuple[str, str]]) -> ArcWarcRecord:
    concurrent = [("WARC-Concurrent-To", concurrent_to)]
    return build(uri, "metadata", fields_payload(fields), _common(uri, date), None, concurrent)


def warcinfo_record(filename: str, fields: list[tuple[str, str]]) -> ArcWarcRecord:
    """The first record of every file: who wrote it, how (settings without credentials)."""
    payload = fields_payload(fields)
    return _BUILDER.create_warc_record(
        "",
        "warcinfo",
        payload=io.BytesIO(payload),
        length=len(payload),
        warc_headers_dict={"WARC-Filename": filename, "WARC-Date": warc_date(datetime.now(UTC))},
    )


def record_id(record: ArcWarcRecord) -> str:
    return str(record.rec_headers.get_header("WARC-Record-ID"))


def payload_digest(record: ArcWarcRecord) -> str:
    return str(record.rec_headers.get_header("WARC-Payload-Digest"))
