"""The Docker image runs every command: its files, laid out as the Dockerfile lays them out, import.

No Docker daemon is needed: the Dockerfile's WORKDIR and COPY steps are replayed into a scratch
directory (with .dockerignore applied, as ``docker build`` sends the context), and every module of
every package there is imported from that directory, with this checkout's editable install turned
off, so a package the image lacks fails here as it would in the container (issue 25, row 1: the
image once lacked ``scrapy_sharedcrawl``, which every command imports).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

from test_deploy_files import DOCKERFILE, ROOT, instructions

DOCKERIGNORE = ROOT / ".dockerignore"


def ignore_patterns() -> list[re.Pattern[str]]:
    """.dockerignore as regexes on context-relative paths (Go's filepath.Match, plus ``**``)."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not replayed here: extend ignore_patterns()"
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", line.strip("/")):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append(re.compile(regex))
    return patterns


def ignored(relative: PurePosixPath, patterns: list[re.Pattern[str]]) -> bool:
    """A path is left out when it, or a directory above it, matches a pattern."""
    prefixes = [PurePosixPath(*relative.parts[: i + 1]).as_posix() for i in range(len(relative.parts))]
    return any(pattern.fullmatch(prefix) for pattern in patterns for prefix in prefixes)


def copy_source(source: Path, target: Path, patterns: list[re.Pattern[str]]) -> None:
    """COPY of one file or directory (a directory's contents go into ``target``)."""
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return
    for path in sorted(source.rglob("*")):
        relative = PurePosixPath(path.relative_to(ROOT).as_posix())
        if path.is_file() and not ignored(relative, patterns):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


def replay(image_root: Path) -> Path:
    """The Dockerfile's WORKDIR and COPY steps into ``image_root``; returns the install directory
    (the WORKDIR of the ``pip install`` step)."""
    patterns = ignore_patterns()
    workdir = PurePosixPath("/")
    install_dir: PurePosixPath | None = None
    for op, args in instructions(DOCKERFILE):
        if op == "WORKDIR":
            workdir = workdir / args.strip()
        elif op == "COPY":
            words = [word for word in args.split() if not word.startswith("--")]
            sources, dest = words[:-1], words[-1]
            into_directory = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
            target = image_root / (workdir / dest).relative_to("/")
            for source in sources:
                relative = PurePosixPath(source)
                assert not ignored(relative, patterns), f"COPY {source}: .dockerignore leaves it out"
                path = ROOT / source
                assert path.exists(), f"COPY {source}: not in the build context"
                copy_source(
                    path, target / path.name if into_directory and path.is_file() else target, patterns
                )
        elif op == "RUN" and "pip install" in args and install_dir is None:
            install_dir = workdir
    assert install_dir is not None, "the Dockerfile installs nothing"
    return image_root / install_dir.relative_to("/")


#: Run inside the replayed install directory: this checkout's editable install is turned off, so
#: only what the image holds can be imported; prints what failed, and what came from elsewhere.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys, tomllib
from pathlib import Path
here = Path.cwd().resolve()
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
# the distributions in the image: the project, and the framework's in sharedcrawl/
roots = [here] + [p.parent for p in sorted(here.glob("*/pyproject.toml"))]
sys.path[:] = [str(r) for r in roots] + [
    p for p in sys.path[1:] if p and Path(p).resolve() != Path(sys.argv[1]).resolve()
]
entry_points = {}
for root in roots:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    entry_points.update(project["scripts"])
    for group in project.get("entry-points", {}).values():
        entry_points.update(group)
failed, checked = {}, []
for name, target in entry_points.items():
    module, _, attribute = target.partition(":")
    try:
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)
        checked.append(name)
    except Exception as error:
        failed[name] = repr(error)
packages = sorted(p.name for root in roots for p in root.iterdir() if (p / "__init__.py").is_file())
for package in packages:
    try:
        root = importlib.import_module(package)
    except Exception as error:
        failed[package] = repr(error)
        continue
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except Exception as error:
            failed[info.name] = repr(error)
ours = {name.split(".")[0] for name in entry_points.values()} | set(packages)
elsewhere = sorted(
    name for name, module in list(sys.modules.items())
    if name.split(".")[0] in ours and getattr(module, "__file__", None)
    and not Path(module.__file__).resolve().is_relative_to(here)
)
print(json.dumps({"failed": failed, "elsewhere": elsewhere, "checked": checked, "packages": packages}))
"""


def test_the_image_holds_every_module_its_commands_import(tmp_path):
    install_dir = replay(tmp_path / "image")
    env = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE")
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, str(ROOT)],
        cwd=install_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["failed"] == {}
    assert report["elsewhere"] == []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(report["checked"]) >= set(project["scripts"])
    # every package the distribution installs (setup.py) is in the image
    assert {"scrapy_sharedcrawl", "solidot_spider", "solidot_replica"} <= set(report["packages"])


#: solidot-crawl's main, imported as the image's console script would, without the editable install.
RUN_CLI = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
    "getattr(f, '__module__', '')]; sys.path[:0] = ['.', 'sharedcrawl']; from solidot_spider.cli import main; "
    "sys.argv[0] = 'solidot-crawl'; sys.exit(main(sys.argv[1:]))"
)


def test_every_solidot_crawl_command_answers_help_from_the_image(tmp_path):
    """What the runbook runs in the container (`solidot-crawl status`, `seed`, …) parses there."""
    install_dir = replay(tmp_path / "image")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", RUN_CLI, *args],
            cwd=install_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )

    top = cli("--help")
    assert top.returncode == 0, top.stderr
    commands = re.search(r"\{([\w,-]+)\}", top.stdout)
    assert commands, top.stdout
    assert {"seed", "status", "workers", "export", "dashboard"} <= set(commands[1].split(","))
    for command in commands[1].split(","):
        result = cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: solidot-crawl" in result.stdout


def test_the_replay_catches_a_package_left_out(tmp_path, monkeypatch):
    """The check above fails when the Dockerfile lacks a package (the bug it was written for)."""
    original = DOCKERFILE.read_text()
    broken = tmp_path / "Dockerfile"
    broken.write_text(original.replace("COPY sharedcrawl ./sharedcrawl\n", ""))
    assert broken.read_text() != original
    monkeypatch.setattr(sys.modules[__name__], "DOCKERFILE", broken)
    install_dir = replay(tmp_path / "image")
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, str(ROOT)],
        cwd=install_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert "solidot-crawl" in report["failed"]
