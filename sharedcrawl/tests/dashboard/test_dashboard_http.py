"""The dashboard's HTTP surface against what a hostile client sends (issue 18, rows 9–13).

The real application (:func:`create_app`) served on a loopback port from a thread, reading a real
Redis; requests are written as raw bytes on a socket, so that paths, headers and cookies can hold
anything, bytes that are not UTF-8 included. The fuzz test is derandomized with a bounded number of
examples for CI; ``FUZZ_EXAMPLES=5000`` runs a longer campaign, ``FUZZ_SEED=N`` another one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from aiohttp import web
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from scrapy.settings import Settings

from scrapy_sharedcrawl.dashboard import auth
from scrapy_sharedcrawl.dashboard.server import SECURITY_HEADERS, Dashboard, app_runner
from scrapy_sharedcrawl.dashboard.state import DashboardReader

TOKEN = "a-long-enough-token-for-tests"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SEED = os.environ.get("FUZZ_SEED")
ROUTES = ["/", "/api/state", "/api/series", "/metrics", "/static/dashboard.js", "/nowhere"]


@contextmanager
def served(redis_url: str, token: str = "") -> Iterator[tuple[Dashboard, int]]:
    """The dashboard's application on 127.0.0.1 (a free port), its event loop in a thread."""
    dashboard = Dashboard(DashboardReader(Settings({"REDIS_URL": redis_url}), "news"), refresh=3600)
    loop = asyncio.new_event_loop()
    runner = app_runner(dashboard, token)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield dashboard, port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def ask(
    port: int, target: bytes, headers: dict[bytes, bytes] | None = None, host: bytes | None = None
) -> Any:
    """One raw GET: (status, headers with lower-case names, body); status None if no answer came."""
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: " + (host if host is not None else b"127.0.0.1")]
    lines += [name + b": " + value for name, value in (headers or {}).items()]
    lines += [b"Connection: close", b"", b""]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        return None, {}, answer
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), value.strip())
        if name.strip().lower() == "set-cookie":
            found["set-cookie"] = value.strip()
    return int(status_line.split()[1]), found, body


def secured(headers: dict[str, str]) -> bool:
    return all(headers.get(name.lower()) == value for name, value in SECURITY_HEADERS.items())


