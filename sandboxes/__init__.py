"""Vendor sandboxes: loopback HTTP servers that enforce each conversion vendor's contract.

Used by the integration tests, the benchmarks and the local stack. Each sandbox records
what it accepted, logs every request, and can inject faults; see `base.Sandbox`.

    with ScanovaSandbox().start() as scanova:
        requests.post(f"{scanova.url}/server-events", ...)
        assert scanova.accepted()
"""

from __future__ import annotations

from .base import Sandbox
from .faults import FaultPlan
from .hubspot_api import HubSpotApiSandbox
from .pagent import PagentSandbox
from .quicklizard import QuickLizardSandbox
from .scalev import ScalevSandbox
from .scanova import ScanovaSandbox

# The vendor sandboxes by their vendor key (`Sandbox.name`, the relay config's `kind`).
SANDBOXES: dict[str, type[Sandbox]] = {
    sandbox.name: sandbox for sandbox in (ScanovaSandbox, PagentSandbox, ScalevSandbox, QuickLizardSandbox)
}


def start_all(host: str = "127.0.0.1", ports: dict[str, int] | None = None) -> dict[str, Sandbox]:
    """Start every sandbox with its default credentials; a missing port means ephemeral."""
    ports = ports or {}
    unknown = set(ports) - set(SANDBOXES)
    if unknown:
        raise ValueError(f"unknown sandboxes: {', '.join(sorted(unknown))}")
    started: dict[str, Sandbox] = {}
    try:
        for name, sandbox_class in SANDBOXES.items():
            started[name] = sandbox_class().start(host, ports.get(name, 0))
    except BaseException:
        # Do not leak the servers already running when a later port is taken.
        for sandbox in started.values():
            sandbox.stop()
        raise
    return started


__all__ = [
    "SANDBOXES",
    "FaultPlan",
    "HubSpotApiSandbox",
    "PagentSandbox",
    "QuickLizardSandbox",
    "Sandbox",
    "ScalevSandbox",
    "ScanovaSandbox",
    "start_all",
]
