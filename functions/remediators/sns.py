"""SNS remediators: topic encrypted at rest with KMS (SNS.1).

SNS.1 passes only for a topic with a KMS key (KmsMasterKeyId). The rule is disruptive: AWS services that publish
to a topic (CloudWatch alarms, EventBridge, S3 event notifications, …) need kms:GenerateDataKey* and kms:Decrypt
on its key, which the AWS managed key alias/aws/sns (the default here) never grants them, and SNS then drops their
messages. So it acts only with its own `enforce`, and the plan names the service principals the topic policy lets
publish. With a customer managed key whose policy allows those services (`kms_key_id`), nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule, tag_dict
from functions.remediators.sqs_encryption import KMS_KEY_ID


def topic_arn(target: Target, finding: Finding) -> str:
    """The topic ARN the SNS API takes: the finding's id when it is one, else its ARN, else built from the name."""
    for candidate in (finding.resource_id, finding.resource_arn or ""):
        if candidate.startswith("arn:") and ":sns:" in candidate:
            return candidate
    return f"arn:{target.partition}:sns:{target.api_region}:{target.account_id}:{finding.resource_id}"


def service_publishers(policy_text: str) -> list[str]:
    """The AWS service principals an SNS topic policy allows to act on the topic (sorted)."""
    if not policy_text:
        return []
    found: set[str] = set()
    statements = json.loads(policy_text).get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow" or not isinstance(statement.get("Principal"), dict):
            continue
        services = statement["Principal"].get("Service", [])
        found.update([services] if isinstance(services, str) else services)
    return sorted(found)


class TopicEncryption(Remediator):
    """SNS.1: encrypt a topic with a KMS key (the AWS managed alias/aws/sns unless `kms_key_id` names another).

    One GetTopicAttributes reads the key and the policy; the topic's tags (one ListTagsForResource) only for a
    topic that would change and whose finding carries none. Rollback removes the key again (messages then stored
    with SNS's own disk encryption, as before).
    """

    rules = (
        Rule(
            "SNS.1",
            "SNS topics should be encrypted at-rest using AWS KMS",
            disruptive=True,
            disruption="traffic",
            because="AWS services publishing to the topic need the key, or SNS drops their messages",
        ),
    )
    resource_types = ("AwsSnsTopic",)
    read_permissions = ("sns:GetTopicAttributes", "sns:ListTagsForResource", "tag:GetResources")
    write_permissions = ("sns:SetTopicAttributes",)
    restore_permissions = ("sns:SetTopicAttributes",)
    reversible = True
    state_keys = ("KmsMasterKeyId",)
    params_schema = {
        "kms_key_id": Param(
            "alias/aws/sns", str, pattern=KMS_KEY_ID,
            description="the KMS key to encrypt with; AWS services publish only to topics whose customer managed "
                        "key policy allows them",
        ),
    }

    def tagging_arn(self, target: Target, finding: Finding) -> str | None:
        return topic_arn(target, finding)

    def assess(self, target: Target, finding: Finding) -> Assessment:
        arn = topic_arn(target, finding)
        attributes = self._attributes(target, arn)
        state = {"KmsMasterKeyId": attributes.get("KmsMasterKeyId") or ""}
        if state["KmsMasterKeyId"]:
            return Assessment(compliant=True, pre_state=state, context={"TopicArn": arn})
        sns = target.client("sns")
        tags = self.resource_tags(target, finding, lambda: tag_dict(
            sns.list_tags_for_resource(ResourceArn=arn).get("Tags", [])))
        key = self.params["kms_key_id"]
        changes = [f"encrypt SNS topic {arn} with KMS key {key}"]
        services = service_publishers(attributes.get("Policy", ""))
        if services:
            changes.append(
                f"the topic policy lets {', '.join(services)} publish: they need kms:GenerateDataKey* and "
                f"kms:Decrypt on {key} (the AWS managed alias/aws/sns never allows them), or their messages are lost"
            )
        return Assessment(compliant=False, changes=changes, pre_state=state, tags=tags,
                          context={"TopicArn": arn, "KmsMasterKeyId": key})

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        target.client("sns").set_topic_attributes(
            TopicArn=assessment.context["TopicArn"], AttributeName="KmsMasterKeyId",
            AttributeValue=assessment.context["KmsMasterKeyId"],
        )

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        arn = topic_arn(target, finding)
        previous = pre_state.get("KmsMasterKeyId", "")
        if (self._attributes(target, arn).get("KmsMasterKeyId") or "") == previous:
            return [f"SNS topic {arn} already has its previous encryption setting"]
        target.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId",
                                                  AttributeValue=previous)
        return [f"set the KMS key of SNS topic {arn} back to {previous or 'none'}"]

    @staticmethod
    def _attributes(target: Target, arn: str) -> dict[str, str]:
        try:
            attributes: dict[str, str] = target.client("sns").get_topic_attributes(TopicArn=arn).get("Attributes", {})
            return attributes
        except ClientError as error:
            if aws_error_code(error) in ("NotFound", "NotFoundException"):
                raise RemediationError(f"SNS topic {arn} not found") from error
            raise
