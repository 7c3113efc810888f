"""API Gateway remediators: REST API cache data encrypted (APIGateway.5).

APIGateway.5 fails for a REST API stage where a method with caching on does not encrypt its cache. Only those
method settings (the stage-wide `*/*` one or a method's own) get caching/dataEncrypted=true; caching, TTLs and every
other setting stay. API Gateway flushes a cache whose encryption changes (responses are fetched again once).
Rollback sets the same method settings back to unencrypted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Grant, RemediationError, Remediator, Rule


def stage_of(finding: Finding) -> tuple[str, str]:
    """(rest API id, stage name) from a stage ARN (…/restapis/ID/stages/NAME) or an "ID/NAME" id."""
    text = finding.resource_arn or finding.resource_id
    match = re.search(r"restapis/([^/]+)/stages/([^/]+)$", text) or re.fullmatch(r"([^/:]+)/([^/]+)",
                                                                                  finding.resource_id)
    if not match:
        raise RemediationError(f"cannot tell the REST API and stage from {finding.resource_id}")
    return match.group(1), match.group(2)


class StageCacheEncryption(Remediator):
    """APIGateway.5: encrypt the cache of every cached method of the stage (one GetStage to check)."""

    rules = (Rule("APIGateway.5", "API Gateway REST API cache data should be encrypted at rest"),)
    resource_types = ("AwsApiGatewayStage",)
    read_permissions = ("apigateway:GET",)
    write_permissions = ("apigateway:PATCH",)
    restore_permissions = ("apigateway:PATCH",)
    # API Gateway authorizes by HTTP method on a resource path: PATCH on "*" could change any API, the account's
    # CloudWatch role included, so both are granted on REST API stages only.
    grants = (Grant(("apigateway:GET", "apigateway:PATCH"),
                    resources=("arn:${AWS::Partition}:apigateway:*::/restapis/*/stages/*",)),)
    reversible = True
    side_effects = "the stage's cache is flushed once (responses are fetched from the backend again)"

    def assess(self, target: Target, finding: Finding) -> Assessment:
        api, stage_name = stage_of(finding)
        stage = self._stage(target, api, stage_name)
        unencrypted = sorted(key for key, settings in (stage.get("methodSettings") or {}).items()
                             if settings.get("cachingEnabled") and not settings.get("cacheDataEncrypted"))
        tags = dict(stage.get("tags") or {})
        state = {"unencrypted": unencrypted}
        if not unencrypted:
            return Assessment(compliant=True, pre_state=state, tags=tags)
        return Assessment(compliant=False, pre_state=state, tags=tags, context={"api": api, "stage": stage_name},
                          changes=[f"encrypt the cache of {', '.join(unencrypted)} on stage {stage_name} of REST API "
                                   f"{api}"])

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        context = assessment.context
        self._patch(target, context["api"], context["stage"], assessment.pre_state["unencrypted"], "true")

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        api, stage_name = stage_of(finding)
        keys = list(pre_state.get("unencrypted") or [])
        settings = self._stage(target, api, stage_name).get("methodSettings") or {}
        keys = [key for key in keys if settings.get(key, {}).get("cacheDataEncrypted")]
        if not keys:
            return [f"the cache of stage {stage_name} of REST API {api} is already as it was"]
        self._patch(target, api, stage_name, keys, "false")
        return [f"set the cache of {', '.join(keys)} on stage {stage_name} of REST API {api} back to unencrypted"]

    @staticmethod
    def _patch(target: Target, api: str, stage: str, keys: list[str], value: str) -> None:
        operations = [{"op": "replace", "path": f"/{key}/caching/dataEncrypted", "value": value} for key in keys]
        target.client("apigateway").update_stage(restApiId=api, stageName=stage, patchOperations=operations)

    @staticmethod
    def _stage(target: Target, api: str, stage: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = target.client("apigateway").get_stage(restApiId=api, stageName=stage)
            return response
        except ClientError as error:
            if aws_error_code(error) == "NotFoundException":
                raise RemediationError(f"stage {stage} of REST API {api} not found") from error
            raise
