"""The embedded AWS of the local stack: moto's server on loopback, and clients pointed at it."""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import Any

import boto3

# moto accepts any credentials; these make sure nothing could ever reach a real account.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


MOTO_PORT_CHANGE = "make run MOTO_PORT=4567"
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback_host(host: str) -> bool:
    return host in LOOPBACK_ADDRESSES or host.startswith("127.")


class PortInUseError(RuntimeError):
    """A port the local stack needs is taken (another `make run`, or another program)."""


def ensure_port_free(host: str, port: int, what: str, change: str) -> None:
    """Fail fast with a clear message: moto's server would otherwise wait forever for a taken port.
    `change` says how to move this one (PORT, MOTO_PORT, or a base_url of the relay config)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: connections of a previous run in TIME_WAIT do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"{what} cannot listen on {host}:{port}: the port is in use (to move it: {change})"
                ) from exc
            raise


@dataclass(frozen=True)
class QueuedMessage:
    """What the status page needs of a queued message, read without receiving it."""

    attributes: dict[str, str]
    body: str
    receive_count: int
    visible: bool
    sent_ms: int | None = None  # SentTimestamp (epoch ms)


class EndpointSession:
    """The part of boto3.Session that local.world.build_world uses, with every client on moto."""

    def __init__(self, endpoint_url: str, region_name: str):
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._session = boto3.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region_name,
        )

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._session.client(service_name, endpoint_url=self.endpoint_url, **kwargs)


class EmbeddedAws:
    """moto's ThreadedMotoServer in this process (DynamoDB, SQS, Secrets Manager, STS)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, region: str = "us-east-1"):
        self.host = host
        self.port = port
        self.region = region
        self._server: Any = None

    def start(self) -> EmbeddedAws:
        from moto.server import ThreadedMotoServer

        ensure_port_free(self.host, self.port, "the embedded AWS (moto)", MOTO_PORT_CHANGE)
        # werkzeug logs every request moto serves; the pollers alone would flood the terminal.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def session(self) -> EndpointSession:
        return EndpointSession(self.endpoint_url, self.region)

    def peek(self, account_id: str, queue_name: str) -> list[QueuedMessage]:
        """Every message of a queue, without receiving it (a receive would raise its receive count).

        SQS has no peek; the server runs in this process, so its queue is read directly.
        """
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[account_id][self.region].queues.get(queue_name)
        if queue is None:
            return []
        with queue._messages_lock:
            messages = list(queue._messages)
        return [
            QueuedMessage(
                attributes={
                    name: str(value.get("StringValue", ""))
                    for name, value in (message.message_attributes or {}).items()
                },
                body=message.body,
                receive_count=message.approximate_receive_count,
                visible=message.visible,
                sent_ms=message.sent_timestamp,
            )
            for message in messages
        ]
