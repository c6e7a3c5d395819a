"""relay.config: the relay config is validated by pydantic, and a bad one names each bad key by its
dotted path and says why."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from relay.config import RelayConfig, Source, load_config, parse_config, parse_destination
from relay.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASE = """
version: 1
destinations:
  scanova: {kind: scanova, base_url: "https://track.scanova.io", site_id: s1, api_key_secret: k}
  pagent: {kind: pagent, base_url: "https://ingest.pagent.ai", api_key_secret: k}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    return dict(error.value.problems)


@pytest.mark.parametrize("name", ["config/relay.local.yaml", "config/deploy/relay.yaml"])
def test_the_committed_configs_are_valid(name):
    config = load_config(REPO / name)
    assert {d.kind for d in config.destinations.values()} == {"scanova", "pagent", "scalev", "quicklizard"}
    assert "stripe" in config.sources


def test_an_empty_file_means_built_in_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config == RelayConfig()
    assert config.source("stripe") == Source()  # an absent source gets the defaults
    assert config.source("stripe").signing_tolerance_seconds is None
    assert config.source("stripe").max_body_bytes == 256 * 1024


@pytest.mark.parametrize(
    ("yaml_text", "path", "why"),
    [
        ("bogus: 1", "bogus", "Extra inputs are not permitted"),
        ("version: 2", "version", "Input should be 1"),
        (
            "destinations: {x: {kind: scanovaa, base_url: 'https://a', api_key_secret: k}}",
            "destinations.x.kind",
            "Input should be 'scanova', 'pagent', 'scalev' or 'quicklizard'",
        ),
        (
            "destinations: {x: {kind: pagent, base_url: 'not a url', api_key_secret: k}}",
            "destinations.x.base_url",
            "valid URL",
        ),
        (
            "destinations: {x: {kind: pagent, base_url: 'https://a'}}",
            "destinations.x.api_key_secret",
            "Field required",
        ),
        (
            "destinations: {x: {kind: scanova, base_url: 'https://a', api_key_secret: k}}",
            "destinations.x",
            "a scanova destination needs site_id",
        ),
        (
            "destinations: {x: {kind: scalev, base_url: 'https://a', api_key_secret: k}}",
            "destinations.x",
            "a scalev destination needs store_id, provider",
        ),
        (
            "destinations: {x: {kind: pagent, base_url: 'https://a', api_key_secret: k, timeout_seconds: 0}}",
            "destinations.x.timeout_seconds",
            "greater than 0",
        ),
        (
            "destinations: {x: {kind: pagent, base_url: 'https://a', api_key_secret: k,"
            " event_id_template: '{oops}'}}",
            "destinations.x.event_id_template",
            "unknown field 'oops'",
        ),
        (
            "sources: {stripe: {attribution: {scan_session_id: 'data.[['}}}",
            "sources.stripe.attribution.scan_session_id",
            "invalid JMESPath expression",
        ),
        (
            "sources: {stripe: {identity: {mail: a.b}}}",
            "sources.stripe.identity.mail.[key]",
            "Input should be 'email'",
        ),
        (
            "sources: {stripe: {signing_tolerance_seconds: -1}}",
            "sources.stripe.signing_tolerance_seconds",
            "greater than or equal to 0",
        ),
        ("sources: {stripe: {max_body_bytes: 0}}", "sources.stripe.max_body_bytes", "greater than 0"),
        (
            "sources: {stripe: {rules: [{event: e, name: n, order_key: id, value: {currency: c}}]}}",
            "sources.stripe.rules.0.value",
            "give exactly one of amount_minor, amount_major",
        ),
        (
            "sources: {stripe: {rules: [{event: e, name: n}]}}",
            "sources.stripe.rules.0.order_key",
            "Field required",
        ),
    ],
)
def test_a_bad_key_is_named_by_its_dotted_path_and_why(tmp_path, yaml_text, path, why):
    problems = problems_of(tmp_path, yaml_text)
    assert path in problems, problems
    assert why in problems[path]
    # pydantic's "Value error, " prefix is noise to an operator
    assert not problems[path].startswith("Value error")


