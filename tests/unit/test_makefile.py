"""The Makefile a newcomer starts from: help lists every target, make run installs only what the
stack needs, check-config checks the config it is given, make send can send a fresh sample."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make(*args: str, venv: str = ".venv") -> str:
    """`make -n` (print, run nothing) with the given venv folder."""
    done = subprocess.run(  # noqa: S603 - make, with our own arguments
        ["make", "--no-print-directory", *args, f"VENV={venv}"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def phony_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split())


def test_make_help_lists_every_target():
    listed = {line.split()[1] for line in make("-s", "help").splitlines() if line.startswith("make ")}

    assert listed == phony_targets()


@pytest.mark.parametrize("target", ["run", "send", "status", "try", "check-config"])
def test_the_local_stack_targets_install_only_the_local_extra(target, tmp_path):
    # Given no venv yet, When the target's commands are listed
    commands = make("-n", target, venv=str(tmp_path / "venv"))
    # Then the stack's extra is installed, not the dev toolchain
    assert "-e '.[local]'" in commands
    assert ".[dev]" not in commands


def test_the_test_targets_install_the_dev_toolchain(tmp_path):
    commands = make("-n", "test-unit", venv=str(tmp_path / "venv"))
    assert "-e '.[local]'" in commands and "-e '.[dev]'" in commands


def test_check_config_checks_the_config_it_is_given():
    given = make("-n", "-W", "pyproject.toml", "check-config", "RELAY_CONFIG=my.yaml").splitlines()[-1]
    default = make("-n", "check-config").splitlines()[-1]

    assert given.endswith("relay check-config my.yaml")
    assert default.endswith("relay check-config config/deploy/relay.yaml config/relay.local.yaml")


def test_make_send_fresh_asks_for_new_ids():
    assert make("-n", "send", "FRESH=1").rstrip().endswith("--fresh")
    assert "--fresh" not in make("-n", "send")
