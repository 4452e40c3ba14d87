"""Fuzzing the story parser over mutated real pages: hostile input costs one story, never the worker.

The pages are the replica's (sid 80222 is the saved real page; a few generated ones add
comment threads and the older eras' markup), mutated by byte flips, truncations,
duplicated and removed tags, huge numbers, deep nesting, hostile snippets and odd
encodings. The property is the crawler's contract for a story page:

* :func:`parse_story` raises nothing but :class:`MalformedPage` (the spider's counted drop);
* every item it returns, cleaned as the clean pipeline does, passes validate's
  :func:`find_problem` — except for the numbers BSON can't hold, which validate must drop
  as ``int_out_of_range/<field>`` (and only when the mutations put one there).

Deterministic for CI: derandomized, no example database, bounded in examples.
``FUZZ_EXAMPLES=5000`` runs a longer campaign locally, ``FUZZ_SEED=N`` another one
(random, from that seed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from scrapy.utils.test import get_crawler

from solidot_replica import Replica, ReplicaConfig
from solidot_replica.pages import SitePages
from solidot_spider.crawl.pipelines.clean import CleanPipeline
from solidot_spider.crawl.pipelines.validate import find_problem
from solidot_spider.site.parsing import MalformedPage, parse_story
from solidot_spider.site.urls import SiteMap

BASE_URL = "http://www.solidot.test:8080"
SITE = SiteMap.from_base_url(BASE_URL)
FETCHED = "2026-11-25T04:00:00+00:00"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SEED = os.environ.get("FUZZ_SEED")

_TAG_RE = re.compile(rb"<[^<>]{1,200}>")
_NUMBER_RE = re.compile(rb"\d+")
#: The numbers the item holds: views, uids, tids, the comment count, cids, scores.
_ITEM_NUMBER_RE = re.compile(
    "|".join(
        [
            r"本文已被查看 (\d+) 次",
            r"\((\d+)\)",
            r"tid=(\d+)",
            r"<b>(\d+)</b>条评论",
            r'id="(?:comment|tree)_(\d+)"',
            r"得分:(-?\d+)",
        ]
    ).encode()
)
HUGE_NUMBERS = (
    b"100000000000000000000",  # 10^20
    b"9223372036854775808",  # 2^63
    b"9223372036854775807",  # 2^63 - 1: still fine
    b"-9223372036854775809",
    b"9" * 5000,  # longer than int() reads
    b"0" * 5000 + b"7",  # long, but a small number
)
SNIPPETS = (
    b'<a href="http://[broken/">x</a>',
    b'<a href=" JaVa\tScRiPt:alert(1)">x</a>',
    b'<img src="x" onerror="alert(1)"><svg onload="alert(2)"></svg><script>alert(3)</script>',
    b'<script type="application/ld+json">' + b"[" * 50_000 + b"</script>",
    b'<script type="application/ld+json">{"pubDate": "0001-01-01T00:00:00+09:00"}</script>',
    b"<!--more-->",
    b"<!--",
    b"<![CDATA[",
    b"<b>\xc2\xb2</b>",  # "²": a digit int() refuses
    b"\x00\x01\x1b\x7f",
    b"\xef\xbb\xbf",  # a BOM
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"&#0;&#xD800;&#x110000;&amp;&lt;script&gt;",
    b'<?xml version="1.0"?>',
    b"<html><body>",
    b"</div></div></div></body></html>",
    b"\xe3\x80\x80\xe2\x80\x8b\xc2\xa0",  # ideographic space, zero-width space, nbsp
)
DEPTHS = (300, 1200, 2100, 5000)
THREAD_LEVELS = (2, 300, 1000, 1200)
NEST_TAGS = (b"div", b"span", b"b", b"blockquote", b"ul", b"li", b"table", b"a")
ENCODINGS = ("utf-8", "utf-8", "utf-8", "latin-1", "cp1252", "gb18030", "utf-16", "shift_jis")


@dataclass(frozen=True)
class Page:
    sid: int
    body: bytes


@cache
def real_pages() -> tuple[Page, ...]:
    """sid 80222 (the saved real page) and generated pages with comments, of every era."""
    replica = Replica(ReplicaConfig(stories=300, last_sid=80300))
    pages = SitePages(replica)
    sids = [80222]
    with_replies = [s for s in replica.sids() if any(c.parent_cid for c in replica.story(s).comments)]
    sids += with_replies[:2]
    sids += [s for s in replica.sids() if replica.story(s).comments and s not in sids][:1]
    old = Replica(ReplicaConfig(stories=300, last_sid=60000))  # era A (2021): inline links, scripts
    answers = [(pages, sid) for sid in sids] + [(SitePages(old), old.sids()[5])]
    out = []
    for site_pages, sid in answers:
        page = site_pages.answer("www.solidot.test:8080", "/story", (("sid", str(sid)),))
        assert page.status == 200
        out.append(Page(sid, page.body))
    return tuple(out)


def nested_thread(levels: int) -> bytes:
    """``levels`` comments, each replying to the one before (built inside out)."""
    thread = b""
    for cid in range(levels, 0, -1):
        thread = (
            (
                f'<ul class="reply_ul"><li id="tree_{cid}"><div id="comment_{cid}" class="list_com">'
                f'<div class="ct_tittle"><div class="bg_htit"><h2>Re:{cid}(得分:1 )</h2></div></div>'
                f'<div class="talk_time"><a class="same_the" href="/~abc">abc</a>(7)'
                f"<span>发表于2026年07月27日 14时05分 星期一</span></div>"
                f'<div class="p_text">第{cid}层</div></div>'
            ).encode()
            + thread
            + b"</li></ul>"
        )
    return thread


@st.composite
def mutation(draw: st.DrawFn, body: bytes) -> tuple[str, bytes]:
    """One mutation of ``body``: (its kind, the new body)."""
    kind = draw(
        st.sampled_from(
            [
                *("flip", "truncate", "dup_tag", "drop_tag", "huge_number", "deep", "deep_thread"),
                *("snippet", "splice", "repeat"),
            ]
        )
    )
    size = len(body)
    if not size:
        return kind, draw(st.sampled_from(SNIPPETS)) if kind == "snippet" else body
    if kind == "flip":
        at = draw(st.integers(0, size - 1))
        return kind, body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    if kind == "truncate":
        return kind, body[: draw(st.integers(0, size))]
    if kind in ("dup_tag", "drop_tag"):
        tags = list(_TAG_RE.finditer(body))
        if not tags:
            return kind, body
        tag = tags[draw(st.integers(0, len(tags) - 1))]
        copy = tag.group() * draw(st.integers(2, 3)) if kind == "dup_tag" else b""
        return kind, body[: tag.start()] + copy + body[tag.end() :]
    if kind == "huge_number":  # mostly one the item holds, else any run of digits
        targeted = draw(st.integers(0, 3)) > 0
        numbers = [m.span(m.lastindex or 0) for m in _ITEM_NUMBER_RE.finditer(body)] if targeted else []
        numbers = numbers or [m.span() for m in _NUMBER_RE.finditer(body)]
        if not numbers:
            return kind, body
        start, end = numbers[draw(st.integers(0, len(numbers) - 1))]
        return kind, body[:start] + draw(st.sampled_from(HUGE_NUMBERS)) + body[end:]
    if kind == "deep_thread":  # replies nested deep, where the thread starts if there is one
        form = body.find(b"<form id=form1 name=form1>")
        at = form + len(b"<form id=form1 name=form1>") if form >= 0 else draw(st.integers(0, size))
        return kind, body[:at] + nested_thread(draw(st.sampled_from(THREAD_LEVELS))) + body[at:]
    if kind == "deep":
        at = draw(st.integers(0, size))
        tag, depth = draw(st.sampled_from(NEST_TAGS)), draw(st.sampled_from(DEPTHS))
        closed = draw(st.booleans())
        nest = b"<" + tag + b">"
        nest = nest * depth + b"x" + (b"</" + tag + b">") * depth if closed else nest * depth
        return kind, body[:at] + nest + body[at:]
    if kind == "snippet":
        at = draw(st.integers(0, size))
        return kind, body[:at] + draw(st.sampled_from(SNIPPETS)) + body[at:]
    if kind == "splice":  # a slice of the page pasted elsewhere (duplicated blocks, bylines…)
        start = draw(st.integers(0, size - 1))
        piece = body[start : start + draw(st.integers(1, 4000))]
        at = draw(st.integers(0, size))
        return kind, body[:at] + piece + body[at:]
    start = draw(st.integers(0, size - 1))  # repeat: a slice removed
    return kind, body[:start] + body[start + draw(st.integers(1, 2000)) :]


@st.composite
def hostile_page(draw: st.DrawFn) -> tuple[Page, str, list[str]]:
    """A real page, mutated 1–4 times, then decoded as some encoding would: (page, text, mutations)."""
    page = draw(st.sampled_from(real_pages()))
    body, kinds = page.body, []
    for _ in range(draw(st.integers(1, 4))):
        kind, body = draw(mutation(body))
        kinds.append(kind)
    encoding = draw(st.sampled_from(ENCODINGS))
    errors = draw(st.sampled_from(["replace", "surrogateescape"])) if encoding == "utf-8" else "replace"
    return page, body.decode(encoding, errors), [*kinds, encoding]


CLEAN = CleanPipeline(get_crawler(settings_dict={"SOLIDOT_BASE_URL": BASE_URL}))


def check(page: Page, text: str, mutations: list[str]) -> None:
    url = f"{BASE_URL}/story?sid={page.sid}"
    try:
        story = parse_story(text, url, SITE, FETCHED)
    except MalformedPage as dropped:
        event(f"dropped by the parser: {dropped.reason}")
        return  # the spider counts it in solidot/dropped/<reason>
    CLEAN.process_item(story)
    problem = find_problem(story, SITE)
    if problem is not None and problem.reason.startswith("int_out_of_range/"):
        event(f"dropped by validate: {problem.reason}")
        assert "huge_number" in mutations, (problem, mutations)
        return
    assert problem is None, (problem, mutations)
    event(f"a valid item ({len(story.comments)} comments)" if story.comments else "a valid item")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@seed(int(SEED or 0))
@given(hostile_page())
def test_parsing_a_mutated_page_yields_a_valid_item_or_a_counted_drop(
    case: tuple[Page, str, list[str]],
) -> None:
    check(*case)


@pytest.mark.parametrize("page", real_pages(), ids=lambda page: str(page.sid))
def test_the_unmutated_pages_parse_into_valid_items(page: Page) -> None:
    story = parse_story(page.body.decode(), f"{BASE_URL}/story?sid={page.sid}", SITE, FETCHED)
    CLEAN.process_item(story)
    assert find_problem(story, SITE) is None
