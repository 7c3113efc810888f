"""The shared "is this resource-policy statement public?" rule (SQS.3, Lambda.1): examples and properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.remediators.policies import (
    RESTRICTING_KEYS,
    describe_statement,
    is_public,
    policy_text,
    split_public,
    statement_list,
)

ACCOUNT_ARN = "arn:aws:iam::111122223333:root"


def allow(principal: Any = "*", condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement = {"Sid": "s", "Effect": "Allow", "Principal": principal, "Action": "sqs:SendMessage", **extra}
    if condition is not None:
        statement["Condition"] = condition
    return statement


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        (allow("*"), True),
        (allow({"AWS": "*"}), True),
        (allow({"AWS": [ACCOUNT_ARN, "*"]}), True),
        (allow({"AWS": ACCOUNT_ARN}), False),
        (allow({"Service": "sns.amazonaws.com"}), False),
        ({**allow(), "Effect": "Deny"}, False),
        ({"Effect": "Allow", "NotPrincipal": {"AWS": ACCOUNT_ARN}, "Action": "sqs:*"}, True),
        (allow(condition={"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111122223333:topic"}}), False),
        (allow(condition={"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"}}), False),  # keys: any case
        (allow(condition={"StringEquals": {"aws:SourceAccount": ["111122223333", "444455556666"]}}), False),
        (allow(condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}), False),
        (allow(condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}), False),
        (allow(condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), False),
        (allow(condition={"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}), False),
        # Conditions that cannot exclude anyone leave the statement public:
        (allow(condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True),
        (allow(condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}), True),
        (allow(condition={"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}}), True),
        (allow(condition={"StringEqualsIfExists": {"aws:SourceAccount": "111122223333"}}), True),
        (allow(condition={"StringNotEquals": {"aws:SourceAccount": "111122223333"}}), True),
        (allow(condition={"Null": {"aws:SourceArn": "false"}}), True),
        (allow(condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}), True),
        (allow(condition={"Bool": {"aws:SecureTransport": "true"}}), True),
        (allow(condition={"StringEquals": {"aws:SourceAccount": []}}), True),
        (allow(condition={"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}), True),
    ],
)
def test_examples(statement: dict[str, Any], public: bool) -> None:
    assert is_public(statement) is public


def test_split_keeps_order_and_other_top_level_keys() -> None:
    policy = {"Version": "2012-10-17", "Id": "q", "Statement": [allow({"AWS": ACCOUNT_ARN}), allow(), allow("x")]}

    kept, public = split_public(policy)

    assert kept == [policy["Statement"][0], policy["Statement"][2]]
    assert public == [policy["Statement"][1]]
    assert json.loads(policy_text(policy, kept)) == {**policy, "Statement": kept}


def test_a_single_statement_object_and_a_missing_statement() -> None:
    assert statement_list({"Statement": allow()}) == [allow()]
    assert split_public({}) == ([], [])


def test_describe_statement() -> None:
    assert describe_statement(allow()) == 'statement "s" (Allow * sqs:SendMessage)'
    assert describe_statement({"Effect": "Allow", "Principal": "*", "Action": ["a:B", "a:C"]}) == (
        "statement (Allow * a:B, a:C)"
    )


# -- properties over random statements ---------------------------------------------------------------------------

OPERATORS = [
    "StringEquals",
    "StringLike",
    "ArnLike",
    "ArnEquals",
    "IpAddress",
    "StringEqualsIfExists",
    "StringNotEquals",
    "Null",
    "Bool",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
]
KEYS = [*sorted(RESTRICTING_KEYS), "aws:SecureTransport", "aws:RequestedRegion", "lambda:FunctionUrlAuthType"]
VALUES = [
    "111122223333",
    "o-abcdefghij",
    "arn:aws:s3:::bucket",
    "arn:aws:s3:::*",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "true",
    "NONE",
    "${aws:username}",
    "vpce-1a2b3c4d?",
]

principals = st.one_of(
    st.just("*"),
    st.builds(lambda v: {"AWS": v}, st.sampled_from(["*", ACCOUNT_ARN, ["*", ACCOUNT_ARN], [ACCOUNT_ARN]])),
    st.just({"Service": "s3.amazonaws.com"}),
)
conditions = st.dictionaries(
    st.sampled_from(OPERATORS),
    st.dictionaries(
        st.sampled_from(KEYS), st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES))), max_size=3
    ),
    max_size=3,
)
statements = st.builds(
    lambda effect, principal, condition: {
        "Effect": effect,
        "Principal": principal,
        "Action": "sqs:*",
        **({"Condition": condition} if condition else {}),
    },
    st.sampled_from(["Allow", "Deny"]),
    principals,
    conditions,
)
# A condition that pins the caller to one fixed value of an identifying key.
restrictions = st.builds(
    lambda operator, key, value: (operator, key, value),
    st.sampled_from(["StringEquals", "StringLike", "ArnLike", "ArnEquals", "ForAnyValue:StringEquals"]),
    st.sampled_from(sorted(RESTRICTING_KEYS - {"aws:sourceip"})),
    st.sampled_from(["111122223333", "o-abcdefghij", "arn:aws:sns:us-east-1:111122223333:topic"]),
)


@given(statements)
def test_deny_is_never_public(statement: dict[str, Any]) -> None:
    assert not is_public({**statement, "Effect": "Deny"})


@given(statements)
def test_named_principals_only_are_never_public(statement: dict[str, Any]) -> None:
    assert not is_public({**statement, "Principal": {"AWS": [ACCOUNT_ARN]}})


@given(statements, restrictions)
def test_a_fixed_identifying_condition_makes_any_statement_private(statement: dict[str, Any], restriction) -> None:
    operator, key, value = restriction
    condition = {**statement.get("Condition", {})}
    condition[operator] = {**condition.get(operator, {}), key: value}

    assert not is_public({**statement, "Condition": condition})


@given(statements)
def test_without_identifying_keys_an_allow_to_everyone_is_public(statement: dict[str, Any]) -> None:
    unrelated = {
        op: {k: v for k, v in entries.items() if k.lower() not in RESTRICTING_KEYS}
        for op, entries in statement.get("Condition", {}).items()
    }
    candidate = {**statement, "Effect": "Allow", "Principal": "*", "Condition": unrelated}

    assert is_public(candidate)


@given(statements)
def test_case_of_keys_and_operators_does_not_matter(statement: dict[str, Any]) -> None:
    shouted = {
        op.upper(): {k.upper(): v for k, v in entries.items()} for op, entries in statement.get("Condition", {}).items()
    }

    assert is_public({**statement, "Condition": shouted}) is is_public(statement)


@given(st.lists(statements, max_size=6))
def test_split_is_an_order_keeping_partition_and_idempotent(items: list[dict[str, Any]]) -> None:
    kept, public = split_public({"Statement": items})

    assert sorted(map(json.dumps, kept + public)) == sorted(map(json.dumps, items))
    assert [s for s in items if s in kept] == kept
    assert all(is_public(s) for s in public) and not any(is_public(s) for s in kept)
    assert split_public({"Statement": kept}) == (kept, [])
