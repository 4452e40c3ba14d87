"""The deploy's secrets: where the runbook puts them is git-ignored, a `change-me` value copied from an
example stops every service at start, and the crawl stores with a MongoDB user of its own, not root.

The compose file is resolved with Debian's ``docker-compose config`` (as in test_deploy_files.py);
each service's start check is then run with the environment compose would give it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from test_deploy_files import COMPOSE_ENV, DEPLOY, ROOT, compose_config, env_assignments

REFUSE = DEPLOY / "refuse-placeholders.sh"
START_SCRAPYD = DEPLOY / "scrapyd" / "start-scrapyd.sh"
DOCKER_ENV_EXAMPLE = DEPLOY / "docker" / ".env.example"
CRAWL_USER_JS = DEPLOY / "docker" / "mongo-init" / "crawl-user.js"


def git_ignored(*paths: str) -> set[str]:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


def test_where_the_runbook_puts_secrets_is_git_ignored():
    secrets = ["deploy/docker/.env", "deploy/env/crawl.env", "deploy/env/scrapyd.env", "deploy/env/node2.env"]
    examples = [
        "deploy/docker/.env.example",
        "deploy/env/crawl.env.example",
        "deploy/env/scrapyd.env.example",
    ]
    assert git_ignored(*secrets, *examples) == set(secrets)


def run_check(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(REFUSE), *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_change_me_value_is_refused_by_name_without_printing_it():
    result = run_check({"REDIS_URL": "redis://:change-me-redis-password@h/0", "OK": "x"}, "echo", "ran")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "REDIS_URL" in result.stderr
    assert "OK" not in result.stderr.split(":")[1]
    assert "change-me-redis-password" not in result.stderr


def test_without_placeholders_the_command_runs():
    result = run_check({"REDIS_URL": "redis://:4f2a@h/0"}, "echo", "ran")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ran\n", "")
    assert run_check({}).returncode == 0  # no command: check only


def test_start_scrapyd_refuses_placeholders_before_writing_anything(tmp_path):
    home = tmp_path / "node"
    result = subprocess.run(
        ["bash", str(START_SCRAPYD), str(home)],
        env={
            "PATH": os.environ["PATH"],
            "SCRAPYD_USERNAME": "ops",
            "SCRAPYD_PASSWORD": "change-me-scrapyd-password",
            "SCRAPYD_BIN": "/bin/true",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SCRAPYD_PASSWORD" in result.stderr
    assert not home.exists()


def service_environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    return {key: "" if value is None else str(value) for key, value in env.items()}


@pytest.mark.parametrize("values", ["example", "replaced"])
def test_every_compose_service_starts_through_the_check(tmp_path, values):
    """With .env copied from .env.example unedited, no service starts; with real values, all do."""
    env = env_assignments(DOCKER_ENV_EXAMPLE) if values == "example" else COMPOSE_ENV
    services = compose_config(tmp_path, **env)["services"]
    assert {"redis", "mongo", "scrapyd1", "scrapyd2", "seeder"} <= set(services)
    expected = 2 if values == "example" else 0
    for name, service in services.items():
        environment = service_environment(service)
        if name.startswith("scrapyd"):
            # the image's entrypoint runs start-scrapyd.sh (test_deploy_files.py), which runs the check
            result = subprocess.run(
                ["bash", str(START_SCRAPYD), str(tmp_path / name)],
                env={"PATH": os.environ["PATH"], **environment, "SCRAPYD_BIN": "/bin/true"},
                capture_output=True,
                text=True,
                timeout=60,
            )
        else:
            entrypoint = service["entrypoint"]
            assert entrypoint[0] == "sh" and Path(entrypoint[1]).name == REFUSE.name, (name, entrypoint)
            if name != "seeder":  # Redis and MongoDB get the script mounted from this checkout
                mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
                assert Path(mounts[entrypoint[1]]).resolve() == REFUSE
            result = run_check(environment, "true")
        assert result.returncode == expected, (name, result.stderr)


def test_the_crawl_stores_with_a_least_privilege_mongodb_user(tmp_path):
    services = compose_config(tmp_path)["services"]
    mongo = services["mongo"]
    database = mongo["environment"]["MONGO_DATABASE"]
    for name in ("scrapyd1", "scrapyd2", "seeder"):
        uri = urlsplit(services[name]["environment"]["MONGO_URI"])
        assert (uri.username, uri.password) == (
            COMPOSE_ENV["MONGO_CRAWL_USER"],
            COMPOSE_ENV["MONGO_CRAWL_PASSWORD"],
        )
        assert uri.username != COMPOSE_ENV["MONGO_ROOT_USER"]
        # the user lives in the crawl's database, the one the store writes (MONGO_DATABASE's default)
        assert uri.path == f"/{database}"
        assert parse_qs(uri.query)["authSource"] == [database]
        assert services[name]["environment"].get("MONGO_DATABASE", "solidot") == database
    from solidot_spider import settings

    assert database == settings.MONGO_DATABASE
    # the init script creates that user with readWrite on that database and no other role
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in mongo["volumes"]}
    assert Path(mounts["/docker-entrypoint-initdb.d"]).resolve() == CRAWL_USER_JS.parent
    script = CRAWL_USER_JS.read_text()
    assert re.findall(r"role:\s*\"(\w+)\"", script) == ["readWrite"]
    assert "process.env.MONGO_CRAWL_USER" in script and "process.env.MONGO_CRAWL_PASSWORD" in script
    assert {"MONGO_CRAWL_USER", "MONGO_CRAWL_PASSWORD"} <= set(mongo["environment"])


def test_systemd_units_check_placeholders_before_they_start():
    for unit in ("solidot-worker@.service", "solidot-seed-latest.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "ExecStartPre=/bin/sh /opt/solidot-crawler/deploy/refuse-placeholders.sh" in text, unit
    assert "start-scrapyd.sh" in (DEPLOY / "systemd" / "scrapyd.service").read_text()


def test_the_compose_seeder_runs_latest_and_refresh_as_the_runbook_says(tmp_path):
    """.env.example leaves SEED_ARGS unset: the seeder runs the default the runbook names."""
    example = env_assignments(DOCKER_ENV_EXAMPLE)
    assert "SEED_ARGS" not in example
    real = {name: "x" if "PASSWORD" in name else value for name, value in example.items()}
    seeder = compose_config(tmp_path, **real)["services"]["seeder"]
    assert seeder["command"].split() == ["--latest", "--refresh"]
    assert "--latest --refresh" in (DEPLOY / "README.md").read_text()


def test_the_runbooks_compose_commands_name_services_and_commands_that_exist(tmp_path):
    """Each `docker-compose run|exec SERVICE …` of the runbook names a service of the compose file,
    and a `solidot-crawl COMMAND` run in it is a command the image has (tests/deploy/test_docker_image.py
    runs each one's --help from the image's files)."""
    services = compose_config(tmp_path)["services"]
    runbook = (DEPLOY / "README.md").read_text()
    used = re.findall(r"docker-compose (run --rm|exec) (\w+)(?: solidot-crawl (\w+))?", runbook)
    assert {service for _, service, _ in used} >= {"seeder", "scrapyd1"}
    from solidot_spider.cli import build_parser

    help_text = build_parser().format_help()
    for _, service, command in used:
        assert service in services, service
        if command:
            assert re.search(rf"\b{command}\b", help_text), command
