"""`relay check-config`: what CI runs (`make check-config`) before a deploy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relay_cli.main import main

REPO = Path(__file__).resolve().parents[2]
GOOD = [str(REPO / "config/relay.local.yaml"), str(REPO / "config/deploy/relay.yaml")]
BAD_CONFIG = """\
destinations:
  scanova: {kind: scanova, base_url: "https://track.scanova.io", api_key_secret: k}
  meta: {kind: scalev, provider: facebook, store_id: s, base_url: "https://api.scalev.com", api_key_secret: k}
"""


def bad_config(tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG, encoding="utf-8")
    return str(path)


def test_valid_configs_pass_with_a_summary(capsys):
    # Given the committed configs, When checked, Then exit 0 and one "ok" line each.
    assert main(["check-config", *GOOD]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert all(": ok — destinations: scanova (scanova), pagent (pagent)" in line for line in out)


def test_an_invalid_config_exits_1_naming_each_bad_key(tmp_path, capsys):
    # Given a config with two mistakes, When checked, Then exit 1 and each is on its own line
    # as "<dotted path>: <why>" on stderr.
    path = bad_config(tmp_path)
    assert main(["check-config", path]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}: invalid"
    assert "  destinations.scanova: a scanova destination needs site_id" in err
    assert any(line.startswith("  destinations.meta.provider: Input should be 'meta'") for line in err)


def test_one_bad_file_among_good_ones_fails_the_run(tmp_path, capsys):
    assert main(["check-config", GOOD[0], bad_config(tmp_path), GOOD[1]]) == 1
    captured = capsys.readouterr()
    assert captured.out.count(": ok") == 2
    assert ": invalid" in captured.err


def test_a_missing_or_unparsable_file_is_reported_not_raised(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("destinations: [", encoding="utf-8")
    assert main(["check-config", str(tmp_path / "absent.yaml"), str(broken)]) == 1
    err = capsys.readouterr().err
    assert "absent.yaml: invalid" in err and "cannot read relay config" in err
    assert "broken.yaml: invalid" in err and "is not valid YAML" in err


def test_the_installed_command_exits_1(tmp_path):
    # The real entry point, as CI calls it (a subprocess: no network involved).
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "relay_cli", "check-config", bad_config(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert "destinations.scanova: a scanova destination needs site_id" in result.stderr


def test_an_unknown_source_name_is_refused(tmp_path, capsys):
    # Given a misspelt source, When checked, Then exit 1 naming the known sources.
    path = tmp_path / "typo.yaml"
    path.write_text("sources:\n  strpe: {}\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "sources.strpe" in err and "'stripe'" in err


def test_a_bad_source_settings_block_fails_the_check_not_only_the_cold_start(tmp_path, capsys):
    # Given a pipedrive settings block with an unknown key, When checked, Then exit 1 with its path.
    path = tmp_path / "settings.yaml"
    path.write_text("sources:\n  pipedrive:\n    settings:\n      bogus_key: 1\n", encoding="utf-8")
    assert main(["check-config", str(path)]) == 1
    assert "sources.pipedrive.settings.bogus_key" in capsys.readouterr().err


VENDOR_SECRETS = """\
destinations:
  scanova: {kind: scanova, base_url: "https://track.scanova.io", site_id: s,
            api_key_secret: conversion-relay/scanova-api-key}
  quicklizard: {kind: quicklizard, base_url: "https://evt.quicklizard.com",
                api_key_secret: conversion-relay/quicklizard/client-key,
                stripe_api_key_secret: conversion-relay/stripe-webhook-secret}
  pagent: {kind: pagent, base_url: "https://ingest.pagent.ai",
           api_key_secret: conversion-relay/pagent/api-key}
"""


def test_a_destination_secret_outside_its_vendors_namespace_is_refused(tmp_path, capsys):
    # Given destinations whose secrets are not named <SecretsPrefix><kind>/…, which their deliver
    # functions cannot read (IAM grants each only its own vendor's namespace)
    path = tmp_path / "secrets.yaml"
    path.write_text(VENDOR_SECRETS, encoding="utf-8")
    # When checked, Then exit 1, each named with the namespace it belongs in
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  destinations.scanova.api_key_secret: 'conversion-relay/scanova-api-key' is not named "
        "conversion-relay/scanova/…, the only secrets the scanova deliver function may read",
        "  destinations.quicklizard.stripe_api_key_secret: 'conversion-relay/stripe-webhook-secret' is not "
        "named conversion-relay/quicklizard/…, the only secrets the quicklizard deliver function may read",
    ]
    # And a stack with another SecretsPrefix is checked against its own
    assert main(["check-config", "--secrets-prefix", "prod/", *GOOD]) == 1


def test_a_quicklizard_event_name_it_does_not_document_fails_the_check(tmp_path, capsys):
    # Given a QuickLizard destination mapping purchases to "purchase" (the doc: "view" or "conversion")
    path = tmp_path / "ql.yaml"
    path.write_text(
        "destinations:\n"
        "  quicklizard: {kind: quicklizard, base_url: 'https://evt.quicklizard.com',\n"
        "                api_key_secret: conversion-relay/quicklizard/client-key,\n"
        "                event_names: {purchase: purchase, product_view: view, renewal: null}}\n",
        encoding="utf-8",
    )
    # When checked, Then exit 1, naming the key and the wrong name
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        '  destinations.quicklizard.event_names: QuickLizard knows the events "view" and "conversion" '
        "only (or null): purchase: 'purchase'"
    ]
