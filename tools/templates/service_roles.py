"""Roles a remediator hands to an AWS service with iam:PassRole, created in the target accounts."""

from __future__ import annotations

from dataclasses import dataclass

from functions.remediators.base import Remediator
from functions.remediators.ec2 import VpcFlowLogs
from tools.templates.cfn import Json, sub
from tools.templates.iam import statement


@dataclass(frozen=True)
class ServiceRole:
    """A role a remediator hands to an AWS service with iam:PassRole; created in each target account when one of
    that remediator's rules is enabled. Its statements are what AWS documents the service needs."""

    logical_id: str
    remediator: type[Remediator]
    role_name: str
    service: str
    statements: tuple[Json, ...]


def _flow_logs_statements(log_group: str) -> tuple[Json, ...]:
    group_arn = f"arn:${{AWS::Partition}}:logs:*:${{AWS::AccountId}}:log-group:{log_group}"
    return (
        statement("DeliverFlowLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                                      "logs:PutLogEvents"], [sub(group_arn), sub(group_arn + ":*")]),
        statement("FindLogGroup", ["logs:DescribeLogGroups"], "*"),
    )


SERVICE_ROLES: tuple[ServiceRole, ...] = (
    ServiceRole(
        logical_id="FlowLogsDeliveryRole",
        remediator=VpcFlowLogs,
        role_name=VpcFlowLogs.default_params["delivery_role_name"],
        service="vpc-flow-logs.amazonaws.com",
        statements=_flow_logs_statements(VpcFlowLogs.default_params["log_group_name"]),
    ),
)


def service_roles_of(remediator: type[Remediator]) -> list[ServiceRole]:
    return [role for role in SERVICE_ROLES if role.remediator is remediator]
