"""Pure parsing: HTML in, items out. No Scrapy, no network, so it is tested directly.

The site facts behind every rule are in ``shared/solidot-site.md``; the
selectors are in :mod:`solidot_spider.selectors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from cssselect import HTMLTranslator
from lxml import etree
from lxml import html as lxml_html
from parsel import Selector

from solidot_spider import selectors as css
from solidot_spider.items import Comment, Story, Topic
from solidot_spider.sanitize import sanitize_body
from solidot_spider.site import SiteMap, story_sid
from solidot_spider.text import (
    clean_title,
    element_text,
    normalize_space,
    parse_cn_time,
    parse_iso_local,
)

_UID_RE = re.compile(r"\(\s*(\d+)\s*\)")
_TID_RE = re.compile(r"[?&]tid=(\d+)")
_VIEWS_RE = re.compile(r"本文已被查看\s*(\d+)\s*次")
_SCORE_RE = re.compile(r"^(.*?)\s*\(\s*得分\s*[:：]\s*(-?\d+)\s*\)\s*$", re.S)
_CID_RE = re.compile(r"(\d+)$")
_URL_RE = re.compile(r"https?://[^\s<>\"'，。、；：！？）】」]+")
_MORE_MARKER = "more"


class MalformedPage(ValueError):
    """A page that can't yield a complete item; ``reason`` is a short stats key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class ListEntry:
    """One story on a list page (home, category home, day archive)."""

    sid: int
    categories: list[str] = field(default_factory=list)


def is_truncated(body: bytes) -> bool:
    """True when an HTML page stops before ``</html>`` (a cut-off transfer)."""
    return b"</html>" not in body[-4096:].lower()


def parse_story(html_text: str, url: str, site: SiteMap, fetched_at: str) -> Story:
    """Turn a story page into a :class:`Story`; raise :class:`MalformedPage` if it can't."""
    sid = story_sid(url)
    if sid is None:
        raise MalformedPage("not_a_story_url", url)
    page = Selector(text=html_text)
    blocks = page.css(css.STORY_BLOCKS) or page.css(css.STORY_BLOCK_FALLBACK)
    if not blocks:
        raise MalformedPage("missing_story_block", url)
    block = blocks[0]

    title_nodes = block.css(css.TITLE_H2)
    title = clean_title(title_nodes[0].xpath("string(.)").get("")) if title_nodes else ""
    if not title:
        raise MalformedPage("missing_title", url)
    bylines = block.xpath(css.BYLINE)
    if not bylines:
        raise MalformedPage("missing_byline", url)
    byline = bylines[0]
    author = normalize_space(byline.xpath(css.AUTHOR_LINK).xpath("string(.)").get(""))
    if not author:
        raise MalformedPage("missing_author", url)
    published_at = parse_cn_time("".join(byline.xpath(css.BYLINE_OWN_TEXT).getall()))
    published_at = published_at or _json_ld_time(page)
    if published_at is None:
        raise MalformedPage("missing_time", url)
    bodies = block.css(css.BODY)
    if not bodies:
        raise MalformedPage("missing_body", url)
    body = bodies[0].root
    body_inner = _inner_html(body)
    comments = list(_parse_comments(page))

    return Story(
        sid=sid,
        url=site.story_url(sid),
        title=title,
        author=author,
        author_uid=_first_int(_UID_RE, byline.xpath(css.AUTHOR_UID_TEXT).get("")),
        published_at=published_at,
        topics=_parse_topics(byline),
        department=_parse_department(byline.xpath(css.DEPARTMENT).xpath("string(.)").get()),
        body_html=sanitize_body(body_inner),
        body_text=element_text(body),
        references=extract_references(body, base_url=site.story_url(sid)),
        views=_parse_views(page),
        comment_count=_parse_comment_count(page, len(comments)),
        comments=comments,
        fetched_at=fetched_at,
    )


def parse_list_page(html_text: str, url: str, site: SiteMap) -> list[ListEntry]:
    """Stories listed on a home, category home or day archive page, newest first.

    The h2 may hold a category link before the story link: the story link is
    the last anchor, the others name the story's category.
    """
    page = Selector(text=html_text)
    page_category = site.category_of_url(url)
    entries: list[ListEntry] = []
    for block in page.css(css.STORY_BLOCKS):
        anchors = block.css(css.TITLE_H2).css("a")
        if not anchors:
            continue
        sid = story_sid(urljoin(url, anchors[-1].attrib.get("href", "")))
        if sid is None:
            continue
        categories = {page_category} if page_category else set()
        for anchor in anchors[:-1]:
            category = site.category_of_url(urljoin(url, anchor.attrib.get("href", "")))
            if category:
                categories.add(category)
        entries.append(ListEntry(sid=sid, categories=sorted(categories)))
    return entries


def parse_rss(xml_text: str) -> list[int]:
    """Sids of the stories in ``/index.rss``, in feed order."""
    feed = Selector(text=xml_text, type="xml")
    sids = (story_sid(link.strip()) for link in feed.xpath(css.RSS_ITEM_LINKS).getall())
    return [sid for sid in sids if sid is not None]


def extract_references(body: etree._Element, base_url: str) -> list[str]:
    """Reference URLs: those after ``<!--more-->``, else every link in the body.

    After the marker the site lists references as plain-text URLs (2023), or
    one per line as URLs or links (2025–26); before 2022 they were inline links.
    """
    after_more: list[str] = []
    inline: list[str] = []
    seen_more = False
    for kind, value in _walk_links(body):
        if kind == "more":
            seen_more = True
        elif kind == "href":
            (after_more if seen_more else inline).append(urljoin(base_url, value))
        elif seen_more:
            after_more.extend(_URL_RE.findall(value))
    urls = after_more if seen_more else inline
    return list(dict.fromkeys(u for u in urls if u.startswith(("http://", "https://"))))


