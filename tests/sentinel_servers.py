"""A private Redis with Sentinel for tests: a master, a replica and three ``redis-server --sentinel``,
each its own process on a free loopback port (never the machine's 6379/26379).

``with sentinel_set() as redis_set:`` gives ``redis_set.settings`` (REDIS_SENTINELS,
REDIS_SENTINEL_MASTER…), ``redis_set.kill_master()`` (SIGKILL, as a machine dying),
``redis_set.wait_for_failover(old)`` and ``redis_set.restart_as_replica(server)``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
from cluster import Monitor
from harness import wait_for

from scrapy_sharedcrawl.queue import _LUA_ACK
from scrapy_sharedcrawl.testing.redis_server import RedisServer, free_port, redis_binary

MASTER_NAME = "crawlmaster"
#: The ack script as EVALSHA names it (redis-py runs registered scripts by SHA1).
ACK_SHA = hashlib.sha1(_LUA_ACK.encode()).hexdigest()
#: Sentinel's timings, short for tests: a master silent for 1 s is down; a failover that stalls is
#: retried after 4 s (production values are 30 s and 3 min: see deploy/).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000
START_TIMEOUT = 10.0
#: What a replica's INFO says about its sync, shown when it is not in sync.
SYNC_FIELDS = ("role", "master_port", "master_link_status", "master_sync_in_progress", "slave_repl_offset")


class ReplicaServer(RedisServer):
    """A redis-server that replicates ``master_port`` from the start (what Sentinel then manages)."""

    def __init__(self, port: int, directory: Path, master_port: int, password: str | None = None) -> None:
        super().__init__(port, directory, password=password)
        self.master_port = master_port

    def command(self) -> list[str]:
        auth = ["--masterauth", self.password] if self.password else []
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.master_port), *auth]


class Sentinel:
    """One ``redis-server sentinel.conf --sentinel`` (the file is Sentinel's own: it rewrites it)."""

    def __init__(
        self,
        port: int,
        directory: Path,
        master_port: int,
        password: str | None = None,
        master_password: str | None = None,
    ) -> None:
        self.port = port
        self.directory = directory
        self.password = password
        self.conf = directory / "sentinel.conf"
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {directory}",
            f"logfile {directory / 'sentinel.log'}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
            *([f"requirepass {password}", f"sentinel sentinel-pass {password}"] if password else []),
            *([f"sentinel auth-pass {MASTER_NAME} {master_password}"] if master_password else []),
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_binary(), str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        with self.client() as client:
            wait_for(lambda: _answers(client), timeout=START_TIMEOUT, what=f"Sentinel on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def master_port(self) -> int | None:
        """The master's port as this Sentinel reports it now."""
        with self.client() as client:
            address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(address[1]) if address else None

    def view(self) -> dict[str, object]:
        """SENTINEL MASTER's fields (num-slaves, num-other-sentinels, flags…)."""
        with self.client() as client:
            reply = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
        return dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else dict(reply)


def _fields(entry: object) -> dict[str, str]:
    """A SENTINEL REPLICAS entry as a dict (a flat list in RESP2, a map in RESP3)."""
    if isinstance(entry, dict):
        return {str(k): str(v) for k, v in entry.items()}
    assert isinstance(entry, list)
    return {str(k): str(v) for k, v in zip(entry[::2], entry[1::2], strict=True)}


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


class SentinelSet:
    """Two redis-servers (a master and its replica) and three Sentinels watching them, quorum 2."""

    def __init__(self, root: Path, password: str | None, sentinel_password: str | None) -> None:
        self.root = root
        self.password = password
        self.sentinel_password = sentinel_password
        self.servers: list[RedisServer] = []
        self.sentinels: list[Sentinel] = []

    def start(self) -> None:
        master_port = free_port()
        master = RedisServer(master_port, self._dir("a"), password=self.password)
        master.command = _with_masterauth(master)  # type: ignore[method-assign]
        master.start()
        replica = ReplicaServer(free_port(), self._dir("b"), master_port, password=self.password)
        replica.start()
        self.servers = [master, replica]
        for name in ("s1", "s2", "s3"):
            sentinel = Sentinel(
                free_port(), self._dir(name), master_port, self.sentinel_password, self.password
            )
            sentinel.start()
            self.sentinels.append(sentinel)
        self.wait_until_watched()

    def _dir(self, name: str) -> Path:
        directory = self.root / name
        directory.mkdir()
        return directory

    def wait_until_watched(self, timeout: float = 60) -> None:
        """Until every Sentinel knows the master, a live replica and the two other Sentinels (a
        failover needs all three) and the replica is in sync."""

        def ready() -> bool:
            views = [sentinel.view() for sentinel in self.sentinels]
            return (
                all(
                    int(view["num-other-sentinels"]) == 2  # type: ignore[call-overload]
                    and int(view["num-slaves"]) >= 1  # type: ignore[call-overload]
                    and view["flags"] == "master"
                    for view in views
                )
                and self.replica_in_sync()
            )

        wait_for(ready, timeout=timeout, interval=0.1, what="three Sentinels watching master and replica")

    def replica_in_sync(self) -> bool:
        """Whether every other running server replicates the master and holds all the master had
        when asked. Judged by the replica's own offset (what it has applied, current at once), not by
        the one the master shows for it: that is the replica's acknowledgement, sent once a second,
        and any write since (each Sentinel's hello every 2 s, a process still writing) puts the
        master ahead of it, so that with writes going on "equal" is rarely seen at all."""
        return not self._unsynced()

    def _unsynced(self) -> str:
        """Why a replica is not in sync with the master (see :meth:`replica_in_sync`), or ""."""
        master = self.master
        with master.client() as client:
            ours = client.info("replication")
        replicas = [server for server in self.servers if server is not master and server.running]
        if not replicas:
            return "no replica runs"
        for server in replicas:
            with server.client() as client:
                info = client.info("replication")
            seen = {key: info.get(key) for key in SYNC_FIELDS}
            if (
                info.get("role") != "slave"
                or info.get("master_port") != master.port
                or info.get("master_link_status") != "up"
                or info.get("master_sync_in_progress") != 0
                or info.get("master_replid") != ours.get("master_replid")
                or int(info.get("slave_repl_offset", -1)) < int(ours.get("master_repl_offset", 0))
            ):
                return f"port {server.port} {seen}, master port {master.port} at {ours.get('master_repl_offset')}"
        return ""

    @property
    def master(self) -> RedisServer:
        """The server the Sentinels name master now."""
        port = self.sentinels[0].master_port()
        return next(server for server in self.servers if server.port == port)

    @property
    def replica(self) -> RedisServer:
        """The running server the Sentinels would promote (the other one)."""
        master = self.master
        return next(server for server in self.servers if server is not master and server.running)

    @property
    def settings(self) -> dict[str, str]:
        """The settings a worker or tool connects through these Sentinels with."""
        settings = {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }
        if self.sentinel_password:
            settings["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        if self.password:
            settings["REDIS_PARAMS"] = json.dumps({"password": self.password})
        return settings

    def kill_master(self) -> tuple[RedisServer, float]:
        """SIGKILL the master (no shutdown, no last write): → the dead server and when it died
        (``time.time()``, to compare with the workers' log lines)."""
        master = self.master
        assert master.process is not None
        master.process.kill()
        died = time.time()
        master.process.wait(timeout=10)
        master.process = None
        return master, died

    def wait_for_failover(self, old: RedisServer, timeout: float = 60) -> RedisServer:
        """Until every Sentinel names another master than ``old`` and that one takes writes."""

        def promoted() -> bool:
            ports = {sentinel.master_port() for sentinel in self.sentinels}
            if len(ports) != 1 or old.port in ports:
                return False
            with self.master.client() as client:
                return client.info("replication").get("role") == "master"

        wait_for(promoted, timeout=timeout, interval=0.1, what="Sentinel promoting the replica")
        return self.master

    def restart_as_replica(self, server: RedisServer, timeout: float = 120) -> RedisServer:
        """Start a dead master again, empty (as after a lost disk), as a replica of the current master
        (what an operator's config does; Sentinel would convert it too, after ~10 s of INFO);
        returns it once every Sentinel sees it up as that master's replica and it holds all the
        master had (:meth:`replica_in_sync`). A timeout says what was seen last."""
        master = self.master
        replica = ReplicaServer(server.port, server.directory, master.port, password=self.password)
        replica.start()
        self.servers[self.servers.index(server)] = replica
        last = [""]

        def watched() -> bool:
            last[0] = self._unwatched(replica, master) or self._unsynced()
            return not last[0]

        try:
            wait_for(watched, timeout=timeout, interval=0.1, what=f"port {server.port} back as a replica")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; last seen: {last[0]}") from None
        return replica

    def _unwatched(self, replica: RedisServer, master: RedisServer) -> str:
        """Why the Sentinels don't all see ``replica`` up as ``master``'s replica, or ""."""
        for sentinel in self.sentinels:
            named = sentinel.master_port()
            with sentinel.client() as client:
                entries = [_fields(e) for e in client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)]
            flags = [entry.get("flags") for entry in entries if entry.get("port") == str(replica.port)]
            if named != master.port or flags != ["slave"]:
                return f"Sentinel {sentinel.port} names master port {named}, flags of port {replica.port}: {flags}"
        return ""

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()


def _with_masterauth(server: RedisServer):  # type: ignore[no-untyped-def]
    """The master's command, plus ``masterauth`` so that it can follow a new master once demoted."""
    command = server.command

    def patched() -> list[str]:
        return [*command(), *(["--masterauth", server.password] if server.password else [])]

    return patched


@contextmanager
def sentinel_set(password: str | None = None, sentinel_password: str | None = None) -> Iterator[SentinelSet]:
    """Start a :class:`SentinelSet` (master and replica requiring ``password``, Sentinels requiring
    ``sentinel_password``, when given) and stop every process at exit."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="solidot-sentinel-")))
        servers = SentinelSet(root, password, sentinel_password)
        stack.callback(servers.stop)
        servers.start()
        yield servers


class PromotionMonitor(Monitor):
    """MONITOR that attaches again at once when its connection is closed: Sentinel promotes a
    replica with ``CLIENT KILL TYPE normal``, which a MONITOR connection is."""

    def __init__(self, port: int) -> None:
        self.closing = False
        super().__init__(port)

    def _read(self) -> None:
        while True:
            super()._read()  # returns when the connection is closed
            if self.closing:
                return
            try:
                connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                connection.sendall(b"MONITOR\r\n")
                buffer = b""
                while b"\r\n" not in buffer:
                    buffer += connection.recv(64)
            except OSError:
                return
            self._connection, self._rest = connection, buffer.split(b"\r\n", 1)[1]

    def close(self) -> None:
        self.closing = True
        super().close()


@contextmanager
def watching(port: int) -> Iterator[PromotionMonitor]:
    monitor = PromotionMonitor(port)
    try:
        yield monitor
    finally:
        monitor.close()


def first_ack_after(monitor: Monitor, died: float, timeout: float = 60) -> float:
    """Seconds from ``died`` to the first acknowledgement run on the monitored server after it: an
    EVALSHA of the ack script followed by the script's own commands (client ``lua``: it ran, it
    was no NOSCRIPT)."""
    found: list[float] = []
    scanned = [0]  # lines already looked at: each check reads only what MONITOR printed since
    sha = f'"{ACK_SHA}"'

    def acknowledged(lines: list[str]) -> bool:
        first = max(scanned[0] - 1, 0)
        scanned[0] = len(lines)
        for number in range(first, len(lines) - 1):
            line = lines[number]
            if sha in line and line.startswith("+") and "lua]" in lines[number + 1]:
                stamp = float(line[1:].split(" ", 1)[0])
                if stamp >= died:
                    found.append(stamp - died)
                    return True
        return False

    monitor.wait(acknowledged, timeout=timeout, what="an acknowledgement on the new master")
    return found[0]
