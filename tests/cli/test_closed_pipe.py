"""Commands piped into a reader that stops early (``… | head -1``) end quietly: no traceback,
no "Exception ignored", the exit status of a process ended by SIGPIPE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from harness import ROOT

from scrapy_sharedcrawl.closed_pipe import CLOSED_PIPE_STATUS

COMMANDS = {
    # tens of kB of JSON Lines: the pipe is found closed at a write, midway
    "replica truth": ["-m", "solidot_replica", "truth", "--stories", "300"],
    # a few hundred bytes, still buffered when argparse exits: found closed at the last flush
    "replica help": ["-m", "solidot_replica", "--help"],
    "crawl help": ["-m", "solidot_spider.cli", "--help"],
    "crawl export help": ["-m", "solidot_spider.cli", "export", "--help"],
}


def run_into_closed_pipe(arguments: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The command with its stdout a pipe whose reader closed before it started (no race)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, *arguments], cwd=ROOT, stdout=writer, stderr=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_closed_pipe_ends_the_command_quietly(name: str) -> None:
    done = run_into_closed_pipe(COMMANDS[name])
    assert done.stderr.decode() == ""
    # argparse swallows the error of its own help's write (and exits 0); a command's writes don't
    assert done.returncode == (0 if name.endswith("help") else CLOSED_PIPE_STATUS)


def test_head_1_gets_its_line_and_the_shell_sees_no_traceback() -> None:
    done = subprocess.run(
        f"{sys.executable} -m solidot_replica truth --stories 300 | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.count("\n") == 1 and done.stdout.startswith('{"')


def test_a_reader_that_reads_all_changes_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "solidot_replica", "truth", "--stories", "30"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == b"" and done.stdout.count(b"\n") > 10
