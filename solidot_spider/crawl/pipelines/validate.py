"""Validate: only items that match the item schema of docs/storing.md reach the store.

A story that breaks the schema is dropped with a short reason, counted in
``solidot/validate/dropped/<reason>`` and logged once per reason with a
sample sid. Nothing here raises anything but :class:`~scrapy.exceptions.DropItem`:
a broken item costs one item, never the worker.

Design notes: docs/project-design.md#crawl-pipelines-validate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from itemadapter import ItemAdapter
from lxml import etree
from lxml import html as lxml_html
from scrapy.crawler import Crawler

from scrapy_sharedcrawl.config import int_setting
from solidot_spider.crawl.pipelines.clean import (
    DEFAULT_MAX_BODY_BYTES,
    clean_url,
    exceeds_bytes,
    normalize_time,
)
from solidot_spider.crawl.pipelines.drops import ItemDropper
from solidot_spider.site.items import STORY_FIELDS, Comment, Topic, is_item, item_dict
from solidot_spider.site.safe_form import URL_ATTRIBUTES, is_safe_form, safe_url_value
from solidot_spider.site.text import BEIJING
from solidot_spider.site.urls import SiteMap

logger = logging.getLogger(__name__)

#: Elements and attributes that must not survive sanitizing (checked with lxml, not with nh3 again).
UNSAFE_TAGS = frozenset(
    {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "meta", "link"}
    | {"form", "svg", "math", "template"}
)
_TOPIC_FIELDS = frozenset(Topic.__dataclass_fields__)
_COMMENT_FIELDS = frozenset(Comment.__dataclass_fields__)
#: C0 controls lxml refuses; dropping them for the check can only reveal more markup, never hide it.
_CONTROLS = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")
#: The integers BSON (MongoDB) can hold: signed 64 bits. pymongo raises OverflowError beyond them.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Problem:
    """Why an item is invalid: ``reason`` is the stats key, ``detail`` is for the log."""

    reason: str
    detail: str = ""


def unsafe_markup(fragment_html: str) -> str | None:
    """What makes an HTML fragment executable (a script, an event handler, a ``javascript:`` URL), else None.

    >>> unsafe_markup('<p>ok <a href="https://x.example/">x</a></p>') is None
    True
    >>> unsafe_markup('<img src="x" onerror="alert(1)">')
    'onerror attribute on <img>'
    """
    problem = markup_problem(fragment_html)
    return problem.detail if problem is not None else None


def body_problem(fragment_html: str) -> Problem | None:
    """:func:`markup_problem`'s answer, without parsing a body in the sanitizer's own safe form.

    Clean has sanitized every body it passes: their check is one pass over their tags
    (:func:`~solidot_spider.site.safe_form.is_safe_form`); any other body gets the full check.
    """
    return None if is_safe_form(fragment_html) else markup_problem(fragment_html)


def markup_problem(fragment_html: str) -> Problem | None:
    """``unsafe_body`` with what makes a fragment executable, ``too_deep`` if it can't all be checked."""
    if not fragment_html.strip():
        return None
    # libxml2 stops reading 256 elements deep (2,048 with huge_tree) and silently drops the rest:
    # the rest would go unchecked, so markup it can't read to the end is not safe
    parser = lxml_html.HTMLParser(huge_tree=True)
    try:
        root = lxml_html.fragment_fromstring(
            fragment_html.translate(_CONTROLS), create_parent="div", parser=parser
        )
    except (ValueError, etree.ParserError) as error:
        return Problem("unsafe_body", f"markup lxml can't parse ({error})")
    for entry in parser.error_log:
        if entry.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            return Problem("too_deep", f"body_html: lxml can't read it to the end ({entry.message.strip()})")
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions are inert
        if tag.lower() in UNSAFE_TAGS:
            return Problem("unsafe_body", f"<{tag}> element")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on") or name == "style":
                return Problem("unsafe_body", f"{name} attribute on <{tag}>")
            if name in URL_ATTRIBUTES and not safe_url_value(value):
                return Problem("unsafe_body", f"{name}={value[:60]!r} on <{tag}>")
    return None


def int_out_of_range(story: dict[str, Any]) -> Problem | None:
    """The first integer anywhere in the item (topics, comments included) BSON can't hold, else None.

    The reason names the field: ``int_out_of_range/views``, ``…/comments.cid``, ``…/topics.tid``.
    Iterative, and it looks at every int, whatever field or depth it is in.
    """
    stack: list[tuple[str, Any]] = [(name, value) for name, value in reversed(story.items())]
    while stack:
        path, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if not INT64_MIN <= value <= INT64_MAX:
                return Problem(f"int_out_of_range/{path}", f"{path}={_int_repr(value)}")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}", nested) for key, nested in reversed(value.items()))
        elif isinstance(value, list | tuple):
            stack.extend((path, nested) for nested in reversed(value))
    return None


def _int_repr(value: int) -> str:
    """An int for a log line: exact up to 40 digits, its size beyond (str() refuses 4,300+ digits)."""
    if value.bit_length() <= 132:
        return str(value)
    return f"a {'negative ' if value < 0 else ''}{value.bit_length()}-bit integer"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_or_none(value: Any, minimum: int = 0) -> bool:
    return value is None or (_is_int(value) and value >= minimum)


def _is_iso_time(value: Any, zone: tzinfo) -> bool:
    """True for a time exactly in the form clean writes: ISO 8601 in ``zone``."""
    return isinstance(value, str) and normalize_time(value, zone) == value


def _is_http_url(value: Any) -> bool:
    """True for an http(s) URL exactly in the form clean writes."""
    return isinstance(value, str) and clean_url(value) == value


def _all(values: Any, check: Callable[[Any], bool]) -> bool:
    return isinstance(values, list) and all(check(value) for value in values)


