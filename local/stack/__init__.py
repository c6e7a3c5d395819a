"""The local stack: the whole relay on loopback, wired as template.yaml wires it (see `stack`)."""

from local.stack.stack import DEFAULT_CONFIG, LocalStack, PortInUseError, RemoteHostError, StackOptions

__all__ = ["DEFAULT_CONFIG", "LocalStack", "PortInUseError", "RemoteHostError", "StackOptions"]
