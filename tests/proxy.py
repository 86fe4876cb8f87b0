"""A TCP proxy on loopback that a test can cut: every open connection is closed and new ones
are refused until it is restored. It stands between drip and the real PostgreSQL, so a test can
take the database away for a few seconds without touching the server other tests use."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

TARGET = ("127.0.0.1", 5432)  # the PostgreSQL the tests use


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def route(self, database_url: str) -> str:
        """`database_url` (of the machine's PostgreSQL) through this proxy."""
        return database_url.replace(f"{TARGET[0]}:{TARGET[1]}", f"127.0.0.1:{self.port}")

    def cut(self) -> None:
        """Drop every connection; refuse new ones until restore()."""
        self.up.clear()
        with self.lock:
            for sock in self.open:
                _close(sock)
            self.open.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def postgres_proxy() -> Iterator[Proxy]:
    proxy = Proxy(*TARGET)
    yield proxy
    proxy.close()
