"""Markup of the replica's pages, faithful to ``shared/solidot-site.md`` — traps included.

Pure functions: facts (:class:`StoryRecord`) in, HTML text out. Page chrome
(menu, sidebar, footer) follows the saved real page; links inside pages are
root-relative or protocol-relative as on the real site, so the same page works
under any host the crawler reaches it by.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import format_datetime
from html import escape
from urllib.parse import quote

from solidot_replica.stories import QUOTES, CommentRecord, Inline, Link, StoryRecord
from solidot_spider.site.urls import CATEGORIES

WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
SITE_TITLE = "奇客Solidot–传递最新科技情报"
SITE_DESCRIPTION = "奇客的资讯，重要的东西"
ROBOTS_TXT = (
    "User-agent: *\nDisallow: /search\nDisallow: /~\nDisallow: /login\nDisallow: /register\n"
    "Disallow: /comments\n"
)


def robots_txt(crawl_delay: float | None = None) -> str:
    """The site's robots.txt; with ``crawl_delay``, a ``Crawl-delay`` line too (politeness tests).

    >>> robots_txt(0.5).splitlines()[:2]
    ['User-agent: *', 'Crawl-delay: 0.5']
    """
    if crawl_delay is None:
        return ROBOTS_TXT
    first, _, rest = ROBOTS_TXT.partition("\n")
    return f"{first}\nCrawl-delay: {crawl_delay:g}\n{rest}"


COPYRIGHT = (
    "本站提到的所有注册商标属于他们各自的所有人所有，评论属于其发表者所有，"
    "其余内容版权属于 solidot.org(2009-) 所有 。"
)
UTILITY_PAGES = {
    "/polllist": "往日投票",
    "/login": "登录",
    "/register": "注册",
    "/QA": "常见问题",
    "/authors": "编辑介绍",
    "/privacy": "隐私政策",
    "/terms": "使用条款",
    "/introd": "网站介绍",
}


@dataclass(frozen=True)
class Chrome:
    """What every page's frame needs: the host's domain (with port) and the site's today."""

    domain: str  # "solidot.test:8080": category links are //<label>.<domain>/
    today: date

    @property
    def yesterday(self) -> str:
        return f"{self.today - timedelta(days=1):%Y%m%d}"


def text(value: str) -> str:
    return escape(value, quote=False)


def attr(value: str) -> str:
    return escape(value, quote=True)


def cn_time(moment: datetime, space: bool = True) -> str:
    """``发表于 2025年01月03日 14时01分 星期五`` (comments have no space after 发表于)."""
    return f"发表于{' ' if space else ''}{moment:%Y年%m月%d日 %H时%M分} {WEEKDAYS[moment.weekday()]}"


# -- story bodies ---------------------------------------------------------------


def _inline(pieces: Iterable[Inline], served: bool) -> str:
    out = []
    for piece in pieces:
        if isinstance(piece, Link):
            handler = ' onclick="track(this)"' if served else ""
            out.append(f'<a href="{attr(piece.href)}" target="_blank"{handler}>{text(piece.text)}</a>')
        else:
            out.append(text(piece))
    return "".join(out)


def body_html(story: StoryRecord, served: bool = True) -> str:
    """The body's markup in its era's style; ``served=False`` gives the sanitized truth.

    Era A (≤ 2021): ``<p>`` paragraphs with inline links, maybe a stray script,
    a donation image in 2021. Era B (2022–23): ``<p>`` paragraphs, the last
    ending ``<!--more--><br>URL<br>URL``. Era C (2024–): paragraphs split by
    ``<br><br>``, then ``<!--more-->`` and one reference per line.
    """
    inner = _body_inner(story, served)
    if story.body_depth:  # a hostile page: the body nested that many <div>s deep
        return "<div>" * story.body_depth + inner + "</div>" * story.body_depth
    return inner


