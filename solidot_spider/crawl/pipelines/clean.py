"""Clean: put every story field in its one canonical form before it is validated and stored.

The parser already writes clean values; this stage makes the guarantee hold
for any item that reaches the store (from an older parser, a replayed feed, a
hostile page) and is idempotent: a clean item passes through unchanged.
Values of the wrong type are left alone for :mod:`.validate` to drop with a reason.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from lxml import etree
from scrapy.crawler import Crawler
from w3lib.url import safe_url_string

from solidot_spider.defaults import SETTINGS
from solidot_spider.site.items import ItemFields, is_item, item_fields
from solidot_spider.site.parsing import _parse_department as strip_department
from solidot_spider.site.sanitize import sanitize_body
from solidot_spider.site.text import BEIJING, fragment_text, normalize_space, parse_cn_time
from solidot_spider.site.urls import SiteMap, story_sid

#: Invisible characters that only get in the way of searching and comparing.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\ufeff"))
#: Never valid text, and fatal to the UTF-8 encoders downstream (nh3, the feed, MongoDB).
_LONE_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
#: What normalize_line (normalize_block) could change in a text: an entity, whitespace other than a
#: single space (or "\\n" between lines) inside, at an end (of a line), more than one blank line,
#: an invisible character or a lone surrogate. A text in NFC without any of them is clean already.
_MAYBE_DIRTY_LINE_RE = re.compile("[^\\S ]|  |\\A | \\Z|[&\u200b\ufeff\ud800-\udfff]")
_MAYBE_DIRTY_BLOCK_RE = re.compile(
    "[^\\S \\n]|  | \\n|\\n |\\A[ \\n]|[ \\n]\\Z|\\n\\n\\n|[\u200b\ufeff\ud800-\udfff]"
)
#: A date *and* a time: a bare date would silently become midnight.
_ISO_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_URL_SCHEMES = ("http", "https")

#: Default of ``SOLIDOT_MAX_BODY_BYTES`` (solidot_spider/defaults.py): real bodies are a few KB; 2 MB is
#: a broken or hostile page.
DEFAULT_MAX_BODY_BYTES: int = SETTINGS["SOLIDOT_MAX_BODY_BYTES"]


def exceeds_bytes(text: str, limit: int) -> bool:
    """True when ``text`` takes more than ``limit`` bytes in UTF-8 (encoded only when its length can't tell).

    >>> exceeds_bytes("汉字", 5), exceeds_bytes("汉字", 6)
    (True, False)
    """
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


def repair_text(text: str) -> str:
    """``text`` NFC-normalized, with lone surrogates replaced by U+FFFD.

    >>> repair_text("Cafe\\u0301 \\ud800") == "Café \\N{REPLACEMENT CHARACTER}"
    True
    """
    return unicodedata.normalize("NFC", _LONE_SURROGATE_RE.sub("\N{REPLACEMENT CHARACTER}", text))


def clean_line(text: str) -> str:
    """One-line text (titles, names): entities decoded, NFC, whitespace collapsed.

    Entities are decoded until none are left, so cleaning twice changes
    nothing; U+3000, NBSP and other Unicode spaces count as whitespace.

    >>> clean_line("\\u3000Cafe\\u0301 &amp;amp; co\\xa0 ")
    'Café & co'
    """
    if _MAYBE_DIRTY_LINE_RE.search(text) is None and unicodedata.is_normalized("NFC", text):
        return text  # nothing normalize_line would change: most of what the parser writes
    return normalize_line(text)


def normalize_line(text: str) -> str:
    """:func:`clean_line`, worked out in full."""
    while "&" in text and (decoded := html.unescape(text)) != text:
        text = decoded
    return normalize_space(repair_text(text).translate(_INVISIBLE))


def clean_block(text: str) -> str:
    """Multi-line text (body_text, comments): NFC, each line's whitespace collapsed,
    paragraphs separated by exactly one blank line, none at the ends.

    >>> clean_block(" a \\n\\n\\n\\u3000b\\n")
    'a\\n\\nb'
    """
    if _MAYBE_DIRTY_BLOCK_RE.search(text) is None and unicodedata.is_normalized("NFC", text):
        return text  # nothing normalize_block would change: most of what the parser writes
    return normalize_block(text)


def normalize_block(text: str) -> str:
    """:func:`clean_block`, worked out in full."""
    lines = [normalize_space(line) for line in repair_text(text).splitlines()]
    out: list[str] = []
    for line in lines:
        line = line.translate(_INVISIBLE)
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def parse_time(text: str, naive_zone: tzinfo) -> datetime | None:
    """An aware datetime from ISO 8601 (or the site's ``2025年01月03日 14时01分``), else None.

    A time without an offset is taken to be in ``naive_zone``.
    """
    text = text.strip()
    if not _ISO_DATETIME_RE.match(text):
        cn_time = parse_cn_time(text)
        if cn_time is None:
            return None
        text = cn_time
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=naive_zone)


def normalize_time(text: str, zone: tzinfo) -> str | None:
    """``text`` as ISO 8601 in ``zone`` (naive times are taken to be in ``zone``), else None.

    >>> normalize_time("2025-01-03T06:01:00+00:00", BEIJING)
    '2025-01-03T14:01:00+08:00'
    """
    if type(text) is str and len(text) <= MEMO_MAX_CHARS:
        return _normalize_time_memo(text, zone)
    return _normalize_time(text, zone)


def _normalize_time(text: str, zone: tzinfo) -> str | None:
    moment = parse_time(text, zone)
    return moment.astimezone(zone).isoformat() if moment is not None else None


def clean_url(url: str) -> str | None:
    """An http(s) URL in w3lib's safe form, or None for anything else.

    Already-safe URLs come back byte for byte (query order and fragment kept:
    references must read as the page shows them); spaces and non-ASCII are
    percent-encoded and the host lower-cased / IDNA-encoded.

    >>> clean_url(" HTTPS://Example.com/a b ")
    'https://example.com/a%20b'
    """
    if type(url) is str and len(url) <= MEMO_MAX_CHARS:
        return _clean_url_memo(url)
    return _clean_url(url)


def _clean_url(url: str) -> str | None:
    try:
        safe = safe_url_string(url.strip())
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    scheme, _, rest = safe.partition("://")
    return safe if scheme in _URL_SCHEMES and rest and not rest.startswith("/") else None


#: Clean computes a story's times and URLs and validate checks them again (``normalize_time(t) == t``):
#: the answers for the last 2,048 short ones are kept (pure functions: the same answers, a few MB
#: at most). Longer inputs are computed each time: a hostile page's huge "URL" is not kept.
MEMO_MAX_CHARS = 512
_normalize_time_memo = functools.lru_cache(maxsize=2048)(_normalize_time)
_clean_url_memo = functools.lru_cache(maxsize=2048)(_clean_url)


class CleanPipeline:
    """Normalize text, times, URLs and the body of every story (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.site = SiteMap.from_base_url(settings.get("SOLIDOT_BASE_URL"))
        self.max_body_bytes = settings.getint("SOLIDOT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CleanPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not is_item(item):
            return item  # validate drops it with a reason
        adapter = item_fields(item)
        stats = self.crawler.stats
        stats.inc_value("solidot/clean/items")
        for name, changed in self.clean(adapter).items():
            if changed:
                stats.inc_value(f"solidot/clean/changed_fields/{name}")
        return item

    def clean(self, adapter: ItemFields) -> dict[str, bool]:
        """Clean the item in place; return, per field, whether its value changed."""
        changed: dict[str, bool] = {}
        for name in ("title", "author"):
            changed[name] = _update(adapter, name, str, clean_line)
        changed["department"] = _update(adapter, "department", str, lambda d: strip_department(clean_line(d)))
        sid = adapter.get("sid")
        changed["url"] = _update(adapter, "url", str, lambda url: self._canonical_url(url, sid))
        changed["published_at"] = _update(adapter, "published_at", str, _time_cleaner(BEIJING))
        changed["fetched_at"] = _update(adapter, "fetched_at", str, _time_cleaner(UTC))
        changed["topics"] = _update_each(adapter, "topics", {"name": (str, clean_line)})
        changed["references"] = _update(adapter, "references", list, _clean_references)
        changed["comments"] = _update_each(
            adapter,
            "comments",
            {
                "title": (str, clean_line),
                "author": (str, clean_line),
                "published_at": (str, _time_cleaner(BEIJING)),
                "text": (str, clean_block),
            },
        )
        # a body over the limit is dropped by validate: don't spend CPU cleaning megabytes first
        changed["body_html"] = _update(adapter, "body_html", str, self._clean_body)
        changed["body_text"] = _update(adapter, "body_text", str, self._clean_text)
        body_html = adapter.get("body_html")
        if (
            adapter.get("body_text") == ""
            and isinstance(body_html, str)
            and body_html
            and not exceeds_bytes(body_html, self.max_body_bytes)
        ):
            body_text = _readable_text(body_html)
            adapter["body_text"] = body_text
            changed["body_text"] = body_text != ""
        return changed

    def _canonical_url(self, url: str, sid: Any) -> str:
        """``<base>/story?sid=N`` for any of the site's forms of the story's own URL."""
        if isinstance(sid, int) and self.site.host_label(url) is not None and story_sid(url) == sid:
            return self.site.story_url(sid)
        return url  # another story's URL or a foreign one: validate drops it

    def _clean_body(self, body_html: str) -> str:
        if exceeds_bytes(body_html, self.max_body_bytes):
            return body_html
        return sanitize_body(repair_text(body_html))

    def _clean_text(self, body_text: str) -> str:
        return body_text if exceeds_bytes(body_text, self.max_body_bytes) else clean_block(body_text)


def _readable_text(body_html: str) -> str:
    """The body's readable text, or "" if lxml can't parse it (validate accepts an empty body_text)."""
    try:
        return fragment_text(body_html)
    except (ValueError, etree.ParserError):
        return ""


def _time_cleaner(zone: tzinfo) -> Callable[[str], str]:
    """A cleaner that re-serializes a time in ``zone`` and leaves an unparseable one for validate."""

    def clean(text: str) -> str:
        return normalize_time(text, zone) or text

    return clean


def _clean_references(references: list[Any]) -> list[Any]:
    """Safe http(s) URLs, first occurrence first; a list holding non-strings is left to validate."""
    if not all(isinstance(url, str) for url in references):
        return references
    cleaned = (clean_url(url) for url in references)
    return list(dict.fromkeys(url for url in cleaned if url))


def _update(adapter: ItemFields, name: str, kind: type, cleaner: Callable[[Any], Any]) -> bool:
    """Set ``adapter[name]`` to its cleaned value if it is a ``kind``; True if that changed it."""
    value = adapter.get(name)
    if not isinstance(value, kind):
        return False
    cleaned = cleaner(value)
    if cleaned == value:
        return False
    adapter[name] = cleaned
    return True


def _update_each(
    adapter: ItemFields, name: str, cleaners: dict[str, tuple[type, Callable[[Any], Any]]]
) -> bool:
    """Clean fields of each nested item (topic, comment) of the list ``adapter[name]``."""
    values = adapter.get(name)
    if not isinstance(values, list):
        return False
    changed = False
    for value in values:
        if is_item(value):
            nested = item_fields(value)
            for field, (kind, cleaner) in cleaners.items():
                changed = _update(nested, field, kind, cleaner) or changed
    return changed
