"""The layer's requirements.txt (what `sam build` installs) and pyproject's runtime dependencies
(what the venv and the tests use) name the same packages with the same bounds; boto3 is the
one exception, as the Lambda runtime provides it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PROVIDED_BY_LAMBDA = {"boto3"}


def requirements_txt() -> dict[str, Requirement]:
    lines = (REPO / "layers/relay/requirements.txt").read_text(encoding="utf-8").splitlines()
    found = [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
    return {canonicalize_name(r.name): r for r in found}


def pyproject_runtime() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [Requirement(spec) for spec in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in found}


def test_the_same_packages_minus_boto3():
    layer, project = requirements_txt(), pyproject_runtime()
    assert set(layer) == set(project) - PROVIDED_BY_LAMBDA
    assert set(project) >= PROVIDED_BY_LAMBDA  # still needed locally and in tests


def test_the_same_version_bounds():
    layer, project = requirements_txt(), pyproject_runtime()
    for name, requirement in layer.items():
        assert requirement.specifier == project[name].specifier, name


def test_every_layer_requirement_is_bounded_below():
    # An unbounded requirement lets `sam build` pick a version the tests never saw.
    for name, requirement in requirements_txt().items():
        assert any(spec.operator in (">=", "==", "~=") for spec in requirement.specifier), name
