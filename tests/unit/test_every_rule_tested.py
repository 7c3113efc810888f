"""Meta-test: every remediator in the catalog (so every rule) is exercised by a unit test module that imports it
from its own module. A new remediator registered without a test fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

from functions.engine.catalog import CATALOG, REMEDIATORS

UNIT = Path(__file__).resolve().parent


def importers(cls: type) -> list[str]:
    """The unit test modules with `from <cls's module> import (..., cls, ...)`."""
    module, name = re.escape(cls.__module__), cls.__name__
    pattern = re.compile(rf"from {module} import (\([^)]*\b{name}\b[^)]*\)|[^\n(]*\b{name}\b)")
    return [path.name for path in sorted(UNIT.glob("test_*.py"))
            if path.name != Path(__file__).name and pattern.search(path.read_text(encoding="utf-8"))]


def test_every_remediator_has_a_test_module_that_imports_it() -> None:
    untested = {cls.__name__: [r.rule_id for r in cls.rules] for cls in REMEDIATORS if not importers(cls)}
    assert not untested, f"remediators no unit test imports (their rules are untested): {untested}"


def test_every_catalog_rule_belongs_to_a_tested_remediator() -> None:
    assert {entry.remediator for entry in CATALOG.values()} <= set(REMEDIATORS)


def test_the_check_finds_a_missing_test() -> None:
    class Untested:  # not imported by any test module
        __module__ = "functions.remediators.nowhere"

    assert importers(Untested) == []
    from functions.remediators.s3_encryption import BucketDefaultEncryption

    assert "test_remediators_s3_encryption.py" in importers(BucketDefaultEncryption)
