"""Scale-out efficiency of a generic project on scrapyd: 1, 2 and 4 workers of ``examples/links_project``.

As ``bench/scale_out.py`` does for Solidot, with a project that knows nothing of Solidot: two real
scrapyd nodes (2 slots each), the example deployed with ``scrapyd-deploy``, its workers scheduled by
``sharedcrawl workers up N --wait`` from the project's directory, a private redis-server, and the
example's link site answering every page after a fixed delay, so the crawl is I/O-bound and this
machine's two cores don't cap it. For each N (rounds alternate 1, 2, 4…) the crawl starts afresh
from ``LPUSH links:start_urls``; after a warm-up the pages the site served are counted over a fixed
window. Efficiency at N is pages/s of N workers over N × pages/s of one.

    .venv/bin/python bench/scale_out_generic.py --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples"))

from harness import wait_for  # noqa: E402
from link_site import link_site  # noqa: E402
from scrapyd_node import BIN, operator_env, scrapyd_nodes  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402

WORKERS = (1, 2, 4)


def sharedcrawl(project: Path, env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(BIN / "sharedcrawl"), "workers", *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sharedcrawl workers {' '.join(arguments)}: {done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200_000, help="pages of the link site")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the site takes per page")
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENT_REQUESTS of each worker")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
        "CLUSTER_HOST_RATE": 0,  # no cluster-wide limit: it must not bind here
        "DOWNLOAD_DELAY": 0,
        "SCHEDULER_WAIT_FOR_SEED": 300,
        "LOG_LEVEL": "WARNING",
    }
    job_settings = [f"--set={name}={value}" for name, value in settings.items()]
    rates: dict[int, list[float]] = {count: [] for count in WORKERS}
    with (
        link_site(args.pages, args.delay) as site,
        redis_server() as shared,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        project = work / "links_project"
        shutil.copytree(ROOT / "examples" / "links_project", project)
        client = redis.Redis.from_url(shared.url)
        env = {**os.environ, "REDIS_URL": shared.url}
        with scrapyd_nodes(work / "nodes", env, count=2, slots=2) as nodes:
            targets = "".join(f"\n[deploy:{node.name}]\nurl = {node.url}/\nslots = 2\n" for node in nodes)
            with (project / "scrapy.cfg").open("a") as config:
                config.write(
                    "\n[deploy]\nproject = links_project\nusername = ${SCRAPYD_USERNAME}\n"
                    "password = ${SCRAPYD_PASSWORD}\n" + targets
                )
            operator = {**operator_env(), "REDIS_URL": shared.url}
            for node in nodes:
                subprocess.run(
                    [str(BIN / "scrapyd-deploy"), node.name, "-v", "1"], cwd=project, env=operator, check=True
                )
            for round_no in range(args.rounds):
                for count in WORKERS:
                    client.flushall()
                    sharedcrawl(project, operator, "up", str(count), *job_settings, "--wait", "120")
                    client.lpush("links:start_urls", f"{site.base_url}/")
                    time.sleep(args.warmup)  # a benchmark's measurement window, not synchronization
                    before, start = site.served, time.monotonic()
                    time.sleep(args.window)
                    rate = (site.served - before) / (time.monotonic() - start)
                    if int(client.get("{links}:requests:count") or 0) == 0:
                        raise RuntimeError("the queue ran dry inside the window: more --pages")
                    rates[count].append(rate)
                    print(f"round {round_no + 1}: {count} workers {rate:6.1f} pages/s", flush=True)
                    sharedcrawl(project, operator, "down", "0")
                    wait_for(
                        lambda: (
                            not any(
                                node.jobs("links_project")[state]
                                for node in nodes
                                for state in ("running", "pending")
                            )
                        ),
                        timeout=120,
                        interval=0.5,
                        what="every job ended",
                    )
    one = statistics.median(rates[1])
    print(f"\nsite delay {args.delay} s per page, {args.concurrency} requests in flight per worker")
    for count in WORKERS:
        rate = statistics.median(rates[count])
        print(f"{count} workers: {rate:6.1f} pages/s, efficiency {rate / (count * one):.2f}")


if __name__ == "__main__":
    main()
