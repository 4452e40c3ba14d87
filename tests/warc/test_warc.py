"""WARC files of every fetch: written by real crawls of the replica, read by warcio's own tools, torn
by a killed worker, and replayed by ``solidot-crawl reparse`` into the very items the crawl gave."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cluster import QUEUE_KEY, cluster, lease_owners, leased, stored
from harness import ROOT, ReplicaServer, crawl_env, read_jsonl, replica_server, run_crawl, wait_for
from mongo_server import MongoServer
from pymongo import MongoClient

from scrapy_sharedcrawl.testing.redis_server import RedisServer
from scrapy_sharedcrawl.warc.reader import WarcReader, gzip_members, warc_files
from scrapy_sharedcrawl.warc.writer import WarcFiles
from solidot_replica import Replica, ReplicaConfig
from solidot_spider.archive.documents import stored_item

WARCIO = [sys.executable, "-m", "warcio.cli"]
SECRET = "hunter2-not-for-warc"


def reparse(
    paths: list[Path], server: ReplicaServer, workdir: Path, *arguments: str, **environment: str
) -> tuple[str, str]:
    """``solidot-crawl reparse`` in its own process, with the crawl's SOLIDOT_BASE_URL and no network."""
    env = {**crawl_env(server, workdir / "reparse.stats.json"), **environment}
    del env["SOLIDOT_RESOLVE"]  # nothing to resolve: a replay fetches nothing
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "reparse", *map(str, paths), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout, done.stderr


def without_fetched_at(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name != "fetched_at"}


