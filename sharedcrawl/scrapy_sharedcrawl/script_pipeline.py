"""Lua scripts in one pipelined round trip, without redis-py's ``SCRIPT EXISTS`` before each pipeline.

:class:`ScriptPipeline` sends ``EVALSHA`` itself, loads a script it has not seen in the same round trip,
and after a ``NOSCRIPT`` reply (a Redis restarted or failed over) loads it again and re-runs only the
commands that failed, each once.

Design notes: docs/framework-design.md#script_pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError, ResponseError


@dataclass(frozen=True)
class ScriptCall:
    """One script run: the script (as :meth:`redis.Redis.register_script` made it), its keys and args."""

    script: Script
    keys: Sequence[Any]
    args: Sequence[Any]


class ScriptPipeline:
    """Runs script calls in one pipeline (not a transaction) on ``server``; see the module docstring."""

    def __init__(self, server: redis.Redis) -> None:
        self.server = server
        #: SHA1s of the scripts this object has loaded (or seen run) on ``server``.
        self.loaded: set[str] = set()

    def execute(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """The replies of ``calls``, in order. Raises the first error reply (after a ``NOSCRIPT`` retry)
        as redis-py's pipeline does, and connection errors as they come."""
        if not calls:
            return []
        replies = self._run(calls, self._not_loaded(calls))
        failed = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if failed:  # the server lost its scripts since we loaded them: load again, re-run those only
            retried = [calls[index] for index in failed]
            self.loaded.difference_update(call.script.sha for call in retried)
            for index, reply in zip(failed, self._run(retried, self._not_loaded(retried)), strict=True):
                replies[index] = reply
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    def _not_loaded(self, calls: Sequence[ScriptCall]) -> list[Script]:
        scripts: dict[str, Script] = {}
        for call in calls:
            if call.script.sha not in self.loaded:
                scripts.setdefault(call.script.sha, call.script)
        return list(scripts.values())

    def _run(self, calls: Sequence[ScriptCall], loading: list[Script]) -> list[Any]:
        """One round trip: ``SCRIPT LOAD`` of ``loading``, then an ``EVALSHA`` per call; its replies."""
        pipe = self.server.pipeline(transaction=False)
        for script in loading:
            pipe.script_load(script.script)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        replies = pipe.execute(raise_on_error=False)
        for script, reply in zip(loading, replies, strict=False):
            if isinstance(reply, ResponseError):
                raise reply  # a script Redis refuses to compile: a bug, not input
            self.loaded.add(script.sha)
        return list(replies[len(loading) :])
