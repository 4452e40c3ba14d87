"""Exporting the archive: stories from MongoDB or a JSON Lines file to JSON Lines, CSV or Markdown.

The Markdown shape is the one of ``shared/fixtures/story-80222.md``: a front
matter (title, url, source, date, fetch_date), the title as a heading, then
the story's text — one file per story, named by sid, so an export can be
diffed, grepped and re-run over the same directory.

Design notes: docs/project-design.md#archive-export.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from solidot_spider.archive.mongo import READ_TIMEOUT_MS, mongo_client
from solidot_spider.site.items import STORY_FIELDS
from solidot_spider.site.text import BEIJING

SOURCE = "奇客Solidot–传递最新科技情报"
FORMATS = ("jsonl", "csv", "md")
#: Fields that are lists or objects: one JSON value per CSV cell, so nothing is lost.
_STRUCTURED = frozenset({"topics", "categories", "references", "comments"})
#: Sids are MongoDB int64s; a bound also keeps a file name short.
_MAX_SID = 2**63 - 1
#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection"), and
#: the quote itself, so that removing one leading quote always gives the value back.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
#: What ``json.dumps(ensure_ascii=False)`` leaves raw but a reader may take for a line break
#: (U+0085, U+2028, U+2029: str.splitlines, YAML 1.1) or YAML forbids (C1 controls, DEL, BOM,
#: non-characters, lone surrogates). Escaped as ``\\uXXXX``: the same value in JSON and in YAML.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
#: Markdown metacharacters escaped wherever they are: code spans, links, images, and the ``{{``
#: / ``{%`` of static-site templates (Liquid, Hugo shortcodes). ``<``, ``>``, ``&`` are entities.
_MARKDOWN_INLINE = "\\\\`\\[\\]{}"
#: A line starting with one of these is a heading, list, quote, rule, table, fence, setext
#: underline or (kramdown) definition: escaped there.
_MARKDOWN_LINE_START = frozenset("#-+*=|~_:")
#: ``1.`` or ``1)`` starting a line is an ordered list item.
_ORDERED_ITEM = re.compile(r"^(\d+)([.)])(?=\s|$)")

_Rendered = TypeVar("_Rendered")


class MongoSource:
    """Stories from the MongoDB collection the crawl stores into, by sid."""

    def __init__(self, uri: str, database: str, collection: str, timeout_ms: int = READ_TIMEOUT_MS) -> None:
        self.uri = uri
        self.client = mongo_client(uri, timeout_ms)
        self.collection = self.client[database][collection]

    def count(self) -> int | None:
        return self.collection.count_documents({})

    def stories(self) -> Iterator[dict[str, Any]]:
        yield from self.collection.find({}, sort=[("sid", 1)], batch_size=500)


class BadStory(ValueError):
    """A story that can't be exported as it is: skipped and counted, never the end of an export."""


class Skips:
    """Stories left out: each told in one line (on stderr by default) and counted for the summary."""

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.count = 0
        self.warn = warn or (lambda line: print(line, file=sys.stderr))

    def skip(self, what: str, reason: str) -> None:
        self.count += 1
        self.warn(f"skipped {what}: {reason}")


class StorySource(Protocol):
    """Where stories come from: a count for the progress bar and the stories, by sid."""

    def count(self) -> int | None: ...

    def stories(self) -> Iterator[dict[str, Any]]: ...


class JsonLinesSource:
    """Stories from a crawl's JSON Lines output (``-O stories.jsonl``); the last line of a sid wins.

    A line that is not a JSON object with a valid sid is skipped (and counted), not the end of the
    export: a crawl killed mid-write leaves a truncated last line.
    """

    def __init__(self, path: Path, skips: Skips | None = None) -> None:
        if not path.exists():
            raise ValueError(f"--from {path}: no such file")
        if path.is_dir():
            raise ValueError(f"--from {path}: is a directory, not a JSON Lines file")
        self.path, self.skips = path, skips or Skips()

    def count(self) -> int | None:
        return None

    def stories(self) -> Iterator[dict[str, Any]]:
        latest: dict[int, dict[str, Any]] = {}
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    story = self._story(line, first=number == 1)
                except BadStory as problem:
                    self.skips.skip(f"{self.path}:{number}", str(problem))
                    continue
                if story is not None:
                    latest[story_sid(story)] = story
        for sid in sorted(latest):
            yield latest[sid]

    @staticmethod
    def _story(line: bytes, first: bool) -> dict[str, Any] | None:
        """One line's story (None for a blank line); lines split on ``\\n`` only, as JSON Lines says."""
        try:
            text = line.decode("utf-8-sig" if first else "utf-8")
        except UnicodeDecodeError as error:
            raise BadStory(f"not UTF-8 ({error.reason} at byte {error.start})") from None
        if not text.strip():
            return None
        try:
            story = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise BadStory(f"not JSON ({str(error) or 'nested too deeply'})") from None
        if not isinstance(story, dict):
            raise BadStory(f"a JSON {type(story).__name__}, not an object")
        story_sid(story)
        return story


