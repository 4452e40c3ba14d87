"""The layer contracts of pyproject.toml (``lint-imports``, run by .ci/run) catch an import that breaks
them: on a copy of the project with violating imports planted, every contract planted against is
reported broken, and the others stay kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: module of the copy → the import planted in it, the contract it breaks, and what the report names.
PLANTED = {
    # the site's knowledge reaching up to the Scrapy glue
    "solidot_spider/site/safe_form.py": (
        "from solidot_spider.crawl import signals",
        "layers",
        "solidot_spider.site.safe_form->solidot_spider.crawl.signals",
    ),
    # ... and to Scrapy itself
    "solidot_spider/site/items.py": ("import scrapy", "site-pure", "solidot_spider.site.items->scrapy"),
    # MongoDB outside the archive
    "solidot_spider/crawl/feed.py": (
        "import pymongo",
        "mongodb-in-archive",
        "solidot_spider.crawl.feed->pymongo",
    ),
    # two modules of one layer importing each other (schedule already imports documents)
    "solidot_spider/archive/documents.py": (
        "from solidot_spider.archive import schedule",
        "no-cycles",
        "Nocyclesareallowedinsolidot_spider.archive",
    ),
}


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--verbose"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_project(into: Path) -> Path:
    project = into / "project"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("solidot_spider", "solidot_replica"):
        shutil.copytree(ROOT / package, project / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", project)
    return project


def contract_lines(output: str) -> dict[str, str]:
    """Contract name → KEPT / BROKEN, from lint-imports' summary (names may wrap onto a second line)."""
    summary = " ".join(output.split("Contracts\n---------", 1)[-1].split())
    results = {}
    for part in summary.replace(" KEPT", " KEPT\n").replace(" BROKEN", " BROKEN\n").splitlines():
        name, _, verdict = part.strip().rpartition(" ")
        if verdict in ("KEPT", "BROKEN"):
            results[name.split("dependencies. ")[-1].strip(" -")] = verdict
    return results


def contract_names() -> dict[str, str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract["name"] for contract in config["contracts"]}


def test_planted_imports_break_the_contracts_they_cross(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    for module, (line, _, _) in PLANTED.items():
        path = project / module
        path.write_text(path.read_text() + f"\n{line}  # planted\n")

    result = lint_imports(project)

    assert result.returncode == 1, result.stdout + result.stderr
    names = contract_names()
    verdicts = contract_lines(result.stdout)
    broken = {contract for _, contract, _ in PLANTED.values()}
    for contract, name in names.items():
        expected = "BROKEN" if contract in broken else "KEPT"
        assert verdicts.get(name) == expected, (contract, verdicts)
    report = "".join(result.stdout.split())  # lint-imports wraps long lines
    for _, _, named in PLANTED.values():  # each planted import is named in the report
        assert named in report, (named, result.stdout)


def test_the_project_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(copy_project(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert set(contract_lines(result.stdout).values()) == {"KEPT"}
    assert len(contract_lines(result.stdout)) == len(contract_names())
