"""Synthetic Netskope violations for the memory check: n distinct resources, no AWS resource behind them.

Built with the demo's own violation builder, spread round-robin over the accounts, the demo's two regions and
the catalog rules Netskope reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from demo.moto_org import HOME, OTHER, netskope_violation

REGIONS = (HOME, OTHER)
RULES = ("EC2.13", "EC2.14", "EC2.6", "S3.8", "IAM.3", "CloudTrail.4")


def resource_arn(rule_id: str, account: str, region: str, index: int) -> str:
    if rule_id in ("EC2.13", "EC2.14"):
        return f"arn:aws:ec2:{region}:{account}:security-group/sg-{index:017x}"
    if rule_id == "EC2.6":
        return f"arn:aws:ec2:{region}:{account}:vpc/vpc-{index:017x}"
    if rule_id == "S3.8":
        return f"arn:aws:s3:::bench-synthetic-{index}"
    if rule_id == "IAM.3":
        return f"arn:aws:iam::{account}:user/bench-user-{index}"
    return f"arn:aws:cloudtrail:{region}:{account}:trail/bench-trail-{index}"


def synthetic_violations(n: int, accounts: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for index in range(n):
        account = accounts[index % len(accounts)]
        region = REGIONS[(index // len(accounts)) % len(REGIONS)]
        rule_id = RULES[(index // (len(accounts) * len(REGIONS))) % len(RULES)]
        out.append(netskope_violation(account, region, rule_id, resource_arn(rule_id, account, region, index),
                              f"synthetic violation {index}"))
    return out
