"""SQS remediators: queue encrypted at rest (SQS.1).

Security Hub's SQS.1 passes for a queue encrypted with the SQS-managed key (SSE-SQS) or with a KMS key (SSE-KMS).
SSE-SQS is the default here because it is the change that cannot break anyone: SQS holds the key, so no producer
or consumer needs a KMS permission it may not have (SSE-KMS with a customer managed key makes every sender, AWS
services included, need kms:GenerateDataKey on it). A user who wants SSE-KMS names the key (`kms_key_id`); the
plan then says why that may cut senders off. Messages already in the queue stay as they are; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule
from functions.remediators.sqs import QueuePolicyNotPublic, queue_arn

_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
# A KMS key as SetQueueAttributes / SetTopicAttributes take it: key or alias ARN, alias name, key id.
KMS_KEY_ID = (r"(arn:aws[\w-]*:kms:[\w-]+:\d{12}:(key|alias)/[\w/+=,.@-]+|alias/[\w/+=,.@-]+"
              r"|[0-9a-f-]{36}|mrk-[0-9a-f]{32})")


class QueueEncryption(Remediator):
    """SQS.1: turn on server-side encryption of a queue that has none (SSE-SQS, or SSE-KMS with `kms_key_id`).

    One GetQueueAttributes reads both settings; the queue's tags are read (one ListQueueTags) only for a queue that
    would change and whose finding carries none. Rollback turns off exactly the setting the run turned on.
    """

    rules = (Rule("SQS.1", "Amazon SQS queues should be encrypted at rest"),)
    resource_types = ("AwsSqsQueue",)
    read_permissions = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ListQueueTags", "tag:GetResources")
    write_permissions = ("sqs:SetQueueAttributes",)
    restore_permissions = ("sqs:SetQueueAttributes",)
    reversible = True
    state_keys = ("SqsManagedSseEnabled", "KmsMasterKeyId")
    params_schema = {
        "kms_key_id": Param(
            None, str, pattern=KMS_KEY_ID,
            description="encrypt with this KMS key (SSE-KMS) instead of the SQS-managed key; every sender then "
                        "needs kms:GenerateDataKey and kms:Decrypt on it",
        ),
    }

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return queue_arn(target, finding)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        url = QueuePolicyNotPublic._queue_url(target, finding)
        state = self._state(target, url)
        if state["SqsManagedSseEnabled"] or state["KmsMasterKeyId"]:
            return Assessment(compliant=True, pre_state=state, context={"QueueUrl": url})
        tags = self.resource_tags(target, finding,
                                  lambda: target.client("sqs").list_queue_tags(QueueUrl=url).get("Tags", {}))
        key = self.params["kms_key_id"]
        if key:
            return Assessment(
                compliant=False,
                changes=[f"encrypt queue {url} with KMS key {key} (SSE-KMS)"],
                pre_state=state,
                tags=tags,
                context={"QueueUrl": url, "Attributes": {"KmsMasterKeyId": key}},
                disruptive=f"every sender to queue {url} (AWS services included) needs kms:GenerateDataKey on "
                           f"{key}, or its messages are refused",
            )
        return Assessment(
            compliant=False,
            changes=[f"encrypt queue {url} with the SQS-managed key (SSE-SQS)"],
            pre_state=state,
            tags=tags,
            context={"QueueUrl": url, "Attributes": {"SqsManagedSseEnabled": "true"}},
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("sqs").set_queue_attributes(
            QueueUrl=assessment.context["QueueUrl"], Attributes=assessment.context["Attributes"]
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        """Turn off what is on now and was off before (the queue was unencrypted: both were off)."""
        url = QueuePolicyNotPublic._queue_url(target, finding)
        now = self._state(target, url)
        attributes: dict[str, str] = {}
        if now["SqsManagedSseEnabled"] and not pre_state.get("SqsManagedSseEnabled"):
            attributes["SqsManagedSseEnabled"] = "false"
        if now["KmsMasterKeyId"] and not pre_state.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = ""
        if not attributes:
            return [f"queue {url} already has its previous encryption settings"]
        target.client("sqs").set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return [f"turned server-side encryption of queue {url} off again"]

    @staticmethod
    def _state(target: Target, url: str) -> dict[str, Any]:
        try:
            attributes = target.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["SqsManagedSseEnabled", "KmsMasterKeyId"]
            ).get("Attributes", {})
        except ClientError as error:
            if aws_error_code(error) in _NO_QUEUE:
                raise RemediationError(f"SQS queue {url} not found") from error
            raise
        return {
            "SqsManagedSseEnabled": str(attributes.get("SqsManagedSseEnabled", "false")).lower() == "true",
            "KmsMasterKeyId": attributes.get("KmsMasterKeyId") or "",
        }
