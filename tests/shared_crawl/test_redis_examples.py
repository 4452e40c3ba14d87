"""The examples on the shared crawl, as their users run them.

``examples/redis_project`` is a stock scrapy-redis project: its spiders are scrapy-redis's installed
``RedisSpider`` and ``RedisCrawlSpider`` and Scrapy's ``CrawlSpider``, its pipeline scrapy-redis's
``RedisPipeline``; three workers crawl a local site of linked pages, one is SIGKILLed mid-crawl, and
every page must end up in ``<spider>:items`` once. Each example's README (``redis_project``,
``links_project``) is run as written: its shell block, line by line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import metric_samples, wait_for
from link_site import LinkSite, link_site

from scrapy_sharedcrawl.testing.redis_server import RedisServer

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "redis_project"
BIN = Path(sys.executable).parent
#: Short leases (a killed worker's requests come back fast) and quick polls.
WORKER_SETTINGS = {
    "SCHEDULER_LEASE_SECONDS": "3",
    "SCHEDULER_IDLE_POLL_MAX": "1",
    "SCHEDULER_WAIT_FOR_SEED": "60",
}


def environment(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "REDIS_URL": redis_url, **extra}


def start_worker(
    spider: str, name: str, workdir: Path, redis_url: str, *args: str
) -> subprocess.Popen[bytes]:
    command = [str(BIN / "scrapy"), "crawl", spider, "-O", str(workdir / f"{name}.jsonl"), *args]
    for setting, value in {**WORKER_SETTINGS, "LOG_FILE": str(workdir / f"{name}.log")}.items():
        command += ["-s", f"{setting}={value}"]
    return subprocess.Popen(command, cwd=PROJECT, env=environment(redis_url), stdout=subprocess.DEVNULL)


def items(client: object, spider: str) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in client.lrange(f"{spider}:items", 0, -1)]  # type: ignore[attr-defined]


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


@contextmanager
def workers(
    spider: str, workdir: Path, redis_url: str, *args: str
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    running = {
        name: start_worker(spider, name, workdir, redis_url, *args) for name in ("victim", "two", "three")
    }
    try:
        yield running
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


#: (spider, how it is fed, extra arguments): scrapy-redis's formats and key kinds, and start_urls.
FEEDS = [
    ("pages", "url", ()),
    ("pages", "json", ()),
    ("rules", "set", ("-s", "REDIS_START_URLS_AS_SET=True", "-s", "MAX_IDLE_TIME_BEFORE_CLOSE=60")),
    ("crawl", "start_urls", ()),
]


@pytest.mark.parametrize(("spider", "feed", "args"), FEEDS, ids=[f"{s}-{f}" for s, f, _ in FEEDS])
def test_every_page_is_an_item_though_a_worker_is_killed(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer, spider: str, feed: str, args: tuple[str, ...]
) -> None:
    with link_site(pages=150, delay=0.3) as site, redis_srv.client() as client:
        if spider == "crawl":
            args = (*args, "-a", f"site={site.base_url}")
        with workers(spider, tmp_path, redis_srv.url, *args) as running:
            wait_for(lambda: client.zcard(f"{{{spider}}}:workers") == 3, timeout=60, what="three workers up")
            if feed == "url":
                client.lpush("pages_feed:urls", f"{site.base_url}/")
            elif feed == "json":
                entry = {"url": f"{site.base_url}/", "meta": {"tag": "from-json"}}
                client.lpush("pages_feed:urls", json.dumps(entry))
            elif feed == "set":
                client.sadd("rules:start_urls", f"{site.base_url}/")
            wait_for(lambda: lines(tmp_path / "victim.jsonl") >= 5, timeout=90, what="the victim mid-crawl")
            running["victim"].kill()  # SIGKILL: no cleanup of any kind
            running["victim"].wait(timeout=30)
            expected = site.urls()
            wait_for(
                lambda: {i["url"] for i in items(client, spider)} >= expected, timeout=180, what="every page"
            )
            if spider == "pages":  # a RedisSpider never closes on idle: SIGTERM, as its users stop it
                for name in ("two", "three"):
                    running[name].send_signal(signal.SIGTERM)
            codes = [running[name].wait(timeout=120) for name in ("two", "three")]
            stored = items(client, spider)
            left = client.llen("pages_feed:urls") + client.scard("rules:start_urls")
            leased = client.zcard(f"{{{spider}}}:requests:holders")  # a worker holding any lease
    logs = {name: (tmp_path / f"{name}.log").read_text(encoding="utf-8") for name in ("two", "three")}
    assert codes == [0, 0], logs
    found = Counter(str(item["url"]) for item in stored)
    assert set(found) == expected, logs  # every page, nothing from elsewhere
    # exactly once: the victim's unacknowledged pages were crawled again, their items pushed only then
    assert max(found.values()) == 1, found.most_common(3)
    assert left == 0 and leased == 0  # the entry left its key; no lease is left behind
    assert all("Traceback" not in log for log in logs.values()), logs
    if feed == "json":
        assert {item.get("tag") for item in stored if item["url"] == f"{site.base_url}/"} == {"from-json"}, (
            stored[:3]
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def readme_commands(readme: Path) -> list[str]:
    """The first ``sh`` block of a README, one command per line."""
    block = re.search(r"```sh\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    assert block is not None, f"{readme} has no sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


@contextmanager
def readme_run(tmp_path: Path, project: str, redis_srv: RedisServer) -> Iterator[ReadmeRun]:
    """The ``sh`` block of ``examples/<project>/README.md`` run line by line, as a newcomer runs it, in
    a copy of the examples (their output files stay out of the checkout): ``export`` lines give way to
    the test's own Redis and port, a line ending in ``&`` starts in the background (the site first,
    answering; each ``scrapy crawl`` worker registered before the next line), every other line runs
    to its end, its output kept. Background processes still running at the end are killed."""
    examples = tmp_path / "examples"
    shutil.copytree(PROJECT.parent, examples, ignore=shutil.ignore_patterns("__pycache__"))
    where = examples / project
    env = environment(redis_srv.url, SITE_PORT=str(free_port()), DASHBOARD_PORT=str(free_port()))
    run = ReadmeRun(where, env, LinkSite(f"http://127.0.0.1:{env['SITE_PORT']}", 200))
    try:
        for command in readme_commands(where / "README.md"):
            if command.startswith("export "):
                name = command.split()[1].split("=")[0]
                assert env[name], command
                continue
            if command.endswith("&"):
                log = (tmp_path / f"background-{len(run.background)}.log").open("wb")
                run.background.append(
                    subprocess.Popen(["bash", "-c", command[:-1]], cwd=where, env=env, stdout=log, stderr=log)
                )
                if command.startswith("python ../link_site.py"):
                    wait_for(lambda: _serving(run.site.base_url), timeout=30, what="the example site")
                if command.startswith("sharedcrawl dashboard"):
                    metrics = f"http://127.0.0.1:{env['DASHBOARD_PORT']}/metrics"
                    wait_for(lambda url=metrics: _serving(url), timeout=60, what="the dashboard")
                if command.startswith("scrapy crawl "):  # up and waiting before the next step
                    run.workers.append(run.background[-1])
                    spider, started = command.split()[2], len(run.workers)
                    with redis_srv.client() as client:
                        wait_for(
                            lambda key=f"{{{spider}}}:workers", n=started: client.zcard(key) == n,
                            timeout=60,
                            what="workers",
                        )
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=where, env=env, capture_output=True, timeout=60
            )
            assert done.returncode == 0, (command, done.stderr)
            run.outputs[command] = done.stdout.decode().strip()
        yield run
    finally:
        for process in run.background:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@dataclass
class ReadmeRun:
    where: Path
    env: dict[str, str]
    site: LinkSite
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)  # the `scrapy crawl` ones
    outputs: dict[str, str] = field(default_factory=dict)  # by command

    def output(self, start: str) -> str:
        (found,) = [output for command, output in self.outputs.items() if command.startswith(start)]
        return found


def test_the_redis_examples_readme_runs_as_written(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    with readme_run(tmp_path, "redis_project", redis_srv) as run:
        (watch,) = [command for command in run.outputs if "llen pages:items" in command]

        def crawled() -> bool:
            counted = subprocess.run(["bash", "-c", watch], cwd=run.where, env=run.env, capture_output=True)
            return counted.stdout.decode().strip() == str(len(run.site.urls()))

        wait_for(crawled, timeout=180, interval=0.5, what="201 items")
        for process in run.workers:  # stopped as the README says, with SIGTERM
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=120) for process in run.workers]
    assert codes == [0, 0]
    assert run.output('redis-cli -u "$REDIS_URL" lpush') == "1"  # the key held the URL until it was queued
    status = run.output("sharedcrawl status")  # the framework's status, read from Redis
    assert status.startswith(f"pages crawl at {redis_url}") and "workers    2 live" in status, status
    assert_metrics(run.output("curl "), live=2)
    with redis_srv.client() as client:
        urls = Counter(json.loads(raw)["url"] for raw in client.lrange("pages:items", 0, -1))
    assert set(urls) == run.site.urls() and max(urls.values()) == 1  # each page once


def test_the_links_examples_readme_runs_as_written(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    with readme_run(tmp_path, "links_project", redis_srv) as run:
        codes = [process.wait(timeout=180) for process in run.workers]  # they close by themselves
    assert codes == [0, 0]
    assert run.output('redis-cli -u "$REDIS_URL" lpush') == "1"
    assert run.output("sharedcrawl status").startswith(f"links crawl at {redis_url}")
    assert_metrics(run.output("curl "))
    found = Counter(
        json.loads(line)["url"]
        for name in ("worker-1.jsonl", "worker-2.jsonl")
        for line in (run.where / name).read_text(encoding="utf-8").splitlines()
    )
    assert set(found) == run.site.urls() and max(found.values()) == 1  # shared: each page once


def assert_metrics(text: str, live: int | None = None) -> None:
    """What the README's ``curl …/metrics | grep '^sharedcrawl_'`` printed: the dashboard's Prometheus
    samples, read from the crawl's Redis."""
    samples = metric_samples(text)
    assert samples["sharedcrawl_dashboard_redis_up"] == 1, text
    assert "sharedcrawl_pages_total" in samples and "sharedcrawl_queued" in samples, text
    if live is not None:
        assert samples["sharedcrawl_workers{state=live}"] == live, text


def _serving(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url if url.endswith("/metrics") else f"{url}/", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
