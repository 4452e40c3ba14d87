"""A site of its own for the generic spider: ``pages`` pages in a binary tree of links, served locally.

Page ``n`` (1 … pages) links to pages ``2n`` and ``2n + 1`` when they exist, and back to page 1;
``/`` links to page 1. ``delay`` slows every answer, so a crawl lasts long enough to kill a worker
in the middle of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class LinkSite:
    base_url: str
    pages: int

    def urls(self) -> set[str]:
        """Every page the spider must find (``/`` included)."""
        return {f"{self.base_url}/", *(f"{self.base_url}/page/{n}" for n in range(1, self.pages + 1))}


def page(n: int, pages: int) -> bytes:
    children = [child for child in (2 * n, 2 * n + 1) if child <= pages]
    links = "".join(f'<a href="/page/{child}">page {child}</a>' for child in children)
    return f'<html><head><title>Page {n}</title></head><body><a href="/page/1">top</a>{links}</body></html>'.encode()


@contextmanager
def link_site(pages: int, delay: float = 0.0) -> Iterator[LinkSite]:
    class Handler(BaseHTTPRequestHandler):
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
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LinkSite(f"http://127.0.0.1:{server.server_address[1]}", pages)
    finally:
        server.shutdown()
        server.server_close()
