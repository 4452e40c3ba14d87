"""The scheduler's parts sit in a subpackage with narrow dependencies (issue 20): none of them reaches
back to the scheduler, and a module the scheduler imports may import a part without an import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scrapy_sharedcrawl.scheduler as package

PARTS = sorted(
    p for p in Path(package.__file__).parent.glob("*.py") if p.name not in {"__init__.py", "leasing.py"}
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_part_of_the_scheduler_imports_the_scheduler() -> None:
    assert {p.name for p in PARTS} >= {"heartbeat.py", "lease_ledger.py", "push_buffer.py", "crawl_end.py"}
    for part in PARTS:
        names = imported(part)
        assert "scrapy_sharedcrawl.scheduler.leasing" not in names, part.name
        assert "scrapy_sharedcrawl.scheduler.LeasingScheduler" not in names, part.name


def test_a_part_imports_without_the_scheduler_and_the_setting_path_still_loads() -> None:
    code = (
        "import sys, scrapy_sharedcrawl.start_urls, scrapy_sharedcrawl.settings_check\n"
        "assert 'scrapy_sharedcrawl.scheduler.leasing' not in sys.modules\n"
        "from scrapy.utils.misc import load_object\n"
        "cls = load_object('scrapy_sharedcrawl.scheduler.LeasingScheduler')\n"
        "assert cls.__module__ == 'scrapy_sharedcrawl.scheduler.leasing'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
