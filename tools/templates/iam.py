"""IAM policy documents, and packing rule-guarded statements into managed policies within IAM's size limits."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tools.templates.cfn import Json, define_any, if_, ref

# A managed policy holds 6,144 non-whitespace characters, a role's inline policies 10,240 together.
MANAGED_POLICY_BUDGET = 5_600
MAX_INLINE_POLICY_CHARS = 10_240


def statement(sid: str, actions: Iterable[str], resource: Any, condition: Json | None = None) -> Json:
    result: Json = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": resource}
    if condition:
        result["Condition"] = condition
    return result


def policy_document(statements: list[Json]) -> Json:
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy(principal: Json, condition: Any) -> Json:
    return policy_document([{
        "Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", "Condition": condition,
    }])


def service_trust(service: str, extra: Json | None = None) -> Json:
    """Trusted by an AWS service acting for this account only (confused-deputy guard)."""
    condition: Json = {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}
    condition.update(extra or {})
    return trust_policy({"Service": service}, condition)


def inline_policy(name: str, statements: list[Json]) -> Json:
    return {"PolicyName": name, "PolicyDocument": policy_document(statements)}


def policy_chars(document: Any) -> int:
    """IAM counts a policy's size in non-whitespace characters; the JSON without spaces is a close upper bound."""
    return len(json.dumps(document, separators=(",", ":")))


def pack_guarded(guarded: list[tuple[str, Json]], budget: int = MANAGED_POLICY_BUDGET) -> list[list[tuple[str, Json]]]:
    """Split (condition, statement) pairs into groups that each fit one managed policy with every rule enabled."""
    groups: list[list[tuple[str, Json]]] = [[]]
    used = 0
    for condition, stmt in guarded:
        size = policy_chars(stmt) + 1
        if size > budget:
            raise ValueError(f"statement {stmt['Sid']} alone exceeds a managed policy ({size} characters)")
        if used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append((condition, stmt))
        used += size
    return [group for group in groups if group]


def guarded_policies(
    conditions: Json, prefix: str, role: str, description: str, guarded: list[tuple[str, Json]],
    budget: int = MANAGED_POLICY_BUDGET, path: str | None = None,
) -> Json:
    """Managed policies attached to `role`, one statement per (condition, statement) under Fn::If. Each policy
    exists only while one of its rules is enabled (IAM rejects a policy without statements)."""
    resources: Json = {}
    groups = pack_guarded(guarded, budget)
    for number, group in enumerate(groups, start=1):
        logical_id = f"{prefix}{number:02d}"
        members = list(dict.fromkeys(condition for condition, _ in group))
        guard = define_any(conditions, f"{logical_id}InUse", members)
        resources[logical_id] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Condition": guard,
            "Properties": {
                "Description": f"{description} ({number}/{len(groups)}), generated from the catalog",
                **({"Path": path} if path else {}),
                "Roles": [ref(role)],
                "PolicyDocument": policy_document([if_(condition, stmt) for condition, stmt in group]),
            },
        }
    return resources
