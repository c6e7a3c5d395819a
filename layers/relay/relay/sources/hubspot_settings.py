"""HubSpot's settings (`sources.hubspot.settings`), its function's environment, and the shapes
of the ids a HubSpot webhook carries (integers, since an object id goes into a CRM URL path)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)
from relay import money
from relay.config import AttributionKey, Source
from relay.settings import IngestSettings
from relay.sources.hubspot_crm import is_object_id
from relay.sources.payloads import ATTRIBUTION_KEYS, absolute_url, source_settings

HubSpotKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_*-]+$", max_length=100)]


def _integer_id(value: int | str) -> str:
    # HubSpot's portal, subscription and CRM object ids are integers (sent as JSON numbers). An
    # object id goes into a CRM URL path, so nothing else is let through.
    if not is_object_id(str(value)):
        raise ValueError("must be a HubSpot id (a non-negative integer)")
    return str(value)


HubSpotId = Annotated[StrictInt | StrictStr, AfterValidator(_integer_id)]
_Property = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=100)]


class HubSpotSettings(BaseModel):
    """`sources.hubspot.settings` of the relay config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_v3: bool = Field(default=True, description="refuse v1/v2 signatures (replayable)")
    public_url: Annotated[str | None, AfterValidator(absolute_url)] = Field(
        default=None, description="the URL HubSpot calls, if API Gateway sees another host"
    )
    api_base: Annotated[str, AfterValidator(absolute_url)] = "https://api.hubapi.com"
    timeout_seconds: float = Field(default=3.0, gt=0, le=8, description="read timeout of a CRM call")
    won_stages: dict[HubSpotKey, list[HubSpotKey]] = Field(
        default_factory=lambda: {"default": ["closedwon"]},
        description="pipeline id → the stage ids that mean won; '*' matches any pipeline",
    )
    default_currency: str | None = Field(default=None, description="for deals without deal_currency_code")
    portal_id: int | None = Field(
        default=None, description="your HubSpot account id (relay backfill asks the account API if unset)"
    )
    properties: dict[AttributionKey, _Property | None] = Field(
        default_factory=dict,
        description="attribution key → the deal/contact property holding it (default: same name); "
        "null drops one",
    )

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else money.currency_code(value)

    @property
    def attribution_properties(self) -> dict[str, str]:
        merged: dict[str, str | None] = {key: key for key in ATTRIBUTION_KEYS}
        merged.update(self.properties)
        return {key: prop for key, prop in merged.items() if prop}

    def won(self, pipeline: str | None, stage: str | None) -> bool:
        return stage is not None and (
            stage in self.won_stages.get(pipeline or "", ()) or stage in self.won_stages.get("*", ())
        )

    @property
    def any_won_stage(self) -> frozenset[str]:
        return frozenset(stage for stages in self.won_stages.values() for stage in stages)


class HubSpotEnvironment(IngestSettings):
    """The HubSpot function's environment: the ingest one plus the CRM token."""

    hubspot_token_secret_name: str | None = Field(default=None, alias="HUBSPOT_TOKEN_SECRET_NAME")
    hubspot_token: str | None = Field(
        default=None, alias="HUBSPOT_TOKEN", description="local runs and tests only: the token itself"
    )


def settings_of(source: Source) -> HubSpotSettings:
    return source_settings(HubSpotSettings, source, "hubspot")
