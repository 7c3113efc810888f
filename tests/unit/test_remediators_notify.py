"""Notify-only rules: the message a person gets must name the account and resource and say what to do."""

from __future__ import annotations

import pytest

from functions.remediators.base import RemediationError
from functions.remediators.notify import ManualRemediation
from tests.factories import ACCOUNT, make_finding

# rule id → (resource type, resource id, region, what the message must contain)
CASES = {
    "IAM.4": ("AwsAccount", ACCOUNT, "global", ["Security credentials > Access keys", "aws iam delete-access-key"]),
    "IAM.9": ("AwsAccount", ACCOUNT, "global", ["Assign MFA device", "AccountMFAEnabled"]),
    "IAM.6": ("AwsAccount", ACCOUNT, "global", ["hardware TOTP token", f"arn:aws:iam::{ACCOUNT}:root"]),
    "IAM.5": (
        "AwsIamUser",
        "alice",
        "global",
        ["Users > alice > Security credentials", "aws iam list-mfa-devices --user-name alice"],
    ),
    "S3.20": (
        "AwsS3Bucket",
        "audit-logs",
        "eu-west-1",
        [
            "aws s3api put-bucket-versioning --bucket audit-logs --versioning-configuration "
            "Status=Enabled,MFADelete=Enabled --mfa",
            "root user",
        ],
    ),
    "Config.1": (
        "AwsAccount",
        ACCOUNT,
        "eu-west-1",
        ["aws configservice put-configuration-recorder --region eu-west-1", f"arn:aws:iam::{ACCOUNT}:role/"],
    ),
}
EXPECTED = {"IAM.4": "1.4", "IAM.9": "1.5", "IAM.6": "1.6", "IAM.5": "1.10", "S3.20": "2.1.2", "Config.1": "3.3"}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_message_names_the_resource_and_the_step(rule_id: str) -> None:
    resource_type, resource_id, region, steps = CASES[rule_id]
    remediator = ManualRemediation()
    assert resource_type in remediator.resource_types
    finding = make_finding(rule_id, resource_type, resource_id, region=region, title="a {braced} title")

    message = remediator.notify_message(finding)

    assert message.startswith(f"{rule_id} — a {{braced}} title — ")
    assert f"account {ACCOUNT}" in message
    if resource_id != ACCOUNT:
        assert resource_id in message
    for step in steps:
        assert step in message
    assert "{" not in message.split(" — ", 2)[2]  # every placeholder was filled


def test_the_catalog_b_rules_are_all_notify_only() -> None:
    rules = {rule.rule_id: rule for rule in ManualRemediation.rules}
    assert {rule_id: rule.cis for rule_id, rule in rules.items()} == {k: (v,) for k, v in EXPECTED.items()}
    assert all(rule.default_mode == "notify" for rule in rules.values())
    assert set(ManualRemediation.guidance) == set(rules)
    assert not ManualRemediation.permissions
    assert not ManualRemediation.reversible
    assert ManualRemediation.runbook is None


def test_notify_only_never_touches_aws() -> None:
    finding = make_finding("S3.20", "AwsS3Bucket", "audit-logs")
    with pytest.raises(RemediationError, match="notify-only"):
        ManualRemediation().assess(None, finding)  # type: ignore[arg-type]
