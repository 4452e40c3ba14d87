"""A TCP proxy that holds each MongoDB wire message for a while: a store slower than the crawl.

Between a worker and the test's MongoDB server: every message a client sends (a
``find``, a ``bulk_write``'s ``update``…) waits ``delay`` seconds before it is passed
on, so each round trip of the store costs at least that, whatever the machine's
speed; the answers come back at once. Messages are framed by the wire protocol's
length prefix, so a large batch is held once, not once per TCP segment.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class PacedProxy:
    """Listens on 127.0.0.1 (``port``), forwards to ``target_port``, pacing client messages."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._paced, args=(client, server), daemon=True).start()
            threading.Thread(target=self._plain, args=(server, client), daemon=True).start()

    def _paced(self, source: socket.socket, sink: socket.socket) -> None:
        """Client to server: message by message, each held ``delay`` seconds."""
        buffer = b""
        with contextlib.suppress(OSError):
            while True:
                while len(buffer) < 4 or len(buffer) < struct.unpack("<i", buffer[:4])[0]:
                    chunk = source.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                size = struct.unpack("<i", buffer[:4])[0]
                message, buffer = buffer[:size], buffer[size:]
                time.sleep(self.delay)  # the pacing itself: this proxy's whole purpose
                sink.sendall(message)
        _close_both(source, sink)

    def _plain(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        _close_both(source, sink)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def paced_proxy(target_port: int, delay: float) -> Iterator[PacedProxy]:
    proxy = PacedProxy(target_port, delay)
    try:
        yield proxy
    finally:
        proxy.close()
