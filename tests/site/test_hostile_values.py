"""Hostile input costs one story, never the worker: numbers BSON can't hold, nesting thousands deep.

Each bad story is a counted drop with its reason (``solidot/dropped/<reason>`` from the
spider, ``solidot/validate/dropped/<reason>`` from validate), or, where the crawler can
read it whole, the exact item.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Request
from scrapy.utils.test import get_crawler
from test_parsing import COMMENTS, story_page

from solidot_replica import FaultConfig, Replica, ReplicaConfig
from solidot_replica.faults import HOSTILE_KINDS
from solidot_replica.model import DroppedStory
from solidot_replica.pages import SitePages
from solidot_spider.crawl.pipelines.clean import CleanPipeline
from solidot_spider.crawl.pipelines.validate import ValidatePipeline, find_problem, unsafe_markup
from solidot_spider.site.items import Comment, Story, Topic
from solidot_spider.site.parsing import MalformedPage, parse_story
from solidot_spider.site.text import fragment_text
from solidot_spider.site.urls import SiteMap
from solidot_spider.spiders.solidot import SolidotSpider

BASE_URL = "http://www.solidot.test:8080"
SITE = SiteMap.from_base_url(BASE_URL)
FETCHED = "2026-11-25T04:00:00+00:00"
HUGE = 10**20
#: What BSON holds: signed 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def good_story(**changes: Any) -> Story:
    story = Story(
        sid=80222,
        url=f"{BASE_URL}/story?sid=80222",
        title="普京命令俄罗斯加强与中国在 AI 上的合作",
        author="Wilson",
        author_uid=42865,
        published_at="2025-01-03T14:01:00+08:00",
        topics=[Topic(tid=151, name="人工智能")],
        department="月海沉船",
        body_html="正文。",
        body_text="正文。",
        views=5581,
        comment_count=1,
        comments=[Comment(296690, None, "Craynic", 18046, "很正常", 1, "2026-07-27T13:22:00+08:00", "正文")],
        fetched_at=FETCHED,
    )
    return dataclasses.replace(story, **changes)


def with_comment(**changes: Any) -> Story:
    story = good_story()
    return dataclasses.replace(story, comments=[dataclasses.replace(story.comments[0], **changes)])


class Validator:
    def __init__(self) -> None:
        self.crawler = get_crawler(settings_dict={"SOLIDOT_BASE_URL": BASE_URL})
        self.pipeline = ValidatePipeline.from_crawler(self.crawler)

    def drop_reason(self, item: Any) -> str | None:
        try:
            self.pipeline.process_item(item)
        except DropItem as drop:
            return str(drop)
        return None

    def stats(self) -> dict[str, Any]:
        stats = self.crawler.stats.get_stats()
        return {k: v for k, v in stats.items() if k.startswith("solidot/")}


# -- validate: integers BSON can't hold ------------------------------------------------------


OUT_OF_RANGE = [
    ("sid", lambda n: good_story(sid=n, url=f"{BASE_URL}/story?sid={n}")),
    ("author_uid", lambda n: good_story(author_uid=n)),
    ("views", lambda n: good_story(views=n)),
    ("comment_count", lambda n: good_story(comment_count=n)),
    ("topics.tid", lambda n: good_story(topics=[Topic(151, "人工智能"), Topic(n, "x")])),
    ("comments.cid", lambda n: with_comment(cid=n)),
    ("comments.parent_cid", lambda n: with_comment(parent_cid=n)),
    ("comments.author_uid", lambda n: with_comment(author_uid=n)),
    ("comments.score", lambda n: with_comment(score=n)),
]


@pytest.mark.parametrize(("field", "make"), OUT_OF_RANGE, ids=[field for field, _ in OUT_OF_RANGE])
def test_validate_drops_every_integer_outside_64_bits_by_field(field: str, make: Any) -> None:
    validator = Validator()
    for value in (INT64_MAX + 1, HUGE, INT64_MIN - 1):
        reason = validator.drop_reason(make(value))
        assert reason is not None and f"int_out_of_range/{field} " in reason, reason
    assert validator.stats() == {f"solidot/validate/dropped/int_out_of_range/{field}": 3}
    # the limits themselves are fine (a negative one may break another rule: cid > 0…)
    assert validator.drop_reason(make(INT64_MAX)) is None
    reason = validator.drop_reason(make(INT64_MIN))
    assert reason is None if field == "comments.score" else "int_out_of_range" not in reason


def test_an_out_of_range_drop_is_logged_once_with_a_sample_sid(caplog: pytest.LogCaptureFixture) -> None:
    validator = Validator()
    with caplog.at_level(logging.WARNING):
        for sid in (80001, 80002, 80003):
            assert validator.drop_reason(good_story(sid=sid, url=f"{BASE_URL}/story?sid={sid}", views=HUGE))
    lines = [r.getMessage() for r in caplog.records if "int_out_of_range" in r.getMessage()]
    assert len(lines) == 1
    assert "sid=80001" in lines[0] and "views=100000000000000000000" in lines[0]
    assert "solidot/validate/dropped/int_out_of_range/views" in lines[0]


def test_integers_too_long_to_print_are_dropped_not_crashes() -> None:
    # str() refuses ints over 4,300 digits: neither the check nor the log line may call it
    validator = Validator()
    huge = 10**5000
    assert "int_out_of_range/sid " in (validator.drop_reason(good_story(sid=huge, url="x")) or "")
    assert "int_out_of_range/comments.score " in (validator.drop_reason(with_comment(score=-huge)) or "")
    problem = find_problem(good_story(views=huge), SITE)
    assert problem is not None and problem.reason == "int_out_of_range/views"


# -- validate and clean: markup deeper than lxml's default 256 levels -------------------------


def test_a_script_deep_in_a_body_is_still_found() -> None:
    # lxml's default parser stops reading at 256 nested elements: what follows went unchecked
    for depth in (300, 1200):
        body = "<div>" * depth + "x<script>alert(1)</script>" + "</div>" * depth
        assert unsafe_markup(body) == "<script> element"
        assert unsafe_markup("<div>" * depth + "x" + "</div>" * depth) is None


def test_a_body_deeper_than_lxml_reads_is_dropped_as_too_deep() -> None:
    body = "<span>" * 5000 + "x" + "</span>" * 5000
    problem = find_problem(good_story(body_html=body), SITE)
    assert problem is not None and problem.reason == "too_deep"
    validator = Validator()
    assert "too_deep" in (validator.drop_reason(good_story(body_html=body)) or "")
    assert validator.stats() == {"solidot/validate/dropped/too_deep": 1}


def test_fragment_text_reads_a_deep_body_to_its_end() -> None:
    body = "<div>" * 1200 + "深" + "</div>" * 1200 + "<p>后</p>"
    assert fragment_text(body) == "深\n\n后"


# -- the parser: nesting ----------------------------------------------------------------------


def parse(html: str, sid: int = 80222) -> Story:
    return parse_story(
        html,
        f"https://www.solidot.org/story?sid={sid}",
        SiteMap.from_base_url("https://www.solidot.org"),
        FETCHED,
    )


def nested_body(tag: str, depth: int) -> str:
    inner = '正文<a href="https://inline.example/a">链接</a>。<!--more--><br>https://ref.example/r'
    return f"<{tag}>" * depth + inner + f"</{tag}>" * depth + "<p>尾段</p>"


def comment_li(cid: int, replies: str) -> str:
    return (
        f'<li id="tree_{cid}"><div id="comment_{cid}" class="list_com">'
        f'<div class="ct_tittle"><div class="bg_htit"><h2>Re:第{cid}层(得分:1 )</h2></div></div>'
        f'<div class="talk_time"><a class="same_the" href="/~abc">abc</a>(7)'
        f"<span>发表于2026年07月27日 14时05分 星期一</span></div>"
        f'<div class="p_text">第{cid}层</div></div>{replies}</li>'
    )


def nested_thread(levels: int) -> str:
    """``levels`` comments, each replying to the one before (built inside out, no recursion)."""
    thread = ""
    for cid in range(levels, 0, -1):
        thread = f'<ul class="reply_ul">{comment_li(cid, thread)}</ul>'
    return (
        f'<!-- comments start --><div class="statement"><b>{levels}</b>条评论</div>'
        f'<div class="reply_list"><form id=form1 name=form1>{thread}</form></div><!-- comments end -->'
    )


@pytest.mark.parametrize("tag", ["div", "span", "b", "blockquote"])
def test_a_body_nested_1200_tags_deep_parses_whole(tag: str) -> None:
    story = parse(story_page(body=nested_body(tag, 1200)))
    assert story.body_text == "正文链接。\nhttps://ref.example/r\n\n尾段"
    assert story.references == ["https://ref.example/r"]
    assert story.body_html.count(f"<{tag}>") == 1200 and story.body_html.endswith("<p>尾段</p>")
    assert story.comments == [] and story.views == 5581  # the page after the body was read too


@pytest.mark.parametrize("tag", ["div", "span", "b", "blockquote"])
def test_a_body_nested_5000_tags_deep_is_dropped_as_too_deep(tag: str) -> None:
    # libxml2 stops reading 2,048 elements deep: the rest of the page (comments…) would be missing
    with pytest.raises(MalformedPage) as dropped:
        parse(story_page(body=nested_body(tag, 5000), comments=COMMENTS))
    assert dropped.value.reason == "too_deep"


def test_a_comment_thread_1000_replies_deep_parses_whole() -> None:
    story = parse(story_page(comments=nested_thread(1000)))
    assert story.comment_count == len(story.comments) == 1000
    assert [c.cid for c in story.comments] == list(range(1, 1001))
    assert [c.parent_cid for c in story.comments] == [None, *range(1, 1000)]
    assert story.comments[-1].text == "第1000层" and story.comments[-1].title == "Re:第1000层"


@pytest.mark.parametrize("levels", [1200, 5000])
def test_a_comment_thread_deeper_than_lxml_reads_is_dropped_as_too_deep(levels: int) -> None:
    with pytest.raises(MalformedPage) as dropped:
        parse(story_page(comments=nested_thread(levels)))
    assert dropped.value.reason == "too_deep"


def test_the_spider_counts_a_too_deep_page_as_a_drop(caplog: pytest.LogCaptureFixture) -> None:
    crawler = get_crawler(SolidotSpider, {"SOLIDOT_BASE_URL": "https://www.solidot.org"})
    spider = SolidotSpider.from_crawler(crawler, sids="80222")
    deep = story_page(body=nested_body("div", 5000)).encode()
    good = story_page(body=nested_body("div", 1200)).encode()
    items = []
    with caplog.at_level(logging.WARNING):
        for sid, body in ((80222, deep), (80223, deep), (80224, good)):
            url = f"https://www.solidot.org/story?sid={sid}"
            response = HtmlResponse(url, body=body, encoding="utf-8", request=Request(url))
            items += list(spider.parse_story(response, categories=[]))
    assert [item.sid for item in items] == [80224]
    stats = crawler.stats.get_stats()
    assert stats["solidot/dropped/too_deep"] == 2 and stats["solidot/stories"] == 1
    assert sum("Dropped a page (too_deep)" in r.getMessage() for r in caplog.records) == 1


# -- the parser: numbers and other hostile values ----------------------------------------------


def test_numbers_past_64_bits_are_read_exactly_for_validate_to_drop() -> None:
    page = story_page(comments=COMMENTS.replace("296690", str(HUGE)).replace("(18046)", f"({HUGE})"))
    page = page.replace("本文已被查看 5581 次", f"本文已被查看 {HUGE} 次").replace("tid=151", f"tid={HUGE}")
    story = parse(page)
    assert story.views == HUGE and story.topics[0].tid == HUGE
    assert story.comments[0].cid == story.comments[1].parent_cid == story.comments[0].author_uid == HUGE
    problem = find_problem(story, SiteMap.from_base_url("https://www.solidot.org"))
    assert problem is not None and problem.reason.startswith("int_out_of_range/")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("本文已被查看 5581 次", "本文已被查看 {n} 次", "views"),
        ("(42865)", "({n})", "author_uid"),
        ("tid=151", "tid={n}", "topics.tid"),
        ("<b>2</b>条评论", "<b>{n}</b>条评论", "comment_count"),
        ('id="comment_296690"', 'id="comment_{n}"', "comments.cid"),
        ("(18046)", "({n})", "comments.author_uid"),
        ("很正常(得分:1 )", "很正常(得分:-{n} )", "comments.score"),
    ],
)
def test_a_number_too_long_to_be_one_is_a_drop_not_a_crash(old: str, new: str, field: str) -> None:
    # int() refuses more than 4,300 digits (ValueError): such a page is dropped with its reason
    page = story_page(comments=COMMENTS)
    assert old in page
    with pytest.raises(MalformedPage) as dropped:
        parse(page.replace(old, new.format(n="7" * 5000), 1))
    assert dropped.value.reason == f"int_out_of_range/{field}"
    # leading zeros don't make a number long
    assert parse(page.replace(old, new.format(n="0" * 5000 + "42"), 1))


def test_a_comment_count_of_digits_int_refuses_falls_back_to_the_parsed_count() -> None:
    story = parse(story_page(comments=COMMENTS.replace("<b>2</b>", "<b>²</b>")))
    assert story.comment_count == 2


def test_json_ld_nested_thousands_deep_is_no_time_not_a_crash() -> None:
    page = story_page().replace("发表于 2025年01月03日 14时01分", "")
    page = page.replace('{"title": "x", "pubDate": "2025-01-03T14:01:00"}', "[" * 100_000)
    with pytest.raises(MalformedPage) as dropped:
        parse(page)
    assert dropped.value.reason == "missing_time"


def test_a_json_ld_time_out_of_datetime_range_is_no_time() -> None:
    page = story_page().replace("发表于 2025年01月03日 14时01分", "")
    with pytest.raises(MalformedPage):
        parse(page.replace("2025-01-03T14:01:00", "0001-01-01T00:00:00+09:00"))


def test_links_urllib_refuses_are_skipped() -> None:
    body = '正文<a href="http://[broken/">坏</a><a href="https://ok.example/">好</a>'
    story = parse(story_page(body=body))
    assert story.references == ["https://ok.example/"]


# -- the replica's hostile pages, through parse → clean → validate -----------------------------


def test_every_hostile_kind_of_the_replica_ends_as_its_truth_says() -> None:
    model = Replica(ReplicaConfig(stories=300, last_sid=80300, faults=FaultConfig.parse("hostile=3")))
    pages = SitePages(model)
    clean = CleanPipeline(get_crawler(settings_dict={"SOLIDOT_BASE_URL": BASE_URL}))
    seen: set[str] = set()
    for sid, kind in model.hostile_sids().items():
        if kind in seen:
            continue
        seen.add(kind)
        html = pages.answer("www.solidot.test:8080", "/story", (("sid", str(sid)),)).body.decode()
        try:
            truth: dict[str, Any] | DroppedStory = model.truth(sid, BASE_URL)
        except DroppedStory as dropped:
            truth = dropped
        try:
            story = parse_story(html, f"{BASE_URL}/story?sid={sid}", SITE, FETCHED)
        except MalformedPage as error:
            assert isinstance(truth, DroppedStory) and truth.stat == f"solidot/dropped/{error.reason}", kind
            continue
        story.categories = [model.story(sid).category] if model.story(sid).category else []
        clean.process_item(story)
        problem = find_problem(story, SITE)
        if isinstance(truth, DroppedStory):
            assert problem is not None and truth.stat == f"solidot/validate/dropped/{problem.reason}", kind
        else:
            assert problem is None, (kind, problem)
            item = ItemAdapter(story).asdict()
            assert {k: item[k] for k in truth} == truth, kind
    assert seen == set(HOSTILE_KINDS)
