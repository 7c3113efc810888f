"""Resource-based policies: which statements make a resource public (SQS.3, Lambda.1 — one rule for both).

A statement is public when it Allows everyone (Principal "*", {"AWS": "*"} or a NotPrincipal) and no condition
pins the caller down to fixed values of a key that identifies who or where the request comes from. The keys and
the notion of a "fixed value" (no wildcard, no policy variable) follow AWS's documented meaning of "public" for
resource policies; IP conditions count only when they name something narrower than the whole internet.

Conditions that cannot exclude anyone do not restrict: ...IfExists (passes when the key is absent), negated
operators, Null, and ForAllValues (true for an absent key). Deny statements are never public.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Condition keys (lower case: IAM compares keys case-insensitively) that identify the caller or its origin.
RESTRICTING_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:userid",
    }
)
# Operators that admit only the listed values (ForAnyValue: on these is false for an absent key, so it counts).
_RESTRICTING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)
_ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})


def statement_list(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements as a list (a policy may hold a single statement object)."""
    statements = policy.get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def is_public(statement: Mapping[str, Any]) -> bool:
    """True when the statement allows anyone, unrestricted by a condition."""
    return statement.get("Effect") == "Allow" and _grants_everyone(statement) and not _restricted(statement)


def split_public(policy: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(statements kept, public statements), each in policy order."""
    statements = statement_list(policy)
    return [s for s in statements if not is_public(s)], [s for s in statements if is_public(s)]


def describe_statement(statement: Mapping[str, Any]) -> str:
    """A short human-readable form, e.g. `statement "pub" (Allow * sqs:SendMessage)`."""
    actions = ", ".join(as_list(statement.get("Action") or statement.get("NotAction")))
    sid = f'"{statement["Sid"]}" ' if statement.get("Sid") else ""
    return f"statement {sid}(Allow * {actions})"


def policy_text(policy: Mapping[str, Any], statements: list[dict[str, Any]]) -> str:
    """The policy with its statements replaced, as JSON text (other top-level keys such as Version and Id kept)."""
    return json.dumps({**policy, "Statement": statements})


def _grants_everyone(statement: Mapping[str, Any]) -> bool:
    if "NotPrincipal" in statement:  # Allow + NotPrincipal: everyone but the listed principals
        return True
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def _restricted(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, entries in condition.items():
        name = str(operator).lower().removeprefix("foranyvalue:")
        if name not in _RESTRICTING_OPERATORS or not isinstance(entries, Mapping):
            continue
        for key, values in entries.items():
            key, values = str(key).lower(), as_list(values)
            if key in RESTRICTING_KEYS and values and all(_is_fixed(str(v), key) for v in values):
                return True
    return False


def _is_fixed(value: str, key: str) -> bool:
    """A value that names one thing: no wildcard, no policy variable, not "any address"."""
    if "*" in value or "?" in value or "${" in value:
        return False
    return not (key == "aws:sourceip" and value in _ANYWHERE)


def as_list(value: Any) -> list[Any]:
    """A policy field that may be one value or a list of them, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
