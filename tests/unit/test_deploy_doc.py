"""cloudformation/DEPLOY.md's commands name only outputs, parameters and resources the templates really have."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent.parent / "cloudformation"
DOC = (ROOT / "DEPLOY.md").read_text(encoding="utf-8")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CFN short-form intrinsics


def _templates() -> dict[str, dict]:
    return {path.name: yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - SafeLoader
            for path in ROOT.glob("*.yaml")}


def _all(section: str) -> set[str]:
    return {name for template in _templates().values() for name in (template.get(section) or {})}


def test_every_output_the_guide_reads_exists():
    named = set(re.findall(r"OutputKey=='(\w+)'", DOC)) | set(re.findall(r"output `(\w+)`", DOC))
    assert named >= {"LedgerTableName", "DeadLetterQueueUrl"}
    assert named - _all("Outputs") == set()


def test_every_resource_the_guide_looks_up_exists():
    named = set(re.findall(r"--logical-resource-id (\w+)", DOC))
    assert named >= {"PullFunction"}
    assert named - _all("Resources") == set()


def test_every_parameter_the_guide_sets_exists():
    overrides = re.findall(r"--parameter-overrides((?:[^`\n]|\\\n)*(?:\n\s+[A-Z]\w+=[^\n]*)*)", DOC)
    named = {m for block in overrides for m in re.findall(r"\b([A-Z]\w+)=", block)}
    assert "RuleEC2x53" in named
    assert named - _all("Parameters") == set()


def test_no_placeholder_for_a_value_the_stack_does_not_give():
    assert re.findall(r"<(PullFunction|DeadLetterQueue ARN)>", DOC) == []
