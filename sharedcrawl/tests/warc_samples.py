"""WARC files made the way the recorder makes them (warcinfo, then per fetch: response or revisit,
metadata, request, each its own gzip member), without a crawl: for the reader's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scrapy import Request
from scrapy.http import HtmlResponse

from scrapy_sharedcrawl.warc import records

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    """A file's members (bytes), which fetch each belongs to (None: the warcinfo), and the URI of
    each fetch that gives a response (a revisit gives none)."""

    members: list[bytes]
    fetch_of: list[int | None]
    uris: list[str | None]

    @property
    def data(self) -> bytes:
        return b"".join(self.members)


def sample(fetches: int, revisit_every: int = 0) -> Sample:
    """``fetches`` story fetches; every ``revisit_every``-th repeats the first one's payload."""
    members = [records.serialize(records.warcinfo_record("sample.warc.gz", [("software", "tests")]))]
    fetch_of: list[int | None] = [None]
    uris: list[str | None] = []
    first: tuple[str, str, str] | None = None
    for index in range(fetches):
        sid = 80000 + index
        url = f"http://www.news.test/story?sid={sid}"
        request = Request(url, headers={"Referer": "http://www.news.test/"}, cb_kwargs={"n": index})
        revisit = bool(revisit_every) and index > 0 and index % revisit_every == 0
        body = b"<html>same</html>" if revisit or index == 0 else f"<html>{sid} {'x' * index}</html>".encode()
        response = HtmlResponse(url, body=body, headers={"Content-Type": "text/html"}, request=request)
        date = records.warc_date(START + timedelta(seconds=index))
        record = records.response_record(response, date)
        if revisit and first is not None:
            record = records.revisit_record(response, date, records.payload_digest(record), first)
            uris.append(None)
        else:
            uris.append(url)
        if index == 0:
            first = (url, date, records.record_id(record))
        response_id = records.record_id(record)
        context = records.crawl_context(request)
        fetch_members = [
            records.serialize(record),
            records.serialize(records.metadata_record(url, date, response_id, context)),
            records.serialize(records.request_record(request, date, response_id)),
        ]
        members += fetch_members
        fetch_of += [index] * len(fetch_members)
    return Sample(members, fetch_of, uris)
