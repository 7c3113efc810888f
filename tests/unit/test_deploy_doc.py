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


STACK_TEMPLATES = {"cspm-remediation": "admin.yaml", "cspm-remediation-targets": "organization-stackset.yaml"}


def _deploy_commands() -> list[tuple[str, str, list[str]]]:
    """(stack, template, parameters set) of every `aws cloudformation deploy … --parameter-overrides …`; one written
    as `aws cloudformation deploy … --parameter-overrides …` (no template, no stack) continues the admin stack's."""
    commands = []
    for command in re.findall(r"aws cloudformation deploy(?:[^\n]*\\\n)*[^\n]*", DOC):
        flat = command.replace("\\\n", " ")
        if "--parameter-overrides" not in flat:
            continue
        stack = re.search(r"--stack-name (\S+)", flat)
        template = re.search(r"--template-file (\S+)", flat)
        name = stack.group(1) if stack else "cspm-remediation"
        file = Path(template.group(1)).name.replace("admin-packaged", "admin") if template else STACK_TEMPLATES[name]
        commands.append((name, file, re.findall(r"\b([A-Z]\w+)=", flat.split("--parameter-overrides", 1)[1])))
    return commands


def test_each_deploy_command_sets_parameters_of_its_own_template_and_the_first_sets_every_required_one():
    templates = _templates()
    commands = _deploy_commands()
    assert {stack for stack, _, _ in commands} == set(STACK_TEMPLATES) and len(commands) >= 8
    first: dict[str, list[str]] = {}
    for stack, file, parameters in commands:
        assert file == STACK_TEMPLATES[stack], f"stack {stack} deployed from {file}"
        unknown = set(parameters) - set(templates[file]["Parameters"])
        assert not unknown, f"{file} has no parameter(s) {sorted(unknown)} (set on stack {stack})"
        first.setdefault(stack, parameters)
    for stack, parameters in first.items():  # a blank account: the first deploy gives every value without default
        required = {p for p, d in templates[STACK_TEMPLATES[stack]]["Parameters"].items() if "Default" not in d}
        assert required - set(parameters) == set(), f"the first deploy of {stack} leaves out {required}"
