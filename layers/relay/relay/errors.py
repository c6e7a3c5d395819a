"""Every error the relay raises on purpose.

Errors carry what the caller needs (an HTTP status for requests, a retry class for
deliveries) as attributes, so answers are chosen by type in one place
(`relay.ingest.edge.error_response`, `relay.deliver`) and never by matching message text.
Messages must never contain raw PII or secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import ValidationError


class RelayError(Exception):
    """Base of all relay errors."""


# --- configuration -------------------------------------------------------------------


class ConfigError(RelayError):
    """The relay config or the function's environment is invalid.

    `problems` is a list of (dotted path of the bad key, why) pairs.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        self.problems = problems or []
        detail = "; ".join(f"{path}: {why}" for path, why in self.problems)
        super().__init__(f"{message}: {detail}" if detail else message)


def validation_problems(
    exc: ValidationError,
    *,
    prefix: Sequence[str | int] = (),
    limit: int | None = None,
    loc: Callable[[tuple[str | int, ...]], tuple[str | int, ...]] | None = None,
    top_level: str = "(top level)",
) -> list[tuple[str, str]]:
    """A pydantic error as (dotted path, why) pairs: the one way the relay reports bad data.

    Never the rejected value (it may be PII). A ValueError raised by one of our own validators
    is shown by its message alone, without pydantic's "Value error, " prefix.
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        path = loc(tuple(error["loc"])) if loc else tuple(error["loc"])
        where = ".".join(str(part) for part in (*prefix, *path)) or top_level
        problems.append((where, _why(error)))
    return problems


def _why(error: dict) -> str:
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    if error["type"] in ("model_type", "dict_type"):  # pydantic names a class; say it in JSON terms
        return "must be a JSON object"
    return error["msg"]


def aws_error(exc: BotoCoreError | ClientError) -> str:
    """An AWS failure in a few words for an operator: "<Code>: <Message>", else the error's class."""
    from botocore.exceptions import ClientError  # loaded already wherever an AWS call failed

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__


class SecretNotFoundError(ConfigError):
    """A secret named in the config or environment cannot be read."""


class MalformedSecretError(ConfigError):
    """A secret's value is not one of the accepted forms (relay.secrets): it is never used.

    Carries the secret's name and what is wrong with it, never the value.
    """

    def __init__(self, secret_name: str, problem: str):
        self.secret_name = secret_name
        self.problem = problem
        super().__init__(f"secret {secret_name!r} is malformed: {problem}")


# --- inbound requests (mapped to 4xx answers) ----------------------------------------


