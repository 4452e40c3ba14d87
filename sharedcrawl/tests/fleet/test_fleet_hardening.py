"""``sharedcrawl workers`` against scrapyd nodes that misbehave (issue 18, rows 15–17): a node's text
reaches the terminal without its escapes, an answer is capped in size and a call in time, credentials
over plain http are warned about, and settings that name a credential never reach scrapyd.

The nodes are stand-ins (http.server): real scrapyd can't be made to answer with escapes, drip its
answer or send megabytes; the real command runs against them in a subprocess.
"""

from __future__ import annotations

import http.server
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from scrapy_sharedcrawl.fleet.api import NodeUnreachable, ScrapydApi, ScrapydError
from scrapy_sharedcrawl.fleet.fleet import check_no_credentials
from scrapy_sharedcrawl.fleet.nodes import Node
from scrapy_sharedcrawl.testing.redis_server import free_port

ESCAPES = "\x1b]0;owned\x07\x1b[2J\u202e"


class _Node(http.server.BaseHTTPRequestHandler):
    """A scrapyd stand-in: ``answers`` maps a path to a JSON answer, or to a callable writing one."""

    answers: ClassVar[dict[str, Any]] = {}
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer()

    def answer(self) -> None:
        found = self.answers.get(self.path.split("?")[0])
        if callable(found):
            found(self)
            return
        body = json.dumps(found if found is not None else {"status": "error", "message": "no"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def a_node_with_jobs(job_id: str, message: str = "") -> dict[str, Any]:
    ok = {"status": "ok"}
    return {
        "/daemonstatus.json": {**ok, "running": 1, "pending": 0, "finished": 0, "node_name": ESCAPES},
        "/listprojects.json": {**ok, "projects": ["news_project"]},
        "/listversions.json": {**ok, "versions": [f"v1{ESCAPES}"]},
        "/listjobs.json": {
            **ok,
            "pending": [],
            "running": [{"id": job_id, "spider": "news", "pid": 7, "start_time": ESCAPES}],
            "finished": [],
        },
        "/schedule.json": {"status": "error", "message": message} if message else {**ok, "jobid": job_id},
        "/cancel.json": {**ok, "prevstate": ESCAPES},
    }


#: the scrapyd project and spider the fake nodes run
NEWS = ("--project", "news_project", "--spider", "news")


def workers(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy_sharedcrawl.cli", "workers", "--scrapyd", url, *NEWS, *arguments],
        cwd=tempfile.gettempdir(),  # no project's scrapy.cfg above it
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_a_nodes_text_reaches_the_terminal_without_its_escapes(node: str) -> None:
    _Node.answers = a_node_with_jobs(f"job{ESCAPES}")
    for arguments in (("up", "2"), ("down", "0"), ("list",)):
        done = workers(node, *arguments)
        assert done.returncode == 0, done.stderr
        assert "job?]0;owned?" in done.stdout, done.stdout
        assert not any(char in done.stdout + done.stderr for char in "\x1b\x07\u202e"), arguments
    _Node.answers = a_node_with_jobs("job", message=f"refused{ESCAPES}")
    done = workers(node, "up", "2")
    assert done.returncode == 2 and "refused?]0;owned?" in done.stderr
    assert not any(char in done.stderr for char in "\x1b\x07\u202e")


def test_an_answer_larger_than_the_cap_is_refused(node: str) -> None:
    def declared(handler: _Node) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**9))
        handler.end_headers()

    def undeclared(handler: _Node) -> None:  # no length: read until the node closes
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b'{"status": "ok", "projects": ["' + b"x" * 70_000 + b'"]}')

    api = ScrapydApi(Node("big", node))
    api.max_answer = 65_536
    for answer in (declared, undeclared):
        _Node.answers = {"/listprojects.json": answer}
        with pytest.raises(ScrapydError, match="with more than 65,536 bytes"):
            api.projects()


def test_an_answer_nested_too_deep_for_json_is_not_json(node: str) -> None:
    def deep(handler: _Node) -> None:
        body = b"[" * 200_000 + b"]" * 200_000
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    _Node.answers = {"/listprojects.json": deep}
    with pytest.raises(ScrapydError, match="with something that is not JSON"):
        ScrapydApi(Node("deep", node)).projects()


def test_a_node_that_drips_its_answer_is_given_up_at_the_deadline(node: str) -> None:
    def drip(handler: _Node) -> None:  # a byte every 0.05 s, each well within the read timeout: ~25 s
        handler.send_response(200)
        handler.end_headers()
        try:
            for byte in b'{"status": "ok", "projects": []}' + b" " * 500:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.05)  # the node's pace, not a wait on the test's side
        except OSError:
            pass  # the client gave up

    _Node.answers = {"/listprojects.json": drip}
    api = ScrapydApi(Node("slow", node))
    api.deadline = 1.0
    with pytest.raises(NodeUnreachable, match=r"did not answer listprojects.json within 1 s"):
        api.projects()


def test_credentials_over_plain_http_beyond_this_machine_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        ScrapydApi(Node("far", "http://scrapyd.example:6800", username="ops", password="pw"))
        ScrapydApi(Node("near", "http://127.0.0.1:6800", username="ops", password="pw"))
        ScrapydApi(Node("tls", "https://scrapyd.example", username="ops", password="pw"))
        ScrapydApi(Node("open", "http://scrapyd.example:6800"))
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1 and "node far" in warned[0] and "plain http" in warned[0]
    assert "pw" not in warned[0]


@pytest.mark.parametrize(
    "assignment",
    [
        'REDIS_PARAMS={"password": "s3cret"}',
        'REDIS_PARAMS={"socket_timeout": 5, "nested": [{"Password": "s3cret"}]}',
        "SOLIDOT_DASHBOARD_TOKEN=abcdefghijklmnopqrstu",
        "AWS_SECRET_ACCESS_KEY=x",
        "MONGO_PASSWORD=x",
        "api_key=x",
    ],
)
def test_settings_that_name_a_credential_are_refused_before_any_node_is_asked(assignment: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # refused before any request: a dead node is never reached
    done = workers(dead, "up", "1", "-s", assignment)
    assert done.returncode == 2 and "names a credential" in done.stderr, done.stderr
    assert "s3cret" not in done.stderr and "abcdefghij" not in done.stderr
    done = workers(dead, "up", "1", "-a", assignment)
    assert done.returncode == 2 and "names a credential" in done.stderr, done.stderr


def test_key_names_of_the_crawl_are_no_credentials() -> None:
    check_no_credentials(
        {
            "SCHEDULER_QUEUE_KEY": "{%(spider)s}:q",
            "REDIS_START_URLS_KEY": "k",
            "CRAWL_KEY_PREFIX": "{x}",
            "REDIS_PARAMS": '{"socket_timeout": 5}',
            "KEYWORDS": "a",
        }
    )
    with pytest.raises(ValueError, match="http_pass names a credential"):
        check_no_credentials({"http_pass": "x"})
