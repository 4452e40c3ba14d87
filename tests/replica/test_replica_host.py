"""The replica and hostile requests: the Host header never reaches a page as markup, and a client
sending a new Host each time can't grow the server's memory."""

from __future__ import annotations

import http.client
import json

import pytest
from harness import replica_server
from parsel import Selector

from solidot_replica import Replica, ReplicaConfig
from solidot_replica.pages import SitePages
from solidot_replica.server import OTHER_HOSTS
from solidot_spider.site.urls import CATEGORIES

MARKER = "<script>alert(1)</script>"
#: Host headers whose text would end up in the page's links.
HOSTILE_HOSTS = [
    f'www.solidot.test:8080"><{MARKER}',
    f"linux.solidot.test:8080/{MARKER}",
    f"evil.example'{MARKER}",
    "www.solidot.test:8080 onload=alert(1)",
    "www.solidot.test:80800000",
    "&quot;.example",
]
PATHS = ["/", "/story", "/index.rss", "/~someone", "/no-such-page", "/search"]


@pytest.fixture(scope="module")
def pages() -> SitePages:
    return SitePages(Replica(ReplicaConfig(stories=40, last_sid=80300)))


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
@pytest.mark.parametrize("path", PATHS)
def test_a_hostile_host_header_never_reaches_the_markup(pages: SitePages, host: str, path: str) -> None:
    query = {"/story": (("sid", "80290"),), "/search": (("tid", "11"),)}.get(path, ())
    body = pages.answer(host, path, query).body.decode("utf-8")
    assert "alert(1)" not in body and "<script>" not in body and "&quot;.example" not in body
    assert "80800000" not in body
    # links then name the replica's own domain
    if path == "/":
        hrefs = Selector(text=body).css("ul.nav a::attr(href)").getall()
        assert hrefs and all(href.startswith("//") and ".solidot.test/" in href for href in hrefs)


def test_well_formed_hosts_still_route_as_before(pages: SitePages) -> None:
    assert pages.host_parts("LINUX.solidot.test:8080") == ("linux", "solidot.test:8080")
    assert pages.host_parts("www.solidot.test") == ("www", "solidot.test")
    assert pages.host_parts("127.0.0.1:8080") == ("www", "127.0.0.1:8080")
    assert pages.host_parts('x"><b>') == ("www", "solidot.test")


@pytest.mark.parametrize("tid", ["²", "9" * 5000])
def test_odd_topic_ids_are_not_found_not_a_crash(pages: SitePages, tid: str) -> None:
    assert pages.answer("www.solidot.test", "/search", (("tid", tid),)).status == 404


def get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_server_escapes_the_host_and_bounds_the_hosts_it_tracks() -> None:
    with replica_server(stories=40, last_sid=80300) as server:
        port = server.port
        for host in [*HOSTILE_HOSTS, f"{MARKER}.solidot.test"]:
            status, body = get(port, host)
            assert status == 200 and b"alert(1)" not in body and b"<script>" not in body
        for index in range(300):
            get(port, f"client{index}.example:{port}", "/robots.txt")
        get(port, f"www.solidot.test:{port}", "/story?sid=80290")
        get(port, f"linux.solidot.test:{port}", "/")
        get(port, f"solidot.test:{port}", "/")
        _, raw = get(port, f"www.solidot.test:{port}", "/__replica__/stats")
    arrivals = json.loads(raw)["arrivals"]
    site_hosts = {"solidot.test", "www.solidot.test", *(f"{label}.solidot.test" for label in CATEGORIES)}
    assert set(arrivals) <= site_hosts | {OTHER_HOSTS}
    assert set(arrivals) >= {"www.solidot.test", "linux.solidot.test", "solidot.test", OTHER_HOSTS}
    assert len(arrivals[OTHER_HOSTS]) >= 300
    assert [path for _, _, path in arrivals["www.solidot.test"]][-1] == "/story"
