"""Lambda.1 against moto: public statements removed by Sid, the rest kept; rollback re-adds them with
AddPermission, and says which ones it cannot re-create exactly."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.model import Target
from functions.remediators.awslambda import FunctionPolicyNotPublic, function_arn, permission_arguments
from functions.remediators.base import RemediationError
from tests.factories import ACCOUNT, REGION, make_finding

FUNCTION = "thumbnailer"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
PUBLIC = {"StatementId": "AnyoneCanInvoke", "Action": "lambda:InvokeFunction", "Principal": "*"}
FROM_BUCKET = {
    "StatementId": "BucketCanInvoke",
    "Action": "lambda:InvokeFunction",
    "Principal": "s3.amazonaws.com",
    "SourceArn": "arn:aws:s3:::uploads",
    "SourceAccount": ACCOUNT,
}
ORG = {
    "StatementId": "OrgCanInvoke",
    "Action": "lambda:InvokeFunction",
    "Principal": "*",
    "PrincipalOrgID": "o-abcdefghij",
}
PARTNER = {"StatementId": "PartnerCanInvoke", "Action": "lambda:GetFunction", "Principal": "111122223333"}


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def awslambda(moto_aws):
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="thumbnailer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    client = boto3.client("lambda", region_name=REGION)
    client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": function_zip()},
    )
    return client


def grant(awslambda, *permissions: dict[str, str]) -> None:
    for permission in permissions:
        awslambda.add_permission(FunctionName=FUNCTION, **permission)


def statements(awslambda) -> dict[str, dict[str, Any]]:
    """An independent read of the function policy, by Sid ({} when there is no policy)."""
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=FUNCTION)["Policy"])
    except awslambda.exceptions.ResourceNotFoundException:
        return {}
    return {s["Sid"]: s for s in policy["Statement"]}


def function_finding(resource_id: str = FUNCTION):
    return make_finding("Lambda.1", "AwsLambdaFunction", resource_id, resource_arn=FUNCTION_ARN)


def test_public_statement_is_removed_and_the_rest_kept(target: Target, awslambda) -> None:
    grant(awslambda, PUBLIC, FROM_BUCKET, ORG, PARTNER)
    original = statements(awslambda)
    remediator, finding = FunctionPolicyNotPublic(), function_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant
    assert before.changes == [
        f'remove statement "AnyoneCanInvoke" (Allow * lambda:InvokeFunction) from function {FUNCTION}'
    ]
    assert before.pre_state == {"Statements": [original["AnyoneCanInvoke"]]}

    remediator.apply(target, finding, before)

    assert statements(awslambda) == {sid: s for sid, s in original.items() if sid != "AnyoneCanInvoke"}
    assert remediator.assess(target, finding).compliant
    assert remediator.assess(target, finding).changes == []


def test_function_without_policy_or_public_statement_is_compliant(target: Target, awslambda) -> None:
    remediator, finding = FunctionPolicyNotPublic(), function_finding()
    assert remediator.assess(target, finding).compliant
    grant(awslambda, FROM_BUCKET, ORG)
    assert remediator.assess(target, finding).compliant


def test_assess_is_read_only(target: Target, awslambda) -> None:
    grant(awslambda, PUBLIC)
    calls: list[str] = []
    target.client("lambda").meta.events.register("before-call", lambda model, **_: calls.append(model.name))

    assert not FunctionPolicyNotPublic().assess(target, function_finding()).compliant

    assert calls == ["GetPolicy", "ListTags"]
    assert list(statements(awslambda)) == ["AnyoneCanInvoke"]


def test_restore_re_adds_the_removed_statements_and_is_idempotent(target: Target, awslambda) -> None:
    grant(awslambda, PUBLIC, PARTNER)
    original = statements(awslambda)
    remediator, finding = FunctionPolicyNotPublic(), function_finding()
    assessment = remediator.assess(target, finding)
    remediator.apply(target, finding, assessment)
    assert list(statements(awslambda)) == ["PartnerCanInvoke"]

    first = remediator.restore(target, finding, assessment.pre_state)
    second = remediator.restore(target, finding, assessment.pre_state)

    assert statements(awslambda) == original
    what = f'statement "AnyoneCanInvoke" (Allow * lambda:InvokeFunction) on function {FUNCTION}'
    assert first == [f"re-added {what}"]
    assert second == [f"{what} is already there"]


def test_apply_tolerates_a_statement_already_removed(target: Target, awslambda) -> None:
    grant(awslambda, PUBLIC, PARTNER)
    remediator, finding = FunctionPolicyNotPublic(), function_finding()
    assessment = remediator.assess(target, finding)
    awslambda.remove_permission(FunctionName=FUNCTION, StatementId="AnyoneCanInvoke")

    remediator.apply(target, finding, assessment)

    assert list(statements(awslambda)) == ["PartnerCanInvoke"]


def test_qualified_function_name(target: Target, awslambda) -> None:
    awslambda.publish_version(FunctionName=FUNCTION)
    awslambda.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    awslambda.add_permission(FunctionName=FUNCTION, Qualifier="live", **PUBLIC)
    remediator, finding = FunctionPolicyNotPublic(), function_finding(f"{FUNCTION}:live")

    remediator.apply(target, finding, remediator.assess(target, finding))

    assert remediator.assess(target, finding).compliant


UNPINNED = {k: v for k, v in FROM_BUCKET.items() if k != "SourceAccount"}  # SourceArn only


def test_s3_trigger_without_source_account_is_pinned_not_removed(target: Target, awslambda) -> None:
    """Lambda.1 fails an S3 service statement without aws:SourceAccount. The bucket is this account's (HeadBucket
    with ExpectedBucketOwner), so the statement is re-added under its Sid with SourceAccount: the bucket's
    notifications keep invoking the function, the public statement goes, the partner's stays; rollback unpins."""
    target.client("s3").create_bucket(Bucket="uploads")
    grant(awslambda, PUBLIC, UNPINNED, PARTNER)
    original = statements(awslambda)
    remediator, finding = FunctionPolicyNotPublic(), function_finding()

    before = remediator.assess(target, finding)
    assert not before.compliant and before.disruptive == ""
    assert before.changes[1] == (
        f'pin S3 trigger statement "BucketCanInvoke" (bucket uploads) of function {FUNCTION} to SourceAccount {ACCOUNT}'
    )
    remediator.apply(target, finding, before)

    after = statements(awslambda)
    assert sorted(after) == ["BucketCanInvoke", "PartnerCanInvoke"]
    assert after["PartnerCanInvoke"] == original["PartnerCanInvoke"]
    pinned = after["BucketCanInvoke"]
    assert pinned["Principal"] == {"Service": "s3.amazonaws.com"}
    assert pinned["Condition"]["ArnLike"] == {"AWS:SourceArn": "arn:aws:s3:::uploads"}
    assert pinned["Condition"]["StringEquals"] == {"AWS:SourceAccount": ACCOUNT}
    assert remediator.assess(target, finding).compliant

    lines = remediator.restore(target, finding, before.pre_state)
    assert statements(awslambda) == original
    assert lines[-1].startswith('put back statement "BucketCanInvoke"')


