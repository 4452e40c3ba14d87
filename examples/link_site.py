"""A site to crawl in the examples and tests: ``pages`` pages in a binary tree of links, served locally.

Page ``n`` (1 … pages) links to pages ``2n`` and ``2n + 1`` when they exist, and back to page 1;
``/`` links to page 1. ``POST /search`` (form field ``q``) answers a page titled after the query,
for scrapy-redis's JSON entries with ``"method": "POST"`` and form fields. ``delay`` slows every
answer, so a crawl lasts long enough to kill a worker in the middle of it.

Run it on its own: ``python link_site.py --pages 200 --port 8000`` (it binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

#: Largest form body read (bytes): a search box, not an upload.
MAX_FORM_BYTES = 4096


@dataclass
class LinkSite:
    base_url: str
    pages: int
    #: Answers given so far (any status), for benchmarks that count pages served over a window.
    answered: list[int] = field(default_factory=lambda: [0])

    @property
    def served(self) -> int:
        return self.answered[0]

    def urls(self) -> set[str]:
        """Every page the spider must find (``/`` included)."""
        return {f"{self.base_url}/", *(f"{self.base_url}/page/{n}" for n in range(1, self.pages + 1))}


def page(n: int, pages: int) -> bytes:
    children = [child for child in (2 * n, 2 * n + 1) if child <= pages]
    links = "".join(f'<a href="/page/{child}">page {child}</a>' for child in children)
    head = f"<html><head><title>Page {n}</title></head>"
    return f'{head}<body><a href="/page/1">top</a>{links}</body></html>'.encode()


def handler(pages: int, delay: float, answered: list[int] | None = None) -> type[BaseHTTPRequestHandler]:
    count = answered if answered is not None else [0]
    counting = threading.Lock()  # one Handler per request, each on its own thread

    class Handler(BaseHTTPRequestHandler):
        def handle(self) -> None:
            with suppress(BrokenPipeError, ConnectionResetError):  # a crawler killed mid-answer
                super().handle()

        def do_GET(self) -> None:
            if delay:
                time.sleep(delay)  # the site is slow, by design: not a test synchronization
            if self.path == "/":
                body = (
                    b'<html><head><title>Home</title></head><body><a href="/page/1">start</a></body></html>'
                )
            elif (
                self.path.startswith("/page/")
                and self.path[6:].isdigit()
                and 1 <= int(self.path[6:]) <= pages
            ):
                body = page(int(self.path[6:]), pages)
            else:
                self.send_error(404)
                return
            self._answer(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/search" or not 0 <= length <= MAX_FORM_BYTES:
                self.send_error(404 if self.path != "/search" else 413)
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            query = html.escape(form.get("q", [""])[0])
            self._answer(f"<html><head><title>Search: {query}</title></head><body></body></html>".encode())

        def _answer(self, body: bytes) -> None:
            with counting:
                count[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def link_site(pages: int, delay: float = 0.0, port: int = 0) -> Iterator[LinkSite]:
    answered = [0]
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(pages, delay, answered))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LinkSite(f"http://127.0.0.1:{server.server_address[1]}", pages, answered)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="pages in the tree (default 200)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    options = parser.parse_args()
    with link_site(options.pages, options.delay, options.port) as site:
        print(f"serving {site.pages} pages at {site.base_url}/", flush=True)
        threading.Event().wait()  # until interrupted


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
