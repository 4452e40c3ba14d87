"""Exporting the archive: stories from MongoDB or a JSON Lines file to JSON Lines, CSV or Markdown.

The Markdown shape is the one of ``shared/fixtures/story-80222.md``: a front
matter (title, url, source, date, fetch_date), the title as a heading, then
the story's text — one file per story, named by sid, so an export can be
diffed, grepped and re-run over the same directory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from solidot_spider.items import STORY_FIELDS
from solidot_spider.text import BEIJING

SOURCE = "奇客Solidot–传递最新科技情报"
FORMATS = ("jsonl", "csv", "md")
#: Fields that are lists or objects: one JSON value per CSV cell, so nothing is lost.
_STRUCTURED = frozenset({"topics", "categories", "references", "comments"})


class StorySource(Protocol):
    """Where stories come from: a count for the progress bar and the stories, by sid."""

    def count(self) -> int | None: ...

    def stories(self) -> Iterator[dict[str, Any]]: ...


class JsonLinesSource:
    """Stories from a crawl's JSON Lines output (``-O stories.jsonl``); the last line of a sid wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self) -> int | None:
        return None

    def stories(self) -> Iterator[dict[str, Any]]:
        latest: dict[int, dict[str, Any]] = {}
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    story = json.loads(line)
                except ValueError as error:
                    raise ValueError(f"{self.path}:{number}: not JSON ({error})") from error
                latest[int(story["sid"])] = story
        for sid in sorted(latest):
            yield latest[sid]


def story_record(document: dict[str, Any]) -> dict[str, Any]:
    """The item fields of a stored document (bookkeeping such as ``_id`` or hashes left out)."""
    return {name: document.get(name) for name in STORY_FIELDS}


def front_matter_date(story: dict[str, Any]) -> str:
    """The story's day in Beijing time (``date:`` of the front matter)."""
    return datetime.fromisoformat(story["published_at"]).astimezone(BEIJING).date().isoformat()


def fetch_date(story: dict[str, Any]) -> str:
    """``fetch_date:`` as the fixture writes it: an ISO time without offset (UTC here)."""
    fetched = datetime.fromisoformat(story["fetched_at"]).astimezone(UTC)
    return fetched.replace(tzinfo=None).isoformat()


def story_markdown(story: dict[str, Any]) -> str:
    """One story as Markdown with the fixture's front matter."""
    front = {
        "title": story["title"],
        "url": story["url"],
        "source": SOURCE,
        "date": front_matter_date(story),
        "fetch_date": fetch_date(story),
    }
    header = "\n".join(f"{key}: {value}" for key, value in front.items())
    return f"---\n{header}\n---\n\n# {story['title']}\n\n{story['body_text']}\n"


class Exporter:
    """Writes stories in one format; ``write`` returns how many it wrote."""

    def __init__(self, out: Path, format_name: str) -> None:
        if format_name not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format_name!r}")
        self.out, self.format = out, format_name

    def write(self, stories: Iterable[dict[str, Any]]) -> int:
        if self.format == "md":
            return self._markdown(stories)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.out.open("w", encoding="utf-8", newline="") as handle:
            if self.format == "jsonl":
                return self._jsonl(stories, handle)
            return self._csv(stories, handle)

    def _jsonl(self, stories: Iterable[dict[str, Any]], handle: Any) -> int:
        written = 0
        for story in stories:
            handle.write(json.dumps(story_record(story), ensure_ascii=False) + "\n")
            written += 1
        return written

    def _csv(self, stories: Iterable[dict[str, Any]], handle: Any) -> int:
        writer = csv.DictWriter(handle, fieldnames=list(STORY_FIELDS))
        writer.writeheader()
        written = 0
        for story in stories:
            record = story_record(story)
            writer.writerow(
                {
                    name: json.dumps(value, ensure_ascii=False) if name in _STRUCTURED else value
                    for name, value in record.items()
                }
            )
            written += 1
        return written

    def _markdown(self, stories: Iterable[dict[str, Any]]) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        written = 0
        for story in stories:
            (self.out / f"{story['sid']}.md").write_text(story_markdown(story), encoding="utf-8")
            written += 1
        return written
