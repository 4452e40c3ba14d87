"""``solidot-crawl reparse``: re-derive the archive from WARC files, without fetching anything.

solidot-crawl reparse warc/ --out stories.jsonl     # to JSON Lines
solidot-crawl reparse warc/                         # to MongoDB (MONGO_URI)

Every stored story response goes through the crawl's parser and item pipelines
(see solidot_spider/cli/replay.py); fetched_at is the record's WARC-Date.
Run it with the crawl's SOLIDOT_BASE_URL. A torn last record of a killed
worker's file is skipped, counted and logged. An --out that is one of the WARC
files read is refused before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from tqdm import tqdm

from scrapy_sharedcrawl.cli.options import assignments
from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.warc.reader import WarcReader, warc_files
from solidot_spider.archive.export import same_file
from solidot_spider.cli.replay import REPLAY_MIDDLEWARE, REPLAY_SETTINGS, STATS_PREFIX, ReplaySpider

#: Above "cmdline": what a replay must be whatever the operator's settings say.
FORCED = 50


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "reparse",
        help="run the stored story pages of WARC files through the parser and pipelines again",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, help="WARC files or directories of them")
    parser.add_argument("--out", type=Path, help="a JSON Lines file (default: MongoDB at MONGO_URI)")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def replay_settings(settings: Settings, options: argparse.Namespace) -> str:
    """Apply the replay's settings; return where the items go (for the summary)."""
    settings.set("LOG_LEVEL", "WARNING", priority="project")
    for name, value in assignments(options.settings).items():
        settings.set(name, value, priority="cmdline")
    for name, value in REPLAY_SETTINGS.items():
        settings.set(name, value, priority=FORCED)
    middlewares = {**settings.getdict("DOWNLOADER_MIDDLEWARES"), **REPLAY_MIDDLEWARE}
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority=FORCED)
    if options.out:
        feed = {"format": "jsonlines", "encoding": "utf8", "overwrite": True}
        settings.set("FEEDS", {str(options.out): feed}, priority=FORCED)
        settings.set("MONGO_URI", "", priority=FORCED)
        return str(options.out)
    uri = str(settings.get("MONGO_URI") or "").strip()
    if not uri:
        raise ValueError("nowhere to write the stories: give --out FILE.jsonl, or set MONGO_URI")
    settings.set("FEEDS", {}, priority=FORCED)
    return redact_uri(uri)


def refuse_out_among_inputs(out: Path | None, files: list[Path]) -> None:
    """Refuse, before anything is read or written, an ``--out`` that is one of the WARC files read
    (the feed would empty it before it is read), by any path (``./``, a link): as ``export`` does."""
    if out is None:
        return
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory, not a JSON Lines file")
    for path in files:
        if same_file(out, path):
            raise ValueError(f"--out {out} is a WARC file to be read ({path})")


def run(options: argparse.Namespace, settings: Settings) -> int:
    files = warc_files(options.paths)
    refuse_out_among_inputs(options.out, files)
    target = replay_settings(settings, options)
    total = sum(path.stat().st_size for path in files)
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="reparse",
        disable=True if options.quiet else None,  # None: only on a terminal
        file=sys.stderr,
    ) as bar:
        reader = WarcReader(progress=bar.update)
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(ReplaySpider)
        process.crawl(crawler, warc_files=files, reader=reader)
        process.start()
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    print(summary(stats, reader, len(files), target))
    return 0 if stats.get("finish_reason") == "finished" else 1


def summary(stats: dict[str, Any], reader: WarcReader, files: int, target: str) -> str:
    """One line: what was read, written and skipped (and why)."""
    dropped = {
        key.split("/", 2)[2]: value
        for key, value in sorted(stats.items())
        if key.startswith(("solidot/dropped/", "solidot/validate/dropped/"))
    }
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(reader.skipped.items()))
    return (
        f"{stats.get(STATS_PREFIX + 'responses', 0)} story responses from {files} WARC files, "
        f"{stats.get('item_scraped_count', 0)} stories to {target}"
        + (f"; dropped: {dropped}" if dropped else "")
        + (f"; records skipped: {skipped}" if skipped else "")
    )
