"""The crawl deployed and scaled on scrapyd: two real scrapyd 1.6 nodes (auth on, each its own
directory and port), the project deployed to them with scrapyd-client's ``scrapyd-deploy``,
worker jobs started and stopped with ``solidot-crawl workers``, crawling the replica through a
password-protected redis-server into a MongoDB wire-protocol server that requires a login.

Slow (real processes, a crawl each): ``-m scrapyd`` selects these, ``-m 'not scrapyd'`` skips them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cluster import WORKER_SETTINGS, assert_store_matches, stored
from harness import DOMAIN, FAST_SETTINGS, ROOT, ReplicaServer, replica_server, wait_for
from mongo_server import MongoServer, mongo_server
from scrapyd_node import (
    BIN,
    PASSWORD,
    ScrapydNode,
    deploy,
    fleet_config,
    operator_env,
    run_workers,
    scrapyd_nodes,
)

from scrapy_sharedcrawl.testing.redis_server import RedisServer, free_port, redis_server
from solidot_replica import Replica, ReplicaConfig

pytestmark = pytest.mark.scrapyd

STORIES, LAST_SID = 120, 80300
REDIS_PASSWORD, MONGO_USER, MONGO_PASSWORD = "r3dis-Pa55", "crawler", "m0ngo-Pa55"
#: Every secret of these tests: none may show in a node's files, a job's log, an item or a command's output.
SECRETS = (REDIS_PASSWORD, MONGO_PASSWORD, PASSWORD)
#: The fleet's worker settings, given through schedule.json's setting= by `workers up -s`.
JOB_SETTINGS = {
    **FAST_SETTINGS,
    **WORKER_SETTINGS,
    "CONCURRENT_REQUESTS": "2",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
}


@pytest.fixture(scope="module")
def model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    with redis_server(password=REDIS_PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def locked_mongo() -> Iterator[MongoServer]:
    with mongo_server(user=f"{MONGO_USER}:{MONGO_PASSWORD}") as server:
        yield server


@dataclass
class Fleet:
    """Two scrapyd nodes of one crawl and what an operator uses to drive them."""

    nodes: list[ScrapydNode]
    config: Path
    redis: RedisServer
    mongo_uri: str
    database: str
    server: ReplicaServer
    workdir: Path

    def workers(self, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_workers(self.config, *arguments, redis_url=self.redis.url, env={**operator_env(), **env})

    def up(self, count: int, *extra: str) -> list[str]:
        """``workers up COUNT`` with the test settings, waiting until the new workers run. → their job ids."""
        settings = [f"--set={name}={value}" for name, value in JOB_SETTINGS.items()]
        done = self.workers("up", str(count), *settings, "--wait", "90", *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        return re.findall(r"scheduled worker (\w+) on", done.stdout)

    def seed(self, *arguments: str) -> None:
        env = {**self.job_env(), "PATH": os.environ["PATH"]}
        command = [sys.executable, "-m", "solidot_spider.cli", "seed", *arguments]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert REDIS_PASSWORD not in done.stdout + done.stderr

    def job_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DATABASE": self.database,
            "SOLIDOT_BASE_URL": self.server.base_url,
            "SOLIDOT_RESOLVE": f"{DOMAIN}=127.0.0.1",
            "PYTHONWARNINGS": "error::DeprecationWarning:solidot_spider",
        }

    def jobs(self, state: str) -> dict[str, ScrapydNode]:
        """Job id → node, of every job in ``state`` (pending, running, finished) on every node."""
        return {job["id"]: node for node in self.nodes for job in node.jobs()[state]}

    def all_finished(self, jobs: list[str]) -> bool:
        return set(jobs) <= set(self.jobs("finished"))

    def stored(self) -> list[dict[str, Any]]:
        return stored(self.mongo_uri, self.database)

    def outputs(self) -> str:
        return "\n".join(f"--- {node.name}\n{node.output()[-4000:]}" for node in self.nodes)


@contextmanager
def fleet(
    tmp_path: Path,
    redis: RedisServer,
    mongo: MongoServer,
    database: str,
    faults: str = "slow=1,slow_delay=0.5",
    slots: int = 2,
    deployed: tuple[str, ...] = ("node1", "node2"),
) -> Iterator[Fleet]:
    """A replica, two nodes with ``slots`` each (jobs inherit the crawl's settings from the nodes'
    environment), the project deployed as version r1 to ``deployed``."""
    redis.start()
    with redis.client() as client:
        client.flushall()
    with replica_server(STORIES, LAST_SID, faults=faults) as server:
        crew = Fleet([], tmp_path / "fleet.cfg", redis, mongo.uri, database, server, tmp_path)
        with scrapyd_nodes(tmp_path, crew.job_env(), count=2, slots=slots) as nodes:
            crew.nodes = nodes
            fleet_config(nodes, crew.config)
            deploy([node for node in nodes if node.name in deployed], "r1", tmp_path)
            yield crew


def finish_reason(log: str) -> str | None:
    found = re.search(r"'finish_reason': '(\w+)'", log)
    return found[1] if found else None


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a credential shows in {where}"


def workers_in_status(jobs: list[str], redis_url: str) -> tuple[list[dict[str, Any]], str]:
    """Every job's worker as ``status --json`` shows it, and the outputs read: polled until each job has
    been shown once. A job's worker joins the crawl's registry when it finds the seed, on a loaded machine
    well after ``workers up`` returned, and leaves it when the crawl ends: no single reading need show
    all three."""
    shown: dict[str, dict[str, Any]] = {}
    outputs: list[str] = []

    def every_job_shown() -> bool:
        done = subprocess.run(
            [sys.executable, "-m", "solidot_spider.cli", "status", "--json", "--redis-url", redis_url],
            cwd=ROOT, env=operator_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
        shown.update(
            {worker["job"]: worker for worker in json.loads(done.stdout)["workers"] if worker.get("job")}
        )
        return set(shown) >= set(jobs)

    wait_for(every_job_shown, timeout=180, what="every worker job in status", interval=0.2)
    return list(shown.values()), "\n".join(outputs)


def test_workers_up_spreads_jobs_over_the_nodes_which_crawl_into_mongodb_and_finish(
    tmp_path: Path, locked_redis: RedisServer, locked_mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    with fleet(tmp_path, locked_redis, locked_mongo, mongo_db_name) as crew:
        jobs = crew.up(3)
        assert len(jobs) == 3
        placed = crew.jobs("running")
        assert sorted(placed[job].name for job in jobs) == ["node1", "node1", "node2"]  # by free slots
        again = crew.workers("up", "3")
        assert again.returncode == 0 and "0 scheduled" in again.stdout, again.stdout + again.stderr

        crew.seed("--sids", f"{min(model.sids())}-{max(model.sids())}")
        listing = crew.workers("--json", "list")
        shown, status_output = workers_in_status(jobs, crew.redis.url)
        wait_for(lambda: crew.all_finished(jobs), timeout=180, what="every worker job finished", interval=0.5)
        logs = {job: placed[job].job_log(job) for job in jobs}
        documents = crew.stored()
        node_files = "\n".join(node.every_file_text() for node in crew.nodes)
        outputs = crew.outputs()

    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert {row["job"] for row in rows} == set(jobs)
    assert {row["state"] for row in rows} == {"running"} and all(row["live"] for row in rows), rows
    assert all(row["version"] == "r1" and row["pid"] for row in rows), rows
    assert {(w["node"], w["job"], w["version"]) for w in shown} == {
        (placed[job].name, job, "r1") for job in jobs
    }  # status knows each worker's node and scrapyd job
    assert_store_matches(documents, model, crew.server.base_url, categories="subset")
    for job, log in logs.items():
        assert finish_reason(log) == "finished", log[-3000:]
        assert re.search(rf"scrapyd job {job}, egg version r1 \(.*/eggs/solidot_spider/r1\.egg\)", log)
        assert "Traceback" not in log and " ERROR: " not in log, log[-3000:]
    assert "Process died" not in outputs, outputs
    for text, where in [
        (node_files, "the nodes' files"),
        (listing.stdout + status_output, "the commands' output"),
    ]:
        assert_no_secret(text, where)
    assert_no_secret(json.dumps(documents, default=str), "the stored items")


def test_a_cancelled_and_a_killed_worker_job_lose_nothing(
    tmp_path: Path, locked_redis: RedisServer, locked_mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    with fleet(tmp_path, locked_redis, locked_mongo, mongo_db_name) as crew:
        jobs = crew.up(3)
        crew.seed("--sids", f"{min(model.sids())}-{max(model.sids())}")
        wait_for(lambda: len(crew.stored()) >= 20, timeout=120, what="20 stories stored", interval=0.5)
        down = crew.workers("down", "2")  # scrapyd's cancel.json: SIGTERM to one job
        assert down.returncode == 0, down.stdout + down.stderr
        (cancelled,) = re.findall(r"stopping worker (\w+) on", down.stdout)
        running = crew.jobs("running")
        victim = next(job for job in jobs if job != cancelled and job in running)
        pid = next(j["pid"] for j in running[victim].jobs()["running"] if j["id"] == victim)
        os.kill(pid, 9)  # SIGKILL: its leases come back to the queue after SCHEDULER_LEASE_SECONDS
        wait_for(lambda: crew.all_finished(jobs), timeout=180, what="every worker job ended", interval=0.5)
        finished = crew.jobs("finished")
        logs = {job: finished[job].job_log(job) for job in jobs}
        documents = crew.stored()
        outputs = "\n".join(node.output() for node in crew.nodes)

    assert_store_matches(documents, model, crew.server.base_url, categories="subset")
    assert finish_reason(logs[cancelled]) == "shutdown", logs[cancelled][-3000:]
    assert finish_reason(logs[victim]) is None  # killed: it never closed
    (survivor,) = set(jobs) - {cancelled, victim}
    assert finish_reason(logs[survivor]) == "finished", logs[survivor][-3000:]
    # scrapyd saw the killed one die and the cancelled one exit normally
    assert (
        f"Process died: exitstatus=None project='solidot_spider' spider='solidot' job='{victim}'" in outputs
    )
    assert f"Process finished: project='solidot_spider' spider='solidot' job='{cancelled}'" in outputs


def test_a_redeploy_mid_crawl_new_jobs_take_it_running_ones_keep_theirs(
    tmp_path: Path, locked_redis: RedisServer, locked_mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    days = model.days()
    # pages at 1 s each: r1's workers are still crawling once r2 is deployed and its worker starts
    # (at 0.5 s, a loaded machine's deploy took as long as the crawl: `up 3` found no r1 worker left)
    with fleet(tmp_path, locked_redis, locked_mongo, mongo_db_name, faults="slow=1,slow_delay=1") as crew:
        old = crew.up(2)
        # day archives: the story requests are found, and queued, by r1's workers
        crew.seed("--since", days[0].isoformat(), "--until", days[-1].isoformat())
        wait_for(lambda: len(crew.stored()) >= 15, timeout=120, what="15 stories stored", interval=0.5)
        deploy(crew.nodes, "r2", tmp_path)
        (new,) = crew.up(3)
        listing = json.loads(crew.workers("--json", "list", "--all").stdout)  # old ones may be done already
        wait_for(
            lambda: crew.all_finished([*old, new]),
            timeout=180,
            what="every worker job finished",
            interval=0.5,
        )
        finished = crew.jobs("finished")
        logs = {job: finished[job].job_log(job) for job in [*old, new]}
        documents = crew.stored()

    assert {row["job"]: row["version"] for row in listing} == {old[0]: "r1", old[1]: "r1", new: "r2"}
    assert_store_matches(documents, model, crew.server.base_url, categories="subset")
    for job in old:
        assert re.search(r"egg version r1 \(.*/r1\.egg\)", logs[job]), logs[job][-3000:]
        assert finish_reason(logs[job]) == "finished", logs[job][-3000:]
    assert re.search(r"egg version r2 \(.*/r2\.egg\)", logs[new]), logs[new][-3000:]
    assert finish_reason(logs[new]) == "finished", logs[new][-3000:]
    dequeued = re.search(r"'scheduler/dequeued': (\d+)", logs[new])
    assert dequeued and int(dequeued[1]) > 0, logs[new][-3000:]  # r2 read what r1 queued


def test_drain_stops_every_worker_job_of_one_node_and_leaves_the_others(
    tmp_path: Path, locked_redis: RedisServer, locked_mongo: MongoServer, mongo_db_name: str
) -> None:
    with fleet(tmp_path, locked_redis, locked_mongo, mongo_db_name) as crew:
        jobs = crew.up(4)  # two on each node, all waiting for a seed
        placed = crew.jobs("running")
        drained = crew.workers("drain", "node2", "--wait", "60")
        running = crew.jobs("running")
        finished = crew.jobs("finished")
        logs = {job: finished[job].job_log(job) for job in finished}
        unknown = crew.workers("drain", "node9")
        assert crew.workers("down", "0").returncode == 0
        wait_for(lambda: crew.all_finished(jobs), timeout=60, what="every worker job ended", interval=0.5)

    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert "node2 drained after" in drained.stdout
    on_node2 = {job for job in jobs if placed[job].name == "node2"}
    assert len(on_node2) == 2 and set(finished) == on_node2
    assert {node.name for node in running.values()} == {"node1"} and len(running) == 2
    assert all(finish_reason(log) == "shutdown" for log in logs.values()), logs
    assert unknown.returncode == 2 and "no node named 'node9'" in unknown.stderr


def test_nodes_refuse_strangers_and_workers_says_why_in_one_line_and_changes_nothing(
    tmp_path: Path, locked_redis: RedisServer, locked_mongo: MongoServer, mongo_db_name: str
) -> None:
    with fleet(tmp_path, locked_redis, locked_mongo, mongo_db_name, deployed=("node1",)) as crew:
        node1, node2 = crew.nodes
        anonymous = requests.post(
            f"{node1.url}/schedule.json", data={"project": "solidot_spider", "spider": "solidot"}
        )
        assert anonymous.status_code == 401

        wrong = crew.workers("list", SCRAPYD_PASSWORD="not-the-password")
        dead_config = fleet_config(
            [node1, ScrapydNode("dead", tmp_path / "dead", free_port(), {})], tmp_path / "with-dead.cfg"
        )
        dead = run_workers(dead_config, "up", "1", redis_url=crew.redis.url)
        lacking = run_workers(fleet_config([node2], tmp_path / "node2.cfg"), "up", "1")
        leaky = crew.workers("up", "1", f"--set=REDIS_URL={crew.redis.url}")
        too_many = run_workers(fleet_config([node1], tmp_path / "node1.cfg"), "up", "3")  # 2 slots
        no_auth_start = subprocess.run(
            ["bash", str(ROOT / "deploy/scrapyd/start-scrapyd.sh"), str(tmp_path / "never")],
            env={"PATH": f"{BIN}:{os.environ['PATH']}"}, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        jobs = crew.jobs("pending") | crew.jobs("running")

    assert (
        wrong.returncode != 0 and "refused the credentials" in wrong.stderr and wrong.stderr.count("\n") == 1
    )
    assert dead.returncode != 0 and "node dead" in dead.stderr and "unreachable" in dead.stderr
    assert "nothing changed" in dead.stderr and dead.stderr.count("\n") == 1, dead.stderr
    assert lacking.returncode != 0 and "lacks the project solidot_spider" in lacking.stderr, lacking.stderr
    assert leaky.returncode != 0 and "REDIS_URL holds credentials" in leaky.stderr, leaky.stderr
    assert too_many.returncode != 0 and "free slots" in too_many.stderr, too_many.stderr
    for done in (wrong, dead, lacking, leaky, too_many):
        assert "Traceback" not in done.stderr and done.stdout == "", done.stdout + done.stderr
        assert_no_secret(done.stderr, "an error message")
    assert jobs == {}  # nothing was scheduled by any refused command
    assert no_auth_start.returncode == 2 and "SCRAPYD_USERNAME and SCRAPYD_PASSWORD" in no_auth_start.stderr
    assert not (tmp_path / "never").exists()


def test_the_egg_holds_the_project_and_nothing_secret(tmp_path: Path) -> None:
    egg = tmp_path / "solidot.egg"
    secret = "egg-build-S3CRET"
    env = {
        **operator_env(),
        "REDIS_URL": f"redis://:{secret}@127.0.0.1:1/0",
        "MONGO_URI": f"mongodb://u:{secret}@h",
    }
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    done = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--build-egg", str(egg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout

    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(egg) as archive:
        names = archive.namelist()
        contents = b"".join(archive.read(name) for name in names)
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode()
    assert {"solidot_spider/settings.py", "solidot_spider/spiders/solidot.py"} <= set(names)
    # the framework, a distribution of its own (sharedcrawl/), mapped in: what a worker imports only
    assert {"scrapy_sharedcrawl/scheduler/leasing.py", "scrapy_sharedcrawl/warc/recorder.py"} <= set(names)
    assert not [name for name in names if name.startswith("scrapy_sharedcrawl/testing/")], names
    assert "settings = solidot_spider.settings" in entry_points  # how scrapyd finds the project's settings
    assert all(name.startswith(("solidot_spider/", "scrapy_sharedcrawl/", "EGG-INFO/")) for name in names), (
        names
    )
    assert secret.encode() not in contents
    assert after == before  # the build leaves the checkout as it was (no setup.py written into it)
