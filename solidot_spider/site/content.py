"""A story's content hash: what tells a changed story from one seen before.

Deduplication and the store both compare it, so it lives in one place. It
covers what a reader of the archive would call the story's content and leaves
out what depends on the crawl itself: ``fetched_at`` (every fetch differs),
``categories`` (depend on how the story was discovered) and ``url`` (follows
``sid`` and ``SOLIDOT_BASE_URL``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: The fields the hash covers, in schema order.
HASHED_FIELDS: tuple[str, ...] = (
    "title",
    "author",
    "author_uid",
    "published_at",
    "topics",
    "department",
    "body_html",
    "body_text",
    "references",
    "views",
    "comment_count",
    "comments",
)


def content_hash(item: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the item's :data:`HASHED_FIELDS`.

    ``item`` is a plain dict (``ItemAdapter(story).asdict()``): nested topics and
    comments as dicts. A missing field hashes like ``None``.

    >>> content_hash({"title": "t"}) == content_hash({"title": "t", "fetched_at": "now"})
    True
    >>> content_hash({"title": "t"}) == content_hash({"title": "u"})
    False
    """
    canonical = json.dumps(
        {name: item.get(name) for name in HASHED_FIELDS},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    # surrogatepass: a stray lone surrogate in scraped text must not crash a worker
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
