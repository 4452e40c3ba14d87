"""The WARC recorder is the framework's: any project with the add-on records every fetch when given
``WARC_DIR``. Two workers of the generic example project (``examples/links_project``, which knows
nothing of WARC) share a crawl of a site of its own; warcio's own reader, checking every digest, finds
warcinfo first in each file and every page once as a response record with its request. Without
warcio importable, a worker asked to record says in one line what to install and fetches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from harness import wait_for
from link_site import link_site
from warcio.archiveiterator import ArchiveIterator

from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.testing.redis_server import RedisServer

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "links_project"
#: Quick polls; leases stay long (a request is never leased twice while it is fetched, even on a
#: loaded machine: a second fetch would be a second response record).
WORKER_SETTINGS = {
    "SCHEDULER_IDLE_POLL_MAX": "1",
    "SCHEDULER_WAIT_FOR_SEED": "90",
    "CONCURRENT_REQUESTS": "4",
    "LOG_LEVEL": "INFO",
}
#: Makes warcio (and only it) impossible to import, as if it were not installed.
BLOCK_WARCIO = """
import sys

class BlockWarcio:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "warcio":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockWarcio())
"""


def start_worker(
    name: str, workdir: Path, settings: dict[str, str], pythonpath: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """``scrapy crawl links`` of the example project, as its README runs it, with ``-s`` settings."""
    command = [sys.executable, "-m", "scrapy", "crawl", "links", "-O", str(workdir / f"{name}.jsonl")]
    given = {**WORKER_SETTINGS, "LOG_FILE": str(workdir / f"{name}.log"), **settings}
    for setting, value in given.items():
        command += ["-s", f"{setting}={value}"]
    paths = [*pythonpath, str(PROJECT), os.environ.get("PYTHONPATH", "")]
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("WARC_")},
        "PYTHONPATH": os.pathsep.join(path for path in paths if path),
        "SCRAPY_SETTINGS_MODULE": "links_project.settings",
    }
    return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_two_workers_of_a_generic_project_record_every_page_once(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    warc_dir = tmp_path / "warc"
    with link_site(pages=60, delay=0.02) as site:
        workers = [
            start_worker(name, tmp_path, {"REDIS_URL": redis_url, "WARC_DIR": str(warc_dir)})
            for name in ("one", "two")
        ]
        try:
            with redis_srv.client() as client:
                wait_for(lambda: client.zcard("{links}:workers") == 2, timeout=90, what="two workers up")
                client.lpush("links:start_urls", f"{site.base_url}/")
                codes = [worker.wait(timeout=180) for worker in workers]
        finally:
            stop(workers)
        expected = site.urls()

    logs = [(tmp_path / f"{name}.log").read_text(encoding="utf-8") for name in ("one", "two")]
    assert codes == [0, 0], logs
    assert all("Traceback" not in log for log in logs), logs
    files = sorted(warc_dir.iterdir())
    assert files and all(f.name.endswith(".warc.gz") for f in files), files  # complete: no .open left
    assert all(f.name.startswith("links_project-") for f in files)  # WARC_PREFIX: the BOT_NAME

    responses: Counter[str] = Counter()
    response_ids: dict[str, str] = {}
    requests: dict[str, str] = {}  # WARC-Concurrent-To → the request's target URI
    for path in files:
        with path.open("rb") as handle:
            # warcio's own reader, every block and payload digest checked (a mismatch raises);
            # a record's content is read before the next one (the iterator streams the file)
            records = [(r, r.content_stream().read()) for r in ArchiveIterator(handle, check_digests="raise")]
        assert records[0][0].rec_type == "warcinfo", path
        info = records[0][1].decode()
        assert "isPartOf: links" in info and "software: links_project (scrapy_sharedcrawl" in info
        assert f"setting: WARC_DIR={warc_dir}" in info
        assert [r.rec_type for r, _ in records[1:]].count("warcinfo") == 0
        for record, _ in records[1:]:
            uri = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "response":
                responses[uri] += 1
                response_ids[record.rec_headers.get_header("WARC-Record-ID")] = uri
                assert record.http_headers.get_statuscode() == "200"
            elif record.rec_type == "request":
                requests[record.rec_headers.get_header("WARC-Concurrent-To")] = uri
                assert record.http_headers.protocol == "GET"
            else:  # the site's pages all differ: no revisit; links carry no metadata worth keeping
                assert record.rec_type == "metadata", record.rec_type

    assert set(responses) == expected  # every page
    assert set(responses.values()) == {1}  # once
    # each response with its request, linked by WARC-Concurrent-To, for the same URI
    assert {requests.get(record_id) for record_id in response_ids} == set(response_ids.values())
    assert len(requests) == len(response_ids)


def test_without_warcio_a_worker_asked_to_record_says_what_to_install_and_fetches_nothing(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    blocker = tmp_path / "no_warcio"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_WARCIO)
    warc_dir = tmp_path / "warc"
    with link_site(pages=5) as site:
        with redis_srv.client() as client:
            client.lpush("links:start_urls", f"{site.base_url}/")
        worker = start_worker(
            "blocked", tmp_path, {"REDIS_URL": redis_url, "WARC_DIR": str(warc_dir)}, (str(blocker),)
        )
        try:
            code = worker.wait(timeout=120)
        finally:
            stop([worker])
        served = site.served
        with redis_srv.client() as client:
            # the start URL is not lost: still to be read, or queued for a worker that records
            queue = QueueKeys("{links}:requests")
            kept = [
                *client.lrange("links:start_urls", 0, -1),
                *(m for key in client.scan_iter(f"{queue.base}:q:*") for m in client.lrange(key, 0, -1)),
                *(v for key in client.scan_iter(f"{queue.base}:lease:*") for v in client.hvals(key)),
            ]

    log = (tmp_path / "blocked.log").read_text(encoding="utf-8")
    errors = [line for line in log.splitlines() if "ERROR" in line]
    assert len(errors) == 1, log
    assert (
        "warcio" in errors[0]
        and "pip install 'scrapy-sharedcrawl[warc]'" in errors[0]
        and "WARC_DIR" in errors[0]
    )
    assert "Traceback" not in log, log
    assert "Closing spider (warc_unavailable)" in log
    assert code == 0
    assert served == 0  # nothing fetched unrecorded
    assert not warc_dir.exists()
    assert any(site.base_url in entry for entry in kept), kept
