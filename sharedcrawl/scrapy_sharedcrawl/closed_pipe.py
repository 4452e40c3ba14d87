"""Commands whose output is piped end quietly when the reader goes away (``… | head -1``).

Python ignores SIGPIPE, so a write to a pipe whose reader has closed raises
:class:`BrokenPipeError` wherever the command happens to be, and once more when
the interpreter flushes ``stdout`` at exit ("Exception ignored …"). A reader that
stopped reading wants no more output: the command stops at once, says nothing,
and exits as a process ended by SIGPIPE would (128 + 13), as ``cat`` or ``seq`` do.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec

#: The exit status of a process ended by SIGPIPE, as the shell reports it.
CLOSED_PIPE_STATUS = 128 + 13

P = ParamSpec("P")


def ends_quietly_on_closed_pipe(main: Callable[P, int]) -> Callable[P, int]:
    """``main`` (a command's entry point), returning :data:`CLOSED_PIPE_STATUS` without a word when
    its output's reader has gone, whether at a write or at the last flush."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            try:
                return main(*args, **kwargs)
            finally:  # argparse's --help exits (SystemExit) with its text still buffered
                sys.stdout.flush()
        except BrokenPipeError:
            _silence_closed_streams()
            return CLOSED_PIPE_STATUS

    return wrapper


def _silence_closed_streams() -> None:
    """Point stdout and stderr at /dev/null: what is still buffered, and the interpreter's flush at
    exit, go nowhere instead of raising again (stderr too: ``2>&1 | head`` closes both)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                descriptor = stream.fileno()
            except (AttributeError, OSError, ValueError):  # replaced by a test's capture: no descriptor
                continue
            os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)