def test_unknown_destinations_are_named_where_they_are_referenced(tmp_path):
    problems = problems_of(
        tmp_path,
        BASE
        + """
sources:
  stripe:
    destinations: [scanova, scanvoa]
    rules:
      - {event: e, name: n, order_key: id, destinations: [pagent, nope]}
""",
    )
    assert problems == {
        "sources.stripe.destinations.1": "unknown destination 'scanvoa' (configured: pagent, scanova)",
        "sources.stripe.rules.0.destinations.1": "unknown destination 'nope' (configured: pagent, scanova)",
    }


def test_every_problem_is_reported_at_once(tmp_path):
    problems = problems_of(
        tmp_path,
        """
destinations:
  a: {kind: nope, base_url: x, api_key_secret: k}
sources:
  stripe: {allow_test_mode: maybe}
""",
    )
    assert set(problems) == {
        "destinations.a.kind",
        "destinations.a.base_url",
        "sources.stripe.allow_test_mode",
    }


def test_the_error_message_lists_the_problems_too(tmp_path):
    path = write(tmp_path, "version: 2")
    with pytest.raises(ConfigError, match=r"invalid relay config .*relay\.yaml: version: Input should be 1"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "why"),
    [("destinations: [a, b", "is not valid YAML"), ("- a\n- b\n", "must be a mapping at the top level")],
)
def test_files_that_are_not_a_yaml_mapping(tmp_path, text, why):
    with pytest.raises(ConfigError, match=why):
        load_config(write(tmp_path, text))


def test_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read relay config .*absent\.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_parse_config_names_its_origin():
    with pytest.raises(ConfigError, match="invalid relay config env:RELAY_CONFIG") as error:
        parse_config({"version": 3}, "env:RELAY_CONFIG")
    assert error.value.problems == [("version", "Input should be 1")]


def test_disabled_destinations_get_no_jobs(tmp_path):
    config = load_config(
        write(
            tmp_path,
            BASE + "  quiet: {kind: quicklizard, base_url: 'https://q', api_key_secret: k, enabled: false}\n",
        )
    )
    assert set(config.destinations) == {"scanova", "pagent", "quiet"}
    assert set(config.enabled_destinations) == {"scanova", "pagent"}


@pytest.mark.parametrize(
    ("fields", "policy"),
    [
        ({"kind": "scanova", "site_id": "s"}, "resend"),
        ({"kind": "scalev", "store_id": "s", "provider": "meta"}, "resend"),
        ({"kind": "scalev", "store_id": "s", "provider": "tiktok"}, "resend"),
        ({"kind": "scalev", "store_id": "s", "provider": "snackvideo"}, "park"),
        ({"kind": "pagent"}, "park"),
        ({"kind": "quicklizard"}, "park"),
        ({"kind": "quicklizard", "in_doubt": "resend"}, "resend"),
        ({"kind": "scanova", "site_id": "s", "in_doubt": "park"}, "park"),
    ],
)
def test_in_doubt_policy_resends_only_where_the_vendor_dedupes(fields, policy):
    destination = parse_destination({"base_url": "https://v.example", "api_key_secret": "k", **fields})
    assert destination.in_doubt_policy == policy


def test_urls_are_validated_and_typed_alike_whether_given_or_defaulted():
    given = parse_destination(
        {
            "kind": "quicklizard",
            "base_url": "https://q",
            "api_key_secret": "k",
            "stripe_api_base": "http://127.0.0.1:4106",
        }
    )
    default = parse_destination({"kind": "quicklizard", "base_url": "https://q", "api_key_secret": "k"})
    assert type(given.stripe_api_base) is type(default.stripe_api_base)
    assert default.stripe_api_base.host == "api.stripe.com"
    assert given.stripe_api_base.port == 4106


def test_configs_are_immutable(tmp_path):
    config = load_config(REPO / "config/relay.local.yaml")
    with pytest.raises(Exception, match="frozen"):
        config.destinations["scanova"].site_id = "other"  # type: ignore[misc]