def test_tokens_and_cookies_of_any_bytes_are_refused_with_a_401_not_a_500(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with served(redis_url, TOKEN) as (dashboard, port):
        for headers in (
            {b"Authorization": b"Bearer \xff\xfe"},
            {b"Authorization": b"Basic " + base64.b64encode(b"u:\xff")},
            {b"Authorization": b"Bearer " + TOKEN.encode() + b"\xff"},
            {b"Cookie": auth.COOKIE.encode() + b"=\xff\xfe\xc3"},
            {b"Cookie": auth.COOKIE.encode() + b"=" + TOKEN.encode()},  # the raw token is no cookie
        ):
            status, answer, _ = ask(port, b"/api/state", headers)
            assert status == 401 and secured(answer), headers
        assert dashboard.refusals.counts["token"] == 5
    refusals = [record for record in caplog.records if "refused a request" in record.getMessage()]
    assert len(refusals) == 1 and not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_token_link_redirects_only_to_a_path_here_and_sets_a_cookie_that_is_no_token(
    redis_url: str,
) -> None:
    with served(redis_url, TOKEN) as (_, port):
        for target, location in (
            (b"//evil.example/x?token=" + TOKEN.encode(), "/evil.example/x"),
            (b"/\\evil.example/x?a=1&token=" + TOKEN.encode(), "/evil.example/x?a=1"),
            (b"///evil.example?token=" + TOKEN.encode(), "/evil.example"),
            (b"/api/state?token=" + TOKEN.encode() + b"&b=%2F%2Fx", "/api/state?b=//x"),
        ):
            status, headers, _ = ask(port, target)
            assert status == 303 and headers["location"] == location, (target, headers.get("location"))
            assert secured(headers)
        cookie = headers["set-cookie"]
        value = cookie.split(";")[0].partition("=")[2]
        assert value == auth.cookie_value(TOKEN) and TOKEN not in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        status, _, _ = ask(port, b"/api/state", {b"Cookie": f"{auth.COOKIE}={value}".encode()})
        assert status == 200
        # behind a proxy that terminates TLS
        _, headers, _ = ask(port, b"/?token=" + TOKEN.encode(), {b"X-Forwarded-Proto": b"https"})
        assert "Secure" in headers["set-cookie"]


def test_without_a_token_only_loopback_host_names_are_served(redis_url: str) -> None:
    with served(redis_url) as (dashboard, port):
        for host in (
            b"127.0.0.1",
            b"127.0.0.1:8470",
            b"localhost:8470",
            b"[::1]:8470",
            b"LOCALHOST",
            b"a.localhost",
        ):
            status, headers, _ = ask(port, b"/api/state", host=host)
            assert status == 200 and secured(headers), host
        for host in (
            b"evil.example",
            b"evil.example:8470",
            b"127.0.0.1.evil.example",
            b"",
            b"[::1",
            b"0.0.0.0",
        ):
            status, headers, _ = ask(port, b"/api/state", host=host)
            assert status == 403 and secured(headers), host
        assert dashboard.refusals.counts["host"] == 6
        status, _, body = ask(port, b"/metrics")
        assert status == 200 and b'sharedcrawl_dashboard_refused_total{reason="host"} 6.0' in body


def test_every_answer_carries_the_security_headers(redis_url: str) -> None:
    with served(redis_url, TOKEN) as (_, port):
        bearer = {b"Authorization": b"Bearer " + TOKEN.encode()}
        for target, headers, expected in (
            (b"/", {}, 401),
            (b"/", bearer, 200),
            (b"/nowhere", bearer, 404),
            (b"/static/%00.js", bearer, 404),
            (b"/static/..%2Fserver.py", bearer, 404),
            (b"/metrics", bearer, 200),
            (b"/?token=" + TOKEN.encode(), {}, 303),
        ):
            status, answer, _ = ask(port, target, headers)
            assert status == expected and secured(answer), (target, status, answer)


def test_worker_rates_forget_the_workers_the_registry_forgets(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    reader = DashboardReader(Settings({"REDIS_URL": redis_url}), "news")
    seconds, _ = client.time()
    for worker in range(50):
        client.zadd("{news}:workers", {f"w{worker}": seconds * 1000})
        client.hset("{news}:workers:info", f"w{worker}", json.dumps({"pid": worker, "started_at": seconds}))
    reader.read()
    assert len(reader._beats) == 50
    client.zremrangebyrank("{news}:workers", 0, 47)  # the registry forgets 48 of them
    assert len(reader.read()["workers"]) == 2 and len(reader._beats) == 2


# -- fuzz: any path, header, cookie or token ----------------------------------------------------------

_BYTES = st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
_PATHS = st.one_of(
    st.sampled_from([route.encode() for route in ROUTES]),
    st.builds(lambda route, rest: route.encode() + rest, st.sampled_from(ROUTES), _BYTES),
    st.builds(lambda rest: b"/" + rest, _BYTES.map(lambda raw: raw.replace(b" ", b"%20"))),
    st.builds(lambda q: b"/?token=" + q, st.sampled_from([TOKEN.encode(), b"", b"%ff", b"x"]) | _BYTES),
    st.sampled_from(
        [b"//evil.example", b"/%2e%2e/", b"/static/%ff.js", b"/static/a\\b.js", b"*", b"/?" * 50]
    ),
)
_TOKENS = st.one_of(st.just(TOKEN.encode()), _BYTES, st.builds(lambda a: TOKEN.encode() + a, _BYTES))
_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        b"Authorization": st.one_of(
            st.builds(lambda t: b"Bearer " + t, _TOKENS),
            st.builds(lambda t: b"Basic " + base64.b64encode(b"u:" + t), _TOKENS),
            st.builds(lambda t: b"Basic " + t, _BYTES),
            _BYTES,
        ),
        b"Cookie": st.one_of(
            st.builds(
                lambda v: auth.COOKIE.encode() + b"=" + v,
                _TOKENS | st.just(auth.cookie_value(TOKEN).encode()),
            ),
            _BYTES,
        ),
        b"X-Forwarded-Proto": st.sampled_from([b"https", b"http", b"\xff"]),
        b"Accept-Encoding": st.sampled_from([b"gzip", b"br", b"\xff"]),
    },
)
_HOSTS = st.one_of(st.sampled_from([b"127.0.0.1", b"localhost:1", b"[::1]"]), _BYTES)


@pytest.mark.parametrize("token", [TOKEN, ""], ids=["token", "loopback"])
def test_fuzz_any_request_gets_an_answer_never_a_500(
    redis_url: str, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with served(redis_url, token) as (_, port):

        @settings(
            max_examples=EXAMPLES,
            derandomize=SEED is None,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(target=_PATHS, headers=_HEADERS, host=_HOSTS)
        def check(target: bytes, headers: dict[bytes, bytes], host: bytes) -> None:
            status, answer, _ = ask(port, target, headers, host)
            assert status is not None and status < 500, (status, target, headers, host)
            if status != 400:  # 400: the HTTP parser's own answer to a request it can't read
                assert secured(answer), (status, target, headers, host)

        if SEED is not None:
            check = seed(int(SEED))(check)
        check()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors[:3]
