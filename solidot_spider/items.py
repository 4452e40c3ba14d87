"""The story item: one clean, complete record per Solidot story.

Dataclasses rather than ``scrapy.Item`` so every field is typed; itemadapter
and Scrapy's feed exporters handle dataclasses (nested ones included).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Topic:
    """A topic icon in the byline: ``/search?tid=N`` with its name."""

    tid: int
    name: str


@dataclass
class Comment:
    """One reader comment; ``parent_cid`` is None for a top-level comment."""

    cid: int
    parent_cid: int | None
    author: str
    author_uid: int | None
    title: str
    score: int | None
    published_at: str | None
    text: str


@dataclass
class Story:
    """One story, as the README's item schema describes it."""

    sid: int
    url: str
    title: str
    author: str
    author_uid: int | None
    published_at: str
    topics: list[Topic] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    department: str | None = None
    body_html: str = ""
    body_text: str = ""
    references: list[str] = field(default_factory=list)
    views: int | None = None
    comment_count: int = 0
    comments: list[Comment] = field(default_factory=list)
    fetched_at: str = ""


#: The item's field names, in schema order (the README's table follows it).
STORY_FIELDS: tuple[str, ...] = tuple(Story.__dataclass_fields__)
