"""A private redis-server for tests: its own process, port and directory, never the machine's 6379.

``with redis_server() as server:`` gives ``server.url`` (``redis://127.0.0.1:PORT/0``),
``server.client()``, and ``server.stop()`` / ``server.start()`` on the same port to test
reconnecting (``persistence="aof"`` keeps the data across them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import redis

Persistence = Literal["none", "aof"]

SYSTEM_PORT = 6379
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
#: How often a starting server is asked for PING (each wait also notices a server that died).
POLL_INTERVAL = 0.02


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not on PATH: run `bash deploy/setup-redis.sh` (installs Debian's redis-server)"
        )
    return binary


class RedisServer:
    """One redis-server process on 127.0.0.1; ``stop()`` and ``start()`` keep its port and directory."""

    def __init__(
        self, port: int, directory: Path, persistence: Persistence = "none", password: str | None = None
    ) -> None:
        if port == SYSTEM_PORT:
            raise ValueError("tests never use the machine's Redis on port 6379")
        self.port = port
        self.directory = directory
        self.persistence = persistence
        self.password = password
        self.log_path = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect with (the password in it, when the server has one)."""
        userinfo = f":{self.password}@" if self.password else ""
        return f"redis://{userinfo}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> redis.Redis:
        """A new client (``decode_responses=True``): close it or use it in a ``with`` block."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True, socket_timeout=5
        )

    def command(self) -> list[str]:
        return [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persistence == "aof" else "no",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            *(["--requirepass", self.password] if self.password else []),
        ]  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once it answers PING."""
        if self.running:
            return
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                try:
                    code = self.process.wait(timeout=POLL_INTERVAL)  # doubles as the pause between PINGs
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise TimeoutError(
                            f"redis-server on port {self.port} gave no PONG in {timeout} s"
                        ) from None
                else:
                    raise RuntimeError(f"redis-server exited with {code}: {self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server (SIGTERM: an AOF server writes its file first) and wait until it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def redis_server(
    port: int = 0, persistence: Persistence = "none", password: str | None = None
) -> Iterator[RedisServer]:
    """Run a private redis-server (on a free port when ``port`` is 0, with ``password`` required
    when given) and stop it at exit."""
    with tempfile.TemporaryDirectory(prefix="sharedcrawl-redis-") as directory:
        server = RedisServer(port or free_port(), Path(directory), persistence, password)
        try:
            server.start()
        except RuntimeError:
            if port:
                raise
            server.port = free_port()  # the free port was taken before redis-server bound it
            server.start()
        try:
            yield server
        finally:
            server.stop()