def test_pinning_a_trigger_of_a_bucket_this_account_does_not_own_is_disruptive(target: Target, awslambda) -> None:
    """No such bucket in this account (another account's, or none): pinning to this account would stop its
    notifications, so the plan says so and the engine holds it unless the rule itself says enforce."""
    grant(awslambda, UNPINNED)

    before = FunctionPolicyNotPublic().assess(target, function_finding())

    assert not before.compliant
    assert "S3 notifications from bucket uploads of accounts other than" in before.disruptive


def test_missing_function_is_a_remediation_error(target: Target, awslambda) -> None:
    with pytest.raises(RemediationError, match="Lambda function gone not found"):
        FunctionPolicyNotPublic().assess(target, function_finding("gone"))


# -- mapping a policy statement back to AddPermission -------------------------------------------------------------

URL_STATEMENT = {  # the shape AWS returns for add-permission --function-url-auth-type NONE
    "Sid": "FunctionURLAllowPublicAccess",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunctionUrl",
    "Resource": FUNCTION_ARN,
    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
}


def test_permission_arguments_for_a_public_function_url() -> None:
    assert permission_arguments(URL_STATEMENT) == {
        "StatementId": "FunctionURLAllowPublicAccess",
        "Action": "lambda:InvokeFunctionUrl",
        "Principal": "*",
        "FunctionUrlAuthType": "NONE",
    }


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ({**URL_STATEMENT, "Action": ["lambda:InvokeFunction", "lambda:GetFunction"]}, "one action"),
        ({**URL_STATEMENT, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, "condition Bool"),
        ({**URL_STATEMENT, "Condition": {"StringLike": {"AWS:SourceAccount": "1111*"}}}, "condition StringLike"),
        ({**URL_STATEMENT, "NotAction": "lambda:DeleteFunction"}, "NotAction cannot be expressed"),
    ],
)
def test_statements_add_permission_cannot_express_are_refused(statement: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        permission_arguments(statement)


@pytest.mark.stubber
def test_restore_of_a_public_function_url_permission(target: Target, moto_aws) -> None:
    """moto stores FunctionUrlAuthType beside the statement instead of in its Condition as AWS does, so the
    round trip of AWS's shape is checked with Stubber: GetPolicy as AWS returns it, then the exact AddPermission."""
    client = target.client("lambda")
    other = {**URL_STATEMENT, "Sid": "Partner", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}
    with Stubber(client) as stub:
        stub.add_response("get_policy", {"Policy": json.dumps({"Statement": [other]})}, {"FunctionName": FUNCTION})
        stub.add_response(
            "add_permission",
            {"Statement": json.dumps(URL_STATEMENT)},
            {"FunctionName": FUNCTION, **permission_arguments(URL_STATEMENT)},
        )
        lines = FunctionPolicyNotPublic().restore(target, function_finding(), {"Statements": [URL_STATEMENT]})
        stub.assert_no_pending_responses()

    assert lines == [
        f're-added statement "FunctionURLAllowPublicAccess" (Allow * lambda:InvokeFunctionUrl) on function {FUNCTION}'
    ]


def test_restore_reports_a_statement_it_cannot_re_create(target: Target, awslambda) -> None:
    unusual = {**URL_STATEMENT, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}

    lines = FunctionPolicyNotPublic().restore(target, function_finding(), {"Statements": [unusual]})

    assert lines[0].startswith('cannot re-add statement "FunctionURLAllowPublicAccess"')
    assert "re-create it by hand" in lines[0] and "aws:SecureTransport" in lines[0]
    assert statements(awslambda) == {}


def test_declarations() -> None:
    assert [r.rule_id for r in FunctionPolicyNotPublic.rules] == ["Lambda.1"]
    assert FunctionPolicyNotPublic.resource_types == ("AwsLambdaFunction",)
    assert FunctionPolicyNotPublic.permissions == (
        "lambda:GetPolicy",
        "lambda:ListTags",
        "s3:ListBucket",
        "tag:GetResources",  # the engine's batched tag read
        "lambda:RemovePermission",
        "lambda:AddPermission",
    )
    assert FunctionPolicyNotPublic.reversible


@pytest.mark.parametrize("resource_id", [
    "fn", "fn:live", "fn:7",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:live",
])
def test_tags_are_read_on_the_unqualified_function(target: Target, resource_id: str) -> None:
    assert function_arn(target, resource_id) == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    assert function_arn(target, f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:fn:3") == (
        f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:fn")
    with pytest.raises(ValueError, match="not an ARN"):
        function_arn(target, "arn:aws:lambda")
