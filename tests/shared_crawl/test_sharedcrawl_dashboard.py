"""``sharedcrawl dashboard`` is the framework's: a plain Scrapy project (``examples/links_project``)
crawled by a real worker, then its dashboard run as a subprocess that cannot import the Solidot
project. ``/metrics``, parsed with prometheus-client's own parser, says what Redis holds; the
project's panel and metrics come through ``CrawlReport.view``; a report that raises costs its panel
only (and leaks no password); beyond loopback the token is required."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from harness import metric_samples, read_line, wait_for
from link_site import link_site
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.dashboard import dashboard_token
from scrapy_sharedcrawl.legacy import apply_legacy_names
from scrapy_sharedcrawl.testing.redis_server import RedisServer

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "links_project"
TOKEN = "a-token-of-the-framework-0123456789"
SECRET = "hunter2-store-secret"
#: Run a framework command in a process where importing the Solidot project fails.
WITHOUT_SOLIDOT = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("solidot_spider", "solidot_replica"):
            raise ImportError(f"{name} is blocked: the framework must not need it")
        return None

sys.meta_path.insert(0, Blocked())
from scrapy_sharedcrawl.cli import main
sys.argv[0] = "sharedcrawl"
sys.exit(main())
"""
#: The test project's reports: one with a panel and metrics, one that raises.
REPORTS = f"""
from scrapy_sharedcrawl.report import CrawlReport, Figure, Link, Panel, ProjectMetric, ProjectView, Table


class LinksReport(CrawlReport):
    metric_prefix = "links_"

    def view(self, stats, crawl):
        pages = int(stats.get("response_received_count", 0))
        items = int(stats.get("item_scraped_count", 0))
        panel = Panel(
            "links",
            figures=[Figure("link-pages", "pages linked", pages), Figure("link-state", "unknown", None)],
            tables=[Table("by-kind", "items by kind", {{"page": items, "none": 0}})],
            links_title="the site",
            links=[Link("home", "http://127.0.0.1/", "first page"), Link("script", "javascript:alert(1)")],
        )
        metrics = [
            ProjectMetric("links_pages", "pages the links spider saw", {{"": pages}}),
            ProjectMetric("links_items", "items by kind", {{"page": items}}, "kind", counter=True),
        ]
        return ProjectView(panel, metrics)


class RaisingReport(CrawlReport):
    metric_prefix = "links_"

    def view(self, stats, crawl):
        raise RuntimeError("store at mongodb://crawler:{SECRET}@db.internal:27017/links is unreachable")
"""


def project(tmp_path: Path, report: str) -> Path:
    """The links project with ``CRAWL_REPORT_CLASS`` set to one of :data:`REPORTS`."""
    (tmp_path / "links_reports.py").write_text(REPORTS, encoding="utf-8")
    (tmp_path / "links_test_settings.py").write_text(
        f"from links_project.settings import *\nCRAWL_REPORT_CLASS = 'links_reports.{report}'\n",
        encoding="utf-8",
    )
    return tmp_path


def environment(where: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "DASHBOARD_TOKEN" not in key}
    return {
        **env,
        "PYTHONPATH": os.pathsep.join([str(where), str(PROJECT), os.environ.get("PYTHONPATH", "")]),
        "SCRAPY_SETTINGS_MODULE": "links_test_settings",
        "REDIS_URL": redis_url,
        **extra,
    }


def crawl(tmp_path: Path, redis_url: str, client: redis.Redis, pages: int = 20) -> None:
    """The links project crawled to its end by one real worker."""
    with link_site(pages=pages) as site:
        client.lpush("links:start_urls", f"{site.base_url}/")
        command = [sys.executable, "-m", "scrapy", "crawl", "links", "-s", "SCHEDULER_WAIT_FOR_SEED=60"]
        command += ["-s", "LOG_LEVEL=INFO", "-s", f"LOG_FILE={tmp_path / 'worker.log'}"]
        env = environment(tmp_path, redis_url, SCRAPY_SETTINGS_MODULE="links_project.settings")
        done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]