def story_sid(story: dict[str, Any]) -> int:
    """The story's sid as a positive int: files are named from it, so nothing else may pass.

    An int, or a string of ASCII digits (a hand-made file); never a bool, float or path.
    """
    value = story.get("sid")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_SID:
        return value
    if "sid" not in story:
        raise BadStory("no sid")
    raise BadStory(f"sid {value!r:.60} is not a positive integer")


def story_record(document: dict[str, Any]) -> dict[str, Any]:
    """The item fields of a stored document (bookkeeping such as ``_id`` or hashes left out)."""
    return {name: document.get(name) for name in STORY_FIELDS}


def json_text(value: Any) -> str:
    """``value`` as one line of standard JSON, readable by any reader (see ``_UNSAFE_IN_JSON``)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BadStory(f"not JSON-serializable ({error})") from None
    return _UNSAFE_IN_JSON.sub(lambda char: f"\\u{ord(char.group()):04x}", text)


def _text(story: dict[str, Any], name: str) -> str:
    """A text field, or BadStory: ``None`` or a number must not become the text ``"None"``."""
    value = story.get(name)
    if not isinstance(value, str):
        raise BadStory(f"{name} is {type(value).__name__}, not text" if name in story else f"no {name}")
    return value


def _time(story: dict[str, Any], name: str) -> datetime:
    text = _text(story, name)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadStory(f"{name} {text!r:.60} is not an ISO time") from None


def front_matter_date(story: dict[str, Any]) -> str:
    """The story's day in Beijing time (``date:`` of the front matter)."""
    return _time(story, "published_at").astimezone(BEIJING).date().isoformat()


def fetch_date(story: dict[str, Any]) -> str:
    """``fetch_date:`` as the fixture writes it: an ISO time without offset (UTC here)."""
    fetched = _time(story, "fetched_at").astimezone(UTC)
    return fetched.replace(tzinfo=None).isoformat()


def yaml_scalar(value: str) -> str:
    """A double-quoted YAML scalar: JSON's string syntax is valid YAML, so ``: ``, ``#`` or a
    newline stays inside the value instead of ending it or adding keys."""
    return json_text(value)


def markdown_line(line: str, also: str = "") -> str:
    """One line of stored text as Markdown that renders as exactly that text.

    ``<``, ``>``, ``&`` become entities (so ``&lt;img …&gt;`` stays text, never live HTML);
    ``\\ ` [ ] { }`` (and ``also``) are backslash-escaped everywhere; a first character that
    would start a block (``# - + * = | ~ _ :``, ``1.``, ``1)``) is escaped too. Leading blanks
    are dropped: four would make a code block, where entities show as typed.
    """
    escaped = html.escape(line.strip(" \t"), quote=False)
    escaped = re.sub(f"[{_MARKDOWN_INLINE}{re.escape(also)}]", r"\\\g<0>", escaped)
    if escaped[:1] in _MARKDOWN_LINE_START:
        return "\\" + escaped
    return _ORDERED_ITEM.sub(r"\1\\\2", escaped)


def markdown_text(text: str) -> str:
    """Multi-line text, each line through :func:`markdown_line` (any line break splits a line)."""
    return "\n".join(markdown_line(line) for line in text.splitlines())


def markdown_heading(title: str) -> str:
    """The title as one ``#`` heading: its lines joined, every ``#`` escaped (a trailing run would
    close the heading and vanish)."""
    return "# " + markdown_line(" ".join(title.split()), also="#")


def story_markdown(story: dict[str, Any]) -> str:
    """One story as Markdown with the fixture's front matter, every value a quoted YAML scalar."""
    title = _text(story, "title")
    front = {
        "title": title,
        "url": _text(story, "url"),
        "source": SOURCE,
        "date": front_matter_date(story),
        "fetch_date": fetch_date(story),
    }
    header = "\n".join(f"{key}: {yaml_scalar(value)}" for key, value in front.items())
    body = markdown_text(_text(story, "body_text"))
    return f"---\n{header}\n---\n\n{markdown_heading(title)}\n\n{body}\n"


