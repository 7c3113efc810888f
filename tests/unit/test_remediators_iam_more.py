"""Account-level IAM remediators: the support role (IAM.18), AWSCloudShellFullAccess (IAM.27), expired server
certificates (IAM.26) and IAM Access Analyzer (IAM.28).

moto loads AWS managed policies only with MOTO_IAM_LOAD_MANAGED_POLICIES=true, which costs ~1.5 s per test for
all ~1,500 of them; `aws_managed_policy` adds just the one a test needs to moto's in-process backend, from moto's own
copy of its document. moto reports a fixed Expiration (2012) for every server certificate, so a certificate that has
not expired needs botocore Stubber; and moto does not implement Access Analyzer at all (Stubber too).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends

from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.iam import AccessAnalyzer, CloudShellFullAccess, ExpiredServerCertificates, SupportRole
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit import test_remediators_iam as iam_tests
from tests.unit.test_remediators_iam import ROLE, engine_pre_state, record_calls, remediate, restore_twice

# The IAM test module's fixtures, shared: pytest finds fixtures among a module's attributes.
iam = iam_tests.iam
global_target = iam_tests.global_target

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SUPPORT = "arn:aws:iam::aws:policy/AWSSupportAccess"
CLOUDSHELL = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"
TRUST_ANYONE_IN_EC2 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@functools.cache
def _moto_managed_policies() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


def aws_managed_policy(arn: str) -> str:
    """Make one AWS managed policy exist in moto's backend for the default account."""
    name = arn.rsplit("/", 1)[-1]
    policy = AWSManagedPolicy.from_data(name, ACCOUNT, "us-east-1", _moto_managed_policies()[name])
    iam_backends[ACCOUNT]["aws"].managed_policies[policy.arn] = policy
    return policy.arn


def account_finding(rule_id: str, region: str = "global", **overrides: Any):
    return make_finding(rule_id, "AwsAccount", f"AWS::::Account:{ACCOUNT}", region=region, **overrides)


def attached_to(iam, policy_arn: str) -> set[tuple[str, str]]:
    """An independent read: (kind, name) of every identity the policy is attached to."""
    response = iam.list_entities_for_policy(PolicyArn=policy_arn)
    return (
        {("User", e["UserName"]) for e in response["PolicyUsers"]}
        | {("Group", e["GroupName"]) for e in response["PolicyGroups"]}
        | {("Role", e["RoleName"]) for e in response["PolicyRoles"]}
    )


def role_trust(iam, name: str) -> dict[str, Any] | None:
    try:
        return iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    except ClientError:
        return None


# -- support role (IAM.18) ---------------------------------------------------------------------------------------


@pytest.fixture
def support_policy(iam) -> str:
    return aws_managed_policy(SUPPORT)


def support_state(iam) -> tuple[set[tuple[str, str]], dict[str, Any] | None]:
    return attached_to(iam, SUPPORT), role_trust(iam, "AWSSupportAccessRole")


def test_support_role_is_created_trusting_the_account(global_target: Target, iam, support_policy) -> None:
    original = support_state(iam)
    remediator = SupportRole()
    finding = account_finding("IAM.18")
    calls = record_calls(global_target.client("iam"))

    assessment = remediate(remediator, global_target, finding, lambda: support_state(iam))

    assert attached_to(iam, SUPPORT) == {("Role", "AWSSupportAccessRole")}
    (statement,) = role_trust(iam, "AWSSupportAccessRole")["Statement"]
    assert statement["Principal"] == {"AWS": ROOT}
    assert statement["Action"] == "sts:AssumeRole"
    assert assessment.changes == [
        f"create role AWSSupportAccessRole trusted by {ROOT}",
        f"attach {SUPPORT} to role AWSSupportAccessRole",
    ]
    assert assessment.context["created"] == {"RoleName": "AWSSupportAccessRole"}
    assert {f"iam:{name}" for name in calls} <= set(SupportRole.permissions)

    lines = restore_twice(remediator, global_target, finding, assessment, lambda: support_state(iam), original)
    assert lines == [
        "detach AWSSupportAccess from role AWSSupportAccessRole: done",
        "delete role AWSSupportAccessRole: done",
    ]


