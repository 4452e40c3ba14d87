"""Several sites at once, for broad-crawl tests and benches: one HTTP server per loopback address,
and workers of a plain project to crawl them.

Site ``i`` (0-based) listens on ``127.0.0.<i + 1>`` only (never another address), serves ``/p/<n>``
(a page with a title and no links: one item a page) and keeps the moment (``time.monotonic()``) of
every fetch, its own log of what the crawl sent it. A site may answer its first fetch of a page
with 429 and ``Retry-After``, as a host asking the crawl to pause.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "links_project"


@dataclass
class Site:
    host: str
    port: int
    pages: int
    #: (monotonic time, path, status) of every fetch, in the order they came.
    fetches: list[tuple[float, str, int]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def urls(self) -> list[str]:
        return [f"{self.base_url}/p/{n}" for n in range(1, self.pages + 1)]

    def times(self, status: int | None = None) -> list[float]:
        return [at for at, _, answered in self.fetches if status is None or answered == status]


def _handler(site: Site, retry_after: float, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    refused: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def handle(self) -> None:
            with suppress(BrokenPipeError, ConnectionResetError):  # a crawler stopped mid-answer
                super().handle()

        def do_GET(self) -> None:
            path = self.path
            number = path[3:] if path.startswith("/p/") else ""
            if not (number.isdigit() and 1 <= int(number) <= site.pages):
                self._record(404)
                self.send_error(404)
                return
            if retry_after and path not in refused and number == "5":
                refused.add(path)  # this page, once: the host asks for a pause
                self._record(429)
                self.send_response(429)
                self.send_header("Retry-After", f"{retry_after:g}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._record(200)
            body = f"<html><head><title>{site.host} {number}</title></head><body>page</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self, status: int) -> None:
            with lock:
                site.fetches.append((time.monotonic(), self.path, status))

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def broad_sites(hosts: int, pages: int, retry_after: dict[int, float] | None = None) -> Iterator[list[Site]]:
    """``hosts`` sites of ``pages`` pages each, on 127.0.0.1 … 127.0.0.<hosts>; site ``i`` answers its
    page 5 with 429 and ``Retry-After: retry_after[i]`` the first time it is asked for it."""
    if not 1 <= hosts <= 254:
        raise ValueError("1 to 254 loopback hosts")
    with ExitStack() as stack:
        sites = []
        for index in range(hosts):
            host = f"127.0.0.{index + 1}"
            site = Site(host, 0, pages)
            server = ThreadingHTTPServer(
                (host, 0), _handler(site, (retry_after or {}).get(index, 0), threading.Lock())
            )
            server.daemon_threads = True
            site.port = server.server_address[1]
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            sites.append(site)
        yield sites


def fetch_rate(sites: list[Site]) -> float:
    """Pages a second the sites saw together, from their own logs: the pages after each site's first
    over the stretch from the first fetch anywhere to the last (H·r when every host keeps its rate)."""
    times = [site.times() for site in sites if site.fetches]
    first, last = min(t[0] for t in times), max(t[-1] for t in times)
    return sum(len(t) - 1 for t in times) / (last - first) if last > first else 0.0


def links_worker(name: str, workdir: Path, redis_url: str, **settings: str) -> subprocess.Popen[bytes]:
    """A worker of ``examples/links_project`` (a plain project: one add-on, one item a page), its log
    and items in ``workdir``."""
    command = [sys.executable, "-m", "scrapy", "crawl", "links", "-O", str(workdir / f"{name}.jsonl")]
    every = {
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(workdir / f"{name}.log"),
        **settings,
    }
    for setting, value in every.items():
        command += ["-s", f"{setting}={value}"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]),
        "SCRAPY_SETTINGS_MODULE": "links_project.settings",
    }
    return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL)
