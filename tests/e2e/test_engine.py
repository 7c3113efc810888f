"""The engine end to end on moto: many accounts through AssumeRole, modes, exclusions, limits, isolation."""

from __future__ import annotations

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from connectors.finding import Finding
from functions.engine.config import Config, Limits, config_from_dict
from functions.engine.engine import Engine
from functions.engine.sessions import AssumedSessions
from functions.remediators.ec2 import SecurityGroupAdminPorts
from tests.factories import make_finding

REGION = "us-east-1"
ACCOUNTS = [f"{n}" * 12 for n in range(1, 6)]  # 111111111111 … 555555555555
ROLE = "CSPMRemediationRole"


def open_ssh_group(account: str, name: str = "web", tags: dict | None = None) -> str:
    """A security group in `account` with 22 open to the world (set up through moto's multi-account STS)."""
    ec2 = AssumedSessions(role_name="OrganizationAccountAccessRole").target(account, REGION).client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName=name, Description="test", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ],
    )
    if tags:
        ec2.create_tags(Resources=[group], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return group


def world_ssh_open(account: str, group: str) -> bool:
    ec2 = AssumedSessions(role_name="OrganizationAccountAccessRole").target(account, REGION).client("ec2")
    perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return any(
        p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", [])) for p in perms
    )


def sg_finding(account: str, group: str, **extra) -> Finding:
    return make_finding("EC2.53", "AwsEc2SecurityGroup", group, account_id=account, **extra)


def ebs_finding(account: str) -> Finding:
    return make_finding("EC2.7", "AwsAccount", account, account_id=account)


def engine(config: Config, stage: str = "apply", role: str | None = ROLE, **kwargs) -> Engine:
    return Engine(config, AssumedSessions(role_name=role), stage=stage, **kwargs)


ENFORCE = config_from_dict({"mode": "enforce"})


@pytest.fixture
def org(moto_aws):
    """Five accounts, each with one world-open SSH group and EBS default encryption off."""
    return {account: open_ssh_group(account) for account in ACCOUNTS}


def test_multi_account_apply_remediates_everything_with_one_assume_role_per_account(org):
    findings = [f for account, group in org.items() for f in (sg_finding(account, group), ebs_finding(account))]
    run = engine(ENFORCE)
    results = run.run(findings)
    assert [r.outcome for r in results] == ["remediated"] * len(findings)
    assert run.sessions.assume_role_calls == len(ACCOUNTS)
    assert not any(world_ssh_open(a, g) for a, g in org.items())
    assert all(r.pre_state for r in results if r.rule_id == "EC2.53")

    again = engine(ENFORCE).run(findings)
    assert [r.outcome for r in again] == ["noop"] * len(findings)


def test_dry_run_is_the_default_and_changes_nothing(org):
    account, group = next(iter(org.items()))
    for stage, config in (("apply", Config()), ("plan", ENFORCE)):
        (result,) = engine(config, stage=stage).run([sg_finding(account, group)])
        assert result.outcome == "planned"
        assert result.reason.startswith("dry-run: would revoke")
        assert world_ssh_open(account, group)


def test_exclusion_by_live_tag_and_by_finding_tag(moto_aws):
    account = ACCOUNTS[0]
    tagged = open_ssh_group(account, "bastion", tags={"cspm-remediation:exclude": "true"})
    plain = open_ssh_group(account, "web")
    results = engine(ENFORCE).run(
        [sg_finding(account, tagged), sg_finding(account, plain, tags={"cspm-remediation:exclude": "yes"})]
    )
    assert [r.outcome for r in results] == ["excluded", "excluded"]
    assert "cspm-remediation:exclude" in results[0].reason
    assert world_ssh_open(account, tagged) and world_ssh_open(account, plain)


def test_allowlists_exclude_accounts_resources_and_rules_per_account(org):
    a, b, c = ACCOUNTS[:3]
    config = config_from_dict(
        {"mode": "enforce", "exclude": {"accounts": [a], "resources": [org[b]], "rules_per_account": {c: ["EC2.53"]}}}
    )
    results = engine(config).run([sg_finding(a, org[a]), sg_finding(b, org[b]), sg_finding(c, org[c])])
    assert [r.outcome for r in results] == ["excluded"] * 3
    assert all(world_ssh_open(x, org[x]) for x in (a, b, c))


def test_circuit_breaker_trips_and_plans_the_rest(org):
    config = Config(mode="enforce", limits=Limits(max_actions_per_rule=2))
    results = engine(config, max_workers=1).run([sg_finding(a, g) for a, g in org.items()])
    outcomes = [r.outcome for r in results]
    assert outcomes.count("remediated") == 2 and outcomes.count("planned") == 3
    tripped = [r for r in results if r.outcome == "planned"]
    assert all(r.circuit_breaker and "circuit breaker" in r.reason for r in tripped)
    assert sum(world_ssh_open(a, g) for a, g in org.items()) == 3


def test_circuit_breaker_per_account(moto_aws):
    account = ACCOUNTS[0]
    groups = [open_ssh_group(account, f"g{i}") for i in range(3)]
    config = Config(mode="enforce", limits=Limits(max_actions_per_account=1))
    results = engine(config).run([sg_finding(account, g) for g in groups])
    assert [r.outcome for r in results] == ["remediated", "planned", "planned"]


def test_access_denied_in_one_account_leaves_the_others_remediated(org):
    denied = ACCOUNTS[2]

    def deny(params, **_):
        """STS answers AccessDenied for one account's role, as when its trust policy does not admit us."""
        if f":{denied}:" in params["RoleArn"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    base = boto3.Session()
    base.events.register("before-parameter-build.sts.AssumeRole", deny)
    findings = [f for a, g in org.items() for f in (sg_finding(a, g), ebs_finding(a))]
    run = Engine(ENFORCE, AssumedSessions(base_session=base, role_name=ROLE), stage="apply")
    results = run.run(findings)
    for result in results:
        if result.account_id == denied:
            assert result.outcome == "skipped"  # permanent (engine/failures.py): the role is missing or refuses us
            assert result.reason == ("remediation role missing or refused in that account: "
                                     f"cannot assume arn:aws:iam::{denied}:role/{ROLE}: AccessDenied")
        else:
            assert result.outcome == "remediated", result.reason
    assert run.sessions.assume_role_calls == len(ACCOUNTS)  # the failure is remembered, not retried per finding


def test_api_error_on_one_finding_does_not_stop_the_account(org):
    account, group = next(iter(org.items()))
    missing = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0000000000000dead", account_id=account)
    results = engine(ENFORCE).run([missing, sg_finding(account, group)])
    assert results[0].outcome == "skipped" and "sg-0000000000000dead" in results[0].reason  # gone: permanent
    assert results[0].reason.startswith("resource no longer exists: ") and results[0].error == "InvalidGroup.NotFound"
    assert results[1].outcome == "remediated"


def test_duplicates_give_one_action(org):
    account, group = next(iter(org.items()))
    first = sg_finding(account, group)
    other_source = sg_finding(account, group, source="netskope", finding_id="netskope:abc")
    results = engine(ENFORCE).run([first, first, other_source])
    assert [r.outcome for r in results] == ["remediated", "skipped", "skipped"]
    assert "delivered twice" in results[1].reason
    assert "same rule and resource" in results[2].reason


def test_offline_decisions_need_no_aws(moto_aws, monkeypatch):
    """Findings the engine can decide from the finding alone make no AWS call at all: every botocore client's
    API call (AssumeRole included) is recorded and refused. moto stays underneath only as a safety net."""
    calls: list[str] = []

    def refuse(client: BaseClient, operation: str, params: dict) -> None:
        calls.append(f"{client.meta.service_model.service_name}.{operation}")
        raise AssertionError(f"AWS call during an offline decision: {calls[-1]}")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    account = ACCOUNTS[0]
    results = engine(ENFORCE).run(
        [
            make_finding("Lambda.2", "AwsLambdaFunction", "fn", account_id=account),
            make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-1", account_id=account, compliance_status="PASSED"),
            make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-1", account_id=account, workflow_status="SUPPRESSED"),
            make_finding("EC2.53", "AwsS3Bucket", "bucket", account_id=account),
        ]
    )
    assert [r.outcome for r in results] == ["skipped"] * 4
    assert "no remediator for rule Lambda.2" in results[0].reason
    assert "not open and failed" in results[1].reason
    assert "does not handle resource type AwsS3Bucket" in results[3].reason
    assert calls == []


def test_rule_off_and_rule_filter(org):
    account, group = next(iter(org.items()))
    off = engine(config_from_dict({"mode": "enforce", "rules": {"EC2.53": {"mode": "off"}}}))
    assert off.run([sg_finding(account, group)])[0].reason == "rule EC2.53 is off"
    only = engine(ENFORCE.with_overrides(only_rules=frozenset({"S3.8"})))
    assert only.run([sg_finding(account, group)])[0].outcome == "skipped"
    assert world_ssh_open(account, group)


def test_without_a_role_only_the_callers_account_is_touched(moto_aws):
    own = boto3.client("sts").get_caller_identity()["Account"]
    mine, theirs = open_ssh_group(own), open_ssh_group(ACCOUNTS[0])
    results = engine(ENFORCE, role=None).run([sg_finding(own, mine), sg_finding(ACCOUNTS[0], theirs)])
    assert results[0].outcome == "remediated"
    assert results[1].outcome == "skipped" and "no --role-name" in results[1].reason
    assert world_ssh_open(ACCOUNTS[0], theirs)


@pytest.mark.stubber  # moto does not implement SSM Automation: StartAutomationExecution is stubbed.
def test_ssm_executor_starts_the_runbook_in_the_target_account(moto_aws):
    account = ACCOUNTS[0]
    ct = make_finding("CloudTrail.4", "AwsCloudTrailTrail", "main", account_id=account)
    config = config_from_dict({"rules": {"CloudTrail.4": {"mode": "enforce", "executor": "ssm"}}})
    run = engine(config)
    target = run.sessions.target(account, REGION)
    s3 = target.client("s3")
    s3.create_bucket(Bucket="trail-logs")
    target.client("cloudtrail").create_trail(Name="main", S3BucketName="trail-logs")
    with Stubber(target.client("ssm")) as stub:
        stub.add_response(
            "start_automation_execution",
            {"AutomationExecutionId": "0b6b7c1d-1111-2222-3333-444455556666"},
            {
                "DocumentName": "AWSConfigRemediation-EnableCloudTrailLogFileValidation",
                "Parameters": {
                    "TrailName": ["main"],
                    "AutomationAssumeRole": [f"arn:aws:iam::{account}:role/CSPMRemediationAutomation"],
                },
                "ClientToken": ANY,
                "Tags": [{"Key": "cspm-remediation:rule", "Value": "CloudTrail.4"}],
            },
        )
        (result,) = run.run([ct])
        stub.assert_no_pending_responses()
    assert result.outcome == "started"
    assert result.execution_id == "0b6b7c1d-1111-2222-3333-444455556666"
    assert result.executor == "ssm"


@pytest.mark.stubber  # moto has no SSM Automation: GetAutomationExecution is stubbed with its documented shape
def test_a_verified_runbook_records_the_pre_state_it_was_given_and_what_it_changed_field_by_field(moto_aws):
    """The follow-up's `remediated` result replaces the `started` one: it carries the started pre-state and, like
    a boto3 action, the post_state of the fields that changed (EC2.7's runbook work done here with boto3)."""
    account = ACCOUNTS[0]
    finding = make_finding("EC2.7", "AwsAccount", account, account_id=account)
    run = engine(config_from_dict({"rules": {"EC2.7": {"mode": "enforce", "executor": "ssm"}}}))
    target = run.sessions.target(account, REGION)
    pre_state = run._remediator(run.catalog["EC2.7"]).assess(target, finding).pre_state
    target.client("ec2").enable_ebs_encryption_by_default()
    execution = "0b6b7c1d-1111-2222-3333-444455556666"
    with Stubber(target.client("ssm")) as stub:
        stub.add_response("get_automation_execution", {"AutomationExecution": {
            "AutomationExecutionId": execution, "AutomationExecutionStatus": "Success"}},
            {"AutomationExecutionId": execution})
        result = run.follow_up(finding, execution, pre_state)
    assert result is not None and result.outcome == "remediated"
    assert result.pre_state == {"EbsEncryptionByDefault": False} == pre_state
    assert result.post_state == {"EbsEncryptionByDefault": True}


def test_results_keep_input_order_and_count_every_finding_once(org):
    findings = [sg_finding(a, g) for a, g in org.items()] + [ebs_finding(a) for a in org]
    seen = []
    results = engine(ENFORCE, on_result=seen.append, max_workers=3).run(findings)
    assert [r.finding_id for r in results] == [f.finding_id for f in findings]
    assert sorted(r.finding_id for r in seen) == sorted(f.finding_id for f in findings)


def test_streaming_across_chunks_keeps_dedupe_and_one_assume_role_per_account(org):
    findings = [sg_finding(a, g) for a, g in org.items()] * 2  # the second copy arrives in later chunks
    run = engine(ENFORCE)
    results = list(run.stream(findings, chunk_size=3))
    assert [r.outcome for r in results[:5]] == ["remediated"] * 5
    assert [r.outcome for r in results[5:]] == ["skipped"] * 5
    assert run.sessions.assume_role_calls == len(ACCOUNTS)


class RecordingGuard:
    """An ActionGuard that refuses findings already claimed (what the ledger does across invocations)."""

    def __init__(self, already_claimed=()):
        self.claimed = set(already_claimed)
        self.finished = []

    def acquire(self, finding, run_id):
        if finding.finding_id in self.claimed:
            return f"already handled by another delivery of {finding.finding_id}"
        self.claimed.add(finding.finding_id)
        return None

    def finish(self, finding, result):
        self.finished.append((finding.finding_id, result.outcome))


def test_guard_refuses_a_finding_another_delivery_holds(org):
    (a, g1), (b, g2) = list(org.items())[:2]
    held, free = sg_finding(a, g1), sg_finding(b, g2)
    guard = RecordingGuard(already_claimed={held.finding_id})
    results = engine(ENFORCE, guard=guard).run([held, free])
    assert [r.outcome for r in results] == ["skipped", "remediated"]
    assert "already handled" in results[0].reason
    assert guard.finished == [(free.finding_id, "remediated")]
    assert world_ssh_open(a, g1) and not world_ssh_open(b, g2)


def test_guard_is_told_of_failures_and_circuit_breaker_plans(org, monkeypatch):
    (a, g1), (b, g2), (c, g3) = list(org.items())[:3]
    real_apply = SecurityGroupAdminPorts.apply

    def apply(self, target, finding, assessment):
        if finding.resource_id == g2:
            error = {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}
            raise ClientError(error, "RevokeSecurityGroupIngress")
        return real_apply(self, target, finding, assessment)

    monkeypatch.setattr(SecurityGroupAdminPorts, "apply", apply)
    missing = make_finding("EC2.53", "AwsEc2SecurityGroup", "sg-0000000000000dead", account_id=a)
    guard = RecordingGuard()
    config = Config(mode="enforce", limits=Limits(max_actions_per_rule=2))
    findings = [sg_finding(a, g1), missing, sg_finding(b, g2), sg_finding(c, g3)]
    results = engine(config, guard=guard, max_workers=1).run(findings)
    assert [r.outcome for r in results] == ["remediated", "skipped", "failed", "planned"]  # missing: gone
    assert "UnauthorizedOperation" in results[2].reason
    # A finding that ends before any write (assess) never touches the guard; every acquired one is finished.
    assert [outcome for _, outcome in guard.finished] == ["remediated", "failed", "planned"]


def test_custom_action_findings_are_enforced_even_in_dry_run(org):
    (a, g1), (b, g2) = list(org.items())[:2]
    chosen = sg_finding(a, g1)
    results = engine(Config(), enforce_findings=frozenset({chosen.finding_id})).run([chosen, sg_finding(b, g2)])
    assert [r.outcome for r in results] == ["remediated", "planned"]
    off = config_from_dict({"rules": {"EC2.53": {"mode": "off"}}})
    assert engine(off, enforce_findings=frozenset({chosen.finding_id})).run([chosen])[0].outcome == "skipped"
