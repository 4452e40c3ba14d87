"""Real scrapyd nodes for tests and benchmarks: each its own process, port and directory, auth on.

A node is started the way an operator starts one, with ``deploy/scrapyd/start-scrapyd.sh``
(which installs ``deploy/scrapyd/scrapyd.conf`` in the node's directory), on a free
loopback port given through ``SCRAPYD_HTTP_PORT``. Jobs inherit the node's environment,
which is how they get ``REDIS_URL`` and ``MONGO_URI``. The project is deployed with
scrapyd-client's ``scrapyd-deploy``, reading targets from a config file written here.

Each node runs in a process session of its own, and stopping it ends the whole session: its
worker jobs (``scrapyd.runner`` children) too, so that a failed test's workers never outlive
it and join a later test's crawl on the same Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from harness import ROOT

from scrapy_sharedcrawl.testing.redis_server import free_port

START_SCRIPT = ROOT / "deploy" / "scrapyd" / "start-scrapyd.sh"
BIN = Path(sys.executable).parent
PROJECT = "solidot_spider"
USERNAME, PASSWORD = "fleet-ops", "n0de-s3cret"
#: Seconds a starting node may take to answer (twistd and scrapyd load in about a second).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def end_session(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """End ``process``, started with ``start_new_session=True``, and every process of its session:
    SIGTERM to its process group (Scrapy jobs shut down cleanly), SIGKILL to what is left after
    ``timeout``; returns once none of them runs."""
    group = process.pid  # a session leader leads its process group
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # all gone already
            os.killpg(group, signum)
        deadline = time.monotonic() + timeout
        while _group_running(group) and time.monotonic() < deadline:
            if process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.1)  # doubles as the pause between looks
            else:
                time.sleep(0.1)  # the jobs left are orphans, reaped by init
        process.poll()
        if not _group_running(group):
            return
    raise TimeoutError(f"process group {group} still runs {timeout} s after SIGKILL")


def _group_running(group: int) -> bool:
    """Whether a process of ``group`` still runs (a zombie waiting for its parent doesn't)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel about the group (zombies count as running)
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _parent, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == group and state not in ("Z", "X"):
            return True
    return False


@dataclass
class ScrapydNode:
    """One scrapyd process on 127.0.0.1 in a session of its own; ``stop()`` ends it and its jobs."""

    name: str
    directory: Path
    port: int
    env: dict[str, str] = field(repr=False)
    slots: int = 4
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output_path(self) -> Path:
        return self.directory / "scrapyd.out"

    def start(self) -> None:
        env = {**self.env, "SCRAPYD_HTTP_PORT": str(self.port), "SCRAPYD_USERNAME": USERNAME}
        env["SCRAPYD_PASSWORD"] = PASSWORD
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                ["bash", str(START_SCRIPT), str(self.directory)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its jobs with it: stop() ends them all
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if self.get("daemonstatus").get("status") == "ok":
                    return
            except requests.ConnectionError:
                pass
            try:
                code = self.process.wait(timeout=0.1)  # doubles as the pause between tries
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"scrapyd {self.name} did not answer in {START_TIMEOUT} s") from None
            else:
                raise RuntimeError(f"scrapyd {self.name} exited with {code}: {self.output()[-2000:]}")

    def stop(self) -> None:
        """Stop scrapyd and every job it started (see :func:`end_session`)."""
        if self.process is None:
            return
        end_session(self.process)
        self.process = None

    def get(self, endpoint: str, **params: str) -> dict:
        response = requests.get(
            f"{self.url}/{endpoint}.json", params=params, auth=(USERNAME, PASSWORD), timeout=30
        )
        response.raise_for_status()
        return response.json()

    def post(self, endpoint: str, **data: str) -> dict:
        response = requests.post(
            f"{self.url}/{endpoint}.json", data=data, auth=(USERNAME, PASSWORD), timeout=30
        )
        response.raise_for_status()
        return response.json()

    def jobs(self, project: str = PROJECT) -> dict[str, list[dict]]:
        """listjobs.json of the project (no jobs at all on a node it isn't deployed to)."""
        answer = self.get("listjobs", project=project)
        if answer["status"] != "ok":
            assert "not found" in answer["message"], answer
            return {"pending": [], "running": [], "finished": []}
        return answer

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def job_log(self, job: str, spider: str = "solidot") -> str:
        path = self.directory / "logs" / PROJECT / spider / f"{job}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def every_file_text(self) -> str:
        """Everything the node wrote (logs, job logs, databases), as text, to look for leaked secrets."""
        texts = []
        for path in sorted(self.directory.rglob("*")):
            if path.is_file() and path.suffix != ".egg":
                texts.append(path.read_bytes().decode("utf-8", "replace"))
        return "\n".join(texts)


@contextmanager
def scrapyd_nodes(
    workdir: Path, env: Mapping[str, str], count: int = 2, slots: int = 4
) -> Iterator[list[ScrapydNode]]:
    """``count`` running nodes (``node1``…) sharing ``env`` (what their jobs inherit); stopped at exit."""
    with ExitStack() as stack:
        nodes = []
        for index in range(1, count + 1):
            node = ScrapydNode(f"node{index}", workdir / f"node{index}", free_port(), dict(env), slots)
            node.start()
            stack.callback(node.stop)
            nodes.append(node)
        yield nodes


def fleet_config(nodes: Sequence[ScrapydNode], path: Path) -> Path:
    """A scrapy.cfg-style file with one ``[deploy:NAME]`` target per node (credentials from the env)."""
    sections = [
        f"[deploy:{node.name}]\nurl = {node.url}/\nproject = {PROJECT}\nslots = {node.slots}\n"
        for node in nodes
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sections))
    return path


def operator_env(config_home: Path | None = None) -> dict[str, str]:
    """The environment of an operator's shell: the nodes' credentials, and where scrapy.cfg targets are."""
    env = {**os.environ, "SCRAPYD_USERNAME": USERNAME, "SCRAPYD_PASSWORD": PASSWORD}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if config_home is not None:
        env["XDG_CONFIG_HOME"] = str(config_home)  # scrapy.cfg there is read by scrapyd-deploy
    return env


def deploy(nodes: Sequence[ScrapydNode], version: str, workdir: Path, project_dir: Path = ROOT) -> None:
    """``scrapyd-deploy NODE -v VERSION`` from ``project_dir`` to each node, as an operator would."""
    config_home = workdir / "operator-config"
    fleet_config(nodes, config_home / "scrapy.cfg")
    for node in nodes:
        done = subprocess.run(
            [str(BIN / "scrapyd-deploy"), node.name, "-v", version],
            cwd=project_dir,
            env=operator_env(config_home),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0 or '"status": "ok"' not in done.stdout:
            raise RuntimeError(f"scrapyd-deploy to {node.name} failed: {done.stdout}{done.stderr}")


def workers_command(config: Path, *arguments: str, redis_url: str = "") -> list[str]:
    command = [sys.executable, "-m", "solidot_spider.cli", "workers", "--config", str(config)]
    if redis_url:
        command += ["--redis-url", redis_url]
    return [*command, *arguments]


def run_workers(
    config: Path,
    *arguments: str,
    redis_url: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``solidot-crawl workers --config CONFIG ARGUMENTS`` as the operator runs it."""
    return subprocess.run(
        workers_command(config, *arguments, redis_url=redis_url),
        cwd=ROOT,
        env=dict(env) if env is not None else operator_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
