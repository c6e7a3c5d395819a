"""A parked event's detail is made safe by the record itself, whoever builds it (ingest, backfill,
a read of the table): one line, bounded, emails and phones masked."""

from __future__ import annotations

from datetime import UTC, datetime

from relay.parking import MAX_DETAIL_CHARS, ParkedEvent


def event(detail: str | None) -> ParkedEvent:
    return ParkedEvent(
        provider="stripe",
        event_id="evt_1",
        event_type="checkout.session.completed",
        reason="unmappable",
        detail=detail,
        fingerprint="f" * 32,
        parked_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_a_detail_with_an_email_and_a_phone_is_masked_on_one_bounded_line():
    # Given a reason text as a source raises it: several lines, an email, a phone, very long
    raw = "customer jane.doe@example.com\n  phone +1 415 555 0100 " + "x" * 1000

    # When a parked event is built with it
    parked = event(raw)

    # Then what it keeps is one line, bounded, without the email or the phone
    assert parked.detail is not None
    assert "jane.doe@example.com" not in parked.detail
    assert "555 0100" not in parked.detail and "4155550100" not in parked.detail
    assert "\n" not in parked.detail
    assert len(parked.detail) <= MAX_DETAIL_CHARS


def test_a_missing_or_blank_detail_stays_empty_and_a_clean_one_is_kept():
    assert event(None).detail is None
    assert event("   ").detail is None
    assert event("amount 'a lot' is not a decimal number").detail == "amount 'a lot' is not a decimal number"