def test_any_role_with_support_access_is_compliant(global_target: Target, iam, support_policy) -> None:
    iam.create_role(RoleName="incident-team", AssumeRolePolicyDocument=json.dumps(TRUST_ANYONE_IN_EC2))
    iam.attach_role_policy(RoleName="incident-team", PolicyArn=SUPPORT)
    calls = record_calls(global_target.client("iam"))

    assert SupportRole().assess(global_target, account_finding("IAM.18")).compliant
    assert calls == ["ListEntitiesForPolicy"]


def test_support_policy_on_a_user_only_is_not_compliant(global_target: Target, iam, support_policy) -> None:
    iam.create_user(UserName="helpdesk")
    iam.attach_user_policy(UserName="helpdesk", PolicyArn=SUPPORT)

    assert not SupportRole().assess(global_target, account_finding("IAM.18")).compliant


def test_an_existing_role_with_the_account_trust_gets_the_policy_and_is_kept(
    global_target: Target, iam, support_policy
) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="AWSSupportAccessRole", AssumeRolePolicyDocument=json.dumps(trust))
    original = support_state(iam)
    remediator = SupportRole()
    finding = account_finding("IAM.18")

    assessment = remediate(remediator, global_target, finding, lambda: support_state(iam))

    assert assessment.changes == [f"attach {SUPPORT} to role AWSSupportAccessRole"]
    assert "created" not in assessment.context
    restore_twice(remediator, global_target, finding, assessment, lambda: support_state(iam), original)
    assert role_trust(iam, "AWSSupportAccessRole") == trust


def test_an_existing_role_with_another_trust_is_refused(global_target: Target, iam, support_policy) -> None:
    iam.create_role(RoleName="AWSSupportAccessRole", AssumeRolePolicyDocument=json.dumps(TRUST_ANYONE_IN_EC2))

    with pytest.raises(RemediationError, match="another trust policy"):
        SupportRole().assess(global_target, account_finding("IAM.18"))


def test_support_role_name_is_configurable(global_target: Target, iam, support_policy) -> None:
    remediator = SupportRole({"role_name": "support"})
    finding = account_finding("IAM.18")

    remediator.apply(global_target, finding, remediator.assess(global_target, finding))

    assert attached_to(iam, SUPPORT) == {("Role", "support")}


def test_support_role_declarations() -> None:
    (rule,) = SupportRole.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("IAM.18", ("1.17",), False)
    assert SupportRole.resource_types == ("AwsAccount",)
    assert SupportRole.reversible


# -- AWSCloudShellFullAccess (IAM.27) ----------------------------------------------------------------------------


@pytest.fixture
def cloudshell_everywhere(iam) -> set[tuple[str, str]]:
    """AWSCloudShellFullAccess on one user, one group and one role."""
    aws_managed_policy(CLOUDSHELL)
    iam.create_user(UserName="dev")
    iam.attach_user_policy(UserName="dev", PolicyArn=CLOUDSHELL)
    iam.create_group(GroupName="devs")
    iam.attach_group_policy(GroupName="devs", PolicyArn=CLOUDSHELL)
    iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps(TRUST_ANYONE_IN_EC2))
    iam.attach_role_policy(RoleName="ops", PolicyArn=CLOUDSHELL)
    return attached_to(iam, CLOUDSHELL)


