"""The dashboard in a real browser (Debian's chromium, headless, through Selenium) watching a real
crawl of the replica by three workers: no console errors, the numbers ``status --json``, /metrics and
MongoDB give (what pages came to among them), charts with points (the first split by outcome), a
SIGKILLed worker shown as gone and its alert, and "finished" at the end.
Screenshots go to ``test-artifacts/dashboard/`` (ignored by git)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from cluster import cluster
from harness import ROOT, metric_samples, read_line, replica_server, wait_for
from mongo_server import MongoServer
from pymongo import MongoClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from scrapy_sharedcrawl.dashboard.state import error_kinds
from scrapy_sharedcrawl.timeseries import series_fields
from solidot_spider.cli import project_settings

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
HEARTBEAT = 1.0
REFRESH = 0.25
STORIES, LAST_SID = 300, 80300
SIDS = 120
SETTINGS = {
    "STATS_PUSH_INTERVAL": "0.5",
    "WORKER_HEARTBEAT": str(HEARTBEAT),
    "CLUSTER_HOST_RATE": "0",
    "CONCURRENT_REQUESTS": "4",
}
#: Flags that work here: no sandbox (root in a container), no GPU, nothing fetched from the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2000",
)


@contextmanager
def dashboard(redis_url: str, mongo_uri: str, database: str, *options: str, **env: str) -> Iterator[str]:
    """``solidot-crawl dashboard`` on a free port; its URL."""
    command = [
        sys.executable,
        "-m",
        "solidot_spider.cli",
        "dashboard",
        "--port",
        "0",
        "--redis-url",
        redis_url,
    ]
    if mongo_uri:
        command += ["--mongo-uri", mongo_uri]
    environment = {**os.environ, "MONGO_DATABASE": database, **env}
    process = subprocess.Popen(
        [*command, *options], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    try:
        line = read_line(process, timeout=60)
        assert line.startswith("dashboard at http://"), line
        yield line.split(" at ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver: webdriver.Chrome) -> dict[str, Any]:
    """What the page shows: the figures' raw values, the phase, the workers' rows, the charts' points."""
    values = driver.execute_script(
        """
        const out = {};
        for (const el of document.querySelectorAll('[data-value]')) out[el.id] = el.dataset.value;
        out.phase = document.getElementById('phase').dataset.phase;
        out.workers = [...document.querySelectorAll('#workers tbody tr')].map(
            (tr) => ({pid: Number(tr.dataset.pid), state: tr.dataset.state}));
        out.charts = Object.fromEntries([...document.querySelectorAll('.chart')].map(
            (el) => [el.id, Number(el.dataset.points)]));
        out.canvases = document.querySelectorAll('.chart canvas').length;
        out.split = document.getElementById('chart-outcomes').dataset.series;
        out.outcomes = Object.fromEntries([...document.querySelectorAll('#outcomes tr[data-outcome]')].map(
            (tr) => [tr.dataset.outcome, tr.dataset.count]));
        out.alerts = [...document.querySelectorAll('#alerts [data-rule]')].map(
            (el) => ({rule: el.dataset.rule, message: el.textContent}));
        out.polls = Number(document.body.dataset.polls || 0);
        return out;
        """
    )
    return dict(values)


def status_json(redis_url: str, mongo_uri: str, database: str) -> dict[str, Any]:
    """``solidot-crawl status --json``, counting items in the crawl's MongoDB database."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "solidot_spider.cli",
            "status",
            "--json",
            "--redis-url",
            redis_url,
            "--mongo-uri",
            mongo_uri,
        ],
        cwd=ROOT,
        env={**os.environ, "MONGO_DATABASE": database},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def number(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def metrics(url: str) -> dict[str, float]:
    """/metrics parsed with prometheus-client's own parser: sample name{labels} → value."""
    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        text = response.read().decode()
    return metric_samples(text)


def redis_reading(client: redis.Redis, mongo: MongoClient[dict[str, Any]], database: str) -> tuple[Any, ...]:
    pipe = client.pipeline(transaction=True)
    pipe.get("{solidot}:requests:count")
    pipe.get("{solidot}:requests:leased")
    pipe.hmget("{solidot}:stats", "scheduler/acked", "scheduler/acked/late", "response_received_count")
    queued, leased, (acked, late, pages) = pipe.execute()
    stories = mongo[database]["stories"].count_documents({})
    return int(queued or 0), int(leased or 0), int(acked or 0) + int(late or 0), int(pages or 0), stories


