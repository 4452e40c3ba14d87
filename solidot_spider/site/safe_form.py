"""A cheap proof that a body is safe: the sanitizer's own output form, read tag by tag.

:func:`is_safe_form` proves in one pass that a fragment is in nh3's output form with only allowed
tags, attributes and URL schemes; it proves, never refutes: otherwise validate's lxml check decides.

Design notes: docs/project-design.md#site-safe_form.
"""

from __future__ import annotations

import re

from solidot_spider.site.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, ALLOWED_URL_SCHEMES

#: Attributes whose value is a URL a browser may load or follow (checked for their scheme).
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "xlink:href", "srcset", "background", "poster", "data"}
)
#: Nesting this form is proven for: far below libxml2's 2,048 (validate drops deeper bodies as
#: too_deep), far above any real story (a few levels).
MAX_DEPTH = 256
#: HTML's void elements: no end tag, no children.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
#: A tag after its ``<``: an end tag, or a start tag with double-quoted attributes.
_TAG_RE = re.compile(r'(/?)([a-z][a-z0-9]*)((?: [a-z]+="[^"]*")*)>')
_ATTRIBUTE_RE = re.compile(r' ([a-z]+)="([^"]*)"')
#: Characters the lxml check reads differently (C0 controls it drops first, lone surrogates it
#: can't encode): a fragment holding one is left to that check.
_UNSETTLED_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
#: A URL scheme (RFC 3986), ASCII only: browsers read anything else before a colon as a relative URL.
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*", re.ASCII)


def safe_url_value(value: str) -> bool:
    """A relative URL or one whose scheme the sanitizer allows (browsers ignore spaces in a scheme).

    What precedes the first colon is a scheme only in a scheme's syntax (a letter, then
    letters, digits, ``+ - .``); anything else, like nh3's ``java%09script:``, browsers
    read as a relative URL.

    >>> safe_url_value(" https://x.example/"), safe_url_value("java\\tscript:alert(1)")
    (True, False)
    """
    compact = "".join(ch for ch in value if ch > " ").lower()
    scheme, colon, _ = compact.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        return True  # relative: no scheme
    return scheme in ALLOWED_URL_SCHEMES


def is_safe_form(fragment: str) -> bool:
    """True when ``fragment`` is in the sanitizer's output form and uses only what it allows.

    >>> is_safe_form('<p>a &lt;b&gt; <a href="https://x.example/?a=1&amp;b=2">x</a><br></p>')
    True
    >>> is_safe_form('<p onclick="x()">a</p>'), is_safe_form("<P>a</P>"), is_safe_form("<p>a")
    (False, False, False)
    """
    if _UNSETTLED_RE.search(fragment):
        return False
    pieces = fragment.split("<")
    open_elements: list[str] = []
    for piece in pieces[1:]:  # pieces[0] and what follows each tag is text: no "<" in it
        tag = _TAG_RE.match(piece)
        if tag is None:
            return False
        closing, name, attributes = tag.groups()
        if name not in ALLOWED_TAGS:
            return False
        if closing:
            if attributes or not open_elements or open_elements.pop() != name:
                return False
        elif attributes and not _safe_attributes(name, attributes):
            return False
        elif name not in _VOID:
            open_elements.append(name)
            if len(open_elements) > MAX_DEPTH:
                return False
    return not open_elements


def _safe_attributes(tag: str, attributes: str) -> bool:
    allowed = ALLOWED_ATTRIBUTES.get(tag, ())
    for name, value in _ATTRIBUTE_RE.findall(attributes):
        if name not in allowed:
            return False
        if name in URL_ATTRIBUTES and not _safe_serialized_url(value):
            return False
    return True


def _safe_serialized_url(value: str) -> bool:
    """A URL as the serializer writes it ("&" as "&amp;", no other entity) with a safe scheme."""
    plain = value.replace("&amp;", "&")
    return "&" not in value.replace("&amp;", "") and safe_url_value(plain)
