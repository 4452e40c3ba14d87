"""What one ``--latest`` crawl asks of the site, and how long the full replica takes to start.

Starts the replica of the whole history (85,572 sid slots), times it from launch to its READY
line, then runs the ``solidot`` spider with no scope (what ``seed --latest`` seeds: the home page,
the category homes, the feed and every story they list) to completion against it, and prints the
requests it made by kind, from the crawl's own stats. The README's load table and the runbook
quote these figures.

    .venv/bin/python bench/latest_requests.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import replica_server, run_crawl  # noqa: E402

FULL_HISTORY = 85572


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=FULL_HISTORY, help="sid slots ending at --last-sid")
    parser.add_argument("--last-sid", type=int, default=FULL_HISTORY)
    options = parser.parse_args()
    started = time.monotonic()
    with replica_server(stories=options.stories, last_sid=options.last_sid) as server:
        ready = time.monotonic() - started
        with tempfile.TemporaryDirectory() as work:
            result = run_crawl(server, Path(work), {}, {"ROBOTSTXT_OBEY": "True"})
    if result.returncode != 0:
        print(result.log[-3000:], file=sys.stderr)
        return 1
    stats = result.stats
    requests = stats.get("downloader/request_count", 0)
    robots = stats.get("robotstxt/request_count", 0)
    lists = stats.get("solidot/list_pages", 0)
    feed = 1 if stats.get("solidot/rss_items") else 0
    stories = stats.get("solidot/stories", 0)
    print(f"replica of {options.stories:,} sid slots: READY after {ready:.1f} s (process start included)")
    print(
        f"one --latest crawl: {requests:,} requests = {lists} list pages + {feed} feed + {stories} stories "
        f"+ {robots} robots.txt + {requests - lists - feed - stories - robots} other"
    )
    print(f"at one run every 15 min (96 a day): {requests * 96:,} requests a day")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
