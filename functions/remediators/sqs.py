"""SQS remediators: queue access policy not public (SQS.3).

Only the public statements (functions.remediators.policies) are removed; every other statement stays as it was.
A policy left without statements is removed altogether. The previous policy text is the rollback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, RemediationError, Remediator, Rule
from functions.remediators.policies import describe_statement, policy_text, split_public

_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def queue_arn(target: Target, finding: Finding) -> str | None:
    """The queue's ARN for the batched tag read: the finding's, or built from a queue name; None for a URL (its
    Region is not known without parsing a host an endpoint may rename)."""
    arn = finding.resource_arn or ""
    if arn.startswith("arn:") and ":sqs:" in arn:
        return arn
    if finding.resource_id.startswith(("https://", "http://", "arn:")):
        return None
    return f"arn:{target.partition}:sqs:{target.api_region}:{target.account_id}:{finding.resource_id}"


class QueuePolicyNotPublic(Remediator):
    """SQS.3: remove the statements of a queue policy that let anyone act on the queue.

    The queue's tags are read (one ListQueueTags, or the engine's batched tag read) when the finding carries none,
    so the exclusion tag holds for every source.
    """

    rules = (Rule("SQS.3", "SQS queue access policies should not allow public access"),)
    resource_types = ("AwsSqsQueue",)
    read_permissions = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueueTags", "tag:GetResources")
    write_permissions = ("sqs:SetQueueAttributes",)
    restore_permissions = ("sqs:SetQueueAttributes",)
    reversible = True

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return queue_arn(target, finding)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        url = self._queue_url(target, finding)
        text = self._policy(target, url)
        policy = json.loads(text) if text else {}
        kept, public = split_public(policy)
        tags = self.resource_tags(target, finding,
                                  lambda: target.client("sqs").list_queue_tags(QueueUrl=url).get("Tags", {}))
        if not public:
            return Assessment(compliant=True, tags=tags, context={"QueueUrl": url})
        changes = [f"remove {describe_statement(s)} from the policy of queue {url}" for s in public]
        if not kept:
            changes.append(f"remove the then empty policy of queue {url}")
        return Assessment(
            compliant=False,
            changes=changes,
            pre_state={"Policy": text},
            tags=tags,
            context={"QueueUrl": url, "Policy": policy_text(policy, kept) if kept else ""},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        self._set_policy(target, assessment.context["QueueUrl"], assessment.context["Policy"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        url, previous = self._queue_url(target, finding), pre_state["Policy"]
        if _same_policy(self._policy(target, url), previous):
            return [f"queue {url} already has its previous policy"]
        self._set_policy(target, url, previous)
        return [f"put back the previous policy of queue {url}"]

    @staticmethod
    def _queue_url(target: Target, finding: Finding) -> str:
        """The queue URL: the finding may carry a URL, or a name (the ARN's last part), looked up once per run."""
        if finding.resource_id.startswith("https://"):
            return finding.resource_id
        name = finding.resource_id

        def look_up() -> str:
            try:
                response = target.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=target.account_id)
            except ClientError as error:
                if aws_error_code(error) in _NO_QUEUE:
                    raise RemediationError(f"SQS queue {name} not found") from error
                raise
            return str(response["QueueUrl"])

        # Once per queue and run, for SQS.1 and SQS.3 alike: no write here changes a queue's URL, so the
        # verification after a write reuses it (a deleted queue fails the attribute read that follows instead).
        return target.lookup(("sqs.GetQueueUrl", name), look_up)

    @staticmethod
    def _policy(target: Target, url: str) -> str:
        """The queue's policy text, "" when it has none."""
        try:
            response = target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        except ClientError as error:
            if aws_error_code(error) in _NO_QUEUE:
                raise RemediationError(f"SQS queue {url} not found") from error
            raise
        policy: str = response.get("Attributes", {}).get("Policy", "")
        return policy

    @staticmethod
    def _set_policy(target: Target, url: str, text: str) -> None:
        """Set the policy; "" removes it."""
        target.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": text})


def _same_policy(current: str, previous: str) -> bool:
    """Compare as JSON: SQS may return the text it stored with different spacing."""
    if not current or not previous:
        return current == previous
    same: bool = json.loads(current) == json.loads(previous)
    return same
