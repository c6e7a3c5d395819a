"""The key spaces of the relay table: every item's `id` starts with one of these prefixes.

Each function's IAM in template.yaml allows only the key spaces it uses (a
`dynamodb:LeadingKeys` condition) and only the actions it calls there; docs/security.md
lists them. To add a key space: a constant here, its grant in template.yaml, a row in
docs/security.md; the expected grants in tests/unit/test_template_security.py keep the three
in step.
"""

from __future__ import annotations

IDEMPOTENCY = "idempotency#"  # + <source>#<hash>: Powertools idempotency records of ingest_<source>
LEDGER = "ledger#"  # + <destination>#<conversion id>: the delivery ledger (relay.ledger)
PARKED = "parked#"  # + <provider>#<event id>: authentic events parked as unusable (relay.parking)
CONVERSION = "conversion#"  # + <source>#<conversion id>: destinations queued (relay.ingest.claims)


def idempotency_prefix(source: str) -> str:
    """Powertools' key_prefix for one ingest function: its records are `<this>#<hash>`."""
    return f"{IDEMPOTENCY}{source}"


def conversion_prefix(source: str) -> str:
    """The conversion claims one ingest function writes: `<this>#<conversion id>`."""
    return f"{CONVERSION}{source}"
