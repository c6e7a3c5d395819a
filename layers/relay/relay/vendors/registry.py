"""Every vendor kind the relay delivers to: one module each, registered here.

Adding a vendor is one module behind a `VendorSpec` (see docs/adding-a-vendor.md), its line
below, its function folder, template entries, sandbox and tests.
"""

from __future__ import annotations

from relay.errors import ConfigError
from relay.vendors import pagent, quicklizard, scalev, scanova
from relay.vendors.spec import VendorSpec

# Order is the order operators see (config errors, status tables).
VENDORS: dict[str, VendorSpec] = {
    spec.kind: spec for spec in (scanova.SPEC, pagent.SPEC, scalev.SPEC, quicklizard.SPEC)
}


def vendor_spec(kind: str) -> VendorSpec:
    try:
        return VENDORS[kind]
    except KeyError as exc:
        raise ConfigError(f"unknown vendor kind {kind!r} (one of: {', '.join(VENDORS)})") from exc
