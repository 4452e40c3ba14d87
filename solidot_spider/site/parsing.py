"""Pure parsing: HTML in, items out. No Scrapy, no network, so it is tested directly.

The site facts behind every rule are in ``shared/solidot-site.md``; the
selectors are in :mod:`solidot_spider.site.selectors`.

Design notes: docs/project-design.md#site-parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any
from urllib.parse import urljoin

from lxml import etree
from lxml import html as lxml_html
from parsel import Selector
from parsel.csstranslator import css2xpath

from solidot_spider.site import selectors as css
from solidot_spider.site.items import Comment, Story, Topic
from solidot_spider.site.sanitize import sanitize_body
from solidot_spider.site.text import (
    clean_title,
    element_text,
    normalize_space,
    parse_cn_time,
    parse_iso_local,
)
from solidot_spider.site.urls import SiteMap, story_sid

_UID_RE = re.compile(r"\(\s*(\d+)\s*\)")
_TID_RE = re.compile(r"[?&]tid=(\d+)")
_VIEWS_RE = re.compile(r"本文已被查看\s*(\d+)\s*次")
_SCORE_RE = re.compile(r"^(.*?)\s*\(\s*得分\s*[:：]\s*(-?\d+)\s*\)\s*$", re.S)
_CID_RE = re.compile(r"(\d+)$")
_URL_RE = re.compile(r"https?://[^\s<>\"'，。、；：！？）】」]+")
_MORE_MARKER = "more"
#: Longest number the parser reads (significant digits): far beyond 64 bits (validate drops those),
#: far below what makes ``int()`` slow or refuse (Python's 4,300-digit limit).
MAX_NUMBER_DIGITS = 100


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


def html_root(html_text: str) -> tuple[etree._Element, str | None]:
    """The page's lxml tree, as parsel builds it, and the resource limit libxml2 hit, if any.

    libxml2 (huge_tree) stops reading a document at 2,048 nested elements:
    what follows is missing from the tree, so the second value says
    ``too_deep`` (or ``resource_limit`` for another of its limits).
    The page is always read as HTML, never sniffed as JSON or XML.
    """
    body = html_text.strip().replace("\x00", "").encode("utf-8", "replace") or b"<html/>"
    parser = lxml_html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.LxmlError:
        root = None
    if root is None:  # nothing but comments or whitespace: an empty document, as parsel makes it
        root = etree.fromstring(b"<html/>", parser=parser)
    limit = None
    for error in parser.error_log:
        if error.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            limit = "too_deep" if "depth" in error.message else "resource_limit"
            break
    return root, limit


def _page(html_text: str) -> tuple[Selector, str | None]:
    root, limit = html_root(html_text)
    return Selector(root=root, type="html"), limit


def parse_story(html_text: str, url: str, site: SiteMap, fetched_at: str) -> Story:
    """Turn a story page into a :class:`Story`; raise :class:`MalformedPage` if it can't.

    Nothing else escapes: every other error hostile markup could cause is one of
    the drops below (``too_deep``, ``int_out_of_range/<field>`` …).
    """
    sid = story_sid(url)
    if sid is None:
        raise MalformedPage("not_a_story_url", url)
    page, limit = html_root(html_text)
    if limit is not None:
        raise MalformedPage(limit, "libxml2 stopped reading the page")
    blocks = _STORY_BLOCKS(page) or _STORY_BLOCK_FALLBACK(page)
    if not blocks:
        raise MalformedPage("missing_story_block", url)
    block = blocks[0]

    title = clean_title(_first_string(_TITLE_H2(block)))
    if not title:
        raise MalformedPage("missing_title", url)
    bylines = _BYLINE(block)
    if not bylines:
        raise MalformedPage("missing_byline", url)
    byline = bylines[0]
    author = normalize_space(_first_string(_AUTHOR_LINK(byline)))
    if not author:
        raise MalformedPage("missing_author", url)
    published_at = parse_cn_time("".join(_BYLINE_OWN_TEXT(byline)))
    published_at = published_at or _json_ld_time(page)
    if published_at is None:
        raise MalformedPage("missing_time", url)
    bodies = _BODY(block)
    if not bodies:
        raise MalformedPage("missing_body", url)
    body = bodies[0]
    body_inner = _inner_html(body)
    comments = _parse_comments(page)
    departments = _DEPARTMENT(byline)

    return Story(
        sid=sid,
        url=site.story_url(sid),
        title=title,
        author=author,
        author_uid=_first_int(_UID_RE, _first(_AUTHOR_UID_TEXT(byline), ""), "author_uid"),
        published_at=published_at,
        topics=_parse_topics(byline),
        department=_parse_department(_first_string(departments) if departments else None),
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
    page, _ = _page(html_text)  # a list cut short by libxml2 still lists what it holds
    page_category = site.category_of_url(url)
    entries: list[ListEntry] = []
    for block in page.css(css.STORY_BLOCKS):
        anchors = block.css(css.TITLE_H2).css("a")
        if not anchors:
            continue
        link = _urljoin(url, anchors[-1].attrib.get("href", ""))
        sid = story_sid(link) if link is not None else None
        if sid is None:
            continue
        categories = {page_category} if page_category else set()
        for anchor in anchors[:-1]:
            link = _urljoin(url, anchor.attrib.get("href", ""))
            category = site.category_of_url(link) if link is not None else None
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
            link = _urljoin(base_url, value)
            if link is not None:  # a link urllib can't read ("http://[x") is no reference
                (after_more if seen_more else inline).append(link)
        elif seen_more:
            after_more.extend(_URL_RE.findall(value))
    urls = after_more if seen_more else inline
    return list(dict.fromkeys(u for u in urls if u.startswith(("http://", "https://"))))


def _urljoin(base: str, link: str) -> str | None:
    """``urljoin``, or None for a link urllib refuses (an unbalanced IPv6 bracket…)."""
    try:
        return urljoin(base, link)
    except ValueError:
        return None


def _walk_links(element: etree._Element) -> Iterator[tuple[str, str]]:
    """("more", ""), ("href", url) and ("text", str) events in document order.

    Iterative (a stack of child iterators, each with the tail to emit after
    it): a body nested thousands of tags deep must not exhaust Python's stack.
    """
    stack: list[tuple[Iterator[etree._Element], str | None]] = [(iter(element), None)]
    while stack:
        children, tail = stack[-1]
        node = next(children, None)
        if node is None:
            stack.pop()
            if tail:
                yield "text", tail
            continue
        tag = node.tag
        if isinstance(node, etree._Comment):
            if (node.text or "").strip() == _MORE_MARKER:
                yield "more", ""
        elif tag == "a" and node.get("href"):
            yield "href", node.get("href", "").strip()
        elif isinstance(tag, str) and tag not in ("script", "style"):
            if node.text:
                yield "text", node.text
            stack.append((iter(node), node.tail))
            continue
        if node.tail:
            yield "text", node.tail


def _inner_html(element: etree._Element) -> str:
    parts = [element.text or ""]
    parts.extend(lxml_html.tostring(child, encoding="unicode") for child in element)
    return "".join(parts)


def _to_int(digits: str, field: str) -> int:
    """``int(digits)`` (an optional ``-`` sign, then decimal digits), exactly, however large.

    A run of more than :data:`MAX_NUMBER_DIGITS` significant digits is no
    number a page means: the page is dropped as ``int_out_of_range/<field>``.
    """
    sign, magnitude = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
    significant = magnitude.lstrip("0") or "0"
    if len(significant) > MAX_NUMBER_DIGITS:
        raise MalformedPage(f"int_out_of_range/{field}", f"a {len(significant)}-digit number")
    return int(sign + significant)


def _first_int(pattern: re.Pattern[str], text: str | None, field: str) -> int | None:
    match = pattern.search(text or "")
    return _to_int(match.group(1), field) if match else None


def _parse_topics(byline: etree._Element) -> list[Topic]:
    topics: list[Topic] = []
    for link in _TOPIC_LINKS(byline):
        tid = _first_int(_TID_RE, link.get("href"), "topics.tid")
        name = normalize_space(link.get("title", "") or _STRING(link))
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


def _parse_views(page: etree._Element) -> int | None:
    for counter in _VIEW_COUNTER(page):
        views = _first_int(_VIEWS_RE, _STRING(counter), "views")
        if views is not None:
            return views
    return None


def _json_ld_time(page: etree._Element) -> str | None:
    for raw in _JSON_LD(page):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            continue
        if isinstance(data, dict) and isinstance(data.get("pubDate"), str):
            return parse_iso_local(data["pubDate"])
    return None


def _parse_comment_count(page: etree._Element, parsed: int) -> int:
    announced = _first(_COMMENT_COUNT(page), "").strip()
    if announced.isdecimal():  # not isdigit(): "²" is a digit int() refuses
        return _to_int(announced, "comment_count")
    return parsed


def compile_selector(selector: str) -> etree.XPath:
    """A selector from :mod:`selectors` (CSS; XPath when it starts with ``./`` or an axis) compiled.

    The same XPath parsel evaluates for the selector (``::text`` included), on raw
    lxml elements: a page is some twenty lookups, and each costs a fraction of a
    parsel ``Selector`` round trip. Text comes back as plain ``str``, as parsel gives it.
    """
    xpath = selector if selector.startswith(("./", "descendant-or-self::")) else css2xpath(selector)
    return etree.XPath(xpath, smart_strings=False)


_STORY_BLOCKS = compile_selector(css.ROOT_STORY_BLOCKS)
_STORY_BLOCK_FALLBACK = compile_selector(css.STORY_BLOCK_FALLBACK)
_TITLE_H2 = compile_selector(css.TITLE_H2)
_BYLINE = compile_selector(css.BYLINE)
_TOPIC_LINKS = compile_selector(css.TOPIC_LINKS)
_AUTHOR_LINK = compile_selector(css.AUTHOR_LINK)
_AUTHOR_UID_TEXT = compile_selector(css.AUTHOR_UID_TEXT)
_BYLINE_OWN_TEXT = compile_selector(css.BYLINE_OWN_TEXT)
_DEPARTMENT = compile_selector(css.DEPARTMENT)
_BODY = compile_selector(css.BODY)
_VIEW_COUNTER = compile_selector(css.ROOT_VIEW_COUNTER)
_JSON_LD = compile_selector(css.JSON_LD)
_COMMENT_COUNT = compile_selector(css.ROOT_COMMENT_COUNT)
_COMMENT_ROOT_LIST = compile_selector(css.ROOT_COMMENT_ROOT_LIST)
_COMMENT_ITEMS = compile_selector(css.COMMENT_ITEMS)
_COMMENT_BOX = compile_selector(css.COMMENT_BOX)
_COMMENT_REPLIES = compile_selector(css.COMMENT_REPLIES)
_COMMENT_TITLE = compile_selector(css.COMMENT_TITLE)
_COMMENT_AUTHOR = compile_selector(css.COMMENT_AUTHOR)
_COMMENT_BYLINE = compile_selector(css.COMMENT_BYLINE)
_COMMENT_TEXT = compile_selector(css.COMMENT_TEXT)


#: XPath's string() of an element: the text of all its descendants, as parsel's ``string(.)``.
_STRING = etree.XPath("string(.)", smart_strings=False)


def _string(elements: list[Any]) -> str:
    """The text content of the first element ('' when there is none), like XPath's string()."""
    return "".join(elements[0].itertext()) if elements else ""


