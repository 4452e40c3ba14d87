"""Text helpers: whitespace, entities, Beijing times, readable text from HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from lxml import etree
from lxml import html as lxml_html

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_SPACE_RE = re.compile(r"\s+")
# "2025年01月03日 14时01分" (story bylines have a space after 发表于, comments don't)
_CN_TIME_RE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日\s*(\d{1,2})时(\d{1,2})分")

BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "blockquote",
        "pre",
        "table",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
    ]
)
SILENT_TAGS = frozenset({"script", "style", "noscript", "template"})


def normalize_space(text: str) -> str:
    """Collapse every whitespace run (newlines, U+3000 included) to one space and strip."""
    return " ".join(text.split())


def clean_title(text: str) -> str:
    """A title as a reader sees it: entities decoded (twice-escaped ones too), spaces normalized.

    >>> clean_title("  A &amp;quot;B&amp;quot;\\n C ")
    'A "B" C'
    """
    return normalize_space(html.unescape(html.unescape(text)))


def parse_cn_time(text: str) -> str | None:
    """``发表于 2025年01月03日 14时01分 星期五`` → ``2025-01-03T14:01:00+08:00`` (None if absent)."""
    match = _CN_TIME_RE.search(text)
    if not match:
        return None
    year, month, day, hour, minute = (int(g) for g in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, tzinfo=BEIJING)
    except ValueError:
        return None
    return moment.isoformat()


def parse_iso_local(text: str) -> str | None:
    """JSON-LD's ``2025-01-03T14:01:00`` (Beijing, no offset) → ISO 8601 with +08:00."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(BEIJING).replace(second=0, microsecond=0).isoformat()


def _walk(element: etree._Element, is_root: bool = False) -> Iterator[str]:
    """Text of an element in document order, with "\\n" for <br> and "\\n\\n" around blocks."""
    tag = element.tag if isinstance(element.tag, str) else None  # None: comment / PI
    if tag is not None and tag not in SILENT_TAGS:
        if tag == "br":
            yield "\n"
        else:
            block = tag in BLOCK_TAGS and not is_root
            if block:
                yield "\n\n"
            if element.text:
                yield _SPACE_RE.sub(" ", element.text)
            for child in element:
                yield from _walk(child)
            if block:
                yield "\n\n"
    if element.tail and not is_root:
        yield _SPACE_RE.sub(" ", element.tail)


def element_text(element: etree._Element) -> str:
    """Readable text of an HTML element: lines kept, paragraphs split by one blank line.

    Source whitespace counts as a space; ``<br>`` ends a line; block elements
    (``<p>``, ``<div>`` …) and ``<br><br>`` make paragraph breaks.
    """
    lines = [normalize_space(line) for line in "".join(_walk(element, is_root=True)).split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def fragment_text(fragment_html: str) -> str:
    """Readable text of an HTML fragment (see :func:`element_text`)."""
    if not fragment_html.strip():
        return ""
    wrapper = lxml_html.fragment_fromstring(fragment_html, create_parent="div")
    return element_text(wrapper)