def csv_cell(name: str, value: Any) -> Any:
    """A CSV cell a spreadsheet shows as data: numbers (ints we write) stay numbers — ``-3`` is a
    number, not a formula — and a text cell (the JSON of a list field included, always text)
    starting with a formula character or ``'`` gets one ``'`` in front (OWASP)."""
    if name in _STRUCTURED:
        text = json_text(value)
    elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    else:
        text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_row(story: dict[str, Any]) -> dict[str, Any]:
    record = story_record(story) | {"sid": story_sid(story)}
    return {name: csv_cell(name, value) for name, value in record.items()}


def jsonl_line(story: dict[str, Any]) -> str:
    return json_text(story_record(story) | {"sid": story_sid(story)}) + "\n"


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths are one file: through symlinks, ``./`` and hard links."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return os.path.realpath(one) == os.path.realpath(other)


@contextlib.contextmanager
def atomic_writer(path: Path, durable: bool = True) -> Iterator[TextIO]:
    """A text file that replaces ``path`` only once complete: an export that fails midway (an
    error, Ctrl-C) leaves the old file as it was and no temporary file behind.

    The temporary file is in the same directory (so ``os.replace`` is atomic), created like any
    file of the user's (mode 0666 less the umask); a symlink at ``path`` is replaced, never
    written through. ``durable`` also syncs it to disk first (a power cut).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="", errors="backslashreplace") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


class Exporter:
    """Writes stories in one format; ``write`` returns how many it wrote, ``skips`` counts the rest.

    ``source`` is the file exported from, if any: it is never overwritten.
    """

    def __init__(
        self, out: Path, format_name: str, skips: Skips | None = None, source: Path | None = None
    ) -> None:
        if format_name not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format_name!r}")
        self.out, self.format, self.source = out, format_name, source
        self.skips = skips or Skips()
        self._refuse_bad_out()

    def _refuse_bad_out(self) -> None:
        """Refuse, before anything is read or written, an ``--out`` that would destroy the source
        or can't be what the format writes."""
        if self.source is not None and same_file(self.out, self.source):
            raise ValueError(f"--out {self.out} is the file exported from (--from {self.source})")
        if self.format == "md" and self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is not a directory (Markdown is one file per story)")
        if self.format != "md" and self.out.is_dir():
            raise ValueError(f"--out {self.out} is a directory, not a {self.format} file")

    def write(self, stories: Iterable[dict[str, Any]]) -> int:
        if self.format == "md":
            return self._markdown(stories)
        with atomic_writer(self.out) as handle:
            if self.format == "jsonl":
                return self._jsonl(stories, handle)
            return self._csv(stories, handle)

    def _rendered(
        self, stories: Iterable[dict[str, Any]], render: Callable[[dict[str, Any]], _Rendered]
    ) -> Iterator[tuple[int, _Rendered]]:
        """Each exportable story's sid and rendering; the others are skipped and counted."""
        for story in stories:
            sid: int | None = None
            try:
                if not isinstance(story, dict):
                    raise BadStory(f"a {type(story).__name__}, not a story")
                sid = story_sid(story)
                rendered = render(story)
            except BadStory as problem:
                self.skips.skip("a story" if sid is None else f"sid {sid}", str(problem))
                continue
            yield sid, rendered

    def _jsonl(self, stories: Iterable[dict[str, Any]], handle: TextIO) -> int:
        written = 0
        for _, line in self._rendered(stories, jsonl_line):
            handle.write(line)
            written += 1
        return written

    def _csv(self, stories: Iterable[dict[str, Any]], handle: TextIO) -> int:
        # every text cell quoted, as OWASP advises; numbers bare, so they stay numbers
        writer = csv.DictWriter(handle, fieldnames=list(STORY_FIELDS), quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        written = 0
        for _, row in self._rendered(stories, csv_row):
            writer.writerow(row)
            written += 1
        return written

    def _markdown(self, stories: Iterable[dict[str, Any]]) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        written = 0
        for sid, text in self._rendered(stories, story_markdown):
            path = self.out / f"{sid}.md"
            if self.source is not None and same_file(path, self.source):
                self.skips.skip(f"sid {sid}", f"{path} is the file exported from")
                continue
            # each file complete or untouched; no fsync per file: thousands of them would take minutes
            with atomic_writer(path, durable=False) as handle:
                handle.write(text)
            written += 1
        return written