def _first_string(elements: list[Any]) -> str:
    """XPath's string() of the first element, '' if none: parsel's ``.xpath("string(.)").get("")``."""
    return str(_STRING(elements[0])) if elements else ""


def _first(values: list[Any], default: str) -> str:
    """The first string an XPath gave (parsel's ``.get(default)``)."""
    return str(values[0]) if values else default


def _parse_comments(page: etree._Element) -> list[Comment]:
    """Comments in page order: each followed by its replies (depth first).

    Iterative (a stack of comment-item iterators, each with its parent cid):
    a thread nested a thousand replies deep must not exhaust Python's stack.
    """
    roots = _COMMENT_ROOT_LIST(page)
    if not roots:
        return []
    comments: list[Comment] = []
    stack: list[tuple[Iterator[etree._Element], int | None]] = [(iter(_COMMENT_ITEMS(roots[0])), None)]
    while stack:
        items, parent_cid = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        boxes = _COMMENT_BOX(item)
        if not boxes:
            continue
        comment = _parse_comment(boxes[0], item, parent_cid)
        if comment is None:
            continue
        comments.append(comment)
        replies = _COMMENT_REPLIES(item)
        if replies:
            stack.append((chain.from_iterable(_COMMENT_ITEMS(ul) for ul in replies), comment.cid))
    return comments


def _parse_comment(box: etree._Element, item: etree._Element, parent_cid: int | None) -> Comment | None:
    cid = _first_int(_CID_RE, box.get("id") or item.get("id"), "comments.cid")
    if cid is None:
        return None
    raw_title = clean_title(_string(_COMMENT_TITLE(box)))
    score_match = _SCORE_RE.match(raw_title)
    title, score = (
        (score_match.group(1).strip(), _to_int(score_match.group(2), "comments.score"))
        if score_match
        else (raw_title, None)
    )
    author_links = _COMMENT_AUTHOR(box)
    author = normalize_space(_string(author_links))
    uid_text = (author_links[0].tail or "") if author_links else ""
    texts = _COMMENT_TEXT(box)
    return Comment(
        cid=cid,
        parent_cid=parent_cid,
        author=author,
        author_uid=_first_int(_UID_RE, uid_text, "comments.author_uid"),
        title=title,
        score=score,
        published_at=parse_cn_time(_string(_COMMENT_BYLINE(box))),
        text=element_text(texts[0]) if texts else "",
    )
