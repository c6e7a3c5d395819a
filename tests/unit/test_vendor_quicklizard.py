"""QuickLizard (relay.vendors.quicklizard) against quicklizard-server-to-server.txt: the answer's
three arrays traced to the jobs sent (no index documented), and the lines and names it takes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from relay.errors import MissingRequirementError, PermanentDeliveryError, UnansweredDeliveryError
from relay.models import Item
from relay.vendors import quicklizard
from relay.vendors.client import Accepted
from relay.vendors.http import Transport

from tests.unit.test_vendor_payloads import conversion, destination


class AnsweringSession(requests.Session):
    """Answers 200 with `answer(events sent)`, the processed/failed/errors object."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def send(self, request: requests.PreparedRequest, **_options: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response.request = 200, request
        response._content = json.dumps(self.answer(json.loads(request.body or b"[]"))).encode()
        return response


def line(product: str, price: float = 20.0) -> dict[str, Any]:
    return {"client_key": "ck", "price": price, "product_id": product, "event": "conversion"}


def post(batch: list[list[dict[str, Any]]], answer: Any) -> list[Any]:
    client = quicklizard.QuickLizardClient(
        "quicklizard", destination("quicklizard"), Transport(AnsweringSession(answer)), lambda name: "ck"
    )
    return client.post(batch)


def echo_failed(bad: set[str], errors: Any = None):
    """An answer that fails the lines of `bad` products, echoing them with the price as a string
    (as parsed, not as sent) and errors without an index."""

    def answer(sent: list[dict[str, Any]]) -> dict[str, Any]:
        failed = [{**e, "price": str(e["price"])} for e in sent if e["product_id"] in bad]
        return {
            "processed": [e for e in sent if e["product_id"] not in bad],
            "failed": failed,
            "errors": errors if errors is not None else [{"error": "price: must be a float"} for _ in failed],
        }

    return answer


def kinds(outcomes: list[Any]) -> list[type]:
    return [type(outcome) for outcome in outcomes]


def test_failed_events_echoed_with_other_types_reject_only_their_jobs() -> None:
    # Given three jobs, one of whose lines QuickLizard fails and echoes with the price as a string
    batch = [[line("a"), line("b")], [line("c")], [line("d"), line("e")]]
    # When the answer comes back
    outcomes = post(batch, echo_failed({"c"}))
    # Then only that job is rejected, with the errors; the others are delivered
    assert kinds(outcomes) == [Accepted, PermanentDeliveryError, Accepted]
    assert "price: must be a float" in (outcomes[1].vendor_message or "")
    assert "1 of 1 product lines failed" in str(outcomes[1])


def test_failed_counts_by_length_without_any_error_index() -> None:
    # Given two failed lines in different jobs and an errors array with no index (or empty)
    batch = [[line("a")], [line("b"), line("c")], [line("d")]]
    outcomes = post(batch, echo_failed({"a", "c"}, errors=[]))
    # Then each failure is traced to its job by its product, and the rest are delivered
    assert kinds(outcomes) == [PermanentDeliveryError, PermanentDeliveryError, Accepted]
    assert outcomes[0].vendor_message == "failed (no error given)"


def test_an_untraceable_failure_puts_only_the_jobs_it_could_be_in_doubt() -> None:
    # Given the same product in two jobs, one copy failed, echoed as something that matches neither
    batch = [[line("a")], [line("a", price=30.0)], [line("z")]]

    def answer(sent: list[dict[str, Any]]) -> dict[str, Any]:
        return {"processed": [sent[0], sent[2]], "failed": [{"raw": "unparseable"}], "errors": ["bad json"]}

    outcomes = post(batch, answer)
    # Then the processed copy traces to job 0, so the failure is job 1's; job 2 is delivered
    assert kinds(outcomes) == [Accepted, PermanentDeliveryError, Accepted]


def test_jobs_whose_lines_cannot_be_told_apart_are_in_doubt_the_rest_settled() -> None:
    # Given identical lines in two jobs, one processed, one failed, and a third job processed
    batch = [[line("a")], [line("a")], [line("z")]]

    def answer(sent: list[dict[str, Any]]) -> dict[str, Any]:
        return {"processed": [sent[0], sent[2]], "failed": [{**sent[1], "price": "20.0"}], "errors": []}

    outcomes = post(batch, answer)
    # Then jobs 0 and 1 are in doubt (either could be the failed one); job 2 is delivered
    assert kinds(outcomes) == [UnansweredDeliveryError, UnansweredDeliveryError, Accepted]


def test_an_answer_that_does_not_account_for_every_line_is_in_doubt() -> None:
    batch = [[line("a")], [line("b")]]
    with pytest.raises(UnansweredDeliveryError, match="1 processed and 0 failed of 2 lines"):
        post(batch, lambda sent: {"processed": sent[:1], "failed": [], "errors": []})


def test_all_lines_processed_are_all_delivered() -> None:
    batch = [[line("a")], [line("b"), line("c")]]
    assert kinds(post(batch, echo_failed(set()))) == [Accepted, Accepted]


# --------------------------------------------------------------------------- lines and names


def test_quantity_zero_lines_are_not_sent() -> None:
    # Given a purchase with a line of quantity 0 (removed, or a free add-on left at 0)
    items = (
        Item(product_id="kept", quantity=1, unit_amount_minor=2000),
        Item(product_id="none_bought", quantity=0, unit_amount_minor=500),
    )

    def build(lines: tuple[Item, ...]) -> list[dict[str, Any]]:
        return quicklizard.build_events(
            conversion(items=lines), lines, "USD", name="conversion", client_key=""
        )

    # When built for QuickLizard, Then only the bought line is an event
    assert [e["product_id"] for e in build(items)] == ["kept"]
    # And a conversion whose every line has quantity 0 has no line items to send
    with pytest.raises(MissingRequirementError) as raised:
        build(items[1:])
    assert raised.value.reason == "no_line_items"


@pytest.mark.parametrize("names", [{"purchase": "view"}, {"purchase": "conversion", "renewal": None}])
def test_quicklizard_event_names_may_be_view_conversion_or_null(names: dict[str, Any]) -> None:
    assert destination("quicklizard", event_names=names).event_names == names


@pytest.mark.parametrize("wrong", ["purchase", "Conversion", ""])
def test_quicklizard_event_names_outside_the_doc_fail_the_config(wrong: str) -> None:
    with pytest.raises(ValidationError, match="QuickLizard knows the events"):
        destination("quicklizard", event_names={"purchase": wrong})
