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
#: lxml.html's parser with libxml2's depth limit raised from 256 to 2,048 nested elements, as
#: parsel reads pages: the default one stops 256 elements deep and silently drops the rest.
_FRAGMENT_PARSER = lxml_html.HTMLParser(huge_tree=True)


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
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=BEIJING)
        return moment.astimezone(BEIJING).replace(second=0, microsecond=0).isoformat()
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across the date line
        return None


def _text_parts(root: etree._Element) -> list[str]:
    """Text of an element in document order, with "\\n" for <br> and "\\n\\n" around blocks.

    Iterative, with a stack of child iterators (each with what to emit once its
    children are done): a body nested thousands of tags deep must not exhaust
    Python's stack. The root's own tail is not its text; the root is no block.
    """
    tag = root.tag
    if not isinstance(tag, str) or tag in SILENT_TAGS:  # a comment / PI, or silent
        return []
    if tag == "br":
        return ["\n"]
    parts: list[str] = []
    append, space = parts.append, _SPACE_RE.sub
    if root.text:
        append(space(" ", root.text))
    stack: list[tuple[Iterator[etree._Element], str]] = [(iter(root), "")]
    while stack:
        children, after = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if after:
                append(after)
            continue
        tag, tail = child.tag, child.tail
        if isinstance(tag, str) and tag not in SILENT_TAGS:
            if tag == "br":
                append("\n")
            else:
                block = tag in BLOCK_TAGS
                if block:
                    append("\n\n")
                if child.text:
                    append(space(" ", child.text))
                if len(child):  # its children first, then its end and tail
                    stack.append(
                        (iter(child), ("\n\n" if block else "") + (space(" ", tail) if tail else ""))
                    )
                    continue
                if block:
                    append("\n\n")
        if tail:
            append(space(" ", tail))
    return parts


def element_text(element: etree._Element) -> str:
    """Readable text of an HTML element: lines kept, paragraphs split by one blank line.

    Source whitespace counts as a space; ``<br>`` ends a line; block elements
    (``<p>``, ``<div>`` …) and ``<br><br>`` make paragraph breaks.
    """
    lines = [normalize_space(line) for line in "".join(_text_parts(element)).split("\n")]
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
    wrapper = lxml_html.fragment_fromstring(fragment_html, create_parent="div", parser=_FRAGMENT_PARSER)
    return element_text(wrapper)
