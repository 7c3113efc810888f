"""The security-group scenario: many world-open groups in few accounts (the shape batched assessment is for).

In each of the first `accounts` member accounts, `groups` groups in the home region open SSH and RDP to the
world over IPv4 and IPv6, each reported by the four rules (EC2.53, EC2.54, EC2.13, EC2.14): `groups` x 4 findings
per account, written to a spool as normalized findings (the Security Hub shape), planned by the engine as the CLI
does. The org's own groups are left out: this plan reads only the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import synth
from bench.org import OPENINGS, Org
from connectors.asff import parse_finding
from demo.moto_org import HOME, WORLD_V4, asff_finding, ip_permission

BUILD_WORKERS = 4


def build(org: Org, accounts: int, groups: int, spool: Path, prefix: str = "bench-sgx") -> int:
    """Create the groups and write their findings to `spool`; returns how many findings."""
    chosen: Sequence[str] = org.accounts[:accounts]

    def one_account(account: str) -> list[str]:
        ec2 = org.admin.client(account, HOME, "ec2")
        permissions = [ip_permission(port, cidr) for port, cidr in OPENINGS] + [ip_permission(443, WORLD_V4)]
        lines = []
        for i in range(groups):
            group = ec2.create_security_group(GroupName=f"{prefix}-{i}", Description="bench: admin ports open")
            ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=permissions)
            arn = f"arn:aws:ec2:{HOME}:{account}:security-group/{group['GroupId']}"
            for rule_id in synth.rotated(synth.SECURITY_GROUP_RULES, i):
                payload = asff_finding(account, HOME, rule_id, "AwsEc2SecurityGroup", arn,
                                       f"{group['GroupId']} opens admin ports ({rule_id})")
                lines.append(json.dumps(parse_finding(payload).to_dict(), default=str))
        return lines

    with ThreadPoolExecutor(max_workers=BUILD_WORKERS, thread_name_prefix="build-sg") as pool:
        per_account = list(pool.map(one_account, chosen))
    findings = [line for line in synth.interleave(per_account) if isinstance(line, str)]
    spool.write_text("\n".join(findings) + "\n", encoding="utf-8")
    return len(findings)
