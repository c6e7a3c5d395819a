"""The committed samples under events/: `python -m testkit.samples [DIR]` regenerates them.

The output is deterministic (fixed timestamps, the documented local secrets); a unit test
checks the committed files match, byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from testkit.backend import sample_backend_events
from testkit.hubspot import sample_hubspot_events
from testkit.paddle import sample_paddle_events
from testkit.pipedrive import sample_pipedrive_events
from testkit.scenario import FIXED_TIMESTAMP
from testkit.shopify import sample_shopify_events
from testkit.stripe import sample_stripe_events, signed_stripe_http_event

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"


def sample_http_events() -> dict[str, dict[str, dict[str, Any]]]:
    """Every committed sample: events/<folder>/<stem>.json → the signed HTTP API event."""
    return {
        "stripe": {
            stem: signed_stripe_http_event(evt, timestamp=FIXED_TIMESTAMP)
            for stem, evt in sample_stripe_events().items()
        },
        "hubspot": sample_hubspot_events(),
        "pipedrive": sample_pipedrive_events(),
        "paddle": sample_paddle_events(),
        "shopify": sample_shopify_events(),
        "backend": sample_backend_events(),
    }


def write_sample_events(directory: Path = EVENTS_DIR) -> list[Path]:
    written = []
    for folder, samples in sample_http_events().items():
        (directory / folder).mkdir(parents=True, exist_ok=True)
        for stem, api_event in samples.items():
            path = directory / folder / f"{stem}.json"
            path.write_text(json.dumps(api_event, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_sample_events(Path(sys.argv[1]) if len(sys.argv) > 1 else EVENTS_DIR):
        print(written_path.relative_to(REPO_ROOT) if written_path.is_relative_to(REPO_ROOT) else written_path)
