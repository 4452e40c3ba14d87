"""Crawl throughput: the ``solidot`` spider against a minimal plain Scrapy spider.

Both crawl the same story pages of one replica process, in the same run,
alternating, with the same concurrency and politeness turned off. Reports
pages/s (responses / the crawl's own elapsed time, start-up excluded), the
ratio solidot/plain, and each crawl's peak RSS. Also the CPU time each crawl spent per
page (``cpu_clock.py``: spider open to close, every thread) and the ratio of those: on a
machine shared with other work it moves far less than pages/s.

    .venv/bin/python bench/crawl_throughput.py --stories 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "tests"))

from harness import DOMAIN, ReplicaServer, replica_server  # noqa: E402

from solidot_replica import Replica, ReplicaConfig  # noqa: E402

SPEED_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CONCURRENT_REQUESTS": "32",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "32",
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": "False",
}
#: Scrapy's defaults and the project's set no spider middleware of that name: the clock only adds itself.
CPU_CLOCK = {"SPIDER_MIDDLEWARES": json.dumps({"cpu_clock.CpuClock": 0})}


@dataclass
class Run:
    name: str
    pages: int
    items: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float | None = None

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_ms_per_page(self) -> float | None:
        return None if self.cpu_seconds is None else 1000 * self.cpu_seconds / self.pages


def run_measured(
    name: str,
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    stats_file: Path,
    cpu_file: Path | None = None,
) -> Run:
    """Run a crawl process; its pages and time come from its stats, its peak RSS from wait4,
    its CPU time from ``cpu_file`` when the command runs :mod:`cpu_clock`."""
    process = subprocess.Popen(command, cwd=cwd, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} crawl failed: {command}")
    stats = json.loads(stats_file.read_text())
    cpu = json.loads(cpu_file.read_text())["cpu_seconds"] if cpu_file is not None else None
    return Run(
        name=name,
        pages=stats.get("response_received_count", 0),
        items=stats.get("item_scraped_count", 0),
        seconds=stats["elapsed_time_seconds"],
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_seconds=cpu,
    )


def print_runs(runs: list[Run]) -> None:
    """One line per crawl: pages, items, seconds, pages/s, peak RSS (and CPU ms per page when measured)."""
    cpu = any(run.cpu_seconds is not None for run in runs)
    header = f"{'crawl':8} {'pages':>7} {'items':>7} {'seconds':>8} {'pages/s':>8} {'peak RSS MB':>12}"
    print(header + (f" {'CPU ms/page':>12}" if cpu else ""))
    for run in runs:
        line = (
            f"{run.name:8} {run.pages:7d} {run.items:7d} {run.seconds:8.1f} "
            f"{run.pages_per_s:8.1f} {run.peak_rss_mb:12.1f}"
        )
        print(line + (f" {run.cpu_ms_per_page:12.2f}" if run.cpu_ms_per_page is not None else ""))


def median_rate(runs: list[Run], name: str) -> float:
    return statistics.median(run.pages_per_s for run in runs if run.name == name)


def median_cpu(runs: list[Run], name: str) -> float:
    return statistics.median(run.cpu_ms_per_page or 0.0 for run in runs if run.name == name)


def solidot_crawl(work: Path, name: str, low: int, high: int, extra: dict[str, str]) -> list[str]:
    """``scrapy crawl solidot`` of sids low..high at full speed, items to ``<work>/<name>.jsonl``."""
    return [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        "solidot",
        "-a",
        f"sids={low}-{high}",
        "-O",
        str(work / f"{name}.jsonl"),
        *settings_args({**SPEED_SETTINGS, **extra}),
    ]


def settings_args(settings: dict[str, str]) -> list[str]:
    return [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]


def bench_options(stories: int) -> argparse.Namespace:
    """The crawl benchmarks' options: replica size, its last sid, rounds."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").split("\n")[0])
    parser.add_argument("--stories", type=int, default=stories)
    parser.add_argument("--last-sid", type=int, default=85572)
    parser.add_argument("--rounds", type=int, default=2)
    return parser.parse_args()


def sid_range(stories: int, last_sid: int) -> tuple[int, int, int]:
    """The sids a replica of ``stories`` slots serves, gaps included (what ``-a sids=`` asks for), and
    how many stories it has."""
    model = Replica(ReplicaConfig(stories=stories, last_sid=last_sid))
    sids = model.sids() + model.gap_sids()
    return min(sids), max(sids), len(model.sids())


def crawl_env(server: ReplicaServer) -> dict[str, str]:
    """The environment of a benchmark crawl of ``server`` (the bench's modules importable)."""
    return {
        **os.environ,
        "SOLIDOT_BASE_URL": server.base_url,
        "SOLIDOT_RESOLVE": f"{DOMAIN}=127.0.0.1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])),
    }


def main() -> None:
    options = bench_options(10_000)
    low, high, stories = sid_range(options.stories, options.last_sid)
    runs: list[Run] = []
    with replica_server(options.stories, options.last_sid) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = crawl_env(server)
        for round_no in range(options.rounds):
            stats, cpu = work / f"solidot-{round_no}.json", work / f"solidot-{round_no}.cpu"
            extra = {"SOLIDOT_STATS_FILE": str(stats), "BENCH_CPU_FILE": str(cpu), **CPU_CLOCK}
            solidot = solidot_crawl(work, "solidot", low, high, extra)
            runs.append(run_measured("solidot", solidot, ROOT, env, stats, cpu))
            stats, cpu = work / f"plain-{round_no}.json", work / f"plain-{round_no}.cpu"
            plain = [
                sys.executable,
                "-m",
                "scrapy",
                "runspider",
                str(ROOT / "bench" / "plain_spider.py"),
                "-a",
                f"base=http://127.0.0.1:{server.port}",
                "-a",
                f"low={low}",
                "-a",
                f"high={high}",
                "-a",
                f"stats_file={stats}",
                "-O",
                str(work / "plain.jsonl"),
                *settings_args({**SPEED_SETTINGS, "BENCH_CPU_FILE": str(cpu), **CPU_CLOCK}),
            ]
            runs.append(run_measured("plain", plain, work, env, stats, cpu))

    print(f"replica: {options.stories} sid slots, {stories} stories; {options.rounds} rounds, alternating")
    print_runs(runs)
    solidot_rate, plain_rate = median_rate(runs, "solidot"), median_rate(runs, "plain")
    print(
        f"median pages/s: solidot {solidot_rate:.1f}, plain {plain_rate:.1f}, "
        f"ratio {solidot_rate / plain_rate:.2f}x"
    )
    solidot_cpu, plain_cpu = median_cpu(runs, "solidot"), median_cpu(runs, "plain")
    print(
        f"median CPU ms/page: solidot {solidot_cpu:.2f}, plain {plain_cpu:.2f}, "
        f"ratio (plain/solidot) {plain_cpu / solidot_cpu:.2f}x"
    )
    print(
        "peak RSS MB: solidot "
        f"{max(r.peak_rss_mb for r in runs if r.name == 'solidot'):.1f}, "
        f"plain {max(r.peak_rss_mb for r in runs if r.name == 'plain'):.1f}"
    )


if __name__ == "__main__":
    main()
