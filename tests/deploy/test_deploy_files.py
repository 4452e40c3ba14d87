"""The deploy files: systemd units, the Docker image and compose file, the env examples.

The units are checked with ``systemd-analyze verify`` (rendered with the install root
/opt/solidot-crawler replaced by this checkout, since verify needs ExecStart's programs to
exist), the compose file with Debian's ``docker-compose config`` (no daemon needed). Both tools
are installed by ``bash deploy/setup-deploy-checks.sh``; a missing one fails these tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "docker" / "docker-compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
INSTALL_ROOT = "/opt/solidot-crawler"
UNITS = (
    "scrapyd.service",
    "solidot-worker@.service",
    "solidot-seed-latest.service",
    "solidot-seed-latest.timer",
)
ENV_EXAMPLES = (
    DEPLOY / "env" / "crawl.env.example",
    DEPLOY / "env" / "scrapyd.env.example",
    DEPLOY / "docker" / ".env.example",
)
#: What the compose file needs from .env; the test's dummies.
COMPOSE_ENV = {
    "REDIS_PASSWORD": "dummy-redis-pw",
    "MONGO_ROOT_USER": "dummy-mongo-user",
    "MONGO_ROOT_PASSWORD": "dummy-mongo-pw",
    "MONGO_CRAWL_USER": "dummy-crawl-user",
    "MONGO_CRAWL_PASSWORD": "dummy-crawl-pw",
    "SCRAPYD_USERNAME": "dummy-ops",
    "SCRAPYD_PASSWORD": "dummy-scrapyd-pw",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run `bash deploy/setup-deploy-checks.sh` (as root)", pytrace=False)
    return path


# -- systemd -------------------------------------------------------------------------------------------


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (keys may repeat: EnvironmentFile=)."""
    units: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            units.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        units[section].setdefault(key.strip(), []).append(value.strip())
    return units


def render(tmp_path: Path, *names: str, edit=lambda text: text) -> list[Path]:
    """Copies of the units with the install root replaced by this checkout (and `edit` applied)."""
    out = tmp_path / "units"
    out.mkdir(exist_ok=True)
    paths = []
    for name in names:
        text = (SYSTEMD / name).read_text().replace(INSTALL_ROOT, str(ROOT))
        (out / name).write_text(edit(text))
        paths.append(out / name)
    return paths


