"""A generic project on the shared crawl (1 worker) against the same spider on Scrapy's own scheduler.

The spider is ``examples/redis_project``'s ``crawl`` (a ``CrawlSpider`` following every link of a
local site of ``--pages`` pages); both crawls run in the same run, alternating, with the same
settings and no item pipeline; the shared one uses a private redis-server started here (flushed
before each round). Prints pages/s of each and their ratio (shared / Scrapy's scheduler), and the
worker's CPU time per page (``cpu_clock.py``), which moves far less than pages/s on a shared machine.
``--before DIR`` adds a third crawl, the shared one with the ``scrapy_sharedcrawl`` package found in
``DIR`` (e.g. ``git archive main sharedcrawl/scrapy_sharedcrawl | tar -x --strip-components=1 -C DIR``):
a change's before and after in
one run.

    .venv/bin/python bench/generic_overhead.py --pages 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT = ROOT / "examples" / "redis_project"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(BENCH))

from crawl_throughput import CPU_CLOCK, Run, median_cpu, median_rate, print_runs, run_measured  # noqa: E402
from link_site import link_site  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402

SETTINGS = {
    "ITEM_PIPELINES": "{}",
    "EXTENSIONS": json.dumps({"stats_file.StatsFile": 0}),
    **CPU_CLOCK,
    "CONCURRENT_REQUESTS": "16",
    "LOG_LEVEL": "WARNING",
}


def crawl(site: str, settings: dict[str, str]) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", "crawl", "-a", f"site={site}"]
    for name, value in {**SETTINGS, **settings}.items():
        command += ["-s", f"{name}={value}"]
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", type=Path, help="also crawl with the scrapy_sharedcrawl found in this folder"
    )
    options = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if not key.startswith("REDIS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), env.get("PYTHONPATH", "")])
    envs = {"scrapy": env, "shared": env}
    if options.before is not None:
        if not (options.before / "scrapy_sharedcrawl" / "__init__.py").is_file():
            raise SystemExit(f"{options.before}: no scrapy_sharedcrawl package in it")
        envs["before"] = {
            **env,
            "PYTHONPATH": os.pathsep.join([str(options.before.resolve()), env["PYTHONPATH"]]),
        }
    names = list(envs)
    runs: list[Run] = []
    with link_site(options.pages) as site, redis_server() as shared, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        client = redis.Redis.from_url(shared.url)
        for round_no in range(options.rounds):
            for name in names if round_no % 2 == 0 else names[::-1]:
                client.flushall()
                stats, cpu = work / f"{name}-{round_no}.json", work / f"{name}-{round_no}.cpu"
                settings = {"BENCH_STATS_FILE": str(stats), "BENCH_CPU_FILE": str(cpu)}
                if name != "scrapy":
                    settings["REDIS_URL"] = shared.url
                command = crawl(site.base_url, settings)
                runs.append(run_measured(name, command, PROJECT, envs[name], stats, cpu))
                if runs[-1].pages < len(site.urls()):
                    raise SystemExit(f"{name} crawled {runs[-1].pages} of {len(site.urls())} pages")
    print_runs(runs)
    scrapy_rate, shared_rate = median_rate(runs, "scrapy"), median_rate(runs, "shared")
    print(f"median pages/s: Scrapy's scheduler {scrapy_rate:.1f}, shared crawl (1 worker) {shared_rate:.1f}")
    print(f"ratio shared / Scrapy's scheduler: {shared_rate / scrapy_rate:.3f}")
    cpu = {name: median_cpu(runs, name) for name in names}
    print("median CPU ms/page: " + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items()))
    if options.before is not None:
        before_rate = median_rate(runs, "before")
        print(
            f"before: {before_rate:.1f} pages/s, ratio before / Scrapy's scheduler "
            f"{before_rate / scrapy_rate:.3f}"
        )


if __name__ == "__main__":
    main()
