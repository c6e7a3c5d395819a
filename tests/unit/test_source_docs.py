"""docs/sources.md documents every provider setting (the settings models are the reference) and every
committed sample of the sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel
from relay.sources.events import EventsSettings
from relay.sources.hubspot import HubSpotSettings
from relay.sources.paddle import PaddleSettings
from relay.sources.pipedrive import PipedriveSettings
from relay.sources.shopify import ShopifySettings
from relay.sources.stripe import StripeSettings

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "sources.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "model",
    [HubSpotSettings, PipedriveSettings, EventsSettings, StripeSettings, PaddleSettings, ShopifySettings],
    ids=lambda m: m.__name__,
)
def test_every_setting_is_documented(model: type[BaseModel]):
    missing = [name for name in model.model_fields if f"`{name}`" not in DOC]
    assert not missing, f"docs/sources.md does not mention {missing}"


def test_every_sample_is_listed():
    folders = ("hubspot", "pipedrive", "paddle", "shopify", "backend")
    samples = [p for folder in folders for p in (REPO / "events" / folder).glob("*.json")]
    missing = [f"{p.parent.name}/{p.name}" for p in samples if p.name not in DOC]
    assert not missing, f"docs/sources.md does not list {missing}"