def verify(*units: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify: its exit status, and its complaints about these units.

    verify exits 0 on a unit with unknown keys or unparsable values (it ignores those lines), so
    every line it prints about one of our units counts as a failure too.
    """
    result = subprocess.run(
        [tool("systemd-analyze"), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = [unit.name.split("@")[0] for unit in units]
    lines = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in lines if any(name in line for name in names)]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|min|m)?", value)
    assert match, value
    return int(match[1]) * (60 if match[2] in ("min", "m") else 1)


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    names = sorted(path.name for path in SYSTEMD.iterdir())
    assert set(UNITS) <= set(names)
    returncode, complaints = verify(*render(tmp_path, *names))
    assert (returncode, complaints) == (0, [])


@pytest.mark.parametrize(
    "edit, fatal",
    [
        (lambda text: text.replace("Restart=on-failure", "Restartt=on-failure"), False),
        (lambda text: text.replace("KillMode=control-group", "KillMode=bogus"), False),
        (
            lambda text: text.replace(str(ROOT) + "/deploy/scrapyd/start-scrapyd.sh", "/nonexistent/x.sh"),
            True,
        ),
    ],
    ids=["unknown-key", "bad-value", "missing-program"],
)
def test_verify_catches_a_broken_unit(tmp_path, edit, fatal):
    returncode, complaints = verify(*render(tmp_path, "scrapyd.service", edit=edit))
    assert complaints, "a broken unit must not pass"
    assert (returncode != 0) == fatal


def test_scrapyd_unit_runs_the_node_as_solidot_and_stops_jobs_gracefully():
    service = directives(SYSTEMD / "scrapyd.service")["Service"]
    assert service["User"] == ["solidot"]
    assert service["ExecStart"] == [f"{INSTALL_ROOT}/deploy/scrapyd/start-scrapyd.sh /var/lib/scrapyd"]
    assert service["WorkingDirectory"] == ["/var/lib/scrapyd"]
    assert service["StateDirectory"] == ["scrapyd"]
    # jobs inherit scrapyd's environment: the crawl's settings and the API credentials
    assert service["EnvironmentFile"] == [
        "/etc/solidot-crawler/crawl.env",
        "/etc/solidot-crawler/scrapyd.env",
    ]
    assert service["Restart"] == ["on-failure"]
    # SIGTERM reaches every job (scrapyd doesn't stop them), and they get longer than a lease
    assert service["KillMode"] == ["control-group"]
    assert seconds(service["TimeoutStopSec"][0]) >= 120
    assert service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == ["/var/lib/scrapyd"]
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert service[hardening] == ["yes"], hardening


def test_worker_template_gives_each_instance_its_directory_and_stats_file(tmp_path):
    service = directives(SYSTEMD / "solidot-worker@.service")["Service"]
    assert service["ExecStart"] == [f"{INSTALL_ROOT}/.venv/bin/scrapy crawl solidot"]
    assert service["EnvironmentFile"] == ["/etc/solidot-crawler/crawl.env"]
    assert service["Restart"] == ["on-failure"]
    assert service.get("KillSignal", ["SIGTERM"]) == ["SIGTERM"]
    assert seconds(service["TimeoutStopSec"][0]) >= 120

    def environment(instance: str) -> dict[str, str]:
        state = tmp_path / "state"
        expand = lambda value: value.replace("%S", str(state)).replace("%i", instance)  # noqa: E731
        env = dict(line.split("=", 1) for line in map(expand, service["Environment"]))
        cwd = Path(expand(service["WorkingDirectory"][0]))
        assert cwd == state / expand(service["StateDirectory"][0])
        return env | {"cwd": str(cwd)}

    one, two = environment("1"), environment("2")
    assert one["SOLIDOT_STATS_FILE"] != two["SOLIDOT_STATS_FILE"]
    assert Path(one["SOLIDOT_STATS_FILE"]).parent == Path(one["cwd"])
    # scrapy finds the project from the instance's directory, not from the checkout's scrapy.cfg
    cwd = Path(one.pop("cwd"))
    cwd.mkdir(parents=True)
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "scrapy"), "settings", "--get", "SOLIDOT_STATS_FILE"],
        cwd=cwd,
        env={**os.environ, **one},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == one["SOLIDOT_STATS_FILE"]


def test_seed_timer_starts_the_oneshot_seed_service():
    timer = directives(SYSTEMD / "solidot-seed-latest.timer")
    assert timer["Timer"]["Unit"] == ["solidot-seed-latest.service"]
    assert timer["Timer"]["OnUnitActiveSec"] and timer["Timer"]["OnBootSec"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    service = directives(SYSTEMD / "solidot-seed-latest.service")["Service"]
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == [f"{INSTALL_ROOT}/.venv/bin/solidot-crawl seed --latest --refresh"]
    assert service["EnvironmentFile"] == ["/etc/solidot-crawler/crawl.env"]
    assert "SCHEDULER_CONTINUOUS=True" in (SYSTEMD / "solidot-seed-latest.timer").read_text()


# -- docker-compose ------------------------------------------------------------------------------------


def compose(tmp_path: Path, *args: str, env: dict[str, str] | None = None, env_file: Path | None = None):
    """docker-compose on the compose file, with only `env` (never a real deploy/docker/.env)."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    clean = {key: value for key, value in os.environ.items() if key not in COMPOSE_ENV and key != "SEED_ARGS"}
    return subprocess.run(
        [tool("docker-compose"), "--env-file", str(env_file), "-f", str(COMPOSE), *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose_config(tmp_path: Path, **extra: str) -> dict:
    """The resolved compose file, parsed with the YAML library docker-compose itself runs on."""
    result = compose(tmp_path, "config", env=COMPOSE_ENV | extra)
    assert result.returncode == 0, result.stderr
    shebang = Path(tool("docker-compose")).read_bytes()[:200].split(b"\n")[0].decode(errors="replace")
    if not shebang.startswith("#!"):
        pytest.fail("expected Debian's docker-compose (a Python script): run deploy/setup-deploy-checks.sh")
    to_json = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    parsed = subprocess.run(
        [*shebang[2:].split(), "-c", to_json], input=result.stdout, capture_output=True, text=True, timeout=60
    )
    assert parsed.returncode == 0, parsed.stderr
    return json.loads(parsed.stdout)


def test_compose_file_is_valid(tmp_path):
    result = compose(tmp_path, "config", "-q", env=COMPOSE_ENV)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_compose_refuses_to_run_without_a_secret(tmp_path, missing):
    env = {key: value for key, value in COMPOSE_ENV.items() if key != missing}
    result = compose(tmp_path, "config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_env_example_names_every_variable_and_validates(tmp_path):
    example = DEPLOY / "docker" / ".env.example"
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required == set(COMPOSE_ENV)
    assert required <= set(env_assignments(example))
    result = compose(tmp_path, "config", "-q", env_file=example)
    assert (result.returncode, result.stderr) == (0, "")


def test_compose_services(tmp_path):
    services = compose_config(tmp_path)["services"]
    assert {"redis", "mongo", "scrapyd1", "scrapyd2", "seeder"} <= set(services)

    redis = services["redis"]
    command = " ".join(redis["command"])
    for option in (
        "--appendonly yes",
        "--appendfsync everysec",
        "--maxmemory-policy noeviction",
        f"--requirepass {COMPOSE_ENV['REDIS_PASSWORD']}",
    ):
        assert option in command
    assert redis["image"].startswith("redis:7")
    assert any(volume.split(":")[1] == "/data" for volume in redis["volumes"])

    mongo = services["mongo"]
    assert mongo["image"].startswith("mongo:7")
    assert mongo["environment"]["MONGO_INITDB_ROOT_USERNAME"] == COMPOSE_ENV["MONGO_ROOT_USER"]
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == COMPOSE_ENV["MONGO_ROOT_PASSWORD"]
    assert any(volume.split(":")[1] == "/data/db" for volume in mongo["volumes"])

    host_ports = set()
    for name in ("scrapyd1", "scrapyd2"):
        node = services[name]
        assert node["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert Path(node["build"]["context"]).resolve() == ROOT
        env = node["environment"]
        redis_url, mongo_uri = urlsplit(env["REDIS_URL"]), urlsplit(env["MONGO_URI"])
        assert (redis_url.hostname, redis_url.password) == ("redis", COMPOSE_ENV["REDIS_PASSWORD"])
        # the crawl's own least-privilege user, never root (tests/deploy/test_deploy_secrets.py)
        assert (mongo_uri.hostname, mongo_uri.username, mongo_uri.password) == (
            "mongo",
            COMPOSE_ENV["MONGO_CRAWL_USER"],
            COMPOSE_ENV["MONGO_CRAWL_PASSWORD"],
        )
        assert (env["SCRAPYD_USERNAME"], env["SCRAPYD_PASSWORD"]) == (
            COMPOSE_ENV["SCRAPYD_USERNAME"],
            COMPOSE_ENV["SCRAPYD_PASSWORD"],
        )
        [port] = node["ports"]
        host, host_port, container_port = port.split("/")[0].split(":")
        assert (host, container_port) == ("127.0.0.1", "6800")
        host_ports.add(host_port)
    assert host_ports == {"6801", "6802"}

    seeder = services["seeder"]
    assert "seed" in seeder.get("profiles", []) or seeder.get("restart") == "no"
    assert seeder["entrypoint"][-2:] == ["solidot-crawl", "seed"]
    assert shlex.split(seeder["command"]) == ["--latest", "--refresh"]
    assert urlsplit(seeder["environment"]["REDIS_URL"]).password == COMPOSE_ENV["REDIS_PASSWORD"]
    # nothing is published on anything but the host's loopback
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_seeder_takes_its_arguments_from_seed_args(tmp_path):
    seeder = compose_config(tmp_path, SEED_ARGS="--since 2006-01-01")["services"]["seeder"]
    assert shlex.split(seeder["command"]) == ["--since", "2006-01-01"]


# -- Dockerfile ----------------------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()
    ]


def test_dockerfile_installs_the_project_with_its_scrapyd_extra():
    steps = instructions(DOCKERFILE)
    assert steps[0] == ("FROM", "python:3.13-slim")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(
        requirement.startswith("setuptools") and "<81" in requirement for requirement in extras["scrapyd"]
    )
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    # editable (as deploy/setup.sh installs it): a regular install would shadow the deployed eggs
    assert any(re.search(r"pip install -e '?\.\[scrapyd\]'?", args) for args in installs), installs
    # the framework (its own distribution, not on an index) before the project that requires it
    assert re.search(
        r"pip install -e '?\./sharedcrawl\[[\w,]*\]'?.*pip install -e '?\.\[", " ".join(installs)
    ), installs
    # everything the install reads is copied, and .dockerignore lets it through
    copied = {src for op, args in steps if op == "COPY" for src in args.split()[:-1]}
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert {"pyproject.toml", "setup.py", readme, "sharedcrawl", "solidot_spider", "deploy"} <= copied
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert not copied & ignored
    assert {".git", ".venv*", "**/.env"} <= ignored
    # runs as a non-root user, scrapyd reachable from outside the container only through -p
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "6800") in steps
    assert ("ENV", "SCRAPYD_BIND_ADDRESS=0.0.0.0") in steps


def entrypoint_script() -> str:
    [entrypoint] = [json.loads(args) for op, args in instructions(DOCKERFILE) if op == "ENTRYPOINT"]
    assert entrypoint[:2] == ["bash", "-c"]
    script = entrypoint[2]
    assert f"{INSTALL_ROOT}/deploy/scrapyd/start-scrapyd.sh /data" in script
    return script


#: Stands in for start-scrapyd.sh: like scrapyd, it runs a job and, on SIGTERM, leaves at once
#: without stopping the job.
FAKE_SCRAPYD = """\
trap 'exit 0' TERM
"$PYTHON" "$JOB" &
wait
"""

#: A job that needs a while to stop: on SIGTERM it waits for its scrapyd to be gone, hands its work
#: back (0.5 s), then writes how many SIGTERMs it got to the file DONE.
FAKE_JOB = """\
import os, select, signal, sys, time
terms = []
signal.signal(signal.SIGTERM, lambda *_: terms.append(1))
parent = os.getppid()
parent_exit = os.pidfd_open(parent)
print("ready", os.getpid(), parent, flush=True)
while not terms:
    signal.pause()
select.select([parent_exit], [], [], 30)
time.sleep(0.5)
with open(os.environ["DONE"], "w") as done:
    done.write(str(len(terms)))
"""


@pytest.mark.parametrize("how", ["container-stopped", "scrapyd-died"])
def test_container_entrypoint_waits_for_jobs_to_stop_gracefully(tmp_path, how):
    fake = tmp_path / "start-scrapyd.sh"
    fake.write_text(FAKE_SCRAPYD)
    fake.chmod(0o755)
    (tmp_path / "job.py").write_text(FAKE_JOB)
    done = tmp_path / "done"
    script = entrypoint_script().replace(f"{INSTALL_ROOT}/deploy/scrapyd/start-scrapyd.sh", str(fake))

    def container_init():  # the entrypoint is PID 1 in a container: orphaned jobs become its children
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    env = {**os.environ, "PYTHON": sys.executable, "JOB": str(tmp_path / "job.py"), "DONE": str(done)}
    entry = subprocess.Popen(
        ["bash", "-c", script, "scrapyd-node"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=container_init,
    )
    job = None
    try:
        assert entry.stdout is not None
        ready, job_pid, scrapyd_pid = entry.stdout.readline().split()
        job = int(job_pid)
        assert ready == "ready"
        if how == "container-stopped":
            entry.send_signal(signal.SIGTERM)  # docker stop
        else:
            os.kill(int(scrapyd_pid), signal.SIGKILL)
        entry.wait(timeout=60)
        # the entrypoint returned only after the job had finished, and the job got one SIGTERM
        # (a second one would make Scrapy abort its graceful stop)
        assert done.read_text() == "1"
    finally:
        if job is not None:
            try:
                fd = os.pidfd_open(job)
            except ProcessLookupError:
                pass
            else:
                os.kill(job, signal.SIGKILL)
                select.select([fd], [], [], 10)
        entry.kill()
        entry.wait()


# -- env examples --------------------------------------------------------------------------------------


def env_assignments(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), f"{path.name}: not NAME=VALUE: {line!r}"
            name, value = line.split("=", 1)
            pairs[name] = value
    return pairs


@pytest.mark.parametrize("path", ENV_EXAMPLES, ids=lambda path: path.name)
def test_env_examples_hold_only_placeholders(path):
    pairs = env_assignments(path)
    for name, value in pairs.items():
        if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")):
            assert value.startswith("change-me"), name
        if "://" in value:
            password = urlsplit(value).password
            assert password is None or password.startswith("change-me"), name
    # nothing that looks generated: long hex or base64 runs
    assert not re.search(r"[0-9a-fA-F]{24,}|[A-Za-z0-9+/]{32,}={0,2}", path.read_text())


def test_env_examples_name_what_the_units_need():
    assert {"REDIS_URL", "MONGO_URI"} <= set(env_assignments(DEPLOY / "env" / "crawl.env.example"))
    assert {"SCRAPYD_USERNAME", "SCRAPYD_PASSWORD"} <= set(
        env_assignments(DEPLOY / "env" / "scrapyd.env.example")
    )


def test_setup_deploy_checks_script_parses():
    result = subprocess.run(
        ["bash", "-n", str(DEPLOY / "setup-deploy-checks.sh")], capture_output=True, text=True
    )
    assert (result.returncode, result.stderr) == (0, "")
