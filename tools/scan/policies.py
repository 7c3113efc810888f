"""The IAM policy documents of a rendered template, made concrete for a linter.

Policy linters read plain JSON: every intrinsic left after the conditions are resolved (Fn::Sub, Ref, Fn::GetAtt,
Fn::Join) becomes the string CloudFormation would produce in a sample account, so a linter can match ARNs against
each action's resource types. Parameters take their default (or the rendering's value); a resource's Ref and Arn
are built from its type and logical id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tools.templates.cfn import Json

ACCOUNT, REGION, PARTITION = "111122223333", "us-east-1", "aws"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "cspm-remediation",
          "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/cspm-remediation/id"}
# Values for parameters without a default that a policy names (a sample of the documented shape).
SAMPLES = {"OrganizationId": "o-exampleorgid", "AdminAccountId": "444455556666", "AdminRegion": REGION,
           "CodeS3Bucket": "code-bucket",
           "RollbackOperatorArn": f"arn:aws:iam::{ACCOUNT}:role/SecurityOperator"}
# Resource type → (Ref, Arn) templates over the logical id.
ARNS = {
    "AWS::SQS::Queue": (f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{}}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{}}"),
    "AWS::SNS::Topic": (f"arn:aws:sns:{REGION}:{ACCOUNT}:{{}}", f"arn:aws:sns:{REGION}:{ACCOUNT}:{{}}"),
    "AWS::DynamoDB::Table": ("{}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}"),
    "AWS::KMS::Key": ("1234abcd-12ab-34cd-56ef-{}", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-{{}}"),
    "AWS::Logs::LogGroup": ("{}", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{}}:*"),
    "AWS::Lambda::Function": ("{}", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}"),
    "AWS::IAM::Role": ("{}", f"arn:aws:iam::{ACCOUNT}:role/{{}}"),
    "AWS::IAM::ManagedPolicy": (f"arn:aws:iam::{ACCOUNT}:policy/{{}}", f"arn:aws:iam::{ACCOUNT}:policy/{{}}"),
    "AWS::SecretsManager::Secret": (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{{}}-AbCdEf",) * 2,
    "AWS::SSM::Parameter": ("{}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{{}}"),
    "AWS::Events::Rule": ("{}", f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{{}}"),
    "AWS::Scheduler::Schedule": ("{}", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{{}}"),
    "AWS::S3::Bucket": ("{}", "arn:aws:s3:::{}"),
}
# Resource types whose properties hold an IAM policy document, and where.
IDENTITY_TYPES = ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
RESOURCE_POLICY_TYPES = {"AWS::SQS::QueuePolicy": "PolicyDocument", "AWS::SNS::TopicPolicy": "PolicyDocument",
                         "AWS::KMS::Key": "KeyPolicy", "AWS::S3::BucketPolicy": "PolicyDocument",
                         "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy"}


class ConcreteError(ValueError):
    """An intrinsic in a policy that has no sample value here."""


@dataclass(frozen=True)
class PolicyDoc:
    """One policy document of a rendering: where it sits (resource, and inline policy name or key) and its JSON."""

    resource: str
    name: str  # inline policy name, "trust", or the resource property (PolicyDocument, KeyPolicy...)
    kind: str  # "identity" | "trust" | "resource"
    document: Json

    @property
    def where(self) -> str:
        return f"{self.resource}/{self.name}"


def policy_documents(template: Json) -> Iterator[PolicyDoc]:
    """Every policy document of a (resolved) template, concrete."""
    concrete = Concretizer(template)
    for logical_id, body in template.get("Resources", {}).items():
        kind, props = body.get("Type", ""), body.get("Properties", {})
        if kind == "AWS::IAM::Role":
            yield PolicyDoc(logical_id, "trust", "trust", concrete(props["AssumeRolePolicyDocument"]))
            for policy in props.get("Policies", []):
                yield PolicyDoc(logical_id, policy["PolicyName"], "identity", concrete(policy["PolicyDocument"]))
        elif kind in IDENTITY_TYPES:
            yield PolicyDoc(logical_id, "PolicyDocument", "identity", concrete(props["PolicyDocument"]))
        elif kind in RESOURCE_POLICY_TYPES and RESOURCE_POLICY_TYPES[kind] in props:
            key = RESOURCE_POLICY_TYPES[kind]
            yield PolicyDoc(logical_id, key, "resource", concrete(props[key]))
        elif kind == "AWS::Events::EventBusPolicy" and "Statement" in props:  # one statement, no document
            document = {"Version": "2012-10-17", "Statement": [props["Statement"]]}
            yield PolicyDoc(logical_id, "Statement", "resource", concrete(document))


class Concretizer:
    """Intrinsics → the strings CloudFormation would produce in the sample account."""

    def __init__(self, template: Json, values: Mapping[str, str] | None = None) -> None:
        self._resources = template.get("Resources", {})
        self._parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self._parameters.update({k: v for k, v in SAMPLES.items() if not self._parameters.get(k)})
        self._parameters.update(values or {})

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                (key, argument), = value.items()
                if key == "Ref":
                    return self._ref(argument)
                if key == "Fn::GetAtt":
                    resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                    return self._get_att(resource, attribute)
                if key == "Fn::Sub":
                    return self._sub(argument)
                if key == "Fn::Join":
                    separator, items = argument
                    return separator.join(str(self(item)) for item in items)
                if key == "Fn::Split":
                    separator, text = argument
                    return str(self(text)).split(separator)
                if key == "Fn::Select":
                    index, items = argument
                    return self(items)[int(index)]
                if key.startswith("Fn::"):
                    raise ConcreteError(f"unsupported intrinsic {key} in a policy")
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def _ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._resource_value(name, 0)

    def _get_att(self, resource: str, attribute: str) -> str:
        if attribute != "Arn":
            raise ConcreteError(f"no sample for {resource}.{attribute}")
        return self._resource_value(resource, 1)

    def _resource_value(self, logical_id: str, index: int) -> str:
        if logical_id not in self._resources:
            raise ConcreteError(f"{logical_id} is neither a parameter nor a resource")
        kind = self._resources[logical_id]["Type"]
        if kind not in ARNS:
            raise ConcreteError(f"no sample ARN for {kind} ({logical_id})")
        return ARNS[kind][index].format(logical_id)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self(variables[name]))
            if "." in name and name.split(".", 1)[0] in self._resources:
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)
