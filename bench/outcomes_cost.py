"""What counting every page's outcome costs (issue 23): the outcome code's own time under cProfile.

``examples/redis_project``'s ``crawl`` spider (a ``CrawlSpider`` following every link, one item per
page) over a local site of ``--pages`` pages, without Redis (the add-on still installs the outcome
components), under ``python -m cProfile``: prints the crawl's profiled seconds, the seconds spent in
``scrapy_sharedcrawl/outcomes.py``'s own functions (tottime, their callees in Scrapy's stats
collector included separately) and the outcomes counted. Then, unprofiled, the crawl's elapsed time
with the outcome components switched off and on, alternating, ``--rounds`` times each.

    .venv/bin/python bench/outcomes_cost.py --pages 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT = ROOT / "examples" / "redis_project"
sys.path.insert(0, str(ROOT / "examples"))

from link_site import link_site  # noqa: E402

SETTINGS = {
    "ITEM_PIPELINES": "{}",
    "CONCURRENT_REQUESTS": "16",
    "LOG_LEVEL": "WARNING",
    "DOWNLOAD_DELAY": "0",
}
OFF = {
    "SPIDER_MIDDLEWARES": json.dumps({"scrapy_sharedcrawl.outcomes.PageOutcomes": None}),
    "DOWNLOADER_MIDDLEWARES": json.dumps({"scrapy_sharedcrawl.outcomes.UnfetchedRequests": None}),
}


def command(site: str, stats: Path, settings: dict[str, str], profile: Path | None = None) -> list[str]:
    run = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), "-m", "scrapy"]
    run += ["crawl", "crawl", "-a", f"site={site}", "-s", "STATS_DUMP=False"]
    for name, value in {**SETTINGS, "BENCH_STATS_FILE": str(stats), **settings}.items():
        run += ["-s", f"{name}={value}"]
    return run


def crawl(
    site: str, workdir: Path, settings: dict[str, str], profile: Path | None = None
) -> dict[str, float]:
    stats = workdir / "stats.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(BENCH), str(ROOT)])}
    run = command(site, stats, {"EXTENSIONS": json.dumps({"stats_file.StatsFile": 0}), **settings}, profile)
    subprocess.run(run, cwd=PROJECT, env=env, check=True, timeout=1800)
    loaded: dict[str, float] = json.loads(stats.read_text())
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp, link_site(options.pages) as site:
        workdir = Path(temp)
        profile = workdir / "crawl.prof"
        stats = crawl(site.base_url, workdir, {}, profile)
        profiled = pstats.Stats(str(profile))
        total = profiled.total_tt  # type: ignore[attr-defined]
        own = sum(
            row[2]  # tottime
            for (file, _line, _name), row in profiled.stats.items()  # type: ignore[attr-defined]
            if file.endswith("scrapy_sharedcrawl/outcomes.py")
        )
        outcomes = {k: v for k, v in stats.items() if k.startswith("outcome/")}
        print(f"profiled crawl: {total:.2f} s, outcomes.py's own functions {own:.3f} s ({own / total:.2%})")
        print(f"pages {stats.get('response_received_count')}, outcomes {outcomes}")
        elapsed: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(options.rounds):
            for state, settings in (("off", OFF), ("on", {})):
                elapsed[state].append(float(crawl(site.base_url, workdir, settings)["elapsed_time_seconds"]))
        for state, times in elapsed.items():
            each = ", ".join(f"{t:.2f}" for t in times)
            print(f"outcomes {state}: median {statistics.median(times):.2f} s ({each})")


if __name__ == "__main__":
    main()