@pytest.mark.parametrize("resource_type", ["AwsAccount", "AwsIamPolicy"])
def test_cloudshell_access_is_detached_from_every_identity(
    global_target: Target, iam, cloudshell_everywhere, resource_type: str
) -> None:
    remediator = CloudShellFullAccess()
    resource_id = f"AWS::::Account:{ACCOUNT}" if resource_type == "AwsAccount" else CLOUDSHELL
    finding = make_finding("IAM.27", resource_type, resource_id, region="global")

    assessment = remediate(remediator, global_target, finding, lambda: attached_to(iam, CLOUDSHELL))

    assert attached_to(iam, CLOUDSHELL) == set()
    assert sorted(assessment.changes) == [
        "detach AWSCloudShellFullAccess from group devs",
        "detach AWSCloudShellFullAccess from role ops",
        "detach AWSCloudShellFullAccess from user dev",
    ]
    restore_twice(
        remediator, global_target, finding, assessment, lambda: attached_to(iam, CLOUDSHELL), cloudshell_everywhere
    )


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "kind", "name"),
    [
        ("AwsIamUser", "dev", "User", "dev"),
        ("AwsIamGroup", f"arn:aws:iam::{ACCOUNT}:group/devs", "Group", "devs"),
        ("AwsIamRole", f"arn:aws:iam::{ACCOUNT}:role/ops", "Role", "ops"),
    ],
)
def test_a_finding_on_one_identity_detaches_from_that_one_only(
    global_target: Target, iam, cloudshell_everywhere, resource_type, resource_id, kind, name
) -> None:
    remediator = CloudShellFullAccess()
    finding = make_finding("IAM.27", resource_type, resource_id, region="global")

    assessment = remediate(remediator, global_target, finding, lambda: attached_to(iam, CLOUDSHELL))

    assert attached_to(iam, CLOUDSHELL) == cloudshell_everywhere - {(kind, name)}
    assert assessment.pre_state["detached"] == [{"Type": kind, "Name": name}]
    restore_twice(
        remediator, global_target, finding, assessment, lambda: attached_to(iam, CLOUDSHELL), cloudshell_everywhere
    )


def test_cloudshell_assess_is_read_only(global_target: Target, iam, cloudshell_everywhere) -> None:
    calls = record_calls(global_target.client("iam"))

    assert not CloudShellFullAccess().assess(global_target, account_finding("IAM.27")).compliant

    assert calls == ["ListEntitiesForPolicy"]
    assert attached_to(iam, CLOUDSHELL) == cloudshell_everywhere


def test_cloudshell_declarations() -> None:
    (rule,) = CloudShellFullAccess.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("IAM.27", ("1.22",), False)
    assert set(CloudShellFullAccess.resource_types) >= {"AwsIamUser", "AwsIamGroup", "AwsIamRole", "AwsAccount"}


# -- expired server certificates (IAM.26) ------------------------------------------------------------------------


def upload_certificate(iam, name: str, path: str = "/") -> str:
    """moto neither parses the body nor dates it: every certificate it lists expired in 2012."""
    response = iam.upload_server_certificate(
        ServerCertificateName=name,
        CertificateBody="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        PrivateKey="-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
        Path=path,
    )
    return response["ServerCertificateMetadata"]["Arn"]


def certificate_names(iam) -> set[str]:
    return {c["ServerCertificateName"] for c in iam.list_server_certificates()["ServerCertificateMetadataList"]}


def test_expired_certificates_of_the_account_are_deleted(global_target: Target, iam) -> None:
    upload_certificate(iam, "shop-2011")
    upload_certificate(iam, "cdn-2011", path="/cloudfront/")
    remediator = ExpiredServerCertificates()
    finding = account_finding("IAM.26")

    assessment = remediate(remediator, global_target, finding, lambda: certificate_names(iam))

    assert certificate_names(iam) == set()
    assert sorted(c["ServerCertificateName"] for c in assessment.pre_state["deleted"]) == ["cdn-2011", "shop-2011"]
    assert all(c["Expiration"].startswith("2012-05-08") for c in assessment.pre_state["deleted"])
    assert all("irreversible" in change for change in assessment.changes)


