"""``sharedcrawl``, the framework's operator tool, runs any project's workers: the scrapy-redis example
project deployed to a real scrapyd node with scrapyd-deploy, scaled up and down with
``sharedcrawl workers`` from the project's directory, as its operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from harness import wait_for
from link_site import link_site
from scrapyd_node import BIN, operator_env, scrapyd_nodes

from scrapy_sharedcrawl.testing.redis_server import RedisServer

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "redis_project"


def sharedcrawl(project: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "sharedcrawl"), "workers", *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_sharedcrawl_workers_scales_a_generic_project_on_scrapyd(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer
) -> None:
    project = tmp_path / "redis_project"  # scrapyd-deploy writes its build files beside the project
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "*.log"))
    node_env = {**os.environ, "REDIS_URL": redis_url}  # what its jobs inherit
    with scrapyd_nodes(tmp_path / "nodes", node_env, count=1, slots=2) as (node,):
        config = project / "scrapy.cfg"
        # the operator's targets: the project named once in [deploy], as scrapyd-deploy reads it
        targets = (
            "\n[deploy]\nproject = redis_example\n"
            "username = ${SCRAPYD_USERNAME}\npassword = ${SCRAPYD_PASSWORD}\n"  # expanded from the environment
            f"\n[deploy:node1]\nurl = {node.url}/\nslots = 2\n"
        )
        config.write_text(config.read_text() + targets)
        env = {**operator_env(), "REDIS_URL": redis_url}
        deployed = subprocess.run(
            [str(BIN / "scrapyd-deploy"), "node1", "-v", "1"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        assert '"status": "ok"' in deployed.stdout, deployed.stdout + deployed.stderr

        several = sharedcrawl(project, env, "list")  # three spiders: which one is the crawl's?
        assert several.returncode == 2 and "--spider" in several.stderr, several.stderr

        with link_site(pages=60, delay=0.05) as site, redis_srv.client() as client:
            up = sharedcrawl(project, env, "--spider", "pages", "up", "2", "--wait", "90")
            assert up.returncode == 0, up.stdout + up.stderr
            assert "2 worker jobs asked for: 2 scheduled" in up.stdout
            client.lpush("pages_feed:urls", f"{site.base_url}/")
            wait_for(lambda: client.llen("pages:items") == len(site.urls()), timeout=120, what="every page")
            listed = sharedcrawl(project, env, "--spider", "pages", "--json", "list")
            down = sharedcrawl(project, env, "--spider", "pages", "down", "0")
            wait_for(
                lambda: not any(node.jobs("redis_example")[state] for state in ("running", "pending")),
                timeout=120,
                what="stopped",
            )
            urls = [json.loads(raw)["url"] for raw in client.lrange("pages:items", 0, -1)]

    rows = json.loads(listed.stdout)
    assert [(row["node"], row["state"], row["live"]) for row in rows] == [("node1", "running", True)] * 2
    assert down.returncode == 0 and "2 worker jobs stopping" in down.stdout, down.stdout + down.stderr
    assert sorted(urls) == sorted(site.urls())  # every page once