@contextmanager
def dashboard(where: Path, redis_url: str, *options: str, **env: str) -> Iterator[tuple[str, Any]]:
    """``sharedcrawl dashboard`` (Solidot blocked) on a free port: its URL and process."""
    command = [
        sys.executable,
        "-c",
        WITHOUT_SOLIDOT,
        "dashboard",
        "--port",
        "0",
        "--refresh",
        "0.5",
        *options,
    ]
    process = subprocess.Popen(
        command,
        cwd=where,
        env=environment(where, redis_url, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, timeout=60)
        assert line.startswith("dashboard at http://"), (line, process.stderr and process.stderr.read())
        yield line.split(" at ", 1)[1].strip(), process
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def metrics(url: str, token: str = "") -> dict[str, float]:
    """/metrics parsed with prometheus-client's parser: ``name{label=value}`` → value."""
    status, body = get(url + "metrics", token)
    assert status == 200, body
    return metric_samples(body.decode())


def state(url: str) -> dict[str, Any]:
    status, body = get(url + "api/state")
    assert status == 200, body
    return dict(json.loads(body))


def status_json(where: Path, redis_url: str) -> dict[str, Any]:
    command = [sys.executable, "-c", WITHOUT_SOLIDOT, "status", "--json"]
    env = environment(where, redis_url)
    done = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_metrics_match_redis_and_the_projects_panel_comes_through_its_report(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    where = project(tmp_path, "LinksReport")
    with redis_srv.client() as client:
        crawl(tmp_path, redis_url, client)
        stats = dict(client.hgetall("{links}:stats"))
        queued, leased = (
            int(client.get("{links}:requests:count") or 0),
            int(client.get("{links}:requests:leased") or 0),
        )
    pages, items = int(stats["response_received_count"]), int(stats["item_scraped_count"])
    done = int(stats.get("scheduler/acked", 0)) + int(stats.get("scheduler/acked/late", 0))
    assert pages >= 21 and items == pages and queued == leased == 0

    with dashboard(where, redis_url) as (url, _):
        wait_for(lambda: state(url)["crawl"]["phase"] == "finished", timeout=60, what="a finished crawl")
        prom, shown = metrics(url), state(url)
    assert prom["sharedcrawl_pages_total"] == pages
    assert prom["sharedcrawl_done_total"] == done > 0
    assert prom["sharedcrawl_items"] == items
    assert prom["sharedcrawl_queued"] == prom["sharedcrawl_leased"] == 0
    assert prom["sharedcrawl_progress_ratio"] == 1.0
    assert prom["sharedcrawl_phase{phase=finished}"] == 1.0
    assert prom["sharedcrawl_workers{state=live}"] == 0
    assert prom["sharedcrawl_dashboard_redis_up"] == 1.0
    outcomes = {k: v for k, v in prom.items() if k.startswith("sharedcrawl_outcome_pages_total")}
    assert sum(outcomes.values()) == pages
    # the project's own metrics, under its prefix, and nothing of Solidot's
    assert prom["links_pages"] == pages and prom["links_items_total{kind=page}"] == items
    assert not [name for name in prom if name.startswith("solidot")]
    panel = shown["project"]["panel"]
    assert shown["project"]["error"] is None and panel["title"] == "links"
    assert panel["figures"] == [
        {"key": "link-pages", "label": "pages linked", "value": pages},
        {"key": "link-state", "label": "unknown", "value": None},
    ]
    assert panel["tables"] == [
        {"key": "by-kind", "title": "items by kind", "rows": {"page": items, "none": 0}}
    ]
    assert [link["url"] for link in panel["links"]] == ["http://127.0.0.1/", None]  # no javascript: link

    # status shows the same panel: in --json and in text
    reading = status_json(where, redis_url)
    assert reading["project"]["panel"] == panel and reading["state"] == "finished"
    env = environment(where, redis_url)
    text = subprocess.run(
        [sys.executable, "-c", WITHOUT_SOLIDOT, "status"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    at = lines.index("links")
    assert lines[at + 1] == f"  pages linked {pages:,} · unknown –"
    assert lines[at + 2] == f"  items by kind: page {items:,} · none 0"
    assert lines[at + 3 :] == ["  the site:", "    home (first page)", "    script"]


def test_a_report_that_raises_costs_its_panel_only_and_leaks_no_password(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    where = project(tmp_path, "RaisingReport")
    with redis_srv.client() as client:
        crawl(tmp_path, redis_url, client, pages=5)
        pages = int(client.hget("{links}:stats", "response_received_count") or 0)
    with dashboard(where, redis_url) as (url, process):
        wait_for(lambda: state(url)["crawl"]["phase"] == "finished", timeout=60, what="a finished crawl")
        shown, prom = state(url), metrics(url)
        wait_for(lambda: state(url)["refreshed_at"] != shown["refreshed_at"], timeout=30, what="a refresh")
    _, errors = process.communicate(timeout=30)
    assert shown["error"] is None and shown["counts"]["pages"] == pages > 0  # the rest is read
    assert shown["project"]["panel"] is None and shown["project"]["metrics"] == []
    assert "RuntimeError" in shown["project"]["error"] and SECRET not in json.dumps(shown)
    assert prom["sharedcrawl_pages_total"] == pages
    assert not [name for name in prom if name.startswith("links_")]
    # logged once (not at every refresh), redacted, without a traceback
    assert errors.count("RaisingReport failed") == 1, errors
    assert SECRET not in errors and "Traceback" not in errors, errors
    reading = status_json(where, redis_url)
    assert reading["project"]["panel"] is None and "RuntimeError" in reading["project"]["error"]
    assert SECRET not in json.dumps(reading)


def test_beyond_loopback_the_token_is_required(tmp_path: Path, redis_url: str) -> None:
    where = project(tmp_path, "LinksReport")
    command = [sys.executable, "-c", WITHOUT_SOLIDOT, "dashboard", "--host", "0.0.0.0", "--port", "0"]
    refused = subprocess.run(
        command, cwd=where, env=environment(where, redis_url), capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without a token" in refused.stderr
    with dashboard(where, redis_url, "--host", "0.0.0.0", SHAREDCRAWL_DASHBOARD_TOKEN=TOKEN) as (url, _):
        base = url.replace("0.0.0.0", "127.0.0.1")
        for route in ("", "api/state", "metrics"):
            assert get(base + route)[0] == 401, route
            assert get(base + route, "not-the-token-at-all-000")[0] == 401, route
        status, body = get(base + "metrics", TOKEN)
        assert status == 200 and b"sharedcrawl_dashboard_redis_up 1.0" in body
        assert TOKEN.encode() not in body and TOKEN.encode() not in get(base + "api/state", TOKEN)[1]


def test_the_token_setting_comes_first_then_the_environment_and_an_old_name_is_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHAREDCRAWL_DASHBOARD_TOKEN", raising=False)
    assert dashboard_token(Settings()) == ""
    monkeypatch.setenv("SHAREDCRAWL_DASHBOARD_TOKEN", "from-env")
    assert dashboard_token(Settings()) == "from-env"
    assert dashboard_token(Settings({"DASHBOARD_TOKEN": " set "})) == "set"
    # a project's old name of it (RENAMED_SETTINGS) is carried over to the setting, as the commands do
    settings = Settings({"RENAMED_SETTINGS": {"GADGETS_TOKEN": "DASHBOARD_TOKEN"}, "GADGETS_TOKEN": "old"})
    with pytest.warns(ScrapyDeprecationWarning, match="GADGETS_TOKEN is deprecated: use DASHBOARD_TOKEN"):
        apply_legacy_names(settings)
    assert dashboard_token(settings) == "old"
