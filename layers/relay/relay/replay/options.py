"""What to replay: the CLI's options and ReplayFunction's event, validated once (ReplayRequest)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from relay.dlq import FailureReason

NATIVE_MAX_RATE = 500  # StartMessageMoveTask's MaxNumberOfMessagesPerSecond ceiling
_RELATIVE_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(value: Any, now: datetime | None = None) -> datetime | None:
    """ISO 8601 (UTC when no zone is given) or a relative age such as 30m, 2h, 3d, 1w (that long ago)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        relative = _RELATIVE_TIME.match(text)
        if relative:
            amount, unit = float(relative.group(1)), relative.group(2)
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is neither ISO 8601 nor a relative age like 2h or 3d") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_rate(value: Any) -> float | None:
    """5, 5.0, "5" or "5/s" messages per second."""
    if value is None or value == "":
        return None
    text = str(value).strip().removesuffix("/s")
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rate (messages per second, e.g. 5 or 5/s)") from exc


Moment = Annotated[datetime | None, BeforeValidator(parse_moment)]
Rate = Annotated[float | None, BeforeValidator(parse_rate)]


class ReplayRequest(BaseModel):
    """What to replay: the CLI's options and ReplayFunction's event, validated once here."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    destination: str = Field(min_length=1, description="a destination of the config, or a vendor kind")
    name: str | None = Field(default=None, description="only this conversion name")
    reason: FailureReason | None = Field(default=None, description="only jobs parked for this reason")
    request: str | None = Field(
        default=None, description="only in-doubt jobs that shared this vendor request (relay dlq ls)"
    )
    since: Moment = Field(default=None, description="event_time at or after (ISO 8601 or 2h, 3d)")
    until: Moment = Field(default=None, description="event_time before (ISO 8601 or 2h, 3d)")
    max_jobs: int = Field(default=1000, ge=1, le=100_000, alias="max", description="read at most this many")
    rate: Rate = Field(default=None, gt=0, description="messages per second sent to the vendor queue")
    dry_run: bool = False
    force: bool = Field(default=False, description="also re-deliver rejected and in_doubt jobs")
    native: bool = Field(default=False, description="SQS StartMessageMoveTask (AWS only, no filters)")

    @model_validator(mode="after")
    def _consistent(self) -> ReplayRequest:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        if self.native:
            extra = [
                option
                for option in ("name", "reason", "request", "since", "until", "dry_run", "force")
                if getattr(self, option)
            ]
            if extra:
                raise ValueError(
                    f"--native moves the whole dead-letter queue; it takes no {', '.join(extra)} "
                    "(replay without --native to filter)"
                )
            if self.rate is not None and not 1 <= self.rate <= NATIVE_MAX_RATE:
                raise ValueError(f"a native move's rate is 1 to {NATIVE_MAX_RATE} messages per second")
        return self
