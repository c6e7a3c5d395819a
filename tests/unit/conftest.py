"""Unit tests run with the network off: any socket connection other than AF_UNIX fails.

moto's `mock_aws` answers inside botocore, so it needs no socket; subprocesses (a test may
start one) are not affected.
"""

from __future__ import annotations

import socket

import pytest


class NetworkBlockedError(RuntimeError):
    """A unit test tried to open a network connection."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(sock: socket.socket, address: object) -> None:
        if sock.family != socket.AF_UNIX:
            raise NetworkBlockedError(f"unit tests run offline: connection to {address!r} refused")

    def connect(sock: socket.socket, address: object) -> None:
        guard(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        guard(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
