"""Test harness: a real replica server process and real ``scrapy crawl`` processes.

Nothing is mocked: the replica serves HTTP on a free loopback port, the crawler
resolves ``*.solidot.test`` to it through ``SOLIDOT_RESOLVE``, and results are
read back from the crawl's JSON Lines output and its stats file.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the framework's test helpers, re-exported for the project's tests that import them from here
from scrapy_sharedcrawl.testing.processes import assert_outcomes_add_up as assert_outcomes_add_up
from scrapy_sharedcrawl.testing.processes import read_line as read_line
from scrapy_sharedcrawl.testing.processes import wait_for as wait_for

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "solidot.test"

#: Politeness turned down for a local replica (the defaults are for the real site).
FAST_SETTINGS: dict[str, str] = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "HOST_BACKOFF_BASE": "0.05",
    "HOST_BACKOFF_MAX": "0.5",
    "LOG_LEVEL": "INFO",
}


@dataclass
class ReplicaServer:
    """A running replica process."""

    process: subprocess.Popen[str]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://www.{DOMAIN}:{self.port}"

    def stats(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/__replica__/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)


def docs_page(name: str) -> str:
    """The text of one documentation page, ``README`` or a page of ``docs/`` by its stem
    (``"settings"``): the tests that hold the docs to the code read them through here, so a section
    moved between pages moves one name in its test."""
    path = ROOT / "README.md" if name == "README" else ROOT / "docs" / f"{name}.md"
    return path.read_text(encoding="utf-8")


@contextmanager
def replica_server(
    stories: int = 300, last_sid: int = 80300, faults: str = "", extra: Sequence[str] = ()
) -> Iterator[ReplicaServer]:
    """Start ``python -m solidot_replica serve`` on a free port; stop it afterwards."""
    command = [
        sys.executable,
        "-m",
        "solidot_replica",
        "serve",
        "--stories",
        str(stories),
        "--last-sid",
        str(last_sid),
        "--domain",
        DOMAIN,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *extra,
    ]
    if faults:
        command += ["--faults", faults]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(process, timeout=60).strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"replica did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1])
        yield ReplicaServer(process=process, port=port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class CrawlResult:
    """What a finished crawl left behind."""

    returncode: int
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    log: str

    def by_sid(self) -> dict[int, dict[str, Any]]:
        return {item["sid"]: item for item in self.items}


def crawl_command(
    output: Path, spider_args: dict[str, str], settings: dict[str, str], append: bool = False
) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", "solidot", "-o" if append else "-O", str(output)]
    for name, value in spider_args.items():
        command += ["-a", f"{name}={value}"]
    for name, value in {**FAST_SETTINGS, **settings}.items():
        command += ["-s", f"{name}={value}"]
    return command


def crawl_env(server: ReplicaServer, stats_file: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SOLIDOT_BASE_URL": server.base_url,
        "SOLIDOT_RESOLVE": f"{DOMAIN}=127.0.0.1",
        "SOLIDOT_STATS_FILE": str(stats_file),
        "PYTHONWARNINGS": "error::DeprecationWarning:solidot_spider",
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_crawl(
    server: ReplicaServer,
    workdir: Path,
    spider_args: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
    timeout: float = 300,
) -> CrawlResult:
    """Run ``scrapy crawl solidot`` to completion against ``server``."""
    workdir.mkdir(parents=True, exist_ok=True)
    output, stats_file, log_file = workdir / "items.jsonl", workdir / "stats.json", workdir / "crawl.log"
    command = crawl_command(output, spider_args or {}, {"LOG_FILE": str(log_file), **(settings or {})})
    completed = subprocess.run(
        command, cwd=ROOT, env=crawl_env(server, stats_file), timeout=timeout, capture_output=True, text=True
    )
    log = (log_file.read_text(encoding="utf-8") if log_file.exists() else "") + completed.stderr
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    if stats.get("finish_reason") == "finished":
        assert_outcomes_add_up(stats)
    return CrawlResult(completed.returncode, read_jsonl(output), stats, log)


def run_status(redis_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``solidot-crawl status --redis-url URL OPTIONS`` as the operator runs it (its own process)."""
    return subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "status", "--redis-url", redis_url, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def metric_samples(text: str) -> dict[str, float]:
    """Prometheus text parsed with prometheus-client's own parser: ``name{label=value,…}`` → value."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def gaps(times: Sequence[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


#: How late a request may reach the replica after the time the limiter gave it: a worker's timer
#: firing late, the replica recording the arrival late (on a busy 2-core machine, 60 ms was seen at a
#: load of 10). Lateness never makes requests early, so over any stretch of requests it takes away
#: at most this much from the time they must span; a limiter that does not pace sends a stretch's
#: requests within a few ms, which no stretch longer than this allows.
LATE = 0.25


def assert_spaced(times: Sequence[float], interval: float) -> None:
    """No more requests in any stretch of time than one per ``interval`` allows: any ``k`` gaps in a
    row add up to at least ``k`` intervals, less :data:`LATE` (a request sent late lengthens the
    gap before it and shortens the one after it by as much)."""
    for first, earlier in enumerate(times):
        for steps, later in enumerate(times[first + 1 :], start=1):
            assert later - earlier >= steps * interval - LATE, (first, steps, later - earlier, gaps(times))
