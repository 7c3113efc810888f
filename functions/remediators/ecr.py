"""ECR remediators: private repository image scanning (ECR.1).

ECR.1 fails for a private repository configured neither to scan on push nor for continuous scanning. Basic scan on
push is free and changes nothing about pushes or pulls (a scan runs after the push is accepted), so it is the
change made here; images already in the repository are not rescanned. Turning it off again is the rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule, live_tags, tag_dict


def repository_name(finding: Finding) -> str:
    """The repository name: the finding's id, or what follows `repository/` in an ECR ARN (names may hold '/')."""
    resource = finding.resource_id
    return resource.split(":repository/", 1)[1] if ":repository/" in resource else resource


class RepositoryScanOnPush(Remediator):
    """ECR.1: turn on scan on push (basic scanning) for a private repository that scans nothing.

    One DescribeRepositories reads the setting and the ARN; the tags (ListTagsForResource) only for a repository
    that would change and whose finding carries none.
    """

    rules = (Rule("ECR.1", "ECR private repositories should have image scanning configured"),)
    resource_types = ("AwsEcrRepository",)
    read_permissions = ("ecr:DescribeRepositories", "ecr:ListTagsForResource")
    write_permissions = ("ecr:PutImageScanningConfiguration",)
    restore_permissions = ("ecr:PutImageScanningConfiguration",)
    reversible = True
    side_effects = "each push is scanned for known vulnerabilities (basic scanning, no charge)"
    state_keys = ("scanOnPush",)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        name = repository_name(finding)
        repository = self._describe(target, name)
        state = {"scanOnPush": bool(repository.get("imageScanningConfiguration", {}).get("scanOnPush"))}
        if state["scanOnPush"]:
            return Assessment(compliant=True, pre_state=state, context={"repositoryName": name})
        ecr = target.client("ecr")
        tags = live_tags(finding, lambda: tag_dict(
            ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"]).get("tags", [])))
        return Assessment(
            compliant=False,
            changes=[f"turn on scan on push (basic scanning) for ECR repository {name}"],
            pre_state=state,
            tags=tags,
            context={"repositoryName": name},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("ecr").put_image_scanning_configuration(
            repositoryName=assessment.context["repositoryName"], imageScanningConfiguration={"scanOnPush": True}
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        name, previous = repository_name(finding), bool(pre_state["scanOnPush"])
        current = self._describe(target, name).get("imageScanningConfiguration", {}).get("scanOnPush")
        if bool(current) == previous:
            return [f"scan on push of ECR repository {name} is already {previous}"]
        target.client("ecr").put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": previous}
        )
        return [f"set scan on push of ECR repository {name} back to {previous}"]

    @staticmethod
    def _describe(target: Target, name: str) -> dict[str, Any]:
        try:
            repository: dict[str, Any] = target.client("ecr").describe_repositories(repositoryNames=[name])[
                "repositories"][0]
            return repository
        except ClientError as error:
            if aws_error_code(error) == "RepositoryNotFoundException":
                raise RemediationError(f"ECR repository {name} not found") from error
            raise
