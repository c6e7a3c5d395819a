"""The unit suite's network guard (tests/unit/conftest.py) really is on."""

from __future__ import annotations

import socket

import pytest


def test_tcp_connections_are_refused():
    # Given the autouse guard, When a unit test opens a TCP connection, Then it fails at once.
    with pytest.raises(RuntimeError, match="unit tests run offline"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_connect_ex_is_refused_too():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError):
        sock.connect_ex(("93.184.216.34", 443))


def test_unix_sockets_still_work(tmp_path):
    # Given a listening AF_UNIX socket, When a test connects to it, Then the guard lets it through.
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ok")
                assert conn.recv(2) == b"ok"