@pytest.mark.parametrize("resource_type", ["AwsIamServerCertificate", "Other"])
def test_a_finding_on_one_certificate_deletes_that_one_only(global_target: Target, iam, resource_type) -> None:
    arn = upload_certificate(iam, "shop-2011", path="/shop/")
    upload_certificate(iam, "other-2011")
    # A Security Hub finding carries the certificate's tags (moto has no ListServerCertificateTags; see below).
    finding = make_finding("IAM.26", resource_type, arn, region="global", resource_arn=arn, tags={"team": "shop"})

    remediate(ExpiredServerCertificates(), global_target, finding, lambda: certificate_names(iam))

    assert certificate_names(iam) == {"other-2011"}


@pytest.mark.stubber
def test_a_finding_on_one_certificate_without_tags_reads_them(global_target: Target) -> None:
    """Stubber (moto lacks ListServerCertificateTags): a finding on one certificate that carries no tags reads the
    certificate's, so the exclusion tag holds; a finding on the account does not (one call per certificate)."""
    client = global_target.client("iam")
    now = datetime.now(UTC)
    arn = f"arn:aws:iam::{ACCOUNT}:server-certificate/shop"
    listing = {"ServerCertificateMetadataList": [{
        "Path": "/", "ServerCertificateName": "shop", "ServerCertificateId": "ASCASHOPEXAMPLE0001", "Arn": arn,
        "UploadDate": now - timedelta(days=400), "Expiration": now - timedelta(days=1),
    }], "IsTruncated": False}
    with Stubber(client) as stub:
        stub.add_response("list_server_certificates", listing, {})
        stub.add_response("list_server_certificate_tags",
                          {"Tags": [{"Key": "cspm-remediation:exclude", "Value": "true"}], "IsTruncated": False},
                          {"ServerCertificateName": "shop"})
        stub.add_response("list_server_certificates", listing, {})
        finding = make_finding("IAM.26", "AwsIamServerCertificate", arn, region="global", resource_arn=arn)
        assert ExpiredServerCertificates().assess(global_target, finding).tags == {"cspm-remediation:exclude": "true"}
        assert ExpiredServerCertificates().assess(global_target, account_finding("IAM.26")).tags is None
        stub.assert_no_pending_responses()


def test_server_certificates_cannot_be_restored(global_target: Target, iam) -> None:
    with pytest.raises(RemediationError, match="not reversible"):
        ExpiredServerCertificates().restore(global_target, account_finding("IAM.26"), {"deleted": []})


@pytest.mark.stubber
def test_a_certificate_still_valid_is_left_alone(global_target: Target) -> None:
    """Stubber: moto reports every certificate as expired in 2012."""
    client = global_target.client("iam")
    now = datetime.now(UTC)
    listing = {
        "ServerCertificateMetadataList": [
            {
                "Path": "/",
                "ServerCertificateName": name,
                "ServerCertificateId": f"ASCA{name.upper()}EXAMPLE01",
                "Arn": f"arn:aws:iam::{ACCOUNT}:server-certificate/{name}",
                "UploadDate": now - timedelta(days=400),
                "Expiration": now + timedelta(days=days_left),
            }
            for name, days_left in (("valid", 30), ("expired", -1))
        ],
        "IsTruncated": False,
    }
    with Stubber(client) as stub:
        stub.add_response("list_server_certificates", listing, {})
        stub.add_response("delete_server_certificate", {}, {"ServerCertificateName": "expired"})
        remediator = ExpiredServerCertificates()
        finding = account_finding("IAM.26")
        assessment = remediator.assess(global_target, finding)
        assert [c["ServerCertificateName"] for c in assessment.pre_state["deleted"]] == ["expired"]
        remediator.apply(global_target, finding, assessment)
        stub.assert_no_pending_responses()


def test_server_certificate_declarations() -> None:
    (rule,) = ExpiredServerCertificates.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("IAM.26", ("1.19",), True)
    assert not ExpiredServerCertificates.reversible
    assert "AwsAccount" in ExpiredServerCertificates.resource_types


# -- IAM Access Analyzer (IAM.28) --------------------------------------------------------------------------------