def _body_inner(story: StoryRecord, served: bool) -> str:
    paragraphs = [_inline(paragraph, served) for paragraph in story.paragraphs]
    more = "<!--more-->" if served else ""
    refs = "".join(
        f'<br><a href="{attr(ref.url)}">{text(ref.text)}</a>' if ref.text else f"<br>{text(ref.url)}"
        for ref in story.references
    )
    if story.era == "A":
        parts = [f"<p>{p}</p>" for p in paragraphs]
        if story.inline_script and served:
            parts.insert(1, f'<script type="text/javascript">{story.inline_script}</script>')
        if story.donation_image:
            parts.append(f'<p><img src="{attr(story.donation_image)}"></p>')
        return "\n".join(parts)
    if story.era == "B":
        paragraphs[-1] += more + refs
        return "".join(f"<p>{p}</p>" for p in paragraphs)
    return "<br><br>".join(paragraphs) + more + refs


def body_text(story: StoryRecord) -> str:
    """The body as a reader sees it: lines, paragraphs split by one blank line."""
    paragraphs = ["".join(p.text if isinstance(p, Link) else p for p in line) for line in story.paragraphs]
    lines = [ref.text or ref.url for ref in story.references]
    if lines:
        paragraphs[-1] = "\n".join([paragraphs[-1], *lines])
    return "\n\n".join(paragraphs)


def references(story: StoryRecord) -> list[str]:
    """Reference URLs: the lines after ``<!--more-->``, else the inline links (era A)."""
    if story.references:
        return list(dict.fromkeys(ref.url for ref in story.references))
    links = (p.href for line in story.paragraphs for p in line if isinstance(p, Link))
    return list(dict.fromkeys(links))


def teaser_html(story: StoryRecord) -> str:
    """The part before ``<!--more-->`` (the RSS description)."""
    return body_html(story).split("<!--more-->", 1)[0]


# -- page parts -----------------------------------------------------------------


def _byline(story: StoryRecord, chrome: Chrome) -> str:
    icons = "".join(
        f'<a href="/search?tid={t.tid}" title="{attr(t.name)}">'
        f'<img src="https://icon.solidot.org/images/topics/{t.icon}?123" alt="{attr(t.name)}"></a>'
        for t in story.topics
    )
    share = (
        f"//service.weibo.com/share/share.php?url=//www.{chrome.domain}/story?sid={story.sid}"
        f"&appkey=1370085986&title={quote(story.title)}"
    )
    department = f"<br>\n<b>{text(story.department_markup)}</b>" if story.department_markup else ""
    return (
        f'<div class="talk_time"><div class="icon_float">{icons}</div>'
        f'<a href="/~{quote(story.author)}">{text(story.author)}</a> ({story.author_uid})'
        f"{cn_time(story.published_at)} "
        f'<a href="{attr(share)}" title="新浪微博分享" target="_blank">新浪微博分享</a>\n'
        f'<img src="https://icon.solidot.org/images/a7c7.png" alt="">{department}</div>'
    )


def _title_bar(inner: str) -> str:
    return (
        '<div class="ct_tittle"><div class="mid_bgtittle"></div>'
        f'<div class="bg_htit"><h2>{inner}</h2></div></div>'
    )


def story_block(story: StoryRecord, chrome: Chrome, listed: bool = False) -> str:
    """The story's ``div.block_m``: on list pages the h2 links the story (after its category)."""
    if listed:
        category = (
            f'<a href="//{story.category}.{chrome.domain}/">{CATEGORIES[story.category]}</a> '
            if story.category
            else ""
        )
        title = f'{category}<a href="/story?sid={story.sid}">{story.title_markup}</a>'
        body = f'<div class="p_content"><div class="p_mainnew">{body_html(story)}</div></div>'
    else:
        title, body = story.title_markup, f'<div class="p_mainnew">\n{body_html(story)}\n</div>'
    return f'<div class="block_m">\n{_title_bar(title)}\n{_byline(story, chrome)}\n{body}\n</div>'


def _children(comments: Sequence[CommentRecord]) -> dict[int | None, list[CommentRecord]]:
    """Each parent cid (None: the top) → its replies, in list order."""
    children: defaultdict[int | None, list[CommentRecord]] = defaultdict(list)
    for comment in comments:
        children[comment.parent_cid].append(comment)
    return children


