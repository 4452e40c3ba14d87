"""Credentials never reach a WARC file: a proxy's password (Scrapy's own proxy middleware turns
``http_proxy=http://user:secret@proxy:3128`` into ``Proxy-Authorization: Basic …``), an
``Authorization`` header, a URL's ``user:password@``, and cookies unless asked for."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.warc.reader import WarcReader
from scrapy_sharedcrawl.warc.recorder import WarcRecorder

SECRET = "s3cret-proxy-pw"
TOKEN = "bearer-t0ken-xyz"
SESSION = "session-c00kie-abc"
SET_SESSION = "fresh-c00kie-def"
URL_PASSWORD = "url-pa55word"


def record_one_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> bytes:
    """One fetch, its request passed through Scrapy's proxy middleware, recorded; the file's bytes."""
    monkeypatch.setenv("http_proxy", f"http://crawler:{SECRET}@127.0.0.1:3128")
    crawler = get_crawler(settings_dict={"WARC_DIR": str(tmp_path / "warc"), **settings})
    proxy = HttpProxyMiddleware.from_crawler(crawler)
    recorder = WarcRecorder.from_crawler(crawler)
    request = Request(
        f"http://archivist:{URL_PASSWORD}@www.solidot.test/story?sid=80222",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": f"session={SESSION}",
            "Referer": f"http://archivist:{URL_PASSWORD}@www.solidot.test/",
        },
    )
    proxy.process_request(request)
    assert base64.b64encode(f"crawler:{SECRET}".encode()) in request.headers[b"Proxy-Authorization"]
    response = HtmlResponse(
        request.url,
        body=b"<html>story</html>",
        headers={
            "Set-Cookie": f"session={SET_SESSION}; HttpOnly",
            "Content-Type": "text/html",
            "Content-Location": f"http://archivist:{URL_PASSWORD}@www.solidot.test/story?sid=80222",
        },
        request=request,
    )
    recorder.process_response(request, response)
    recorder.spider_closed()
    (path,) = (tmp_path / "warc").iterdir()
    return gzip.decompress(path.read_bytes())


def secrets_in(data: bytes) -> set[str]:
    proxy_basic = base64.b64encode(f"crawler:{SECRET}".encode()).decode()
    candidates = [SECRET, proxy_basic, TOKEN, SESSION, SET_SESSION, URL_PASSWORD]
    return {secret for secret in candidates if secret.encode() in data}


def test_no_credential_reaches_the_warc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = record_one_fetch(tmp_path, monkeypatch)
    assert secrets_in(data) == set()
    # the headers stay, masked: a reader still sees that they were sent
    for line in (b"Proxy-Authorization: ***", b"Authorization: ***", b"Cookie: ***", b"Set-Cookie: ***"):
        assert line in data
    assert b"WARC-Target-URI: http://www.solidot.test/story?sid=80222\r\n" in data
    assert b"Host: www.solidot.test\r\n" in data
    assert b"via: http://www.solidot.test/\r\n" in data
    assert b"Referer: http://www.solidot.test/\r\n" in data


def test_cookies_are_kept_when_asked_for_credentials_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = record_one_fetch(tmp_path, monkeypatch, WARC_COOKIES=True)
    assert secrets_in(data) == {SESSION, SET_SESSION}


def test_the_masked_file_is_still_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_one_fetch(tmp_path, monkeypatch)
    reader = WarcReader()
    (stored,) = reader.responses(sorted((tmp_path / "warc").iterdir()))
    assert stored.uri == "http://www.solidot.test/story?sid=80222"
    assert stored.body == b"<html>story</html>" and ("Set-Cookie", "***") in stored.headers
    assert not reader.skipped
