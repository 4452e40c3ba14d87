"""Waiting on other processes without sleeping blind, and what a finished crawl's stats must say."""

from __future__ import annotations

import selectors
import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line of ``process``, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no output from {process.args!r} within {timeout} s")
    return process.stdout.readline()


def assert_outcomes_add_up(stats: dict[str, Any]) -> None:
    """Every page received came to exactly one outcome (scrapy_sharedcrawl/outcomes.py)."""
    outcomes = {name: value for name, value in stats.items() if name.startswith("outcome/")}
    assert sum(outcomes.values()) == stats.get("response_received_count", 0), outcomes
