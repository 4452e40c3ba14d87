"""The fleet's rules without scrapyd: which nodes a config names, where new workers go, which stop,
what the operator is told when a node fails. (The same code against real scrapyd nodes: test_scrapyd.py.)"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from scrapy_sharedcrawl.cli.options import assignments
from scrapy_sharedcrawl.fleet.api import CredentialsRefused, Job, NodeUnreachable, ScrapydApi, ScrapydError
from scrapy_sharedcrawl.fleet.fleet import check_no_credentials
from scrapy_sharedcrawl.fleet.nodes import Node, nodes_from_config, nodes_from_urls
from scrapy_sharedcrawl.fleet.plan import NoCapacity, NodeLoad, place, to_cancel
from scrapy_sharedcrawl.testing.redis_server import free_port


def test_new_workers_go_where_most_slots_are_free() -> None:
    loads = [NodeLoad("a", slots=4, busy=1, ours=1), NodeLoad("b", slots=4, busy=0, ours=0)]
    assert place(loads, 3) == ["b", "a", "b"]  # b: 4 free; then a and b tie on 3, a has fewer of ours
    assert place([NodeLoad("a", 2, 0, 0), NodeLoad("b", 2, 0, 0)], 3) == ["a", "b", "a"]
    assert place(loads, 0) == []


def test_a_node_busy_with_other_projects_gets_fewer_and_too_many_is_refused() -> None:
    loads = [NodeLoad("a", slots=4, busy=4, ours=0), NodeLoad("b", slots=4, busy=2, ours=2)]
    assert place(loads, 2) == ["b", "b"]
    with pytest.raises(
        NoCapacity, match=r"3 more workers need 3 free slots, the nodes have 2 \(a: 0, b: 2\)"
    ):
        place(loads, 3)


def job(node: str, id: str, state: str, start: str | None = None) -> Job:
    return Job(node=node, id=id, state=state, spider="solidot", start_time=start)


def test_pending_jobs_stop_first_then_the_newest_on_the_busiest_node() -> None:
    jobs = [
        job("a", "a-old", "running", "2026-12-01 10:00:00"),
        job("a", "a-new", "running", "2026-12-01 11:00:00"),
        job("b", "b-old", "running", "2026-12-01 09:00:00"),
        job("b", "b-pending", "pending"),
    ]
    assert [j.id for j in to_cancel(jobs, 1)] == ["b-pending"]
    assert [j.id for j in to_cancel(jobs, 2)] == ["b-pending", "a-new"]
    assert [j.id for j in to_cancel(jobs, 3)] == ["b-pending", "a-new", "a-old"]  # ties: a, then b
    assert [j.id for j in to_cancel(jobs, 9)] == ["b-pending", "a-new", "a-old", "b-old"]
    assert to_cancel(jobs, 0) == []


def test_nodes_come_from_deploy_targets_with_credentials_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "scrapy.cfg"
    config.write_text(
        "[deploy]\nproject = solidot_spider\nusername = ${SCRAPYD_USERNAME}\npassword = ${SCRAPYD_PASSWORD}\n"
        "slots = 4\n\n[deploy:n1]\nurl = http://n1.internal:6800/\n\n"
        "[deploy:n2]\nurl = http://n2.internal:6800\nslots = 8\nproject = other\n"
    )
    env = {"SCRAPYD_USERNAME": "ops", "SCRAPYD_PASSWORD": "pw"}
    n1, n2 = nodes_from_config(config, env=env)
    assert (n1.name, n1.url, n1.slots, n1.project, n1.auth) == (
        "n1",
        "http://n1.internal:6800",
        4,
        "solidot_spider",
        ("ops", "pw"),
    )
    assert (n2.name, n2.slots, n2.project) == ("n2", 8, "other")
    assert "pw" not in repr(n1)  # a node's credentials never show in its repr
    assert [node.name for node in nodes_from_config(config, ["n2"], env=env)] == ["n2"]
    (unset,) = nodes_from_config(config, ["n1"], env={})
    assert unset.auth is None  # ${SCRAPYD_USERNAME} unset: no credentials, not the literal text
    with pytest.raises(ValueError, match=r"no \[deploy:n3\] target; known: n1, n2"):
        nodes_from_config(config, ["n3"], env=env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[deploy:n1]\nurl = ftp://n1/\n", "not a scrapyd URL"),
        ("[deploy:n1]\nurl = http://ops:pw@n1:6800/\n", "credentials in a scrapyd URL"),
        ("[deploy:n1]\nurl = http://n1/\nslots = many\n", "slots must be a whole number"),
        ("[deploy:n1]\nurl = http://n1/\nslots = 0\n", "slots must be at least 1"),
        ("[settings]\ndefault = x\n", "no scrapyd nodes"),
    ],
)
def test_a_bad_config_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.cfg"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        nodes_from_config(config)


def test_nodes_from_urls() -> None:
    env = {"SCRAPYD_USERNAME": "ops", "SCRAPYD_PASSWORD": "pw"}
    nodes = nodes_from_urls("http://127.0.0.1:6801/, http://127.0.0.1:6802", slots=2, env=env)
    assert [(n.name, n.url, n.slots, n.auth) for n in nodes] == [
        ("127.0.0.1:6801", "http://127.0.0.1:6801", 2, ("ops", "pw")),
        ("127.0.0.1:6802", "http://127.0.0.1:6802", 2, ("ops", "pw")),
    ]
    with pytest.raises(ValueError, match="listed twice"):
        nodes_from_urls("http://a:1,http://a:1")


def test_settings_with_credentials_are_refused_before_they_reach_scrapyd() -> None:
    check_no_credentials({"CONCURRENT_REQUESTS": "8", "MONGO_URI": "mongodb://db.internal:27017"})
    with pytest.raises(ValueError, match="MONGO_URI holds credentials"):
        check_no_credentials({"MONGO_URI": "mongodb://u:secret@db.internal:27017"})
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        assignments(["NOVALUE"])


class _Answers(http.server.BaseHTTPRequestHandler):
    """A stand-in for a scrapyd node that answers wrongly: scrapyd itself can't be made to (401s and
    real answers are tested against real nodes in test_scrapyd.py)."""

    answers: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.answers.get(self.path.split("?")[0], (404, b""))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_node() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "status", "body", "error", "message"),
    [
        ("/daemonstatus.json", 401, b"Unauthorized", CredentialsRefused, "refused the credentials without"),
        ("/daemonstatus.json", 500, b"oops", ScrapydError, "HTTP 500"),
        ("/daemonstatus.json", 200, b"<html>", ScrapydError, "not JSON"),
        (
            "/daemonstatus.json",
            200,
            b'{"status": "ok", "running": -1}',
            ScrapydError,
            "without a running count",
        ),
        (
            "/daemonstatus.json",
            200,
            b'{"status": "error", "message": "boom"}',
            ScrapydError,
            "refused .*: boom",
        ),
    ],
)
def test_a_node_that_answers_wrongly_gets_a_clear_error(
    odd_node: str, path: str, status: int, body: bytes, error: type[Exception], message: str
) -> None:
    _Answers.answers = {path: (status, body)}
    api = ScrapydApi(Node("odd", odd_node))
    with pytest.raises(error, match=message):
        api.daemon_status()


def test_a_dead_node_is_unreachable_in_a_few_words() -> None:
    api = ScrapydApi(Node("dead", f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(
        NodeUnreachable, match=r"node dead \(http://127.0.0.1:\d+\) is unreachable \(.*refused\)"
    ):
        api.projects()
