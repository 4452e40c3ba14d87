"""Parsing is pure: real-markup snippets (shared/solidot-site.md §3–§5) in, items out."""

from __future__ import annotations

import pytest

from solidot_spider.site.parsing import (
    MalformedPage,
    is_truncated,
    parse_list_page,
    parse_rss,
    parse_story,
)
from solidot_spider.site.urls import SiteMap

SITE = SiteMap.from_base_url("https://www.solidot.org")
FETCHED = "2026-11-24T00:00:00+00:00"

COMMENTS = """<!-- comments start -->
<div class="statement"><a href="/story?sid=84911">标题</a> | <b>2</b>条评论</div>
<div class="reply_list"><form id=form1 name=form1><ul class="reply_ul">
<li id="tree_296690"><div id="comment_296690" class="list_com">
<div class="ct_tittle smallct_tit"><div class="mid_bgtittle"></div><div class="bg_htit"><h2>很正常(得分:1 )</h2></div></div>
<div class="talk_time"><a class="same_the" href="/~Craynic">Craynic</a>(18046)
<span class="expression">…</span><span>发表于2026年07月27日 13时22分 星期一</span></div>
<div class="p_text"> 没有沟通需要的语言就会慢慢消亡 </div>
<div class="reply_chice">[ <a href="/comments/?sid=84911&op=reply&type=story&pid=296690">回复本条</a> ]</div>
</div>
<ul class="reply_ul"><li id="tree_296701"><div id="comment_296701" class="list_com">
<div class="ct_tittle smallct_tit"><div class="bg_htit"><h2>Re:很正常(得分:-1 )</h2></div></div>
<div class="talk_time"><a class="same_the" href="/~abc">abc</a>(7)<span>发表于2026年07月27日 14时05分 星期一</span></div>
<div class="p_text">第一行<br>第二行</div></div></li></ul>
</li></ul></form></div>
<!-- comments end -->"""


