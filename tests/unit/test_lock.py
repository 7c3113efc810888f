"""The lock (requirements.txt, requirements-dev.txt; `make lock`) agrees with pyproject.toml, pins everything
with hashes, and the runtime lock the Lambda zip bundles is exactly what the tests ran with."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.package import read_lock

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def entries_by_name(path: Path) -> dict[str, list[tuple[Requirement, tuple[str, ...]]]]:
    """A universal lock may pin one name twice, under exclusive markers (e.g. per Python version)."""
    entries: dict[str, list[tuple[Requirement, tuple[str, ...]]]] = {}
    for requirement, hashes in read_lock(path):
        entries.setdefault(canonicalize_name(requirement.name), []).append((requirement, hashes))
    return entries


RUNTIME = entries_by_name(ROOT / "requirements.txt")
DEV = entries_by_name(ROOT / "requirements-dev.txt")
# Their releases change verdicts: bumped by hand, never by the lock.
EXACTLY_PINNED = {"ruff", "cfn-lint", "mypy", "moto", "checkov", "parliament"}


def pinned_version(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not pinned: run `make lock`"
    return specifier.version


def unmet(requirements: list[str], lock: dict) -> list[str]:
    missing = []
    for text in requirements:
        wanted = Requirement(text)
        entries = lock.get(canonicalize_name(wanted.name), [])
        if not any(wanted.specifier.contains(pinned_version(r), prereleases=True) for r, _ in entries):
            missing.append(text)
    return missing


def test_every_dependency_of_pyproject_is_in_the_lock():
    assert not unmet(PROJECT["dependencies"], RUNTIME), "run `make lock`"
    extras = [text for extra in PROJECT["optional-dependencies"].values() for text in extra]
    assert not unmet(PROJECT["dependencies"] + extras, DEV), "run `make lock`"


def test_everything_is_pinned_with_hashes():
    for requirement, hashes in [entry for lock in (RUNTIME, DEV) for entries in lock.values() for entry in entries]:
        pinned_version(requirement)
        assert hashes and all(h.startswith("sha256:") for h in hashes), requirement


def test_the_runtime_lock_is_the_dev_lock_restricted_to_the_runtime_closure():
    """Same versions, same files: the zip ships what the tests ran with."""
    for name, entries in RUNTIME.items():
        for requirement, hashes in entries:
            assert (pinned_version(requirement), hashes) in [(pinned_version(r), h) for r, h in DEV[name]], name


def test_linters_and_the_aws_emulator_are_pinned_exactly_in_pyproject():
    dev = {canonicalize_name(r.name): r for r in map(Requirement, PROJECT["optional-dependencies"]["dev"])}
    for name in EXACTLY_PINNED:
        assert str(dev[name].specifier).startswith("=="), f"{name} must be pinned exactly in pyproject.toml"
        assert pinned_version(DEV[name][0][0]) == str(dev[name].specifier).removeprefix("==")