def _comment_item(comment: CommentRecord) -> str:
    """A comment's ``li`` up to its replies (the caller closes it)."""
    lines = "<br>".join(text(line) for line in comment.lines)
    return (
        f'<li id="tree_{comment.cid}"><div id="comment_{comment.cid}" class="list_com">'
        f"{_title_bar(f'{text(comment.title)}(得分:{comment.score} )')}"
        f'<div class="talk_time"><a class="same_the" href="/~{quote(comment.author)}">'
        f"{text(comment.author)}</a>({comment.author_uid})"
        f'<span class="expression"></span><span>{cn_time(comment.published_at, space=False)}</span></div>'
        f'<div class="p_text"> {lines} </div>'
        f'<div class="reply_chice">[ <a href="/comments/?sid={comment.cid // 16}&op=reply&type=story'
        f'&pid={comment.cid}">回复本条</a> ]</div></div>'
    )


def _comment_tree(comments: Sequence[CommentRecord], parent: int | None) -> str:
    """The ``ul.reply_ul`` of ``parent``'s replies, each ``li`` holding its own replies' ``ul``.

    Iterative (hostile pages nest replies 1,200 deep): a stack of reply iterators.
    """
    children = _children(comments)
    if not children.get(parent):
        return ""
    out = ['<ul class="reply_ul">']
    stack: list[Iterator[CommentRecord]] = [iter(children[parent])]
    while stack:
        comment = next(stack[-1], None)
        if comment is None:
            stack.pop()
            out.append("</ul></li>" if stack else "</ul>")
            continue
        out.append(_comment_item(comment))
        if children.get(comment.cid):
            out.append('<ul class="reply_ul">')
            stack.append(iter(children[comment.cid]))
        else:
            out.append("</li>")
    return "".join(out)


def thread_order(comments: Sequence[CommentRecord], parent: int | None = None) -> list[CommentRecord]:
    """Comments in page order: each one followed by its replies (depth first)."""
    children = _children(comments)
    ordered: list[CommentRecord] = []
    stack: list[Iterator[CommentRecord]] = [iter(children.get(parent, ()))]
    while stack:
        comment = next(stack[-1], None)
        if comment is None:
            stack.pop()
            continue
        ordered.append(comment)
        if children.get(comment.cid):
            stack.append(iter(children[comment.cid]))
    return ordered


def comments_section(story: StoryRecord) -> str:
    """Between the comments markers; empty when there are none (the real site's empty section)."""
    if not story.comments:
        return "<!-- comments start -->\n<!-- comments end -->"
    return (
        "<!-- comments start -->\n"
        f'<div class="statement"><a href="/story?sid={story.sid}">{story.title_markup}</a> | '
        f"<b>{len(story.comments)}</b>条评论</div>\n"
        f'<div class="reply_list"><form id=form1 name=form1>{_comment_tree(story.comments, None)}'
        "</form></div>\n<!-- comments end -->"
    )


# -- whole pages ----------------------------------------------------------------


