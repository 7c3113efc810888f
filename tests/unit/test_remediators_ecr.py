"""ECR.1 against moto: a repository that scans nothing gets scan on push, read back; a second assess is compliant;
tag mutability, encryption, policy and images survive; rollback turns it off again."""

from __future__ import annotations

import json

import boto3
import pytest

from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.base import RemediationError
from functions.remediators.ecr import RepositoryScanOnPush, repository_name
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import iam_actions, record_calls

REPO = "team/api"
ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPO}"
PULL = {"Version": "2012-10-17", "Statement": [{"Sid": "ci", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "ecr:BatchGetImage"}]}


@pytest.fixture
def ecr(moto_aws):
    return boto3.client("ecr", region_name=REGION)


def make_repository(ecr, scan: bool = False, **tags: str) -> None:
    ecr.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": scan},
                          tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    ecr.set_repository_policy(repositoryName=REPO, policyText=json.dumps(PULL))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {}, "layers": []})
    ecr.put_image(repositoryName=REPO, imageManifest=manifest, imageTag="v1")


def finding(resource_id: str = REPO, **overrides):
    """A Security Hub finding: it carries the repository's tags, so they are not read again."""
    return make_finding("ECR.1", "AwsEcrRepository", resource_id, **{"tags": {"team": "api"}, **overrides})


def scans(ecr) -> bool:
    return ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]["imageScanningConfiguration"][
        "scanOnPush"]


def test_repository_gets_scan_on_push_and_keeps_the_rest(target: Target, ecr) -> None:
    make_repository(ecr)
    remediator = RepositoryScanOnPush()
    calls = record_calls(target.client("ecr"))

    before = remediator.assess(target, finding())
    assert not before.compliant
    assert before.changes == [f"turn on scan on push (basic scanning) for ECR repository {REPO}"]
    assert not scans(ecr)

    remediator.apply(target, finding(), before)

    assert scans(ecr)
    after = remediator.assess(target, finding())
    assert after.compliant and after.changes == []
    assert remediator.changed_fields(before.pre_state, after.pre_state) == {"scanOnPush": True}
    assert calls == ["DescribeRepositories", "PutImageScanningConfiguration", "DescribeRepositories"]
    repository = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert json.loads(ecr.get_repository_policy(repositoryName=REPO)["policyText"]) == PULL
    assert [i["imageTag"] for i in ecr.list_images(repositoryName=REPO)["imageIds"]] == ["v1"]


def test_scanning_repository_is_compliant(target: Target, ecr) -> None:
    make_repository(ecr, scan=True)

    assert RepositoryScanOnPush().assess(target, finding(ARN)).compliant


def test_restore_turns_it_off_and_twice_is_harmless(target: Target, sessions: AssumedSessions, ecr) -> None:
    make_repository(ecr, env="prod")
    remediator = RepositoryScanOnPush()
    assessment = remediator.assess(target, finding(tags={}))
    assert assessment.tags == {"env": "prod"}
    remediator.apply(target, finding(), assessment)

    first = remediator.restore(target, finding(), assessment.pre_state)
    second = remediator.restore(target, finding(), assessment.pre_state)

    assert not scans(ecr)
    assert first == [f"set scan on push of ECR repository {REPO} back to False"]
    assert second == [f"scan on push of ECR repository {REPO} is already False"]
    assert iam_actions(sessions.api_calls) == set(RepositoryScanOnPush.permissions)


def test_missing_repository_is_refused(target: Target, ecr) -> None:
    with pytest.raises(RemediationError, match="ECR repository gone not found"):
        RepositoryScanOnPush().assess(target, finding("gone"))


def test_repository_name_from_an_arn() -> None:
    assert repository_name(finding(ARN)) == REPO
