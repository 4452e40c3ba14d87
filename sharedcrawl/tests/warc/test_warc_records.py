"""The recorder's own record building gives, byte for byte, what warcio's ``create_warc_record`` gives
(it only computes both digests in one pass), and its base32 digests are ``base64.b32encode``'s."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.http import HtmlResponse
from warcio.statusandheaders import StatusAndHeadersParser

from scrapy_sharedcrawl.warc import records

DATE = "2026-12-01T10:00:00.123456Z"


@given(st.binary(max_size=300))
@settings(max_examples=200, derandomize=True)
def test_the_digest_text_is_warcios(data: bytes) -> None:
    expected = "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()
    assert records.sha1_digest(data) == expected


def warcio_built(
    uri: str,
    record_type: str,
    payload: bytes,
    headers: dict[str, str],
    http: Any,
    extra: list[tuple[str, str]],
) -> bytes:
    """The record as warcio's builder makes it (the recorder's code before it built records itself)."""
    record = records._BUILDER.create_warc_record(
        uri,
        record_type,
        payload=io.BytesIO(payload),
        length=len(payload),
        http_headers=http,
        warc_headers_dict=dict(headers),
    )
    for name, value in extra:
        record.rec_headers.add_header(name, value)
    return records._BUILDER.serialize(record)


@pytest.mark.parametrize("body", [b"", b"<html>\xe4\xb8\xad</html>", b"x" * 70_000])
def test_records_are_byte_for_byte_warcios(monkeypatch: pytest.MonkeyPatch, body: bytes) -> None:
    monkeypatch.setattr(StatusAndHeadersParser, "make_warc_id", staticmethod(lambda: "<urn:uuid:fixed>"))
    request = Request(
        "http://www.solidot.test/story?sid=80222",
        headers={"User-Agent": "solidot-crawler", "Referer": "http://www.solidot.test/"},
        cb_kwargs={"categories": ["linux"]},
    )
    response = HtmlResponse(
        request.url,
        body=body,
        headers={"Content-Type": "text/html; charset=utf-8", "Transfer-Encoding": "chunked"},
        request=request,
    )
    common = records._common(response.url, DATE, response)
    ours = records._BUILDER.serialize(records.response_record(response, DATE))
    assert ours == warcio_built(
        response.url, "response", body, common, records.response_headers(response), []
    )
    concurrent = [("WARC-Concurrent-To", "<urn:uuid:fixed>")]
    ours = records._BUILDER.serialize(records.request_record(request, DATE, "<urn:uuid:fixed>"))
    expected = warcio_built(
        request.url,
        "request",
        b"",
        records._common(request.url, DATE),
        records.request_headers(request),
        concurrent,
    )
    assert ours == expected
    fields = records.crawl_context(request)
    ours = records._BUILDER.serialize(records.metadata_record(request.url, DATE, "<urn:uuid:fixed>", fields))
    payload = records.fields_payload(fields)
    assert ours == warcio_built(
        request.url, "metadata", payload, records._common(request.url, DATE), None, concurrent
    )