@pytest.fixture(scope="module")
def warc_crawl(
    replica: ReplicaServer, replica_model: Replica, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A crawl of 12 days of the replica (lists, so stories have categories), WARC on, small files."""
    workdir = tmp_path_factory.mktemp("warc-crawl")
    days = replica_model.days()[-12:]
    result = run_crawl(
        replica,
        workdir,
        {"since": days[0].isoformat(), "until": days[-1].isoformat()},
        {
            "WARC_DIR": str(workdir / "warc"),
            "WARC_MAX_SIZE": "100000",
            "SOLIDOT_CONTACT_URL": f"https://archivist:{SECRET}@example.org/",
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) > 20
    return workdir, result


@pytest.mark.integration  # reads the files of a whole crawl (warc_crawl)
def test_files_are_per_process_sorted_rotated_and_complete(warc_crawl: Any) -> None:
    workdir, result = warc_crawl
    files = sorted((workdir / "warc").iterdir())
    assert len(files) >= 3, "rotated at WARC_MAX_SIZE"
    assert not [f for f in files if not f.name.endswith(".warc.gz")], "a completed crawl leaves no .open file"
    assert all(f.stat().st_size < 100_000 + 64_000 for f in files)  # rotated once past the limit
    serials = [int(f.name.split("-")[2]) for f in files]
    assert serials == list(range(len(files)))  # names sort in the order they were written
    assert result.stats["warc/files"] == len(files)
    # every file opens with its warcinfo: crawler, version, settings, no credentials
    for path in files:
        first = next(gzip_members(path.open("rb")))[1]
        assert first is not None and b"WARC-Type: warcinfo" in first
        assert b"software: solidot-crawler/" in first and b"setting: WARC_MAX_SIZE=100000" in first
        assert b"setting: SOLIDOT_CONTACT_URL=https://***@example.org/" in first
    assert SECRET.encode() not in b"".join(gzip.decompress(f.read_bytes()) for f in files)


@pytest.mark.integration  # reads the files of a whole crawl (warc_crawl)
def test_warcio_check_and_index_pass(warc_crawl: Any) -> None:
    workdir, result = warc_crawl
    files = [str(f) for f in sorted((workdir / "warc").iterdir())]
    check = subprocess.run([*WARCIO, "check", "-v", *files], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "digest pass" in check.stdout and "fail" not in check.stdout.lower()
    index = subprocess.run(
        [*WARCIO, "index", "-f", "warc-type,warc-target-uri,warc-concurrent-to,http:status", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    entries = [json.loads(line) for line in index.stdout.splitlines()]
    responses = [e for e in entries if e["warc-type"] in ("response", "revisit")]
    requests = [e for e in entries if e["warc-type"] == "request"]
    assert len(responses) == result.stats["downloader/response_count"] == len(requests)
    stories = {e["warc-target-uri"] for e in responses if "/story?sid=" in e["warc-target-uri"]}
    assert {item["url"] for item in result.items} <= stories
    assert any("?issue=" in e["warc-target-uri"] for e in responses), "list pages are kept too"


@pytest.mark.integration  # reads the files of a whole crawl (warc_crawl)
def test_reparse_gives_the_crawls_items(warc_crawl: Any, replica: ReplicaServer) -> None:
    workdir, result = warc_crawl
    out = workdir / "reparsed.jsonl"
    stdout, _ = reparse([workdir / "warc"], replica, workdir, "--out", str(out), "--quiet")
    crawled = {item["sid"]: item for item in result.items}
    reparsed = {item["sid"]: item for item in read_jsonl(out)}
    assert sorted(reparsed) == sorted(crawled)
    assert any(item["categories"] for item in crawled.values()), "the crawl's categories are tested"
    recorded = {
        r.uri: r.date for r in WarcReader().responses(warc_files([workdir / "warc"])) if r.status == 200
    }
    for sid, item in crawled.items():
        assert without_fetched_at(reparsed[sid]) == without_fetched_at(item), sid
        # fetched_at is the record's WARC-Date: when the response arrived, before the crawl parsed it
        again = datetime.fromisoformat(reparsed[sid]["fetched_at"])
        assert again == recorded[item["url"]].replace(microsecond=0), sid  # fetched_at is to the second
        lag = datetime.fromisoformat(item["fetched_at"]) - again
        # both to the second: a parse in the next second of its response is 1 s later however quick
        assert 0 <= lag.total_seconds() <= result.stats["elapsed_time_seconds"] + 1, (sid, lag)
    assert f"{len(crawled)} stories to {out}" in stdout


@pytest.mark.integration  # reads the files of a whole crawl (warc_crawl)
def test_the_reader_skips_a_torn_last_fetch_at_any_cut(warc_crawl: Any, tmp_path: Path) -> None:
    workdir, _ = warc_crawl
    source = sorted((workdir / "warc").iterdir())[0]
    data = source.read_bytes()
    whole = [(r.uri, r.date) for r in WarcReader().responses([source])]
    starts = [offset for offset, _ in gzip_members(source.open("rb"))]
    # every cut within the last fetch (its response, metadata and request members), both ends included
    torn = tmp_path / "torn.warc.gz.open"
    for cut in range(starts[-3], len(data) + 1):
        torn.write_bytes(data[:cut])
        reader = WarcReader()
        got = [(r.uri, r.date) for r in reader.responses([torn])]
        whole_file = cut == len(data)
        assert got == (whole if whole_file else whole[:-1]), cut
        assert reader.skipped["torn"] == (0 if whole_file or cut == starts[-3] else 1), cut
    # garbage after a whole file: counted and skipped, the file's fetches all read
    torn.write_bytes(data + b"\x1f\x8b\x08\x00garbage")
    reader = WarcReader()
    assert len(list(reader.responses([torn]))) == len(whole) and reader.skipped["torn"] == 1


def test_file_names_never_collide(tmp_path: Path) -> None:
    started = datetime.fromisoformat("2026-11-10T12:00:00.123+00:00")
    one, two = (WarcFiles(tmp_path, "solidot", 100_000, lambda name: b"", started) for _ in range(2))
    one.append(b"a")
    two.append(b"b")  # same process, same start time: the next serial, never the same file
    one.close_file()
    two.close_file()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split("-")[:3] for n in names] == [
        ["solidot", "20261110120000123", "00000"],
        ["solidot", "20261110120000123", "00001"],
    ]
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"a", b"b"]
    assert warc_files([tmp_path]) == sorted(tmp_path.iterdir())


@pytest.mark.integration
def test_a_killed_worker_leaves_no_acknowledged_request_without_its_records(
    tmp_path: Path,
    redis_url: str,
    redis_srv: RedisServer,
    mongo: MongoServer,
    mongo_db_name: str,
) -> None:
    model = Replica(ReplicaConfig(stories=120, last_sid=80300))
    sids = model.sids()
    requests = max(sids) - min(sids) + 1
    warc_dir = tmp_path / "warc"
    with (
        replica_server(120, 80300, faults="slow=1,slow_delay=0.5") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name, WARC_DIR=str(warc_dir)) as crawl,
    ):
        assert crawl.seed("--sids", f"{min(sids)}-{max(sids)}").returncode == 0
        victim, *survivors = [crawl.start_worker(name) for name in ("victim", "two", "three")]
        with redis_srv.client() as client:

            def victim_mid_crawl() -> bool:
                remaining = int(client.get(f"{QUEUE_KEY}:count") or 0) + leased(client)
                return remaining <= requests - 15 and victim.owns(lease_owners(client)) >= 3

            wait_for(victim_mid_crawl, timeout=90, what="the victim holding 3 leases after 15 acks")
            victim.process.kill()  # SIGKILL: records still in its buffer are lost, acknowledged ones not
            victim.wait(timeout=30)
            codes = [worker.wait(timeout=120) for worker in survivors]
        logs = crawl.logs()
        base_url = server.base_url
        documents = stored(mongo.uri, mongo_db_name)

        assert codes == [0, 0], logs
        files = warc_files([warc_dir])
        victims = [f for f in files if f"-{victim.process.pid}~" in f.name]
        assert victims and victims[-1].name.endswith(".open"), "the killed worker's file stays open"
        reader = WarcReader()
        recorded = {r.uri for r in reader.responses(files) if r.status in (200, 404)}
        # every request was acknowledged by some worker: each one's response is in a WARC file
        assert {f"{base_url}/story?sid={sid}" for sid in range(min(sids), max(sids) + 1)} <= recorded
        assert reader.skipped["damaged"] == 0

        # the archive re-derived from the WARC files alone equals what the crawl stored
        database = f"{mongo_db_name}_re"
        stdout, _ = reparse(files, server, tmp_path, "--quiet", MONGO_URI=mongo.uri, MONGO_DATABASE=database)
    reparsed = stored(mongo.uri, f"{mongo_db_name}_re")
    with MongoClient(mongo.uri) as client:
        client.drop_database(f"{mongo_db_name}_re")
    assert len(documents) == len(sids) and [d["sid"] for d in reparsed] == [d["sid"] for d in documents]
    for crawled, again in zip(documents, reparsed, strict=True):
        assert without_fetched_at(stored_item(again)) == without_fetched_at(stored_item(crawled))
    assert f"{len(sids)} stories to mongodb://" in stdout
