"""parliament (an IAM policy linter) over every policy of a rendering, in-process.

Trust policies have no Resource (the role is it): they are linted with the role's ARN as their Resource, so the
linter checks sts:AssumeRole and its condition keys like any other statement. Identical documents (the Deny every
role carries, one rule's statements across renderings) are analysed once.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import sys
import types
from collections.abc import Iterable
from typing import Any

from tools.scan.findings import Finding
from tools.scan.policies import ACCOUNT, PolicyDoc, policy_documents
from tools.templates.cfn import Json

ACTION_IN_TEXT = re.compile(r"\b[a-z0-9-]+:[A-Za-z0-9*]+\b")


def _parliament() -> Any:
    """parliament 1.6.4 locates its data with pkg_resources, which setuptools no longer ships: give it the one
    function it calls, on importlib.resources (same files), when the real module is absent."""
    try:
        import pkg_resources  # noqa: F401
    except ModuleNotFoundError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: str(importlib.resources.files(package) / name)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    import parliament

    return parliament


def access_levels() -> dict[str, str]:
    """Lower-case action → its access level in the IAM definition parliament ships (List, Read, Write, Tagging,
    Permissions management): what "read only" means, independent of our own declarations."""
    return {f"{service['prefix']}:{privilege['privilege']}".lower(): privilege["access_level"]
            for service in _parliament().iam_definition for privilege in service["privileges"]}


class IamLinter:
    def __init__(self) -> None:
        self._parliament = _parliament()
        self._cache: dict[str, list[tuple[str, frozenset[str], str]]] = {}

    def lint(self, rendering: str, template: Json) -> list[Finding]:
        findings = []
        for doc in policy_documents(template):
            for check, actions, detail in self._analyse(_lintable(doc)):
                findings.append(Finding("parliament", check, rendering, doc.where, actions, detail))
        return findings

    def _analyse(self, document: Json) -> list[tuple[str, frozenset[str], str]]:
        text = json.dumps(document, sort_keys=True)
        if text not in self._cache:
            policy = self._parliament.analyze_policy_string(text, include_community_auditors=True)
            self._cache[text] = [(f.issue, _actions(f.detail, f.location), _detail(f.detail)) for f in policy.findings]
        return self._cache[text]


def _lintable(doc: PolicyDoc) -> Json:
    if doc.kind != "trust":
        return doc.document
    document = copy.deepcopy(doc.document)
    for statement in document["Statement"]:
        statement.setdefault("Resource", f"arn:aws:iam::{ACCOUNT}:role/{doc.resource}")
    return document


def _actions(detail: Any, location: Any) -> frozenset[str]:
    """The actions a finding is about, wherever parliament put them (location["actions"], a list of action names,
    or a list of {"action": ...})."""
    found: list[str] = []
    if isinstance(location, dict) and isinstance(location.get("actions"), list):
        found += location["actions"]
    if isinstance(detail, list):
        found += [item["action"] if isinstance(item, dict) and "action" in item else item
                  for item in detail if isinstance(item, str) or (isinstance(item, dict) and "action" in item)]
    if not found and isinstance(detail, str):  # RESOURCE_POLICY_PRIVILEGE_ESCALATION names them in its text
        found += ACTION_IN_TEXT.findall(detail)
    return frozenset(str(action).lower() for action in found)


def _detail(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and all(isinstance(item, dict) for item in detail):
        return "; ".join(f"{item.get('action')} needs {item.get('required_format')}" for item in detail
                         if "required_format" in item)
    return ""


def lint_all(renderings: Iterable[tuple[str, Json]], linter: IamLinter | None = None) -> list[Finding]:
    linter = linter or IamLinter()
    return [finding for name, template in renderings for finding in linter.lint(name, template)]
