"""relay.ledger against the template's DynamoDB table in moto: who may claim, and what is recorded."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
from relay.dlq import ledger_key
from relay.errors import LedgerError
from relay.ledger import RETENTION_SECONDS, ClaimState, Ledger

from local.world import World

pytestmark = pytest.mark.integration

LEASE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(moto_world: World, clock: Clock) -> Ledger:
    return Ledger(boto3.client("dynamodb"), moto_world.table_name, clock=clock)


def item(moto_world: World, destination: str, conversion_id: str) -> dict:
    key = {"id": {"S": ledger_key(destination, conversion_id)}}
    return boto3.client("dynamodb").get_item(TableName=moto_world.table_name, Key=key)["Item"]


def new_id() -> str:
    return str(uuid.uuid4())


def test_a_new_conversion_is_claimed_and_a_second_claim_finds_it_busy(
    ledger: Ledger, moto_world, clock
) -> None:
    """Given no record, when claimed twice, then the first claim holds it (in_progress, with a lease
    and a 15-day expiration) and the second is told how long the live lease still runs."""
    conversion = new_id()

    first = ledger.claim("scanova", conversion, lease_seconds=LEASE)
    clock.now += 10
    second = ledger.claim("scanova", conversion, lease_seconds=LEASE)

    assert (first.state, first.attempts, first.held) == (ClaimState.CLAIMED, 1, True)
    assert (second.state, second.held) == (ClaimState.BUSY, False)
    assert second.busy_for == pytest.approx(LEASE - 10, abs=0.01)
    stored = item(moto_world, "scanova", conversion)
    assert stored["status"]["S"] == "in_progress"
    assert int(stored["expiration"]["N"]) == pytest.approx(clock.now - 10 + RETENTION_SECONDS, abs=1)
    assert ledger.status("scanova", conversion) == "in_progress"


def test_an_expired_claim_is_taken_over_as_a_possible_crash(ledger: Ledger, clock) -> None:
    """Given a claim whose holder never finished, when its lease has run out, then the next claim
    takes it over and says so (an earlier attempt may have reached the vendor)."""
    conversion = new_id()
    ledger.claim("pagent", conversion, lease_seconds=LEASE)
    clock.now += LEASE + 1

    taken = ledger.claim("pagent", conversion, lease_seconds=LEASE)

    assert (taken.state, taken.attempts, taken.held) == (ClaimState.TAKEN_OVER, 2, True)


def test_a_released_claim_is_claimed_again_as_new(ledger: Ledger) -> None:
    """Given a claim released after a transient failure, when claimed again, then it is a plain
    claim (not a crash), attempts keep counting, and the last reason stays readable."""
    conversion = new_id()
    first = ledger.claim("pagent", conversion, lease_seconds=LEASE)
    ledger.release(first, reason="rate_limited", vendor_status=429)

    assert ledger.status("pagent", conversion) is None
    entry = ledger.entry("pagent", conversion)
    assert entry is not None and (entry["reason"], entry["vendor_status"]) == ("rate_limited", 429)
    again = ledger.claim("pagent", conversion, lease_seconds=LEASE)
    assert (again.state, again.attempts) == (ClaimState.CLAIMED, 2)


def test_delivered_is_final(ledger: Ledger, moto_world) -> None:
    """Given a delivered record (after a released attempt), when claimed again, then the answer
    is DELIVERED; the record keeps its attempts and drops the lease and the old reason."""
    conversion = new_id()
    ledger.release(ledger.claim("scalev_meta", conversion, lease_seconds=LEASE), reason="rate_limited")
    claim = ledger.claim("scalev_meta", conversion, lease_seconds=LEASE)

    ledger.mark_delivered(claim, vendor_status=204)

    assert ledger.status("scalev_meta", conversion) == "delivered"
    stored = item(moto_world, "scalev_meta", conversion)
    assert (stored["vendor_status"]["N"], stored["attempts"]["N"]) == ("204", "2")
    assert not {"lease_until", "owner", "reason"} & set(stored)
    assert ledger.claim("scalev_meta", conversion, lease_seconds=LEASE).state is ClaimState.DELIVERED


def test_rejected_can_be_claimed_again_and_in_doubt_cannot(ledger: Ledger) -> None:
    """Given a rejected and an in-doubt record, when claimed (a replay), then the rejected one is
    claimed (the vendor took nothing) and the in-doubt one is refused until it is forgotten."""
    rejected, doubtful = new_id(), new_id()
    ledger.mark_rejected(
        ledger.claim("pagent", rejected, lease_seconds=LEASE), vendor_status=400, reason="bad"
    )
    ledger.mark_in_doubt(ledger.claim("pagent", doubtful, lease_seconds=LEASE), reason="no answer")

    entry = ledger.entry("pagent", rejected)
    assert entry is not None
    assert (entry["status"], entry["vendor_status"], entry["reason"]) == ("rejected", 400, "bad")
    assert ledger.claim("pagent", rejected, lease_seconds=LEASE).state is ClaimState.CLAIMED
    assert ledger.claim("pagent", doubtful, lease_seconds=LEASE).state is ClaimState.IN_DOUBT
    ledger.forget("pagent", doubtful)
    assert ledger.status("pagent", doubtful) is None
    assert ledger.claim("pagent", doubtful, lease_seconds=LEASE).state is ClaimState.CLAIMED


def test_only_the_holder_may_finish_a_claim(ledger: Ledger, clock) -> None:
    """Given a claim taken over after its lease ran out, when the first holder tries to release
    it, then the ledger refuses (LedgerError) and the new holder keeps it."""
    conversion = new_id()
    stale = ledger.claim("quicklizard", conversion, lease_seconds=LEASE)
    clock.now += LEASE + 1
    ledger.claim("quicklizard", conversion, lease_seconds=LEASE)

    with pytest.raises(LedgerError):
        ledger.release(stale, reason="late")

    assert ledger.status("quicklizard", conversion) == "in_progress"


def test_a_ledger_that_cannot_be_reached_raises_ledger_error(moto_world: World) -> None:
    """Given a table that does not exist, when the ledger is used, then LedgerError (by type)."""
    missing = Ledger(boto3.client("dynamodb"), "no-such-table")

    with pytest.raises(LedgerError):
        missing.claim("scanova", new_id(), lease_seconds=LEASE)
    with pytest.raises(LedgerError):
        missing.status("scanova", new_id())
