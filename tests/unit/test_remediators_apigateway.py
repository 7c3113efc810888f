"""APIGateway.5 against moto: a stage caching unencrypted gets its cache encrypted, read back; a second assess is
compliant; caching and its TTL stay; rollback sets it back (twice is harmless)."""

from __future__ import annotations

import boto3
import pytest

from functions.model import Target
from functions.remediators.apigateway import StageCacheEncryption
from functions.remediators.base import RemediationError
from tests.factories import make_finding

REGION = "us-east-1"


@pytest.fixture
def stage(moto_aws) -> tuple[str, str]:
    client = boto3.client("apigateway", region_name=REGION)
    api = client.create_rest_api(name="shop")["id"]
    root = client.get_resources(restApiId=api)["items"][0]["id"]
    client.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    deployment = client.create_deployment(restApiId=api)["id"]
    client.create_stage(restApiId=api, stageName="prod", deploymentId=deployment, cacheClusterEnabled=True,
                        cacheClusterSize="0.5")
    client.update_stage(restApiId=api, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/*/*/caching/ttlInSeconds", "value": "120"},
        {"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"}])  # moto's default is true
    return api, "prod"


def settings(api: str) -> dict:
    return boto3.client("apigateway", region_name=REGION).get_stage(restApiId=api, stageName="prod")[
        "methodSettings"]["*/*"]


def test_cache_is_encrypted_and_the_rest_kept(target: Target, stage) -> None:
    api, name = stage
    finding = make_finding("APIGateway.5", "AwsApiGatewayStage", f"{api}/{name}",
                           resource_arn=f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/{name}")
    remediator = StageCacheEncryption()

    before = remediator.assess(target, finding)
    assert before.changes == [f"encrypt the cache of */* on stage prod of REST API {api}"]
    remediator.apply(target, finding, before)

    now = settings(api)
    assert (now["cacheDataEncrypted"], now["cachingEnabled"], now["cacheTtlInSeconds"]) == (True, True, 120)
    assert remediator.assess(target, finding).compliant

    assert remediator.restore(target, finding, before.pre_state) == [
        f"set the cache of */* on stage prod of REST API {api} back to unencrypted"]
    assert settings(api)["cacheDataEncrypted"] is False
    assert remediator.restore(target, finding, before.pre_state) == [
        f"the cache of stage prod of REST API {api} is already as it was"]


def test_missing_stage_is_refused(target: Target, stage) -> None:
    api, _ = stage
    with pytest.raises(RemediationError, match="stage gone of REST API"):
        StageCacheEncryption().assess(target, make_finding("APIGateway.5", "AwsApiGatewayStage", f"{api}/gone"))
