"""Batched assessment (Remediator.assess_many / prefetch, the engine's groups per account, region and rule): the
EC2-family remediators describe up to BATCH_IDS resources per call, each finding gets its own result, and a
resource the batch did not find is that finding's own `skipped`, never the batch's failure.

Through the engine on moto, counting calls with AssumedSessions.api_calls ("service.Operation").
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.model import Stage
from functions.remediators.ec2 import BATCH_IDS
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_ec2 import perm, sg_finding
from tests.unit.test_remediators_ec2_network import acl_entry, acl_finding, make_acl

ENFORCE = {"mode": "enforce"}
SSH_OPEN = [perm("tcp", 22, 22, "0.0.0.0/0"), perm("tcp", 443, 443, "0.0.0.0/0")]


@pytest.fixture
def ec2(moto_aws: None) -> Any:
    return boto3.client("ec2", region_name=REGION)


def groups(ec2: Any, count: int) -> list[str]:
    vpc_id = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    made = []
    for index in range(count):
        group_id = ec2.create_security_group(GroupName=f"g{index}", Description="t", VpcId=vpc_id)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=SSH_OPEN)
        made.append(group_id)
    return made


def run(stage: Stage, findings: list[Any], config: dict[str, Any] | None = None) -> tuple[list[Any], AssumedSessions]:
    sessions = AssumedSessions()
    return Engine(config_from_dict(config or {}), sessions, stage=stage).run(findings), sessions


def test_plan_describes_groups_in_batches_shared_by_the_rules(ec2: Any) -> None:
    ids = groups(ec2, BATCH_IDS + 10)
    findings = [sg_finding(rule, group) for rule in ("EC2.13", "EC2.53") for group in ids]

    results, sessions = run("plan", findings)

    assert [r.outcome for r in results] == ["planned"] * len(findings)
    assert all(r.changes == ["revoke tcp 22 from 0.0.0.0/0"] for r in results)  # each its own group's plan
    assert {r.resource_id for r in results} == set(ids)
    # two calls (200 + 10 ids) for 420 findings; one per group and rule before (420)
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 2


def test_a_deleted_group_skips_only_its_own_finding(ec2: Any) -> None:
    ids = groups(ec2, 3)
    ec2.delete_security_group(GroupId=ids[1])

    results, sessions = run("apply", [sg_finding("EC2.13", group) for group in ids], ENFORCE)

    assert [r.outcome for r in results] == ["remediated", "skipped", "remediated"]
    assert results[1].reason.startswith("resource no longer exists")
    assert results[1].error == "InvalidGroup.NotFound"
    # The id list fails whole on the missing group; the filter by group-id answers for the others (2 calls), then
    # one live verification per write. No finding reads its group alone.
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 2 + 2
    assert all(perm_["FromPort"] == 443 for group in (ids[0], ids[2]) for perm_ in
               ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"])


def test_apply_of_overlapping_rules_assesses_after_each_write(ec2: Any) -> None:
    """EC2.13 then EC2.53 on the same groups: the second rule's batch is served from the cache, and a group the
    first rule wrote is read live (its verification), so the second finds nothing left to revoke."""
    ids = groups(ec2, 5)
    findings = [sg_finding(rule, group) for rule in ("EC2.13", "EC2.53") for group in ids]

    results, sessions = run("apply", findings, ENFORCE)

    assert [r.outcome for r in results] == ["remediated"] * 5 + ["noop"] * 5
    assert sessions.api_calls["ec2.DescribeSecurityGroups"] == 1 + 5  # the batch, then one verification per write
    assert sessions.api_calls["ec2.RevokeSecurityGroupIngress"] == 5


def test_network_acls_are_described_in_one_call(ec2: Any) -> None:
    acls = [make_acl(ec2, [acl_entry(100, "6", "0.0.0.0/0", (22, 22))]) for _ in range(3)]

    results, sessions = run("plan", [acl_finding("EC2.21", acl) for acl in acls])

    assert [r.outcome for r in results] == ["planned"] * 3
    assert sessions.api_calls["ec2.DescribeNetworkAcls"] == 1


@pytest.mark.stubber
def test_a_missing_network_acl_is_skipped_alone(moto_aws: None) -> None:
    """Stubber (moto implements no network-acl-id filter): the id list is refused whole for one missing ACL, as
    AWS does; the filter answers for the others."""
    from botocore.stub import Stubber

    sessions = AssumedSessions()
    ec2 = sessions.client(ACCOUNT, REGION, "ec2")  # the engine's own (clients are cached)
    ids = ["acl-00000000000000001", "acl-00000000000000002"]
    open_ssh = {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": False,
                "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 22, "To": 22}}
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_network_acls", "InvalidNetworkAclID.NotFound",
                              expected_params={"NetworkAclIds": ids})
        stub.add_response("describe_network_acls",
                          {"NetworkAcls": [{"NetworkAclId": ids[1], "Entries": [open_ssh], "Tags": []}]},
                          {"Filters": [{"Name": "network-acl-id", "Values": ids}]})
        results = Engine(config_from_dict({}), sessions, stage="plan").run(
            [acl_finding("EC2.21", acl) for acl in ids])
        stub.assert_no_pending_responses()

    assert [r.outcome for r in results] == ["skipped", "planned"]
    assert results[0].error == "InvalidNetworkAclID.NotFound"


def test_flow_logs_of_many_vpcs_are_read_in_one_call(ec2: Any) -> None:
    vpcs = [ec2.create_vpc(CidrBlock=f"10.{20 + i}.0.0/16")["Vpc"]["VpcId"] for i in range(4)]
    findings = [make_finding("EC2.6", "AwsEc2Vpc", vpc, tags={"team": "a"}) for vpc in vpcs]

    results, sessions = run("plan", findings)

    assert [r.outcome for r in results] == ["planned"] * 4
    assert sessions.api_calls["ec2.DescribeFlowLogs"] == 1


def test_instances_are_described_in_one_call(ec2: Any) -> None:
    instances = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=3, MaxCount=3, MetadataOptions={"HttpTokens": "optional"})["Instances"]]

    results, sessions = run("plan", [make_finding("EC2.8", "AwsEc2Instance", i) for i in instances])

    assert [r.outcome for r in results] == ["planned"] * 3
    assert sessions.api_calls["ec2.DescribeInstances"] == 1


def test_the_verification_does_not_read_the_tags_again(moto_aws: None) -> None:
    """A finding without tags: assess reads the resource's live tags once for the exclusion tag; the verification
    after the write takes them from that assessment (no write of ours changes tags)."""
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]

    results, sessions = run("apply", [make_finding("KMS.4", "AwsKmsKey", key)], ENFORCE)

    assert [r.outcome for r in results] == ["remediated"]
    # one tag read (the batched GetResources, tagging.py; ListResourceTags without it), not again at verification
    assert sessions.api_calls["kms.ListResourceTags"] + sessions.api_calls["resource-groups-tagging-api.GetResources"] \
        == 1
    assert sessions.api_calls["kms.GetKeyRotationStatus"] == 2
