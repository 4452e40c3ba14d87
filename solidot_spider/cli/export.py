"""``solidot-crawl export``: the archive to JSON Lines, CSV or Markdown files.

solidot-crawl export --format md --out archive/            # from MONGO_URI
solidot-crawl export --format csv --out stories.csv --from stories.jsonl

A story that can't be exported as it is (no valid sid, a missing field, a line
that is not JSON) is skipped with one line on stderr and counted in the summary;
an --out that would overwrite --from is refused before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scrapy.settings import Settings
from tqdm import tqdm

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.export import (
    FORMATS,
    Exporter,
    JsonLinesSource,
    MongoSource,
    Skips,
    StorySource,
)
from solidot_spider.archive.mongo import StoreConfig


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "export", help="export stories to JSON Lines, CSV or Markdown files", description=__doc__
    )
    parser.add_argument("--format", choices=FORMATS, required=True, help="md: one file per story in --out")
    parser.add_argument("--out", type=Path, required=True, help="output file (jsonl, csv) or directory (md)")
    parser.add_argument("--from", dest="source", type=Path, help="a JSON Lines file instead of MongoDB")
    parser.add_argument("--mongo-uri", help="default: the MONGO_URI setting / environment variable")
    parser.add_argument("--database", help="default: MONGO_DATABASE")
    parser.add_argument("--collection", help="default: MONGO_COLLECTION")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def source_for(options: argparse.Namespace, settings: Settings, skips: Skips) -> StorySource:
    if options.source:
        return JsonLinesSource(options.source, skips)
    store = StoreConfig.from_settings(settings)
    uri = options.mongo_uri or store.uri
    if not uri:
        raise ValueError("nothing to export from: set MONGO_URI (or --mongo-uri), or give --from FILE")
    return MongoSource(uri, options.database or store.database, options.collection or store.collection)


def _warn(line: str) -> None:
    """A skip's line on stderr, above the progress bar rather than through it."""
    tqdm.write(line, file=sys.stderr)


def run(options: argparse.Namespace, settings: Settings) -> int:
    skips = Skips(_warn)
    # the output is checked first: a refusal must come before a source is opened or a file written
    exporter = Exporter(options.out, options.format, skips, source=options.source)
    source = source_for(options, settings, skips)
    where = str(options.source) if options.source else redact_uri(getattr(source, "uri", ""))
    stories = tqdm(
        source.stories(),
        total=source.count(),
        unit=" stories",
        desc="export",
        disable=True if options.quiet else None,  # None: only on a terminal
        file=sys.stderr,
    )
    try:
        written = exporter.write(stories)
    except KeyboardInterrupt:
        stories.close()
        kept = "every story file is whole" if options.format == "md" else f"{options.out} is as it was"
        print(f"solidot-crawl export: interrupted; {kept}", file=sys.stderr)
        return 130
    print(
        f"exported {written} stories from {where} to {options.out} ({options.format}), {skips.count} skipped",
        file=sys.stderr,
    )
    return 0
