"""A real MongoDB server for tests: mongoeco over the wire protocol, in its own process.

No mongod can be installed here; ``deploy/setup-mongoeco.sh`` puts mongoeco in
``.venv-mongoeco`` and ``deploy/mongoeco_server.py`` serves it. Clients talk to
it with pymongo like to any mongod. With ``MONGO_URI`` set in the environment
the tests use that server instead (a real mongod), and tests that must stop
and restart the server are skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import read_line

ROOT = Path(__file__).resolve().parent.parent
MONGOECO_PYTHON = ROOT / ".venv-mongoeco" / "bin" / "python"
LAUNCHER = ROOT / "deploy" / "mongoeco_server.py"

#: The first start also loads mongoeco (≈ 1 s); allow for a busy 2-core machine.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class MongoServer:
    """A running server: ``uri`` to connect (credentials included if any), ``stop()``/``start()``."""

    restartable = True

    def __init__(self, engine: str, path: Path | None, log_path: Path, user: str | None) -> None:
        self.engine = engine
        self.path = path
        self.log_path = log_path
        self.user = user
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        address = f"127.0.0.1:{self.port}"
        if self.user is None:
            return f"mongodb://{address}"
        # mongoeco fails SCRAM-SHA-1, pymongo's default when the server names no mechanisms
        return f"mongodb://{self.user}@{address}/?authMechanism=SCRAM-SHA-256"

    def start(self) -> None:
        """Start the server; after :meth:`stop`, on the same port (clients reconnect by themselves)."""
        if self.process is not None:
            raise RuntimeError("the MongoDB server is already running")
        if not MONGOECO_PYTHON.exists():
            raise RuntimeError(f"{MONGOECO_PYTHON} is missing: run deploy/setup-mongoeco.sh")
        command = [str(MONGOECO_PYTHON), str(LAUNCHER), "--port", str(self.port), "--engine", self.engine]
        if self.path is not None:
            command += ["--path", str(self.path)]
        if self.user is not None:
            command += ["--user", self.user]
        with self.log_path.open("a") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = read_line(process, timeout=START_TIMEOUT).strip()
        except TimeoutError:
            line = ""
        if not line.startswith("READY mongodb://"):
            _terminate(process)
            log_tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mongoeco did not start ({line!r}); its log:\n{log_tail}")
        self.port = int(line.rsplit(":", 1)[1])
        self.process = process

    def stop(self) -> None:
        """SIGTERM the server and wait for it to exit; the port stays this server's for :meth:`start`."""
        if self.process is not None:
            _terminate(self.process)
            self.process = None


class ExternalMongoServer(MongoServer):
    """The server ``MONGO_URI`` points at: used as it is, never stopped."""

    restartable = False

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self.port = 0
        self.process = None

    @property
    def uri(self) -> str:
        return self._uri

    def start(self) -> None:
        pytest.skip("this test restarts MongoDB; MONGO_URI points at a server it cannot restart")

    def stop(self) -> None:
        pytest.skip("this test stops MongoDB; MONGO_URI points at a server it cannot stop")


def _terminate(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def mongo_server(port: int = 0, engine: str = "memory", user: str | None = None) -> Iterator[MongoServer]:
    """Serve MongoDB on ``127.0.0.1:port`` (0: a free port) until the block ends.

    ``engine="sqlite"`` keeps the data in a temporary file across :meth:`MongoServer.stop`
    and :meth:`MongoServer.start` (the memory engine forgets everything); ``user``
    (``"name:password"``) turns on authentication. With ``MONGO_URI`` set, yields
    that server instead.
    """
    external = os.environ.get("MONGO_URI", "").strip()
    if external:
        yield ExternalMongoServer(external)
        return
    with tempfile.TemporaryDirectory(prefix="mongoeco-") as directory:
        path = Path(directory) / "mongo.sqlite" if engine == "sqlite" else None
        server = MongoServer(engine, path, Path(directory) / "server.log", user)
        server.port = port
        server.start()
        try:
            yield server
        finally:
            server.stop()