def page_reading(page: dict[str, Any]) -> tuple[Any, ...]:
    """The page's figures in :func:`redis_reading`'s order."""
    return tuple(number(page[name]) for name in ("queued", "leased", "done", "pages", "items"))


def outcomes_agree(page: dict[str, Any], status: dict[str, Any], prom: dict[str, float]) -> bool:
    """The page's table of what pages came to, ``status --json``'s and /metrics' are the same."""
    from_prom = {
        name.removeprefix("sharedcrawl_outcome_pages_total{outcome=").removesuffix("}"): int(value)
        for name, value in prom.items()
        if name.startswith("sharedcrawl_outcome_pages_total{")
    }
    from_page = {name: number(value) for name, value in page["outcomes"].items()}
    return bool(status["outcomes"]) and from_page == status["outcomes"] == from_prom


def agree(page: dict[str, Any], status: dict[str, Any], prom: dict[str, float]) -> bool:
    """The page, ``status --json`` and /metrics show the same crawl."""
    pairs = [
        (number(page["queued"]), status["queued"], prom.get("sharedcrawl_queued")),
        (number(page["leased"]), status["leased"], prom.get("sharedcrawl_leased")),
        (number(page["done"]), status["done"], prom.get("sharedcrawl_done_total")),
        (number(page["pages"]), status["pages"], prom.get("sharedcrawl_pages_total")),
        (number(page["items"]), status["items"], prom.get("sharedcrawl_items")),
        (number(page["dead"]), status["dead_letters"], prom.get("sharedcrawl_dead_letters")),
        (number(page["workers-live"]), len(status["workers"]), prom.get("sharedcrawl_workers{state=live}")),
    ]
    return all(a == b == c for a, b, c in pairs)