def _topic_ok(topic: Any) -> bool:
    return (
        isinstance(topic, dict)
        and set(topic) == _TOPIC_FIELDS
        and _is_int(topic["tid"])
        and topic["tid"] > 0
        and isinstance(topic["name"], str)
    )


def _comment_problem(comment: Any) -> Problem | None:
    if not isinstance(comment, dict) or set(comment) != _COMMENT_FIELDS:
        return Problem("bad_type/comments", f"a comment is not {{{', '.join(sorted(_COMMENT_FIELDS))}}}")
    cid = comment["cid"]
    checks = {
        "cid": _is_int(cid) and cid > 0,
        "parent_cid": _is_int_or_none(comment["parent_cid"], minimum=1),
        "author": isinstance(comment["author"], str),
        "author_uid": _is_int_or_none(comment["author_uid"]),
        "title": isinstance(comment["title"], str),
        "score": comment["score"] is None or _is_int(comment["score"]),
        "text": isinstance(comment["text"], str),
    }
    for name, ok in checks.items():
        if not ok:
            return Problem("bad_type/comments", f"comment cid={cid!r}: {name}={comment[name]!r}")
    published_at = comment["published_at"]
    if published_at is not None and not _is_iso_time(published_at, BEIJING):
        return Problem("bad_time", f"comment cid={cid} published_at={published_at!r} is not ISO 8601 +08:00")
    return None


def find_problem(item: Any, site: SiteMap, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Problem | None:
    """The first way ``item`` breaks the item schema, or None for a valid story."""
    if not is_item(item):
        return Problem("bad_type/item", f"{type(item).__name__} is not an item")
    story = item_dict(item)
    for name in STORY_FIELDS:
        if name not in story:
            return Problem(f"missing_{name}", f"no {name} field")
    if (out_of_range := int_out_of_range(story)) is not None:
        return out_of_range

    sid = story["sid"]
    if not (_is_int(sid) and sid > 0):
        return Problem("bad_sid", f"sid={sid!r}")
    if story["url"] != site.story_url(sid):
        return Problem("bad_url", f"url={story['url']!r}, expected {site.story_url(sid)!r}")
    for name in ("title", "author"):
        if not isinstance(story[name], str):
            return Problem(f"bad_type/{name}", f"{name}={story[name]!r}")
        if not story[name]:
            return Problem(f"missing_{name}", f"{name} is empty")
    if not _is_int_or_none(story["author_uid"]):
        return Problem("bad_type/author_uid", f"author_uid={story['author_uid']!r}")
    if not _is_iso_time(story["published_at"], BEIJING):
        return Problem("bad_time", f"published_at={story['published_at']!r} is not ISO 8601 +08:00")
    if not _is_iso_time(story["fetched_at"], UTC):
        return Problem("bad_time", f"fetched_at={story['fetched_at']!r} is not ISO 8601 +00:00")
    if not _all(story["topics"], _topic_ok):
        return Problem("bad_type/topics", f"topics={story['topics']!r}")
    if not _all(story["categories"], lambda category: isinstance(category, str)):
        return Problem("bad_type/categories", f"categories={story['categories']!r}")
    department = story["department"]
    if department is not None and not (isinstance(department, str) and department):
        return Problem("bad_type/department", f"department={department!r}")

    body_html = story["body_html"]
    if not isinstance(body_html, str):
        return Problem("bad_type/body_html", f"body_html is {type(body_html).__name__}")
    if exceeds_bytes(body_html, max_body_bytes):
        return Problem("body_too_large", f"body_html over SOLIDOT_MAX_BODY_BYTES={max_body_bytes}")
    if (unsafe := body_problem(body_html)) is not None:
        return unsafe
    if not isinstance(story["body_text"], str):
        return Problem("bad_type/body_text", f"body_text is {type(story['body_text']).__name__}")
    if exceeds_bytes(story["body_text"], max_body_bytes):
        return Problem("body_too_large", f"body_text over SOLIDOT_MAX_BODY_BYTES={max_body_bytes}")

    if not _all(story["references"], _is_http_url):
        return Problem("bad_type/references", f"references={story['references']!r}")
    if not _is_int_or_none(story["views"]):
        return Problem("bad_type/views", f"views={story['views']!r}")
    if not (_is_int(story["comment_count"]) and story["comment_count"] >= 0):
        return Problem("bad_type/comment_count", f"comment_count={story['comment_count']!r}")
    comments = story["comments"]
    if not isinstance(comments, list):
        return Problem("bad_type/comments", f"comments is {type(comments).__name__}")
    for comment in comments:
        if (problem := _comment_problem(comment)) is not None:
            return problem
    return None


class ValidatePipeline:
    """Drop every item that breaks the item schema, with its reason counted and logged once."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.site = SiteMap.from_base_url(settings.get("SOLIDOT_BASE_URL"))
        self.max_body_bytes = int_setting(
            settings, "SOLIDOT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, at_least=1, at_most=2**31
        )
        self.dropper = ItemDropper(crawler, "validate", logger=logger)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        error: Exception | None = None
        try:
            problem = find_problem(item, self.site, self.max_body_bytes)
        except Exception as caught:  # a checker bug must cost one item, never the worker
            error = caught
            problem = Problem("check_failed", f"{type(caught).__name__}: {caught}")
        if problem is not None:
            self.dropper.drop(problem.reason, _sid_of(item), problem.detail, exc_info=error)
        self.crawler.stats.inc_value("solidot/validate/valid")
        return item


def _sid_of(item: Any) -> Any:
    """The item's sid for a log line, whatever shape the item is in."""
    try:
        return ItemAdapter(item).get("sid")
    except TypeError:
        return None
