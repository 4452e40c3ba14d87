"""How fast start URLs pushed by hand enter the shared queue, while the worker crawls.

One worker of ``examples/links_project`` (a plain project: one add-on) is up and waiting; ``--urls``
URLs of H loopback hosts (127.0.0.1 …, each its own server), the hosts in turn, are pushed in one
``RPUSH links:start_urls``; the time is from that push until the key is empty (an entry leaves it only
once its request is in the shared queue). Meanwhile the worker crawls at ``CLUSTER_HOST_RATE`` per host: the
pages the hosts saw during the intake, against H·r·seconds, say whether the intake starved the engine.

    .venv/bin/python bench/start_urls_intake.py --urls 20000
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import redis  # noqa: E402
from broad_site import broad_sites, links_worker  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402

KEY = "links:start_urls"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--urls", type=int, default=20_000, help="start URLs pushed (default 20,000)")
    parser.add_argument("--hosts", type=int, default=4, help="loopback hosts they name (default 4)")
    parser.add_argument("--rate", type=float, default=4.0, help="requests/s per host while it runs")
    parser.add_argument("--batch", type=int, default=0, help="REDIS_START_URLS_BATCH_SIZE (0: default)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    options = parser.parse_args()
    settings = {"CLUSTER_HOST_RATE": f"{options.rate:g}", "SCHEDULER_WAIT_FOR_SEED": "120"}
    if options.batch:
        settings["REDIS_START_URLS_BATCH_SIZE"] = str(options.batch)
    pages = math.ceil(options.urls / options.hosts)
    with (
        broad_sites(options.hosts, pages) as sites,
        redis_server() as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        client = redis.Redis.from_url(server.url)
        worker = links_worker("w0", Path(tmp), server.url, **settings)
        try:
            deadline = time.monotonic() + 120
            while not client.zcard("{links}:workers"):  # up and waiting for its seed
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("the worker did not start")
                time.sleep(0.1)
            # the hosts in turn: every host is in the queue from the first read, fetched at its rate
            urls = [url for turn in zip(*(site.urls() for site in sites), strict=True) for url in turn]
            urls = urls[: options.urls]
            started = time.monotonic()
            client.rpush(KEY, *urls)
            while client.llen(KEY):
                if time.monotonic() - started > options.timeout or worker.poll() is not None:
                    left, waited = client.llen(KEY), time.monotonic() - started
                    raise SystemExit(f"{left} start URLs left after {waited:.0f} s")
                time.sleep(0.02)
            seconds = time.monotonic() - started
            fetched = sum(1 for site in sites for at, _, _ in site.fetches if at <= started + seconds)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
    polite = options.hosts * options.rate * seconds
    print(
        f"{len(urls):,} start URLs queued in {seconds:.2f} s ({len(urls) / seconds:,.0f}/s); "
        f"{fetched} pages fetched meanwhile ({fetched / polite:.2f} of {options.hosts} hosts × "
        f"{options.rate:g} req/s)"
    )


if __name__ == "__main__":
    main()