def analyzer(name: str, kind: str = "ACCOUNT", status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "arn": f"arn:aws:access-analyzer:{REGION}:{ACCOUNT}:analyzer/{name}",
        "name": name,
        "type": kind,
        "createdAt": datetime(2024, 1, 1, tzinfo=UTC),
        "status": status,
    }


@pytest.fixture
def analyzers(target: Target):
    """Stubber on the target's Access Analyzer client: moto does not implement Access Analyzer."""
    with Stubber(target.client("accessanalyzer")) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.mark.stubber
def test_account_analyzer_is_created_and_restore_deletes_it(target: Target, analyzers: Stubber) -> None:
    """Stubber: each request is checked against its documented shape; the listings stand in for AWS's state."""
    ours = analyzer("cspm-account-analyzer")
    analyzers.add_response("list_analyzers", {"analyzers": [analyzer("old", status="FAILED")]}, {})
    analyzers.add_response(
        "create_analyzer",
        {"arn": ours["arn"]},
        {"analyzerName": "cspm-account-analyzer", "type": "ACCOUNT"},
    )
    for _ in range(2):  # verification, then the rerun
        analyzers.add_response("list_analyzers", {"analyzers": [ours]}, {})
    analyzers.add_response("delete_analyzer", {}, {"analyzerName": "cspm-account-analyzer"})
    analyzers.add_client_error("delete_analyzer", "ResourceNotFoundException", expected_params={"analyzerName": ANY})
    remediator = AccessAnalyzer()
    finding = account_finding("IAM.28", region=REGION)
    # No independent read of Access Analyzer exists without AWS: the stubbed requests are what is checked.
    assessment = remediate(remediator, target, finding, lambda: None)

    assert assessment.changes == [f"create account analyzer cspm-account-analyzer in {REGION}"]
    assert assessment.context["created"] == {"AnalyzerName": "cspm-account-analyzer", "Region": REGION}
    pre_state = engine_pre_state(assessment)
    assert remediator.restore(target, finding, pre_state) == [
        f"delete analyzer cspm-account-analyzer in {REGION}: done"
    ]
    assert remediator.restore(target, finding, pre_state) == [
        f"delete analyzer cspm-account-analyzer in {REGION}: skipped, not found"
    ]


@pytest.mark.stubber
@pytest.mark.parametrize(
    ("kind", "status", "compliant"),
    [
        ("ACCOUNT", "ACTIVE", True),
        ("ORGANIZATION", "ACTIVE", True),
        ("ACCOUNT", "CREATING", True),
        ("ACCOUNT", "DISABLED", False),
        ("ACCOUNT_UNUSED_ACCESS", "ACTIVE", False),
    ],
)
def test_which_analyzers_count(target: Target, analyzers: Stubber, kind, status, compliant) -> None:
    """Stubber: moto does not implement Access Analyzer."""
    analyzers.add_response("list_analyzers", {"analyzers": [analyzer("existing", kind, status)]}, {})

    assert AccessAnalyzer().assess(target, account_finding("IAM.28", region=REGION)).compliant is compliant


def test_restore_without_a_created_analyzer_deletes_nothing(target: Target) -> None:
    lines = AccessAnalyzer().restore(
        target, account_finding("IAM.28", region=REGION), {"AnalyzerName": "cspm-account-analyzer", "Region": REGION}
    )
    assert "nothing to delete" in lines[0]


def test_access_analyzer_runbook_and_declarations() -> None:
    runbook = AccessAnalyzer.runbook
    assert runbook is not None
    assert runbook.document == "AWSConfigRemediation-EnableAccountAccessAnalyzer"
    assert runbook.parameters(account_finding("IAM.28", region=REGION), ROLE) == {
        "AutomationAssumeRole": [ROLE],
        "AnalyzerName": ["cspm-account-analyzer"],
    }
    (rule,) = AccessAnalyzer.rules
    assert (rule.rule_id, rule.cis, rule.disruptive) == ("IAM.28", ("1.20",), False)
    assert {"access-analyzer:ListAnalyzers", "access-analyzer:CreateAnalyzer"} <= set(AccessAnalyzer.permissions)
