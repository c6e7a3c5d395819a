"""The README's configuration example is a valid relay config (docs that cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from relay.config import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_configuration_example_validates():
    # Given the YAML block of the README's "Configuration" section
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    # When it is validated, Then it is a config with the destinations and rule it shows
    config = parse_config(yaml.safe_load(example), "README.md")
    assert set(config.destinations) == {"scanova", "scalev_meta"}
    assert config.source("stripe").rules[0].name == "lead"