class RequestError(RelayError):
    """A webhook request the relay refuses. `status` is the HTTP answer."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class SignatureError(RequestError):
    status = 401
    code = "invalid_signature"


class MissingSignatureError(SignatureError):
    code = "missing_signature"


class StaleTimestampError(SignatureError):
    code = "stale_timestamp"


class PayloadError(RequestError):
    """Malformed JSON, or JSON of the wrong shape. `code` may name a more precise reason (a
    canonical event's bad amount is parked as e.g. `negative_amount`)."""

    status = 400
    code = "malformed_payload"

    def __init__(self, reason: str, *, code: str | None = None):
        super().__init__(reason)
        if code:
            self.code = code


class PayloadTooLargeError(RequestError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(RequestError):
    status = 415
    code = "unsupported_media_type"


class MethodNotAllowedError(RequestError):
    status = 405
    code = "method_not_allowed"


class ClaimInProgressError(RequestError):
    """The same provider event is being processed right now; the provider should retry."""

    status = 409
    code = "in_progress"


# --- mapping -------------------------------------------------------------------------


class MappingError(RelayError):
    """A provider payload could not be mapped to a conversion (a config or data problem).

    Raised for an authentic event, it parks the event (relay.parking): answered 2xx so the
    provider stops retrying, kept with its reason, replayed by `relay backfill --parked`."""

    code: str = "unmappable"  # the parked event's reason


class InvalidMoneyError(MappingError, ValueError):
    """An amount or currency is not money the relay can pass on (relay.money_rules); the
    subclasses name why, and their code is the parked event's reason."""

    code = "invalid_money"  # not a number at all (text, NaN, a list…)


class NegativeAmountError(InvalidMoneyError):
    code = "negative_amount"


class AmountTooLargeError(InvalidMoneyError):
    """Beyond the provider's documented maximum, or beyond what every vendor payload carries exactly."""

    code = "amount_too_large"


class FractionalMinorUnitsError(InvalidMoneyError):
    """A fraction of the smallest unit: 19.999 USD, or a Stripe ISK amount not a multiple of 100."""

    code = "fractional_minor_units"


class UnsupportedCurrencyError(InvalidMoneyError):
    """Not an ISO 4217 code, or not one the provider documents."""

    code = "unsupported_currency"


class ConversionTooLargeError(MappingError):
    """A conversion too large for one delivery job (a body stuffed into the fields rules read)."""

    code = "conversion_too_large"


# --- infrastructure at ingest (mapped to 5xx so the provider retries) ----------------


class EnqueueError(RelayError):
    """Delivery jobs could not be queued; the ingest claim is released and the provider retries."""


class ParkingError(RelayError):
    """A parked event could not be recorded (DynamoDB); answered 5xx so the provider retries."""


# --- delivery --------------------------------------------------------------------------


class DeliveryError(RelayError):
    """A vendor call failed. Subclasses say whether to retry."""

    def __init__(self, reason: str, *, status: int | None = None, vendor_message: str | None = None):
        self.reason = reason
        self.status = status
        self.vendor_message = vendor_message
        super().__init__(reason)


class TransientDeliveryError(DeliveryError):
    """429, 5xx, timeout or connection error: retry later."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        vendor_message: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(reason, status=status, vendor_message=vendor_message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """400/401/403/422 or a per-event rejection: to the DLQ at once, not retried."""


class InDoubtDeliveryError(DeliveryError):
    """A previous attempt may have reached a vendor that does not dedupe: park, do not resend."""


class MissingRequirementError(RelayError):
    """A conversion lacks what a destination requires; the destination is skipped (counted)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UnansweredDeliveryError(TransientDeliveryError):
    """The request may have reached the vendor but no answer came back (read timeout, dropped
    connection, an unreadable 2xx). Safe to resend only where the vendor dedupes on our event id;
    elsewhere the job is parked as in_doubt."""


class LedgerError(RelayError):
    """The delivery ledger (DynamoDB) could not be read or written; the job is retried."""


# --- replay from the dead-letter queues ------------------------------------------------


class ReplayError(RelayError):
    """A DLQ listing or replay cannot go on (AWS refused a call, bad options); nothing was lost."""


class UnknownDestinationError(ReplayError):
    """The destination is neither a destination of the relay config nor a vendor kind."""


class ParkedJobNotFoundError(ReplayError):
    """No parked job has the conversion id or message id asked for."""


class NativeMoveUnsupportedError(ReplayError):
    """SQS StartMessageMoveTask is not available on this endpoint (moto, the local stack)."""


# --- enrichment at ingest (mapped to 5xx so the provider retries) ----------------------


class EnrichmentError(RelayError):
    """Data an event's rules need could not be read from the provider's API (e.g. HubSpot's
    CRM: timeout, 5xx, 429, a refused token); the ingest claim is released and the provider
    retries."""


# --- backfill and reconcile from the providers' APIs -----------------------------------


class BackfillError(RelayError):
    """A backfill cannot go on (bad options, a provider API refused or kept failing); what was
    relayed stays relayed, and a second run picks up from there."""


class ProviderApiError(BackfillError):
    """A provider's API answered an error the reader does not retry (401/403/4xx), or kept
    failing (5xx, 429, timeouts) past its retries. `status` is the last HTTP status, if any."""

    def __init__(self, reason: str, *, status: int | None = None):
        self.status = status
        super().__init__(reason)