def test_the_dashboard_in_a_browser_follows_a_crawl_by_three_workers_to_its_end(
    tmp_path: Path, redis_url: str, mongo: MongoServer, mongo_db_name: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(redis_url)
    store: MongoClient[dict[str, Any]] = MongoClient(mongo.uri, serverSelectionTimeoutMS=5000)
    # story pages take 2 s each: between waves of responses the crawl stands still, to be compared
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=2") as server,
        cluster(server, tmp_path / "crawl", redis_url, mongo.uri, mongo_db_name, **SETTINGS) as crawl,
        dashboard(redis_url, mongo.uri, mongo_db_name, "--refresh", str(REFRESH)) as url,
        chromium(tmp_path / "profile") as driver,
    ):
        seeded = crawl.seed("--sids", f"{LAST_SID - SIDS + 1}-{LAST_SID}")
        assert seeded.returncode == 0, seeded.stderr
        workers = [crawl.start_worker(f"w{i}") for i in range(3)]
        pids = sorted(worker.process.pid for worker in workers)
        driver.get(url)
        wait_for(
            lambda: (
                (page := shown(driver))["phase"] == "crawling"
                and sorted(w["pid"] for w in page["workers"] if w["state"] == "live") == pids
            ),
            timeout=90,
            what="three live workers crawling on the page",
        )

        wait_for(
            lambda: redis_reading(client, store, mongo_db_name)[4] >= 12, timeout=60, what="12 stories stored"
        )
        # hold the site still (SIGSTOP the replica): no response arrives, Redis stops moving
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            readings = [redis_reading(client, store, mongo_db_name)]

            def redis_stands_still() -> bool:
                readings.append(redis_reading(client, store, mongo_db_name))
                return len(readings) >= 10 and len(set(readings[-10:])) == 1  # the same for 10 reads

            wait_for(redis_stands_still, timeout=30, interval=0.1, what="Redis standing still")
            still = readings[-1]
            wait_for(
                lambda: page_reading(shown(driver)) == still,
                timeout=15,
                what=f"the page showing {still}",
            )
            page, status, prom = shown(driver), status_json(redis_url, mongo.uri, mongo_db_name), metrics(url)
            assert redis_reading(client, store, mongo_db_name) == still
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert agree(page, status, prom), (page, status, prom)
        assert outcomes_agree(page, status, prom), (page, status, prom)
        assert (status["queued"], status["leased"], status["done"], status["pages"], status["items"]) == still
        assert 0 < still[2] < SIDS and still[1] > 0, still  # mid-crawl, requests in flight
        wait_for(
            lambda: all(points >= 3 for points in shown(driver)["charts"].values()),
            timeout=60,
            what="points on every chart",
        )
        assert shown(driver)["canvases"] == 5
        # the first chart: pages per minute split by what they came to (the same outcomes as status')
        wait_for(
            lambda: "story_new" in shown(driver)["split"].split(","),
            timeout=60,
            what="story_new among the first chart's series",
        )
        driver.save_screenshot(str(ARTIFACTS / "crawling.png"))

        victim = workers[0]
        victim.process.kill()  # SIGKILL: no goodbye, its heartbeats just stop
        killed_at = time.monotonic()
        victim.process.wait(timeout=10)
        wait_for(
            lambda: (
                {w["pid"]: w["state"] for w in shown(driver)["workers"]}.get(victim.process.pid) == "gone"
            ),
            timeout=30,
            interval=0.05,
            what="the killed worker shown as gone",
        )
        gone_after = time.monotonic() - killed_at
        # gone once three heartbeats are missed; the page polls every REFRESH and the server reads as
        # often: 4.5 s on an idle machine, as much again allowed for a busy one (the point: the
        # heartbeats tell, not a lease's expiry or a timeout of tens of seconds)
        assert gone_after <= 2 * (3 * HEARTBEAT + 4 * REFRESH + 0.5), gone_after
        # the alert names it, on the page, in status and in /metrics
        wait_for(
            lambda: any(alert["rule"] == "worker_gone" for alert in shown(driver)["alerts"]),
            timeout=30,
            what="the worker_gone alert on the page",
        )
        driver.save_screenshot(str(ARTIFACTS / "worker-gone.png"))
        gone_alerts = [a for a in shown(driver)["alerts"] if a["rule"] == "worker_gone"]
        assert f"pid {victim.process.pid} gone" in gone_alerts[0]["message"], gone_alerts
        assert any(
            a["rule"] == "worker_gone" for a in status_json(redis_url, mongo.uri, mongo_db_name)["alerts"]
        )
        wait_for(
            lambda: metrics(url).get("sharedcrawl_alerts{rule=worker_gone}", 0) >= 1,
            timeout=30,
            what="the worker_gone alert in /metrics",
        )

        for worker in workers[1:]:
            assert worker.wait(timeout=180) == 0, crawl.logs()
        wait_for(lambda: shown(driver)["phase"] == "finished", timeout=30, what='"finished" on the page')
        polls = shown(driver)["polls"]
        wait_for(lambda: shown(driver)["polls"] >= polls + 2, timeout=10, what="two fresh polls")
        driver.save_screenshot(str(ARTIFACTS / "finished.png"))
        page, status, prom = shown(driver), status_json(redis_url, mongo.uri, mongo_db_name), metrics(url)
        logs = driver.get_log("browser")

    stories = store[mongo_db_name]["stories"].count_documents({})
    assert status["state"] == "finished"
    assert agree(page, status, prom), (page, status, prom)
    # the killed worker's last pages may have no outcome (its stats were never pushed): no sum checked
    assert outcomes_agree(page, status, prom) and status["outcomes"]["story_new"] > 0, (page, status, prom)
    assert number(page["items"]) == status["items"] == stories > 0
    assert number(page["seen"]) == status["seen"] == prom["sharedcrawl_seen_urls"]
    assert number(page["fraction"]) == status["progress"] == prom["sharedcrawl_progress_ratio"] == 1.0
    assert prom["sharedcrawl_phase{phase=finished}"] == 1.0
    assert {k: v for k, v in prom.items() if k.startswith("sharedcrawl_errors_total")} == {
        f"sharedcrawl_errors_total{{kind={kind}}}": value
        for kind, value in error_kinds(status["stats"], series_fields(project_settings())).items()
    }
    assert number(page["stories"]) == stories == prom["solidot_archive_stories"]
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == [], logs
    print(json.dumps({"gone_after_s": round(gone_after, 2), "screenshots": str(ARTIFACTS)}))