def story_page(
    title: str = "普京命令俄罗斯加强与中国在 AI 上的合作",
    byline_extra: str = "<b>来自月海沉船</b>",
    body: str = "正文。<!--more--><br>https://www.reuters.com/x",
    comments: str = "<!-- comments start -->\n<!-- comments end -->",
    title_block: str | None = None,
) -> str:
    heading = (
        title_block
        if title_block is not None
        else f'<div class="ct_tittle"><div class="bg_htit"><h2>{title}</h2></div></div>'
    )
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<script type="application/ld+json">{{"title": "x", "pubDate": "2025-01-03T14:01:00"}}</script></head><body>
<div class="block_r"><div class="ct_tittle"><div class="bg_htit"><h2>消息</h2></div></div>
<div class="content"><b>本文已被查看 5581 次</b></div></div>
<div id="center"><div class="block_m">{heading}
<div class="talk_time"><div class="icon_float"><a href="/search?tid=151" title="人工智能"><img src="i.png"></a>
<a href="/search?tid=171" title="Android "><img src="a.png"></a></div>
<a href="/~Wilson">Wilson</a> (42865)发表于 2025年01月03日 14时01分 星期五
<a href="//service.weibo.com/share/share.php?url=x">新浪微博分享</a> {byline_extra}</div>
<div class="p_mainnew">{body}</div></div>
{comments}
</div><div id="footer"><p class="famous">如果我们过于爽快地承认失败</p>
<a href="/?issume=20251005">往日文章</a></div></body></html>"""


def parse(html: str, sid: int = 80222):
    return parse_story(html, f"https://linux.solidot.org/story?sid={sid}", SITE, FETCHED)


def test_story_fields_from_real_markup() -> None:
    story = parse(story_page())
    assert story.url == "https://www.solidot.org/story?sid=80222"  # canonical on www
    assert (story.title, story.author, story.author_uid) == (
        "普京命令俄罗斯加强与中国在 AI 上的合作",
        "Wilson",
        42865,
    )
    assert story.published_at == "2025-01-03T14:01:00+08:00"
    assert [(t.tid, t.name) for t in story.topics] == [(151, "人工智能"), (171, "Android")]
    assert story.department == "月海沉船"
    assert story.views == 5581
    assert story.references == ["https://www.reuters.com/x"]
    assert story.body_text == "正文。\nhttps://www.reuters.com/x"
    assert (story.comment_count, story.comments) == (0, [])


@pytest.mark.parametrize(
    ("byline_extra", "department"),
    [("<b>来自月海沉船</b>", "月海沉船"), ("<b>来自人人都爱部门</b>", "人人都爱"), ("", None)],
)
def test_department_with_or_without_bumen_or_absent(byline_extra: str, department: str | None) -> None:
    assert parse(story_page(byline_extra=byline_extra)).department == department


def test_comments_nest_and_are_scoped_away_from_the_story() -> None:
    story = parse(story_page(comments=COMMENTS))
    assert story.title == "普京命令俄罗斯加强与中国在 AI 上的合作"  # not a comment's h2
    assert story.author == "Wilson"
    assert story.comment_count == 2
    first, reply = story.comments
    assert (first.cid, first.parent_cid, first.author, first.author_uid) == (296690, None, "Craynic", 18046)
    assert (first.title, first.score) == ("很正常", 1)
    assert first.published_at == "2026-07-27T13:22:00+08:00"
    assert first.text == "没有沟通需要的语言就会慢慢消亡"
    assert (reply.cid, reply.parent_cid, reply.title, reply.score) == (296701, 296690, "Re:很正常", -1)
    assert reply.text == "第一行\n第二行"


def test_titles_are_entity_decoded_and_whitespace_normalized() -> None:
    story = parse(story_page(title="\n  AMD &amp;quot;Zen 6&amp;quot;\u3000 &lt;发布&gt;  "))
    assert story.title == 'AMD "Zen 6" <发布>'


def test_2021_inline_links_are_references_and_scripts_are_sanitized() -> None:
    body = (
        '<p>据<a href="https://example.com/a" target="_blank">报道</a>，'
        '<a href="https://example.com/b" target="_blank">另一</a>。</p>'
        '<script>alert(1)</script><p><img src="https://img.solidot.org//0/446/x.jpg" onerror="x()"></p>'
    )
    story = parse(story_page(body=body))
    assert story.references == ["https://example.com/a", "https://example.com/b"]
    assert "<script" not in story.body_html and "onerror" not in story.body_html
    assert 'src="https://img.solidot.org//0/446/x.jpg"' in story.body_html
    assert story.body_text == "据报道，另一。"


def test_2023_plain_text_references_after_more() -> None:
    body = '<p>P1</p><p>P2 <a href="https://inline.example/">x</a><!--more--><br>https://a.example/1<br>https://b.example/2</p>'
    story = parse(story_page(body=body))
    assert story.references == ["https://a.example/1", "https://b.example/2"]
    assert story.body_text == "P1\n\nP2 x\nhttps://a.example/1\nhttps://b.example/2"


def test_2025_reference_lines_mix_urls_and_links() -> None:
    body = 'P1<br><br>P2<!--more--><br>https://a.example/1<br><a href="https://b.example/2">报告全文</a>'
    story = parse(story_page(body=body))
    assert story.references == ["https://a.example/1", "https://b.example/2"]
    assert story.body_text == "P1\n\nP2\nhttps://a.example/1\n报告全文"


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        (story_page(title_block=""), "missing_title"),
        (story_page().replace('class="talk_time"', 'class="other"'), "missing_byline"),
        (story_page().replace('<div class="p_mainnew">', '<div class="x">'), "missing_body"),
        ("<html><body><p>维护中</p></body></html>", "missing_story_block"),
    ],
)
def test_malformed_pages_raise_with_a_reason(page: str, reason: str) -> None:
    with pytest.raises(MalformedPage) as error:
        parse(page)
    assert error.value.reason == reason


def test_time_falls_back_to_json_ld() -> None:
    page = story_page().replace("发表于 2025年01月03日 14时01分 星期五", "")
    assert parse(page).published_at == "2025-01-03T14:01:00+08:00"


def test_truncation_is_detected_by_the_missing_end() -> None:
    page = story_page().encode()
    assert not is_truncated(page)
    assert is_truncated(page[: len(page) // 2])


def test_list_page_takes_the_last_anchor_and_categories() -> None:
    page = """<html><body><div id="center">
<div class="block_m"><div class="ct_tittle"><div class="bg_htit"><h2>
<a href="//science.solidot.org/">科学</a> <a href="/story?sid=85001">标题一</a></h2></div></div></div>
<div class="block_m"><div class="ct_tittle"><div class="bg_htit"><h2><a href="/story?sid=85000">标题二</a></h2></div></div></div>
<div class="page"><a href="/?issue=20261009">上一天</a></div>
</div></body></html>"""
    www = parse_list_page(page, "https://www.solidot.org/?issue=20261010", SITE)
    assert [(e.sid, e.categories) for e in www] == [(85001, ["science"]), (85000, [])]
    linux = parse_list_page(page, "https://linux.solidot.org/", SITE)
    assert [(e.sid, e.categories) for e in linux] == [(85001, ["linux", "science"]), (85000, ["linux"])]


def test_rss_links() -> None:
    feed = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>奇客Solidot–传递最新科技情报</title>
<item><title><![CDATA[标题]]></title><link>https://www.solidot.org/story?sid=85572</link></item>
<item><title><![CDATA[标题2]]></title><link>https://www.solidot.org/story?sid=85571</link></item>
</channel></rss>"""
    assert parse_rss(feed) == [85572, 85571]
