"""This process's WARC files: named so they sort and never collide, rotated at a size, synced on demand.

:class:`WarcFiles` appends whole gzip members, renames a file from ``.open`` when it is complete,
and :meth:`WarcFiles.flush` / :meth:`WarcFiles.sync` make the records durable when asked.

Design notes: docs/framework-design.md#warc-writer.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

#: User-space buffer: records reach the OS on a flush (every acknowledgement) or when it is full.
BUFFER_SIZE = 1 << 20
OPEN_SUFFIX = ".open"


def timestamp17(moment: datetime) -> str:
    """``20261110120000123``: UTC to the millisecond, as Heritrix names files."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def safe_host(name: str | None = None) -> str:
    """The host name, reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name or socket.gethostname()) or "host"


class WarcFiles:
    """Appends records (gzip members) to this process's current WARC file in ``directory``.

    ``header(filename)`` gives the first member of each new file (its ``warcinfo``).
    A file is rotated once it holds ``max_size`` bytes or more.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        max_size: int,
        header: Callable[[str], bytes],
        started: datetime | None = None,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.max_size = max_size
        self.header = header
        self.started = timestamp17(started or datetime.now(UTC))
        self.serial = 0
        self.pid = os.getpid()
        self.host = safe_host()
        self.path: Path | None = None  # the file being written (with .open)
        self.size = 0
        self.completed: list[Path] = []
        self._file: BinaryIO | None = None

    def name(self, serial: int) -> str:
        return f"{self.prefix}-{self.started}-{serial:05d}-{self.pid}~{self.host}.warc.gz"

    def append(self, data: bytes) -> None:
        """Append whole gzip members (one record, or a request/response pair)."""
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(data)
        self.size += len(data)
        if self.size >= self.max_size:
            self.close_file()

    def flush(self) -> None:
        """Hand the buffered records to the OS (enough to survive the process being killed)."""
        if self._file is not None:
            self._file.flush()

    def sync_handle(self) -> int | None:
        """Flush, and return a duplicate of the file's descriptor to fsync from another thread (the
        caller closes it), or None with no file open. A rotation meanwhile can't invalidate it."""
        if self._file is None:
            return None
        self._file.flush()
        return os.dup(self._file.fileno())

    def sync(self) -> None:
        """Flush and fsync, here and now."""
        handle = self.sync_handle()
        if handle is not None:
            try:
                os.fsync(handle)
            finally:
                os.close(handle)

    def close_file(self) -> None:
        """Complete the current file: sync it and drop ``.open`` from its name."""
        if self._file is None or self.path is None:
            return
        self.sync()
        self._file.close()
        self._file = None
        final = self.path.with_name(self.path.name.removesuffix(OPEN_SUFFIX))
        os.replace(self.path, final)
        _sync_directory(self.directory)
        self.completed.append(final)
        self.path = None
        self.size = 0

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            name = self.name(self.serial)
            self.serial += 1
            path = self.directory / (name + OPEN_SUFFIX)
            if (self.directory / name).exists():
                continue
            try:
                handle = open(path, "xb", buffering=BUFFER_SIZE)  # noqa: SIM115 - kept open across calls
            except FileExistsError:
                continue
            break
        self._file = handle
        self.path = path
        self.size = 0
        # the new name must survive a crash as much as the records in it
        _sync_directory(self.directory)
        header = self.header(name)
        self._file.write(header)
        self.size += len(header)


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so a file created or renamed in it is durable (where the OS allows it)."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
