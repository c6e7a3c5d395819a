"""relay.ledger's batch calls: what DynamoDB leaves unprocessed is sent again, a few times."""

from __future__ import annotations

from typing import Any

import pytest
from relay import ledger
from relay.dlq import ledger_key
from relay.errors import LedgerError
from relay.ledger import BATCH_ATTEMPTS, Ledger, Outcome, Status

TABLE = "relay"


class Throttled:
    """A DynamoDB client that leaves part of each batch unprocessed `times` times (or always)."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("get", RequestItems))
        keys = RequestItems[TABLE]["Keys"]
        first, rest = keys[:1], keys[1:]
        answer: dict[str, Any] = {"Responses": {TABLE: [{**k, "status": {"S": "delivered"}} for k in first]}}
        if rest and len(self.calls) <= self.times:
            answer["UnprocessedKeys"] = {TABLE: {**RequestItems[TABLE], "Keys": rest}}
        else:
            answer["Responses"][TABLE] += [{**k, "status": {"S": "delivered"}} for k in rest]
        return answer

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("write", RequestItems))
        writes = RequestItems[TABLE]
        if len(writes) > 1 and len(self.calls) <= self.times:
            return {"UnprocessedItems": {TABLE: writes[1:]}}
        return {}


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(ledger.time, "sleep", pauses.append)
    return pauses


def test_unprocessed_keys_are_read_again_and_every_answer_kept(no_pauses) -> None:
    # Given DynamoDB leaves all but one key unprocessed twice
    client = Throttled(times=2)
    # When three statuses are read
    found = Ledger(client, TABLE).statuses("d", ["a", "b", "c"])
    # Then the keys left were asked again after doubling pauses, and all three answers are kept
    assert found == {"a": "delivered", "b": "delivered", "c": "delivered"}
    assert [len(items[TABLE]["Keys"]) for _, items in client.calls] == [3, 2, 1]
    assert no_pauses == [0.05, 0.1]


def test_unprocessed_writes_are_sent_again_until_none_is_left(no_pauses) -> None:
    # Given DynamoDB leaves all but one write unprocessed once
    client = Throttled(times=1)
    outcomes = [Outcome("d", cid, Status.DELIVERED) for cid in ("a", "b", "c")]
    # When three outcomes are recorded
    Ledger(client, TABLE).record(outcomes)
    # Then the two left were written again
    assert [len(items[TABLE]) for _, items in client.calls] == [3, 2]
    assert client.calls[1][1][TABLE][0]["PutRequest"]["Item"]["id"] == {"S": ledger_key("d", "b")}


@pytest.mark.parametrize("call", ["read", "write"])
def test_a_batch_still_unprocessed_after_the_last_attempt_is_a_ledger_error(call: str) -> None:
    # Given DynamoDB that always leaves part of a batch unprocessed
    client = Throttled(times=10**6)
    book = Ledger(client, TABLE)
    # When a batch is read or written, Then it gives up after BATCH_ATTEMPTS calls
    with pytest.raises(LedgerError, match="unprocessed"):
        if call == "read":
            book.statuses("d", ["a", "b", "c", "d", "e", "f"])
        else:
            book.record([Outcome("d", cid, Status.DELIVERED) for cid in "abcdef"])
    assert len(client.calls) == BATCH_ATTEMPTS
