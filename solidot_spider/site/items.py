"""The story item: one clean, complete record per Solidot story.

Dataclasses rather than ``scrapy.Item`` so every field is typed; itemadapter
and Scrapy's feed exporters handle dataclasses (nested ones included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from itemadapter import ItemAdapter


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
    """One story, as the item schema of docs/storing.md describes it."""

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


#: The item's field names, in schema order (docs/storing.md's table follows it).
STORY_FIELDS: tuple[str, ...] = tuple(Story.__dataclass_fields__)

_ITEM_FIELDS: dict[type, tuple[str, ...]] = {
    Story: STORY_FIELDS,
    Topic: tuple(Topic.__dataclass_fields__),
    Comment: tuple(Comment.__dataclass_fields__),
}
_SCALARS = frozenset({str, int, float, bool, type(None)})


class ItemFields(Protocol):
    """Reading and setting an item's fields by name, as ``ItemAdapter`` does."""

    def get(self, name: str, /) -> Any: ...

    def __setitem__(self, name: str, value: Any, /) -> None: ...


class _OwnFields:
    """``ItemAdapter``'s ``get`` and ``[name] =`` on a story, topic or comment, without its adapter lookup."""

    __slots__ = ("item", "names")

    def __init__(self, item: Any, names: tuple[str, ...]) -> None:
        self.item, self.names = item, names

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self.item, name, default) if name in self.names else default

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self.names:
            raise KeyError(f"{type(self.item).__name__} does not support field: {name}")
        setattr(self.item, name, value)


def is_item(value: Any) -> bool:
    """``ItemAdapter.is_item``, answered at once for stories, topics and comments."""
    return type(value) in _ITEM_FIELDS or ItemAdapter.is_item(value)


def item_fields(item: Any) -> ItemFields:
    """The item's fields by name: ``ItemAdapter(item)``, or for our own items a lighter view of them.

    Clean reads and sets a story's fields one by one, and each topic's and comment's:
    itemadapter looks the adapter up anew for every one of them (≈ 5 µs each).
    """
    names = _ITEM_FIELDS.get(type(item))
    return _OwnFields(item, names) if names is not None else ItemAdapter(item)


def item_dict(item: Any) -> dict[str, Any]:
    """The item as plain dicts and lists: exactly ``ItemAdapter(item).asdict()``, at a fraction of its cost.

    Validate, dedupe, the store and the feed each need the plain form of every story;
    itemadapter asks each of its five adapter kinds about every nested value (≈ 0.1 ms a
    story). Stories, topics, comments and the builtin containers and scalars they are made
    of are converted here directly; anything else (a subclass, a tuple, a ``scrapy.Item``…)
    goes to itemadapter, so the result is the same for every item.

    >>> item_dict(Story(1, "u", "t", "a", None, "p", topics=[Topic(3, "开源")]))["topics"]
    [{'tid': 3, 'name': '开源'}]
    """
    if type(item) in _ITEM_FIELDS or type(item) is dict:
        converted: dict[str, Any] = _plain(item)
        return converted
    return ItemAdapter(item).asdict()


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_plain(element) for element in value]
    if kind is dict:
        return {key: _plain(element) for key, element in value.items()}
    names = _ITEM_FIELDS.get(kind)
    if names is not None:
        # itemadapter's dataclass fields: those the instance has (hasattr, class defaults included)
        return {name: _plain(getattr(value, name)) for name in names if hasattr(value, name)}
    return ItemAdapter._asdict(value)
