"""A broad crawl: H loopback hosts (127.0.0.1 … 127.0.0.H, each its own server), r requests/s each.

For each H, in the same run: plain Scrapy (one process, its own scheduler, ``DOWNLOAD_DELAY = 1/r``),
then the shared crawl (``examples/links_project``, fed with ``RPUSH links:start_urls`` host after
host, ``CLUSTER_HOST_RATE = r``) with each number of workers. Prints pages/s as the hosts' own logs
saw them against H·r, the most a polite crawl may fetch (and, with ``--limit``, against what the same
workers fetch with no rate at all: the worker limit).

    .venv/bin/python bench/broad_crawl.py --hosts 1,4,16 --rate 4 --pages 40 --workers 1,4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import redis  # noqa: E402
from broad_site import Site, broad_sites, fetch_rate, links_worker  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402

#: The plain Scrapy spider: the same pages, one item each, its start URLs from a file.
PLAIN_SPIDER = """
import scrapy

class Pages(scrapy.Spider):
    name = "pages"

    async def start(self):
        for url in open(self.urls, encoding="utf-8").read().split():
            yield scrapy.Request(url)

    def parse(self, response):
        yield {"url": response.url}
"""


def plain(sites: list[Site], work: Path, rate: float) -> None:
    """Plain Scrapy, one process, over every page of ``sites``."""
    (work / "pages.py").write_text(PLAIN_SPIDER, encoding="utf-8")
    (work / "urls.txt").write_text("\n".join(url for site in sites for url in site.urls()), encoding="utf-8")
    command = [sys.executable, "-m", "scrapy", "runspider", "pages.py", "-a", "urls=urls.txt"]
    settings = {"DOWNLOAD_DELAY": 1 / rate, "CONCURRENT_REQUESTS": 16, "LOG_LEVEL": "WARNING"}
    settings |= {"TELNETCONSOLE_ENABLED": False, "ROBOTSTXT_OBEY": False}
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    subprocess.run(command, cwd=work, check=True, stdout=subprocess.DEVNULL)


def shared(sites: list[Site], work: Path, rate: float, workers: int, concurrency: int) -> None:
    """``workers`` workers of the shared crawl over every page of ``sites``, on a private Redis."""
    with redis_server() as server:
        client = redis.Redis.from_url(server.url)
        settings = {
            "CLUSTER_HOST_RATE": f"{rate:g}",
            "CONCURRENT_REQUESTS": str(concurrency),
            "SCHEDULER_WAIT_FOR_SEED": "120",
            "LOG_LEVEL": "WARNING",
        }
        processes = [links_worker(f"w{n}", work, server.url, **settings) for n in range(workers)]
        try:
            deadline = time.monotonic() + 120
            while client.zcard("{links}:workers") < workers:  # every worker up before the crawl is fed
                if time.monotonic() > deadline:
                    raise SystemExit(f"workers did not start: logs in {work}")
                time.sleep(0.1)
            client.rpush("links:start_urls", *(url for site in sites for url in site.urls()))
            if any(process.wait(timeout=1800) != 0 for process in processes):
                raise SystemExit(f"a worker failed: logs in {work}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()


def measured(sites: list[Site], run: object, *args: object) -> float:
    for site in sites:
        site.fetches.clear()
    run(sites, *args)  # type: ignore[operator]
    fetched = sum(len(site.fetches) for site in sites)
    expected = sum(site.pages for site in sites)
    if fetched != expected:
        raise SystemExit(f"{fetched} fetches for {expected} pages")
    return fetch_rate(sites)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--hosts", default="1,4,16,64", help="host counts, comma-separated")
    parser.add_argument("--rate", type=float, default=4.0, help="requests/s per host (default 4)")
    parser.add_argument("--pages", type=int, default=40, help="pages per host (default 40)")
    parser.add_argument("--workers", default="1,4", help="worker counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS of a worker")
    parser.add_argument("--limit", action="store_true", help="also run the workers with no rate")
    options = parser.parse_args()
    worker_counts = [int(n) for n in options.workers.split(",")]
    rate = options.rate
    print(f"{options.pages} pages a host, {rate:g} req/s a host, CONCURRENT_REQUESTS={options.concurrency}\n")
    print(f"{'hosts':>5} {'crawl':<22}{'pages/s':>9}{'H·r':>8}{'vs H·r':>8}")
    for hosts in (int(n) for n in options.hosts.split(",")):
        ideal = hosts * rate
        with broad_sites(hosts, options.pages) as sites, tempfile.TemporaryDirectory() as tmp:
            runs: list[tuple[str, float]] = [("plain Scrapy", measured(sites, plain, Path(tmp), rate))]
            for workers in worker_counts:
                work = Path(tmp) / f"w{workers}"
                work.mkdir()
                label = f"shared, {workers} worker{'s' if workers > 1 else ''}"
                runs.append((label, measured(sites, shared, work, rate, workers, options.concurrency)))
                if options.limit:
                    limit = measured(sites, shared, work, 0, workers, options.concurrency)
                    runs.append((f"  (no rate: {workers} w)", limit))
            for label, pages in runs:
                print(f"{hosts:>5} {label:<22}{pages:>9.1f}{ideal:>8.0f}{pages / ideal:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
