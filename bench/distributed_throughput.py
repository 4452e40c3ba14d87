"""One worker of the shared Redis crawl against the same spider on Scrapy's own scheduler.

Both crawl the same story pages of one replica process, in the same run,
alternating, with the same settings; the distributed run uses a private
redis-server started here (flushed before each round). Prints pages/s of each
and their ratio, the worker's CPU time per page beside them (``cpu_clock.py``:
on a machine shared with other work it moves far less than pages/s), Redis
round trips per page, and the dupefilter's bytes per URL as the crawl left them.

With ``--series``, each round also crawls with the time series off
(``STATS_SERIES_POINTS=0``, "no-series") and with it on while a
``solidot-crawl dashboard`` reads the crawl every second ("series"): their ratio
is what the time series and a watching dashboard cost the crawl.

    .venv/bin/python bench/distributed_throughput.py --stories 5000 --rounds 2
    .venv/bin/python bench/distributed_throughput.py --stories 3000 --rounds 3 --series
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

from crawl_throughput import (  # noqa: E402
    CPU_CLOCK,
    ROOT,
    Run,
    crawl_env,
    median_cpu,
    median_rate,
    print_runs,
    run_measured,
    solidot_crawl,
)
from harness import replica_server  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402
from solidot_replica import Replica, ReplicaConfig  # noqa: E402


def dupefilter_bytes_per_url(client: redis.Redis) -> float:
    """MEMORY USAGE over the dupefilter's keys, per fingerprint held in its set shards."""
    keys = list(client.scan_iter(match="*:seen*"))
    urls = sum(int(client.scard(key)) for key in keys if client.type(key) == b"set")
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys) / max(urls, 1)


#: The dashboard that watches the "series" crawls: reading Redis every second.
DASHBOARD = ("--port", "0", "--refresh", "1", "--redis-url")


def series_rounds(
    work: Path, round_no: int, redis_url: str, low: int, high: int, env: dict[str, str], client: redis.Redis
) -> list[Run]:
    """One crawl with the time series off, one with it on and a dashboard reading every second."""
    runs = []
    for name, points in (("no-series", "0"), ("series", "")):
        client.flushall()
        stats = work / f"{name}-{round_no}.json"
        settings = {"REDIS_URL": redis_url, "SOLIDOT_STATS_FILE": str(stats), "STATS_SERIES_POINTS": points}
        command = solidot_crawl(work, name, low, high, {k: v for k, v in settings.items() if v})
        if name == "no-series":
            runs.append(run_measured(name, command, ROOT, env, stats))
            continue
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "solidot_spider.cli",
                "dashboard",
                *("--port", "0", "--refresh", "1", "--redis-url"),
                redis_url,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            runs.append(run_measured(name, command, ROOT, env, stats))
        finally:
            watcher.terminate()
            watcher.wait(timeout=15)
        kept, size = client.xlen("{solidot}:series"), client.memory_usage("{solidot}:series")
        print(f"round {round_no}: {kept} time-series points, {size} bytes in Redis")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--last-sid", type=int, default=85572)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--series", action="store_true", help="also: time series off, and on with a dashboard"
    )
    options = parser.parse_args()

    model = Replica(ReplicaConfig(stories=options.stories, last_sid=options.last_sid))
    low, high = model.first_sid, options.last_sid
    runs: list[Run] = []
    round_trips: list[float] = []
    seen_bytes: list[float] = []
    with (
        replica_server(options.stories, options.last_sid) as server,
        redis_server() as shared,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        env = crawl_env(server)  # cpu_clock importable
        env.pop("REDIS_URL", None)
        client = redis.Redis.from_url(shared.url)
        for round_no in range(options.rounds):
            client.flushall()
            stats, cpu = work / f"redis-{round_no}.json", work / f"redis-{round_no}.cpu"
            # SCHEDULER_PERSIST: keep the dupefilter after the crawl, to be measured
            shared_settings = {
                "REDIS_URL": shared.url,
                "SOLIDOT_STATS_FILE": str(stats),
                "SCHEDULER_PERSIST": "True",
                "BENCH_CPU_FILE": str(cpu),
                **CPU_CLOCK,
            }
            command = solidot_crawl(work, "redis", low, high, shared_settings)
            run = run_measured("redis", command, ROOT, env, stats, cpu)
            runs.append(run)
            raw = json.loads(stats.read_text())
            round_trips.append(raw.get("scheduler/redis/round_trips", 0) / max(run.pages, 1))
            seen_bytes.append(dupefilter_bytes_per_url(client))
            stats, cpu = work / f"default-{round_no}.json", work / f"default-{round_no}.cpu"
            default_settings = {"SOLIDOT_STATS_FILE": str(stats), "BENCH_CPU_FILE": str(cpu), **CPU_CLOCK}
            command = solidot_crawl(work, "default", low, high, default_settings)
            runs.append(run_measured("default", command, ROOT, env, stats, cpu))
            if options.series:
                runs += series_rounds(work, round_no, shared.url, low, high, env, client)

    print(f"replica: {options.stories} sid slots, {len(model.sids())} stories; {options.rounds} rounds")
    print_runs(runs)
    shared_rate, default_rate = median_rate(runs, "redis"), median_rate(runs, "default")
    print(
        f"median pages/s: 1 worker on Redis {shared_rate:.1f}, default scheduler {default_rate:.1f}, "
        f"ratio {shared_rate / default_rate:.2f}x"
    )
    shared_cpu, default_cpu = median_cpu(runs, "redis"), median_cpu(runs, "default")
    print(
        f"median CPU ms/page: 1 worker on Redis {shared_cpu:.2f}, default scheduler {default_cpu:.2f}, "
        f"ratio {shared_cpu / default_cpu:.2f}x"
    )
    print(f"Redis round trips per page: {statistics.median(round_trips):.2f}")
    if options.series:
        with_series, without = median_rate(runs, "series"), median_rate(runs, "no-series")
        print(
            f"median pages/s: time series on + dashboard {with_series:.1f}, off {without:.1f}, "
            f"ratio {with_series / without:.3f}x"
        )
    print(f"dupefilter bytes per URL seen: {statistics.median(seen_bytes):.1f}")


if __name__ == "__main__":
    main()