def page(chrome: Chrome, title: str, center: str, sidebar: str = "", head: str = "") -> str:
    """A whole page: header and menu, sidebar (before the story), ``#center``, footer."""
    categories = "".join(
        f'<li><a href="//{label}.{chrome.domain}/">{name}</a></li>' for label, name in CATEGORIES.items()
    )
    quote_text = QUOTES[chrome.today.toordinal() % len(QUOTES)]
    footer_links = (
        f'<li><a href="/">首页</a></li><li><a href="http://www.zhiding.cn">至顶网</a></li>'
        f'<li><a href="/?issume={chrome.yesterday}">往日文章</a></li>'
        '<li><a href="/polllist">过去的投票</a></li>'
        '<li><a href="/authors">编辑介绍</a></li><li><a href="/privacy">隐私政策</a></li>'
        '<li><a href="/terms">使用条款</a></li><li><a href="/introd">网站介绍</a></li>'
        '<li><a href="/index.rss">RSS</a></li>'
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{text(title)}</title>
{head}</head>
<body>
<div id="header"><div class="top_login"><a href="/login">登录</a> <a href="/register">注册</a></div>
<ul class="menu"><li>文章<a href="/?issue={chrome.yesterday}">往日文章</a>
<a href="/polllist">往日投票</a></li>
<li>皮肤<a href="/?theme=blue">蓝色</a><a href="/?theme=yellow">橙色</a><a href="/?theme=green">绿色</a>
<a href="/?theme=clightgreen">浅绿色</a></li></ul>
<ul class="nav"><li>分类:</li><li><a href="//www.{chrome.domain}/">首页</a></li>{categories}</ul></div>
<div id="wrapper">
<div class="w_left">
<div class="block_r"><div class="ct_tittle"><div class="bg_htit"><h2>关注我们：</h2></div></div>
<div class="content">solidot新版网站常见问题，请点击<a href="/QA">这里</a>查看。</div></div>
{sidebar}</div>
<div id="center">
{center}
</div>
</div>
<div id="footer"><p class="famous">{text(quote_text)}</p><ul>{footer_links}</ul>
<p>{COPYRIGHT}</p>
</div>
</body>
</html>
"""


def story_page(story: StoryRecord, chrome: Chrome) -> str:
    """``/story?sid=N``: view counter in the sidebar, the story block, then its comments block."""
    counter = (
        '<div class="block_r"><div class="ct_tittle"><div class="bg_htit"><h2>消息</h2></div></div>'
        f'<div class="content"><b>本文已被查看 {story.views} 次</b></div></div>'
    )
    json_ld = json.dumps(
        {"title": story.title, "pubDate": story.published_at.strftime("%Y-%m-%dT%H:%M:%S")},
        ensure_ascii=False,
    )
    center = (
        f"{story_block(story, chrome)}\n"
        f'<div class="block_m"><div class="comment_form"><a href="/comments?sid={story.sid}'
        f'&op=reply&type=story">发表评论</a></div>\n{comments_section(story)}\n</div>'
    )
    head = f'<script type="application/ld+json">{json_ld}</script>\n'
    return page(chrome, f"{story.title} - {SITE_TITLE}", center, sidebar=counter, head=head)


def malformed_story_page(story: StoryRecord, chrome: Chrome) -> str:
    """A broken story page: no title bar, no byline, unclosed tags — but a complete document."""
    center = f'<div class="block_m"><div class="p_mainnew"><p>{body_html(story)}<div><span></div>'
    return page(chrome, SITE_TITLE, center)


def list_page(
    stories: Iterable[StoryRecord], chrome: Chrome, title: str, newer: date | None, older: date | None
) -> str:
    """Home, category home or day archive: story blocks newest first, day links (older last)."""
    blocks = "\n".join(story_block(story, chrome, listed=True) for story in stories)
    navigation = ""
    if newer or older:
        links = []
        if newer:
            links.append(f'<a href="/?issue={newer:%Y%m%d}">后一天</a>')
        if older:
            links.append(f'<a href="/?issue={older:%Y%m%d}">前一天</a>')
        navigation = f'\n<div class="page">{" ".join(links)}</div>'
    return page(chrome, title, (blocks or '<div class="p_content">没有文章</div>') + navigation)


def simple_page(chrome: Chrome, title: str, content: str) -> str:
    return page(
        chrome, f"{title} - {SITE_TITLE}", f'<div class="block_m"><h2>{text(title)}</h2>{content}</div>'
    )


def not_found_page(chrome: Chrome) -> str:
    return simple_page(chrome, "404 页面不存在", "<p>您访问的页面不存在。</p>")


def rss(stories: Iterable[StoryRecord], base_url: str, seconds: dict[int, int]) -> str:
    """``/index.rss``: RSS 2.0 with absolute links and pubDate with seconds (pages have none)."""
    items = []
    for story in stories:
        moment = story.published_at.replace(second=seconds.get(story.sid, 0))
        items.append(
            f"<item><title><![CDATA[{story.title}]]></title>"
            f"<link>{base_url}/story?sid={story.sid}</link>"
            f"<description><![CDATA[{teaser_html(story)}]]></description>"
            f"<pubDate>{format_datetime(moment)}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{SITE_TITLE}</title><link>{base_url}/</link><description>{SITE_DESCRIPTION}</description>"
        f"{''.join(items)}</channel></rss>\n"
    )