def _walk_links(element: etree._Element) -> Iterator[tuple[str, str]]:
    """("more", ""), ("href", url) and ("text", str) events in document order."""
    for node in element:
        if isinstance(node, etree._Comment):
            if (node.text or "").strip() == _MORE_MARKER:
                yield "more", ""
        elif node.tag == "a" and node.get("href"):
            yield "href", node.get("href", "").strip()
        elif isinstance(node.tag, str) and node.tag not in ("script", "style"):
            if node.text:
                yield "text", node.text
            yield from _walk_links(node)
        if node.tail:
            yield "text", node.tail
    return


def _inner_html(element: etree._Element) -> str:
    parts = [element.text or ""]
    parts.extend(lxml_html.tostring(child, encoding="unicode") for child in element)
    return "".join(parts)


def _first_int(pattern: re.Pattern[str], text: str | None) -> int | None:
    match = pattern.search(text or "")
    return int(match.group(1)) if match else None


def _parse_topics(byline: Selector) -> list[Topic]:
    topics: list[Topic] = []
    for link in byline.css(css.TOPIC_LINKS):
        tid = _first_int(_TID_RE, link.attrib.get("href"))
        name = normalize_space(link.attrib.get("title", "") or link.xpath("string(.)").get(""))
        if tid is not None and all(t.tid != tid for t in topics):
            topics.append(Topic(tid=tid, name=name))
    return topics


def _parse_department(text: str | None) -> str | None:
    """``来自月海沉船`` → ``月海沉船``; ``来自X部门`` → ``X``; nothing → None."""
    department = normalize_space(text or "")
    department = department.removeprefix("来自").strip()
    if department.endswith("部门") and len(department) > 2:
        department = department.removesuffix("部门").strip()
    return department or None


def _parse_views(page: Selector) -> int | None:
    for text in page.css(css.VIEW_COUNTER).xpath("string(.)").getall():
        views = _first_int(_VIEWS_RE, text)
        if views is not None:
            return views
    return None


def _json_ld_time(page: Selector) -> str | None:
    for raw in page.css(css.JSON_LD).getall():
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("pubDate"), str):
            return parse_iso_local(data["pubDate"])
    return None


def _parse_comment_count(page: Selector, parsed: int) -> int:
    announced = page.css(css.COMMENT_COUNT).get()
    if announced and announced.strip().isdigit():
        return int(announced.strip())
    return parsed


def _compile(selector: str) -> etree.XPath:
    """A selector from :mod:`selectors` (CSS, or XPath when it starts with ``./``) as compiled XPath.

    Comments are many small lookups per page: compiled lxml XPath on raw
    elements costs a fraction of a parsel ``Selector`` round trip each.
    """
    if selector.startswith("./"):
        return etree.XPath(selector)
    return etree.XPath(HTMLTranslator().css_to_xpath(selector, prefix="descendant-or-self::"))


_COMMENT_ROOT_LIST = _compile(css.COMMENT_ROOT_LIST)
_COMMENT_ITEMS = _compile(css.COMMENT_ITEMS)
_COMMENT_BOX = _compile(css.COMMENT_BOX)
_COMMENT_REPLIES = _compile(css.COMMENT_REPLIES)
_COMMENT_TITLE = _compile(css.COMMENT_TITLE)
_COMMENT_AUTHOR = _compile(css.COMMENT_AUTHOR)
_COMMENT_BYLINE = _compile(css.COMMENT_BYLINE)
_COMMENT_TEXT = _compile(css.COMMENT_TEXT)


def _string(elements: list[Any]) -> str:
    """The text content of the first element ('' when there is none), like XPath's string()."""
    return "".join(elements[0].itertext()) if elements else ""


def _parse_comments(page: Selector) -> Iterator[Comment]:
    roots = _COMMENT_ROOT_LIST(page.root)
    if roots:
        yield from _parse_thread(roots[0], parent_cid=None)


def _parse_thread(thread: etree._Element, parent_cid: int | None) -> Iterator[Comment]:
    for item in _COMMENT_ITEMS(thread):
        boxes = _COMMENT_BOX(item)
        if not boxes:
            continue
        comment = _parse_comment(boxes[0], item, parent_cid)
        if comment is None:
            continue
        yield comment
        for replies in _COMMENT_REPLIES(item):
            yield from _parse_thread(replies, parent_cid=comment.cid)


def _parse_comment(box: etree._Element, item: etree._Element, parent_cid: int | None) -> Comment | None:
    cid = _first_int(_CID_RE, box.get("id") or item.get("id"))
    if cid is None:
        return None
    raw_title = clean_title(_string(_COMMENT_TITLE(box)))
    score_match = _SCORE_RE.match(raw_title)
    title, score = (
        (score_match.group(1).strip(), int(score_match.group(2))) if score_match else (raw_title, None)
    )
    author_links = _COMMENT_AUTHOR(box)
    author = normalize_space(_string(author_links))
    uid_text = (author_links[0].tail or "") if author_links else ""
    texts = _COMMENT_TEXT(box)
    return Comment(
        cid=cid,
        parent_cid=parent_cid,
        author=author,
        author_uid=_first_int(_UID_RE, uid_text),
        title=title,
        score=score,
        published_at=parse_cn_time(_string(_COMMENT_BYLINE(box))),
        text=element_text(texts[0]) if texts else "",
    )
