"""The Sentinel overlay of the compose file (issue 21, row 3): valid over docker-compose.yml, a replica
and three Sentinels with quorum 2, and crawl processes whose settings the crawl accepts (no conflict
between REDIS_URL and the Sentinels) and that name every Sentinel service."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings
from test_deploy_files import COMPOSE, COMPOSE_ENV, DEPLOY, env_assignments, tool

from scrapy_sharedcrawl.sentinel import sentinel_config

SENTINEL_COMPOSE = DEPLOY / "docker" / "docker-compose.sentinel.yml"
SENTINEL_ENV = {**COMPOSE_ENV, "REDIS_SENTINEL_PASSWORD": "dummy-sentinel-pw"}
SENTINELS = ("sentinel1", "sentinel2", "sentinel3")


def compose(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """docker-compose on both files, with only ``env`` (never a real deploy/docker/.env)."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    clean = {key: value for key, value in os.environ.items() if key not in SENTINEL_ENV}
    return subprocess.run(
        [
            tool("docker-compose"),
            "--env-file",
            str(empty),
            "-f",
            str(COMPOSE),
            "-f",
            str(SENTINEL_COMPOSE),
            *args,
        ],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def services(tmp_path: Path) -> dict[str, Any]:
    result = compose(tmp_path, "config", env=SENTINEL_ENV)
    assert result.returncode == 0, result.stderr
    shebang = Path(tool("docker-compose")).read_bytes()[:200].split(b"\n")[0].decode(errors="replace")
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    parsed = subprocess.run(
        [*shebang[2:].split(), "-c", to_json], input=result.stdout, capture_output=True, text=True, timeout=60
    )
    assert parsed.returncode == 0, parsed.stderr
    found: dict[str, Any] = json.loads(parsed.stdout)["services"]
    return found


def test_the_overlay_is_valid_and_needs_the_sentinel_password(tmp_path: Path) -> None:
    assert compose(tmp_path, "config", "-q", env=SENTINEL_ENV).returncode == 0
    missing = compose(tmp_path, "config", "-q", env=COMPOSE_ENV)
    assert missing.returncode != 0 and "REDIS_SENTINEL_PASSWORD" in missing.stderr
    assert "REDIS_SENTINEL_PASSWORD" in env_assignments(DEPLOY / "docker" / ".env.example")


def test_a_replica_and_three_sentinels_watch_the_master(tmp_path: Path) -> None:
    found = services(tmp_path)
    password = COMPOSE_ENV["REDIS_PASSWORD"]
    replica = " ".join(found["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica and f"--masterauth {password}" in replica
    assert "--appendonly yes" in replica and "--maxmemory-policy noeviction" in replica
    assert f"--masterauth {password}" in " ".join(found["redis"]["command"])  # follows once demoted
    for name in SENTINELS:
        sentinel = found[name]
        script = sentinel["command"][0].replace("$$", "$")  # `config` prints $ escaped
        assert "sentinel monitor crawlmaster redis 6379 2" in script  # quorum 2 of 3
        assert "requirepass $REDIS_SENTINEL_PASSWORD" in script and "--sentinel" in script
        assert sentinel["environment"]["REDIS_SENTINEL_PASSWORD"] == SENTINEL_ENV["REDIS_SENTINEL_PASSWORD"]
        assert any(volume.split(":")[1] == "/data" for volume in sentinel["volumes"])  # its state kept


@pytest.mark.parametrize("name", ["scrapyd1", "scrapyd2", "seeder"])
def test_the_crawl_processes_go_through_the_sentinels(tmp_path: Path, name: str) -> None:
    found = services(tmp_path)
    env = found[name]["environment"]
    config = sentinel_config(Settings(env))  # raises on a conflict, as a worker would at start-up
    assert config is not None and config.master == "crawlmaster"
    assert {host for host, _ in config.sentinels} == set(SENTINELS) <= set(found)
    assert config.password == SENTINEL_ENV["REDIS_SENTINEL_PASSWORD"]
