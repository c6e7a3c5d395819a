"""The layer's requirements: the floors a human edits (layers/relay/requirements.in) name the same
packages with the same bounds as pyproject's runtime dependencies (what the venv and the tests
use), boto3 excepted as the Lambda runtime provides it; and the lock `sam build` installs
(layers/relay/requirements.txt, `make lock`) pins each of them, and everything they pull in, to
one version within those bounds, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
FLOORS = REPO / "layers/relay/requirements.in"
LOCK = REPO / "layers/relay/requirements.txt"
PROVIDED_BY_LAMBDA = {"boto3"}
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def floors() -> dict[str, Requirement]:
    lines = FLOORS.read_text(encoding="utf-8").splitlines()
    found = [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
    return {canonicalize_name(r.name): r for r in found}


def pyproject_runtime() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [Requirement(spec) for spec in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in found}


def lock() -> dict[str, tuple[Requirement, list[str], list[str]]]:
    """name → (the pinned requirement, its hashes, what it is there for: its `# via` lines)."""
    entries: dict[str, tuple[Requirement, list[str], list[str]]] = {}
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# via") or (current and stripped.startswith("#   ")):
            entries[current][2].append(stripped.removeprefix("# via").strip("# "))
        elif stripped and not stripped.startswith("#"):
            requirement = Requirement(stripped.split(" --hash", 1)[0])
            current = canonicalize_name(requirement.name)
            entries[current] = (requirement, HASH.findall(stripped), [])
    return entries


def test_the_same_packages_minus_boto3():
    layer, project = floors(), pyproject_runtime()
    assert set(layer) == set(project) - PROVIDED_BY_LAMBDA
    assert set(project) >= PROVIDED_BY_LAMBDA  # still needed locally and in tests


def test_the_same_version_bounds():
    layer, project = floors(), pyproject_runtime()
    for name, requirement in layer.items():
        assert requirement.specifier == project[name].specifier, name


def test_every_floor_is_bounded_below():
    # An unbounded floor lets `make lock` pick a version the tests never saw.
    for name, requirement in floors().items():
        assert any(spec.operator in (">=", "==", "~=") for spec in requirement.specifier), name


def test_the_lock_pins_every_package_exactly_with_hashes():
    entries = lock()
    assert entries, "the lock is empty"
    for name, (requirement, hashes, _) in entries.items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", name
        assert hashes, f"{name} has no hash: sam build would not check what it downloads"


def test_the_lock_is_made_from_the_floors_and_each_pin_is_within_them():
    # Given the floors and the lock, Then each floor is in the lock as a direct requirement of
    # requirements.in, pinned within its bounds, and nothing else is (a stale lock fails here)
    entries, wanted = lock(), floors()
    direct = {name for name, (_, _, via) in entries.items() if any("requirements.in" in v for v in via)}
    assert direct == set(wanted)
    for name, requirement in wanted.items():
        pinned = Version(next(iter(entries[name][0].specifier)).version)
        assert requirement.specifier.contains(pinned, prereleases=True), (name, pinned)
    assert not PROVIDED_BY_LAMBDA & set(entries)


def test_requests_is_past_the_netrc_credential_leak():
    # CVE-2024-47081: requests before 2.32.4 could send .netrc credentials to another host
    assert Version("2.32.3") not in floors()["requests"].specifier
