"""Hostile input through every real handler: never a 5xx for anything a client sends.

Unsigned or forged → 401; authentic but unusable → 200 parked with its reason (never queued);
5xx only for the relay's own faults. Each source gets the same hostile bodies (nesting 5,000
levels deep, invalid UTF-8, NaN, duplicate keys, numbers beyond any real amount, lone
surrogates, bodies at the size limit), and its valid event with every path its rules read
replaced by values of the wrong type. Given / When / Then in the comments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from edge_harness import (
    LOCAL_CONFIG,
    PROVIDERS,
    Relays,
    relays_fixture,  # noqa: F401 (the `relays` fixture)
    sign,
    valid_document,
)
from relay.config import load_config
from relay.sources.spec import load_source

pytestmark = pytest.mark.integration

HOSTILE_BODIES = {
    "nested 5,000 levels": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "arrays 5,000 deep": b"[" * 5000 + b"]" * 5000,
    "invalid UTF-8": b'{"id": "\xff\xfe\xfa"}',
    "NaN": b'{"id": "evt_1", "amount": NaN}',
    "Infinity": b'{"id": "evt_1", "amount": -Infinity}',
    "duplicate keys": b'{"id": "a", "id": "b"}',
    "a number of 5,000 digits": b'{"amount": ' + b"9" * 5000 + b"}",
    "an exponent beyond any float": b'{"amount": 1e999999999}',
    "a lone surrogate": b'{"id": "\\ud800"}',
    "not JSON": b"<xml/>",
    "a bare string": b'"hello"',
    "null": b"null",
}
LIMIT = 256 * 1024  # the default max_body_bytes of config/relay.local.yaml's sources


def unsigned(provider: str, body: bytes) -> dict[str, Any]:
    event = sign(provider, body)
    event["headers"] = {k: v for k, v in event["headers"].items() if k in ("content-type", "host")}
    return event


@pytest.mark.parametrize("provider", PROVIDERS)
def test_hostile_bodies_are_parked_when_signed_and_refused_when_not(relays: Relays, provider: str):
    for name, body in HOSTILE_BODIES.items():
        # When a hostile body arrives signed, Then it is parked with a reason (2xx, nothing queued),
        # or ignored where it is well-formed JSON of a shape with no rule (a HubSpot workflow body)
        status, answer = relays.post(provider, sign(provider, body))
        assert (status, answer.get("status")) in ((200, "parked"), (200, "ignored")), (name, answer)
        assert answer["reason"], (name, answer)
        if answer["status"] == "parked":
            assert answer["reason"] == "malformed_payload" and answer["detail"], (name, answer)
        # When it arrives unsigned, Then 401
        status, answer = relays.post(provider, unsigned(provider, body))
        assert status == 401 and answer["error"] == "missing_signature", (name, answer)
    assert relays.jobs() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bodies_up_to_the_size_limit_never_get_a_5xx(relays: Relays, provider: str):
    # Given the valid event padded with a property of junk until the body is exactly at the limit
    document = valid_document(provider)
    holder = document[0] if isinstance(document, list) else document
    holder["padding"] = ""
    room = LIMIT - len(json.dumps(document).encode())
    holder["padding"] = "é" * (room // 2) + "x" * (room % 2)
    body = json.dumps(document, ensure_ascii=False).encode()
    assert len(body) == LIMIT
    # Then it is handled (accepted: the padding is not read), and one byte more is 413
    status, answer = relays.post(provider, sign(provider, body))
    assert status == 200 and answer.get("status", "processed") in ("accepted", "processed"), answer
    status, answer = relays.post(provider, sign(provider, body + b" "))
    assert (status, answer["error"]) == (413, "payload_too_large")
    relays.jobs()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_body_with_its_own_relay_key_is_handled(relays: Relays, provider: str):
    # Given a valid event whose body has a `relay` key of its own (the key the relay derives under)
    document = valid_document(provider)
    (document[0] if isinstance(document, list) else document)["relay"] = 5
    # Then it is handled like any other event
    status, answer = relays.post(provider, sign(provider, json.dumps(document).encode()))
    assert status == 200 and answer.get("status", "processed") in ("accepted", "processed"), answer
    relays.jobs()


def read_paths(provider: str) -> str:
    """The text of every expression the source's rules and default paths read (built-in + config)."""
    source = load_config(LOCAL_CONFIG).source(provider)
    spec = load_source(provider)
    if spec.configure is not None:
        spec = spec.configure(
            source, {"RELAY_CONFIG": str(LOCAL_CONFIG), "TABLE_NAME": "t", "HUBSPOT_TOKEN": "t"}
        )
    texts = [json.dumps(rule.model_dump()) for rule in (*spec.builtin_rules(source), *source.rules)]
    texts += [json.dumps([spec.defaults.identity, spec.defaults.attribution, spec.defaults.properties])]
    return " ".join(texts)


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path into a JSON value (objects and lists too, not only scalars; a list's first item)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from leaves(value[0], (*path, 0))


def is_read(path: tuple, text: str) -> bool:
    """Whether a rule or default path reads `path`: its keys in a row, or after its last list index
    the keys an item path reads (`price.product` of each line item)."""
    keys = [step for step in path if isinstance(step, str)]
    last_index = max((i for i, step in enumerate(path) if isinstance(step, int)), default=-1)
    item_keys = [step for step in path[last_index + 1 :] if isinstance(step, str)]
    return bool(keys) and (".".join(keys) in text or (last_index >= 0 and ".".join(item_keys) in text))


def replaced(document: Any, path: tuple, new: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


WRONG = [None, True, "x" * 300, {"nested": [1]}, 10**20, -1, [], "1e400"]
# `make fuzz` tries every wrong value at every path; `make test` one value a path, in turn.
EVERY_VALUE = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_type_at_any_path_the_rules_read_is_never_a_5xx(relays: Relays, provider: str):
    # Given the source's valid event and the paths its rules read
    text = read_paths(provider)
    paths = [p for p in leaves(valid_document(provider)) if is_read(p, text)]
    assert len(paths) >= 3, paths
    for number, path in enumerate(paths):
        for value in WRONG if EVERY_VALUE else [WRONG[number % len(WRONG)]]:
            # When that path holds a value of the wrong type (signed, so it gets past the check)
            mutated = replaced(valid_document(provider), path, value)
            status, answer = relays.post(provider, sign(provider, json.dumps(mutated).encode()))
            # Then the answer is 2xx: accepted, ignored, or parked with a reason; never a 5xx
            assert status == 200, (path, value, answer)
            results = answer.get("events") or [answer]
            assert all(r["status"] in ("accepted", "ignored", "parked") for r in results), (path, answer)
        relays.jobs()  # (drained as it goes: a long queue slows moto down)
