"""The dashboard's parts: chart columns from the series, the crawl's phase, what it shows of untrusted
stories, its token in a real ``solidot-crawl dashboard`` process, and what its readings cost Redis.
(The page in a browser against a real crawl: test_dashboard_browser.py.)"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis
from cluster import monitoring
from harness import ROOT, wait_for
from test_dashboard_browser import dashboard

from scrapy_sharedcrawl.cli.status import Status
from scrapy_sharedcrawl.dashboard import auth
from scrapy_sharedcrawl.dashboard.charts import columns, rate_per_minute, thin
from scrapy_sharedcrawl.dashboard.state import bounded, crawl_phase
from scrapy_sharedcrawl.timeseries import Point
from solidot_spider.crawl.report import drops_by_reason, latest_stories

TOKEN = "a-long-enough-token-for-tests"


def point(t: float, **values: float) -> Point:
    return Point(f"{int(t * 1000)}-0", t, dict(values))


def test_rates_per_minute_from_totals_survive_thinning_and_counter_restarts() -> None:
    points = [point(60.0 * i, pages=100.0 * i, queued=50.0 - i) for i in range(11)]
    chart = columns(points)
    assert chart["time"] == [p.time for p in points]
    assert chart["pages_per_min"] == [None] + [100.0] * 10
    assert chart["queued"] == [50.0 - i for i in range(11)]
    thinned = columns(points, limit=4)
    assert thinned["time"][0] == 0.0 and thinned["time"][-1] == 600.0 and len(thinned["time"]) <= 5
    assert all(rate == 100.0 for rate in thinned["pages_per_min"][1:])  # exact averages between kept points
    restarted = columns([point(0, pages=500.0), point(60, pages=10.0), point(120, pages=70.0)])
    assert restarted["pages_per_min"] == [None, None, 60.0]
    assert rate_per_minute(points, "pages", window=120) == 100.0
    assert rate_per_minute(points[:1], "pages", window=120) is None
    assert [p.time for p in thin(points, 3)] == [0.0, 300.0, 600.0]


def status(**fields: Any) -> Status:
    base: dict[str, Any] = {
        "redis": "r",
        "spider": "solidot",
        "state": "running",
        "now": "",
        "started_at": None,
        "updated_at": None,
        "finished_at": None,
        "queued": 0,
        "leased": 0,
        "done": 0,
        "dead_letters": 0,
        "progress": None,
        "seen": None,
        "seen_exact": True,
        "items": 0,
        "items_source": "",
        "pages": 0,
        "pages_per_minute": None,
        "recent_minutes": [],
        "errors": {},
        "workers": [],
        "stats": {},
    }
    return Status(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "live", "seeded", "phase"),
    [
        ({}, False, False, "no crawl"),
        ({}, True, False, "waiting for a seed"),
        ({"queued": 5, "leased": 2}, True, True, "crawling"),
        ({"leased": 2}, True, True, "finishing"),
        ({}, True, True, "finishing"),
        ({"queued": 5}, False, True, "stalled"),
        ({"finished_at": "2026-01-01T00:00:00Z", "started_at": "x"}, False, False, "finished"),
        ({"started_at": "2026-01-01T00:00:00Z"}, False, False, "idle"),
    ],
)
def test_the_crawls_phase(fields: dict[str, Any], live: bool, seeded: bool, phase: str) -> None:
    assert crawl_phase(status(**fields), live, seeded) == phase


def test_stories_are_shown_as_text_and_only_http_links_kept() -> None:
    rows = latest_stories(
        [
            {"sid": 1, "title": "<img src=x onerror=alert(1)>", "url": "javascript:alert(1)"},
            {"sid": "2", "title": "a sid that is text"},
            {"sid": True, "title": "a sid that is a boolean"},
            {
                "sid": 3,
                "title": ["not", "text"],
                "url": "https://www.solidot.org/story?sid=3",
                "published_at": 5,
            },
        ]
    )
    assert rows == [
        {"sid": 1, "title": "<img src=x onerror=alert(1)>", "url": None, "published_at": None},
        {"sid": 3, "title": "", "url": "https://www.solidot.org/story?sid=3", "published_at": None},
    ]
    script = (
        ROOT / "sharedcrawl" / "scrapy_sharedcrawl" / "dashboard" / "static" / "dashboard.js"
    ).read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_reasons_stay_few() -> None:
    drops = drops_by_reason({"solidot/dropped/no_title": 2, "solidot/validate/dropped/bad_time": 1, "x": 5})
    assert drops == {"page/no_title": 2, "validate/bad_time": 1}
    many = {f"reason{i}": i for i in range(1, 41)}
    kept = bounded(many, limit=30)
    assert len(kept) == 31 and kept["other"] == sum(range(1, 11)) and "reason40" in kept


def test_the_token_check() -> None:
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1") and auth.is_loopback("localhost")
    assert not auth.is_loopback("0.0.0.0") and not auth.is_loopback("dashboard.internal")
    with pytest.raises(ValueError, match="without a token"):
        auth.check_token("0.0.0.0", "")
    with pytest.raises(ValueError, match="at least 16"):
        auth.check_token("127.0.0.1", "short")
    basic = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    assert auth.allowed(TOKEN, auth.presented(f"Basic {basic}", ""))
    assert auth.allowed(TOKEN, auth.presented(f"Bearer {TOKEN}", ""))
    assert not auth.allowed(TOKEN, auth.presented("Bearer wrong", "")) and not auth.allowed(TOKEN, [])
    assert not auth.allowed(TOKEN, auth.presented("Basic %%%", ""))
    assert auth.allowed(TOKEN, [], auth.cookie_value(TOKEN)) and not auth.allowed(TOKEN, [], TOKEN)
    assert auth.allowed("", [])  # no token (loopback): everyone on this machine


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: status, headers, body."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_bound_beyond_loopback_it_refuses_to_start_without_a_token(redis_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "solidot_spider.cli",
            "dashboard",
            "--host",
            "0.0.0.0",
            "--redis-url",
            redis_url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SOLIDOT_DASHBOARD_TOKEN": ""},
    )
    assert done.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without a token" in done.stderr


def test_bound_beyond_loopback_every_route_needs_the_token(redis_url: str) -> None:
    with dashboard(redis_url, "", "solidot", "--host", "0.0.0.0", SOLIDOT_DASHBOARD_TOKEN=TOKEN) as url:
        base = url.replace("0.0.0.0", "127.0.0.1")
        routes = ["", "api/state", "api/series", "metrics", "static/dashboard.js", "static/uPlot.iife.min.js"]
        for route in routes:
            code, headers, body = fetch(base + route)
            assert code == 401 and b"needs its token" in body, route
            assert headers["WWW-Authenticate"].startswith("Basic")
            assert fetch(base + route, {"Authorization": "Bearer not-the-token-at-all"})[0] == 401
            assert fetch(base + route, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, route
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        code, _, body = fetch(base + "api/state", {"Authorization": f"Basic {basic}"})
        assert code == 200 and json.loads(body)["crawl"]["phase"] == "no crawl"
        code, headers, _ = fetch(base + f"?token={TOKEN}")
        assert code == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        code, headers, page = fetch(base, {"Cookie": cookie})
        assert code == 200 and b"/static/dashboard.js" in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]


#: The first command of a refresh after its MULTI and TIME: the status reader's pipeline.
REFRESH_STARTS = '"GET" "{solidot}:requests:count"'


def refreshes(lines: list[str]) -> list[list[str]]:
    """The whole refreshes among MONITOR lines: from one refresh's start to the next's (a refresh
    begins with MULTI, TIME, then :data:`REFRESH_STARTS`); what comes before the first or after
    the last start is left out, as a refresh cut short."""
    starts = [index - 2 for index, line in enumerate(lines) if REFRESH_STARTS in line and index >= 2]
    assert all('"MULTI"' in lines[index] for index in starts), lines
    return [lines[begin:end] for begin, end in itertools.pairwise(starts)]


def test_readings_cost_the_same_however_many_browsers_ask(redis_srv: Any, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with (
        dashboard(redis_url, "", "solidot", "--refresh", "1") as url,
        monitoring(redis_srv.port) as watcher,
    ):
        wait_for(lambda: client.exists("{solidot}:requests:count") == 0, timeout=5)  # idle Redis

        def readings(requests: int) -> list[list[str]]:
            """The refreshes made while browsers ask ``requests`` times (three whole ones at least)."""
            start = watcher.mark("start")
            for _ in range(requests):
                fetch(url + "api/state")
                fetch(url + "api/series")
                fetch(url + "metrics")
            seen = len(watcher.lines)
            watcher.wait(
                lambda lines: sum(REFRESH_STARTS in line for line in lines[seen:]) >= 4, what="4 refreshes"
            )
            return refreshes(watcher.between(start, watcher.mark("end")))

        quiet, busy = readings(0), readings(60)
    # the SCAN for hosts' keys is the reader's own, every SEEN_EVERY seconds: whichever refresh it falls in
    per_refresh = {
        name: sorted({len([line for line in refresh if '"SCAN"' not in line]) for refresh in whole})
        for name, whole in (("quiet", quiet), ("busy", busy))
    }
    # every whole refresh costs the same, browsers or not: none of their requests reaches Redis
    assert len(quiet) >= 3 and len(busy) >= 3, (len(quiet), len(busy))
    assert per_refresh["busy"] == per_refresh["quiet"] and len(per_refresh["quiet"]) == 1, per_refresh
    # (26 now: the status read also asks whether the shared bucket is in ready, and counts lease holders and
    # the previous release's leases)
    assert per_refresh["quiet"][0] <= 28, per_refresh
    print(json.dumps({"redis_commands_per_refresh": per_refresh["quiet"][0]}))
